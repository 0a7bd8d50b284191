/* What module.c and module_pooler.c share: the Tokenizer object and its single-text encoder. */
#ifndef M2V_MODULE_H
#define M2V_MODULE_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "m2v_core.h"

typedef struct {
    PyObject_HEAD
    Py_buffer file;
    m2v_vocab vocab;
    m2v_work work; /* used only while holding the GIL */
    m2v_ids ids;   /* the last single text's ids */
} TokenizerObject;

extern PyTypeObject TokenizerType;
extern PyTypeObject PoolerType;

/* One text's ids into self->ids: the GIL is kept for short texts and released for long ones. Returns 0, or -1
 * with a Python exception set. */
int m2v_py_encode_one(TokenizerObject *self, PyObject *text, long long limit);

/* The module function `batches` (module_batches.c). */
PyObject *m2v_py_batches(PyObject *module, PyObject *args);

#endif
