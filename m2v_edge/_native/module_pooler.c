/* m2v_edge._core.Pooler: a variant's mapped arrays, pooled for one text at a time (see m2v_pool.h). */
#include "m2v_module.h"
#include "m2v_pool.h"

typedef struct {
    PyObject_HEAD
    Py_buffer table, scales, mapping, weights; /* .obj is NULL for an absent array */
    m2v_pool_arrays arrays;
} PoolerObject;

static int take(PyObject *source, Py_buffer *view, size_t align) {
    if (source == Py_None) return 0;
    if (PyObject_GetBuffer(source, view, PyBUF_SIMPLE) < 0) return -1;
    if ((uintptr_t)view->buf % align != 0) {
        PyErr_SetString(PyExc_ValueError, "a pooling array is not aligned");
        return -1;
    }
    return 0;
}

static void release(PoolerObject *self) {
    Py_buffer *views[4] = {&self->table, &self->scales, &self->mapping, &self->weights};
    for (int i = 0; i < 4; i++) {
        if (views[i]->obj != NULL) PyBuffer_Release(views[i]);
    }
}

static int pooler_init(PoolerObject *self, PyObject *args, PyObject *kwargs) {
    static char *names[] = {"table", "kind", "rows", "dim", "block", "blocks", "scales", "mapping", "weights",
                            "id_count", "unk_id", "normalize", NULL};
    PyObject *table, *scales, *mapping, *weights;
    int kind, normalize;
    unsigned long long rows, id_count;
    unsigned int dim, block, blocks;
    long long unk_id;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OiKIIIOOOKLp", names, &table, &kind, &rows, &dim, &block,
                                     &blocks, &scales, &mapping, &weights, &id_count, &unk_id, &normalize))
        return -1;
    release(self);
    if (take(table, &self->table, 1) || take(scales, &self->scales, 4) || take(mapping, &self->mapping, 8) ||
        take(weights, &self->weights, 4)) {
        release(self);
        return -1;
    }
    m2v_pool_arrays *a = &self->arrays;
    *a = (m2v_pool_arrays){kind, self->table.buf, (uint64_t)self->table.len, rows, dim, block, blocks,
                           self->scales.buf, (uint64_t)(self->scales.obj ? self->scales.len : 0),
                           self->mapping.buf, (uint64_t)(self->mapping.obj ? self->mapping.len / 8 : 0),
                           self->weights.buf, (uint64_t)(self->weights.obj ? self->weights.len / 4 : 0),
                           id_count, unk_id, normalize};
    if (self->mapping.obj == NULL) a->mapping = NULL;
    if (self->weights.obj == NULL) a->weights = NULL;
    if (self->scales.obj == NULL) a->scales = NULL;
    const char *error = self->table.obj == NULL ? "no table" : m2v_pool_check(a);
    if (error != NULL) {
        release(self);
        PyErr_SetString(PyExc_ValueError, error);
        return -1;
    }
    return 0;
}

static void pooler_dealloc(PoolerObject *self) {
    release(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *pooler_embed(PoolerObject *self, PyObject *args) {
    PyObject *tokenizer, *text;
    long long limit;
    Py_buffer out;
    if (self->table.obj == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "Pooler was not initialised");
        return NULL;
    }
    if (!PyArg_ParseTuple(args, "O!ULw*", &TokenizerType, &tokenizer, &text, &limit, &out)) return NULL;
    PyObject *result = NULL;
    TokenizerObject *t = (TokenizerObject *)tokenizer;
    if (out.len != (Py_ssize_t)self->arrays.dim * 4 || (uintptr_t)out.buf % 4 != 0) {
        PyErr_SetString(PyExc_ValueError, "out must be an aligned float32 buffer of the table's dim");
    } else if (m2v_py_encode_one(t, text, limit) == 0) {
        double *sum = PyMem_Malloc(self->arrays.dim * sizeof(double));
        if (sum == NULL) {
            PyErr_NoMemory();
        } else if (m2v_pool(&self->arrays, t->ids.data, t->ids.len, out.buf, sum)) {
            PyErr_SetString(PyExc_ValueError, "a token id is outside the pooling arrays");
        } else {
            result = PyLong_FromSize_t(t->ids.len);
        }
        PyMem_Free(sum);
    }
    PyBuffer_Release(&out);
    return result;
}

static PyMethodDef pooler_methods[] = {
    {"embed", (PyCFunction)pooler_embed, METH_VARARGS,
     "embed(tokenizer, text, limit, out) -> token count; out: float32[dim], filled with the text's vector"},
    {NULL, NULL, 0, NULL},
};

PyTypeObject PoolerType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "m2v_edge._core.Pooler",
    .tp_basicsize = sizeof(PoolerObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A variant's mapped pooling arrays (table, scales, mapping, weights), checked.",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)pooler_init,
    .tp_dealloc = (destructor)pooler_dealloc,
    .tp_methods = pooler_methods,
};
