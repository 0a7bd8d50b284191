/* m2v_edge._core: the Python face of the native core. m2v_edge/runtime/native.py is its only importer.
 *
 *   Tokenizer(buffer)              a mapped tokenizer file, checked whole (ValueError says what is wrong)
 *     .encode(text, limit)         one text's ids (list of int); limit < 0: no truncation
 *     .encode_batch(texts, limit, threads) -> (ids, lengths): int64 bytes, the texts' ids end to end and each
 *                                  text's count; the GIL is released and the texts are shared among threads
 *     .normalize(text), .pre_tokenize(text)   the pipeline's stages on one text (for tests and diagnostics)
 *     .id_limit                    every id the file gives is below it (the table rows it was compiled for)
 *   Pooler(...)                    a variant's mapped arrays (see m2v_pool.h), checked
 *   double_array(keys, offsets, values) -> units   (export) sorted keys as the file's double array
 *   batches(ids, offsets, lengths, budget)   the pooling graph's padded batches (module_batches.c)
 *     .embed(tokenizer, text, limit, out)     one text's vector into `out` (float32[dim]); returns the token count
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "m2v_module.h"
#include "structmember.h"

#define SHORT_TEXT 8192 /* bytes: shorter single texts are tokenized without releasing the GIL */

static int tokenizer_init(TokenizerObject *self, PyObject *args, PyObject *kwargs) {
    PyObject *source;
    static char *names[] = {"buffer", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O", names, &source)) return -1;
    if (self->file.obj != NULL) {
        PyErr_SetString(PyExc_RuntimeError, "Tokenizer is already initialised");
        return -1;
    }
    if (PyObject_GetBuffer(source, &self->file, PyBUF_SIMPLE) < 0) return -1;
    const char *error = m2v_vocab_open(&self->vocab, self->file.buf, (uint64_t)self->file.len);
    if (error != NULL) {
        PyBuffer_Release(&self->file);
        PyErr_SetString(PyExc_ValueError, error);
        return -1;
    }
    return 0;
}

static void tokenizer_dealloc(TokenizerObject *self) {
    m2v_work_free(&self->work);
    free(self->ids.data);
    if (self->file.obj != NULL) PyBuffer_Release(&self->file);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int check_ready(TokenizerObject *self) {
    if (self->file.obj == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "Tokenizer was not initialised");
        return -1;
    }
    return 0;
}

static int64_t as_limit(long long limit) { return limit < 0 ? INT64_MAX : (int64_t)limit; }

int m2v_py_encode_one(TokenizerObject *self, PyObject *text, long long limit) {
    if (check_ready(self)) return -1;
    Py_ssize_t n;
    const char *utf8 = PyUnicode_AsUTF8AndSize(text, &n);
    if (utf8 == NULL) return -1;
    self->ids.len = 0;
    int status;
    if (n < SHORT_TEXT) {
        status = m2v_encode(&self->vocab, &self->work, (const uint8_t *)utf8, (size_t)n, as_limit(limit), &self->ids);
    } else {
        m2v_work work = {0};
        m2v_ids ids = {0};
        Py_BEGIN_ALLOW_THREADS
        status = m2v_encode(&self->vocab, &work, (const uint8_t *)utf8, (size_t)n, as_limit(limit), &ids);
        Py_END_ALLOW_THREADS
        m2v_work_free(&work);
        free(self->ids.data);
        self->ids = ids;
    }
    if (status) PyErr_NoMemory();
    return status;
}

static PyObject *tokenizer_encode(TokenizerObject *self, PyObject *args) {
    PyObject *text;
    long long limit;
    if (check_ready(self) || !PyArg_ParseTuple(args, "UL", &text, &limit)) return NULL;
    if (m2v_py_encode_one(self, text, limit)) return NULL;
    PyObject *list = PyList_New((Py_ssize_t)self->ids.len);
    for (size_t i = 0; list != NULL && i < self->ids.len; i++) {
        PyObject *id = PyLong_FromLongLong(self->ids.data[i]);
        if (id == NULL) {
            Py_CLEAR(list);
            break;
        }
        PyList_SET_ITEM(list, (Py_ssize_t)i, id);
    }
    return list;
}

/* ------------------------------------------------------------------------------------------------ batches */

typedef struct {
    const m2v_vocab *vocab;
    const uint8_t **texts;
    const Py_ssize_t *sizes;
    int64_t *lengths;
    size_t first, last;
    int64_t limit;
    m2v_ids ids;
    int status;
} batch_job;

static void *run_job(void *arg) {
    batch_job *job = arg;
    m2v_work work = {0};
    for (size_t i = job->first; i < job->last && job->status == 0; i++) {
        size_t before = job->ids.len;
        job->status = m2v_encode(job->vocab, &work, job->texts[i], (size_t)job->sizes[i], job->limit, &job->ids);
        job->lengths[i] = (int64_t)(job->ids.len - before);
    }
    m2v_work_free(&work);
    return NULL;
}

/* Share texts [0, n) among `threads` jobs of about equal bytes, run them, return 0 or -1. */
static int run_batch(batch_job *jobs, int threads, size_t n, Py_ssize_t total) {
    size_t start = 0;
    Py_ssize_t seen = 0;
    for (int j = 0; j < threads; j++) {
        Py_ssize_t target = total / threads * (j + 1);
        size_t stop = start;
        while (stop < n && (j == threads - 1 || seen < target)) seen += jobs[0].sizes[stop++];
        jobs[j].first = start;
        jobs[j].last = stop;
        start = stop;
    }
    pthread_t workers[64];
    int started[64] = {0};
    for (int j = 1; j < threads; j++) started[j] = pthread_create(&workers[j], NULL, run_job, &jobs[j]) == 0;
    run_job(&jobs[0]);
    for (int j = 1; j < threads; j++) {
        if (started[j]) {
            pthread_join(workers[j], NULL);
        } else {
            run_job(&jobs[j]); /* no thread could be started: do its share here */
        }
    }
    for (int j = 0; j < threads; j++) {
        if (jobs[j].status) return -1;
    }
    return 0;
}

static PyObject *tokenizer_encode_batch(TokenizerObject *self, PyObject *args) {
    PyObject *sequence, *fast;
    long long limit;
    int threads;
    if (check_ready(self) || !PyArg_ParseTuple(args, "OLi", &sequence, &limit, &threads)) return NULL;
    fast = PySequence_Fast(sequence, "texts must be a sequence of str");
    if (fast == NULL) return NULL;
    size_t n = (size_t)PySequence_Fast_GET_SIZE(fast);
    const uint8_t **texts = calloc(n + 1, sizeof(*texts));
    Py_ssize_t *sizes = calloc(n + 1, sizeof(*sizes));
    PyObject **owned = calloc(n + 1, sizeof(*owned)); /* UTF-8 copies of non-ASCII texts, released at the end */
    int64_t *lengths = calloc(n + 1, sizeof(*lengths));
    batch_job jobs[64];
    memset(jobs, 0, sizeof(jobs));
    PyObject *result = NULL;
    Py_ssize_t total = 0;
    if (!texts || !sizes || !owned || !lengths) {
        PyErr_NoMemory();
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        PyObject *item = PySequence_Fast_GET_ITEM(fast, (Py_ssize_t)i);
        if (!PyUnicode_Check(item)) {
            PyErr_Format(PyExc_TypeError, "texts[%zu] is %.80s, not str", i, Py_TYPE(item)->tp_name);
            goto done;
        }
        if (PyUnicode_IS_ASCII(item)) {
            texts[i] = PyUnicode_DATA(item);
            sizes[i] = PyUnicode_GET_LENGTH(item);
        } else {
            owned[i] = PyUnicode_AsUTF8String(item);
            if (owned[i] == NULL) goto done;
            texts[i] = (const uint8_t *)PyBytes_AS_STRING(owned[i]);
            sizes[i] = PyBytes_GET_SIZE(owned[i]);
        }
        total += sizes[i];
    }
    if (threads > 64) threads = 64;
    if (threads > (int)(total / 16384) + 1) threads = (int)(total / 16384) + 1; /* small batches: no threads */
    if (threads > (int)n) threads = (int)n;
    if (threads < 1) threads = 1;
    for (int j = 0; j < threads; j++) {
        jobs[j] = (batch_job){&self->vocab, texts, sizes, lengths, 0, 0, as_limit(limit), {0}, 0};
    }
    int status;
    Py_BEGIN_ALLOW_THREADS
    status = run_batch(jobs, threads, n, total);
    Py_END_ALLOW_THREADS
    if (status) {
        PyErr_NoMemory();
        goto done;
    }
    size_t count = 0;
    for (int j = 0; j < threads; j++) count += jobs[j].ids.len;
    PyObject *ids = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)(count * sizeof(int64_t)));
    PyObject *sizes_out = PyBytes_FromStringAndSize((const char *)lengths, (Py_ssize_t)(n * sizeof(int64_t)));
    if (ids && sizes_out) {
        char *at = PyBytes_AS_STRING(ids);
        for (int j = 0; j < threads; j++) {
            if (jobs[j].ids.len) memcpy(at, jobs[j].ids.data, jobs[j].ids.len * sizeof(int64_t));
            at += jobs[j].ids.len * sizeof(int64_t);
        }
        result = PyTuple_Pack(2, ids, sizes_out);
    }
    Py_XDECREF(ids);
    Py_XDECREF(sizes_out);
done:
    for (int j = 0; j < 64; j++) free(jobs[j].ids.data);
    for (size_t i = 0; owned && i < n; i++) Py_XDECREF(owned[i]);
    free(texts);
    free(sizes);
    free(owned);
    free(lengths);
    Py_DECREF(fast);
    return result;
}

/* ------------------------------------------------------------------------------------------- diagnostics */

static PyObject *tokenizer_normalize(TokenizerObject *self, PyObject *args) {
    const char *text;
    Py_ssize_t n;
    if (check_ready(self) || !PyArg_ParseTuple(args, "s#", &text, &n)) return NULL;
    if (m2v_normalize(&self->vocab, &self->work, (const uint8_t *)text, (size_t)n)) return PyErr_NoMemory();
    return PyUnicode_DecodeUTF8((const char *)self->work.utf8.data, (Py_ssize_t)self->work.utf8.len, "strict");
}

static PyObject *tokenizer_pre_tokenize(TokenizerObject *self, PyObject *args) {
    const char *text;
    Py_ssize_t n;
    if (check_ready(self) || !PyArg_ParseTuple(args, "s#", &text, &n)) return NULL;
    m2v_work *w = &self->work;
    if (m2v_pretokenize(&self->vocab, w, (const uint8_t *)text, (size_t)n)) return PyErr_NoMemory();
    PyObject *list = PyList_New((Py_ssize_t)w->pieces.len);
    for (size_t i = 0; list != NULL && i < w->pieces.len; i++) {
        m2v_span s = w->pieces.data[i];
        PyObject *piece = PyUnicode_DecodeUTF8((const char *)w->arena.data + s.start, s.len, "strict");
        if (piece == NULL) {
            Py_CLEAR(list);
            break;
        }
        PyList_SET_ITEM(list, (Py_ssize_t)i, piece);
    }
    return list;
}

static PyMethodDef tokenizer_methods[] = {
    {"encode", (PyCFunction)tokenizer_encode, METH_VARARGS, "encode(text, limit) -> list of ids"},
    {"encode_batch", (PyCFunction)tokenizer_encode_batch, METH_VARARGS,
     "encode_batch(texts, limit, threads) -> (ids, lengths) as int64 bytes"},
    {"normalize", (PyCFunction)tokenizer_normalize, METH_VARARGS, "the normalizer on one text"},
    {"pre_tokenize", (PyCFunction)tokenizer_pre_tokenize, METH_VARARGS, "the pre-tokenizer's pieces of one text"},
    {NULL, NULL, 0, NULL},
};

static PyMemberDef tokenizer_members[] = {
    {"id_limit", T_UINT, offsetof(TokenizerObject, vocab.model.id_limit), READONLY,
     "every id the file gives is below this: the table rows it was compiled for"},
    {"ascii_one_pass", T_INT, offsetof(TokenizerObject, vocab.ascii_wordpiece), READONLY,
     "1 when ASCII texts take the one-pass WordPiece path"},
    {"mixed_one_pass", T_INT, offsetof(TokenizerObject, vocab.ascii_mixed), READONLY,
     "1 when texts mixing ASCII with other characters take it too, word by word"},
    {NULL, 0, 0, 0, NULL},
};

PyTypeObject TokenizerType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "m2v_edge._core.Tokenizer",
    .tp_basicsize = sizeof(TokenizerObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A mapped m2v-edge tokenizer file (tokenizer.m2v), checked whole.",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)tokenizer_init,
    .tp_dealloc = (destructor)tokenizer_dealloc,
    .tp_methods = tokenizer_methods,
    .tp_members = tokenizer_members,
};

/* ------------------------------------------------------------------------------------------------ exports */

static PyObject *double_array(PyObject *module, PyObject *args) {
    Py_buffer blob, offsets, values;
    (void)module;
    if (!PyArg_ParseTuple(args, "y*y*y*", &blob, &offsets, &values)) return NULL;
    PyObject *result = NULL;
    Py_ssize_t count = values.len / 4;
    const uint64_t *offset = offsets.buf;
    int sound = count >= 1 && count <= INT32_MAX && values.len % 4 == 0 && offsets.len == (count + 1) * 8 &&
                offset[0] == 0 && offset[count] == (uint64_t)blob.len;
    for (Py_ssize_t i = 0; sound && i < count; i++) {
        uint64_t length = offset[i + 1] - offset[i], previous = i ? offset[i] - offset[i - 1] : 0;
        sound = offset[i + 1] > offset[i];
        if (sound && i) { /* sorted and unique */
            uint64_t common = length < previous ? length : previous;
            int order = memcmp((const uint8_t *)blob.buf + offset[i - 1], (const uint8_t *)blob.buf + offset[i], common);
            sound = order < 0 || (order == 0 && previous < length);
        }
    }
    if (!sound) {
        PyErr_SetString(PyExc_ValueError, "keys must be non-empty, sorted and unique, one value each");
    } else {
        m2v_unit *units = NULL;
        uint32_t size = 0;
        int status;
        Py_BEGIN_ALLOW_THREADS
        status = m2v_build_double_array(blob.buf, offset, values.buf, (uint32_t)count, &units, &size);
        Py_END_ALLOW_THREADS
        if (status) {
            PyErr_NoMemory();
        } else {
            result = PyBytes_FromStringAndSize((const char *)units, (Py_ssize_t)size * (Py_ssize_t)sizeof(m2v_unit));
        }
        free(units);
    }
    PyBuffer_Release(&blob);
    PyBuffer_Release(&offsets);
    PyBuffer_Release(&values);
    return result;
}

static PyMethodDef module_functions[] = {
    {"double_array", double_array, METH_VARARGS,
     "double_array(keys, offsets, values) -> units: sorted unique keys (end to end) as the file's double array"},
    {"batches", m2v_py_batches, METH_VARARGS,
     "batches(ids, offsets, lengths, budget) -> [(rows, width, ids, mask)]: padded length-sorted batches"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef core_module = {
    PyModuleDef_HEAD_INIT, .m_name = "_core",
    .m_doc = "m2v-edge's native tokenizing core (see m2v_edge/runtime/native.py).", .m_size = -1,
    .m_methods = module_functions,
};

PyMODINIT_FUNC PyInit__core(void) {
    if (PyType_Ready(&TokenizerType) < 0 || PyType_Ready(&PoolerType) < 0) return NULL;
    PyObject *module = PyModule_Create(&core_module);
    if (module == NULL) return NULL;
    Py_INCREF(&TokenizerType);
    Py_INCREF(&PoolerType);
    if (PyModule_AddObject(module, "Tokenizer", (PyObject *)&TokenizerType) < 0 ||
        PyModule_AddObject(module, "Pooler", (PyObject *)&PoolerType) < 0 ||
        PyModule_AddIntConstant(module, "FORMAT_VERSION", M2V_FORMAT_VERSION) < 0 ||
        PyModule_AddIntConstant(module, "CORE_VERSION", M2V_CORE_VERSION) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
