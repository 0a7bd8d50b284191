/* What the fuzz harnesses share: tokenizing a text with an opened file, with the checks every result must pass.
 *
 * Built only by fuzz/run.sh (clang, -fsanitize=fuzzer,address,undefined), never by the package. */
#ifndef M2V_FUZZ_COMMON_H
#define M2V_FUZZ_COMMON_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "m2v_core.h"

/* A private copy of `size` bytes, 8-aligned as a mapped file is, and no longer than `size` (AddressSanitizer then
 * catches any read past the end). */
static inline uint8_t *fuzz_copy(const uint8_t *data, size_t size) {
    uint8_t *copy = malloc(size ? size : 1);
    if (copy == NULL) abort();
    if (size) memcpy(copy, data, size);
    return copy;
}

static inline void fuzz_fail(const char *what, size_t at, int64_t id) {
    fprintf(stderr, "m2v fuzz: %s (position %zu, id %lld)\n", what, at, (long long)id);
    abort();
}

/* Tokenize `text` with `v`: whole, then truncated to `limit`. Every id must be one the pooling can index (below the
 * file's id_limit), and truncation must keep the first ids of the whole text. The normalizer and pre-tokenizer are
 * also run alone, as the extension's diagnostics run them on any text. */
static inline void fuzz_tokenize(const m2v_vocab *v, m2v_work *w, const uint8_t *text, size_t n, int64_t limit) {
    m2v_ids whole = {0}, cut = {0};
    if (m2v_encode(v, w, text, n, INT64_MAX, &whole) == 0) {
        for (size_t i = 0; i < whole.len; i++) {
            if (whole.data[i] < 0 || whole.data[i] >= (int64_t)v->model.id_limit)
                fuzz_fail("an id outside the file's id_limit", i, whole.data[i]);
        }
        if (m2v_encode(v, w, text, n, limit, &cut) == 0) {
            size_t expected = whole.len < (uint64_t)limit ? whole.len : (size_t)limit;
            if (cut.len != expected) fuzz_fail("truncation kept another number of ids", cut.len, (int64_t)expected);
            for (size_t i = 0; i < cut.len; i++) {
                if (cut.data[i] != whole.data[i]) fuzz_fail("truncation changed an id", i, cut.data[i]);
            }
        }
    }
    free(whole.data);
    free(cut.data);
    (void)m2v_normalize(v, w, text, n);
    (void)m2v_pretokenize(v, w, text, n);
}

#endif
