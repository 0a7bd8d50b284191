/* m2v_edge._core.batches: the padded, length-sorted batches the pooling graph runs on (see runtime/batching.py,
 * whose numpy version gives the same batches where the core is not built).
 *
 *   batches(ids, offsets, lengths, budget) -> [(rows, width, ids, mask), ...]
 *
 * Texts with tokens are taken in the order of a stable sort by token count; each batch takes as many as fit in
 * `budget` padded tokens (rows x the longest row's count; at least one text). `rows` (int64) are the texts'
 * indices, `ids` and `mask` (int64, rows x width, row-major) the padded ids and attention mask: padding points at a
 * real token (ids[min(offset + column, total - 1)]), masked out by the graph. */
#include <stdlib.h>
#include <string.h>

#include "m2v_module.h"

typedef struct {
    int64_t length;
    int64_t index;
} keyed;

static int by_length_then_index(const void *a, const void *b) {
    const keyed *x = a, *y = b;
    if (x->length != y->length) return x->length < y->length ? -1 : 1;
    return x->index < y->index ? -1 : x->index > y->index;
}

static PyObject *batch_tuple(const keyed *order, size_t count, const int64_t *ids, int64_t total,
                             const int64_t *offsets) {
    int64_t width = order[count - 1].length;
    PyObject *rows = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)(count * sizeof(int64_t)));
    PyObject *padded = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)(count * (size_t)width * sizeof(int64_t)));
    PyObject *mask = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)(count * (size_t)width * sizeof(int64_t)));
    PyObject *result = NULL;
    if (rows && padded && mask) {
        int64_t *r = (int64_t *)PyBytes_AS_STRING(rows), *p = (int64_t *)PyBytes_AS_STRING(padded);
        int64_t *m = (int64_t *)PyBytes_AS_STRING(mask);
        for (size_t i = 0; i < count; i++) {
            int64_t text = order[i].index, start = offsets[text], length = order[i].length;
            r[i] = text;
            for (int64_t c = 0; c < width; c++) {
                int64_t at = start + c < total - 1 ? start + c : total - 1;
                p[i * (size_t)width + (size_t)c] = ids[at];
                m[i * (size_t)width + (size_t)c] = c < length;
            }
        }
        result = Py_BuildValue("(OLOO)", rows, (long long)width, padded, mask);
    }
    Py_XDECREF(rows);
    Py_XDECREF(padded);
    Py_XDECREF(mask);
    return result;
}

PyObject *m2v_py_batches(PyObject *module, PyObject *args) {
    Py_buffer ids, offsets, lengths;
    long long budget;
    (void)module;
    if (!PyArg_ParseTuple(args, "y*y*y*L", &ids, &offsets, &lengths, &budget)) return NULL;
    PyObject *list = NULL;
    keyed *order = NULL;
    size_t n = (size_t)lengths.len / sizeof(int64_t), count = 0;
    int64_t total = ids.len / (Py_ssize_t)sizeof(int64_t);
    const int64_t *length = lengths.buf, *offset = offsets.buf;
    if (offsets.len != lengths.len || ids.len % 8 || lengths.len % 8 || budget < 1) {
        PyErr_SetString(PyExc_ValueError, "ids, offsets and lengths must be int64 arrays, offsets and lengths alike");
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        if (length[i] < 0 || offset[i] < 0 || offset[i] + length[i] > total) {
            PyErr_SetString(PyExc_ValueError, "a text's token range lies outside the ids");
            goto done;
        }
    }
    order = malloc((n ? n : 1) * sizeof(keyed));
    if (order == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        if (length[i] > 0) order[count++] = (keyed){length[i], (int64_t)i};
    }
    qsort(order, count, sizeof(keyed), by_length_then_index);
    list = PyList_New(0);
    for (size_t start = 0; list != NULL && start < count;) {
        size_t stop = start + 1;
        while (stop < count && (int64_t)(stop + 1 - start) * order[stop].length <= budget) stop++;
        PyObject *batch = batch_tuple(order + start, stop - start, ids.buf, total, offset);
        if (batch == NULL || PyList_Append(list, batch) < 0) Py_CLEAR(list);
        Py_XDECREF(batch);
        start = stop;
    }
done:
    free(order);
    PyBuffer_Release(&ids);
    PyBuffer_Release(&offsets);
    PyBuffer_Release(&lengths);
    return list;
}
