/* Normalizer ops, as tokenizers runs them, on arrays of code points.
 *
 * Each op reads w->cps and writes w->cps2 (w->cps3 is its scratch), then the two swap; the result is encoded into w->utf8. An ASCII text
 * whose every op maps ASCII one byte at a time goes through the file's ascii_map instead (vocab.c). */
#include <stdlib.h>
#include <string.h>

#include "m2v_core.h"
#include "m2v_unicode.h"

#define PUT(array, value)                           \
    do {                                            \
        if (M2V_RESERVE(array, 1)) return -1;       \
        (array)->data[(array)->len++] = (value);    \
    } while (0)

static int put_all(m2v_cps *out, const uint32_t *cps, size_t n) {
    if (M2V_RESERVE(out, n)) return -1;
    memcpy(out->data + out->len, cps, n * sizeof(uint32_t));
    out->len += n;
    return 0;
}

static int decode_utf8(const uint8_t *s, size_t n, m2v_cps *out) {
    out->len = 0;
    if (M2V_RESERVE(out, n)) return -1;
    const uint8_t *p = s, *end = s + n;
    while (p < end) out->data[out->len++] = m2v_utf8_next(&p, end);
    return 0;
}

static int encode_utf8(const uint32_t *cps, size_t n, m2v_bytes *out) {
    out->len = 0;
    if (n > SIZE_MAX / 4 || M2V_RESERVE(out, 4 * n)) return -1;
    for (size_t i = 0; i < n; i++) out->len += (size_t)m2v_utf8_put(out->data + out->len, cps[i]);
    return 0;
}

/* ------------------------------------------------------------------------------- decomposition and ordering */

/* Stable sort of a run of non-starters by canonical combining class (counting sort: runs may be long). */
static int sort_run(uint32_t *run, size_t n) {
    if (n < 2) return 0;
    if (n <= 32) {
        for (size_t i = 1; i < n; i++) {
            uint32_t c = run[i];
            uint8_t key = m2v_props(c).ccc;
            size_t j = i;
            while (j > 0 && m2v_props(run[j - 1]).ccc > key) {
                run[j] = run[j - 1];
                j--;
            }
            run[j] = c;
        }
        return 0;
    }
    uint32_t *copy = malloc(n * sizeof(uint32_t));
    if (copy == NULL) return -1;
    memcpy(copy, run, n * sizeof(uint32_t));
    size_t start[257] = {0};
    for (size_t i = 0; i < n; i++) start[m2v_props(copy[i]).ccc + 1]++;
    for (int k = 1; k < 257; k++) start[k] += start[k - 1];
    for (size_t i = 0; i < n; i++) run[start[m2v_props(copy[i]).ccc]++] = copy[i];
    free(copy);
    return 0;
}

static int canonical_order(uint32_t *cps, size_t n) {
    size_t i = 0;
    while (i < n) {
        if (m2v_props(cps[i]).ccc == 0) {
            i++;
            continue;
        }
        size_t j = i;
        while (j < n && m2v_props(cps[j]).ccc != 0) j++;
        if (sort_run(cps + i, j - i)) return -1;
        i = j;
    }
    return 0;
}

static int decompose(const uint32_t *in, size_t n, int compatibility, m2v_cps *out) {
    out->len = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t c = in[i], length;
        if (c >= M2V_HANGUL_FIRST && c < M2V_HANGUL_FIRST + M2V_HANGUL_COUNT) {
            uint32_t index = c - M2V_HANGUL_FIRST, trail = index % 28;
            PUT(out, 0x1100 + index / 588);
            PUT(out, 0x1161 + (index % 588) / 28);
            if (trail) PUT(out, 0x11A7 + trail);
            continue;
        }
        const uint32_t *mapped = m2v_decomposition(c, compatibility, &length);
        if (mapped) {
            if (put_all(out, mapped, length)) return -1;
        } else {
            PUT(out, c);
        }
    }
    return canonical_order(out->data, out->len);
}

/* Canonical composition in place (UAX #15): each character joins the last starter unless blocked. */
static size_t compose(uint32_t *cps, size_t n) {
    size_t length = 0;
    int64_t starter = -1;
    int last_class = -1; /* class of the last character kept after the starter; -1: none yet */
    for (size_t i = 0; i < n; i++) {
        uint32_t c = cps[i];
        int klass = m2v_props(c).ccc;
        if (starter >= 0 && (last_class == -1 || (last_class != 0 && last_class < klass))) {
            uint32_t composite = m2v_compose(cps[starter], c);
            if (composite) {
                cps[starter] = composite;
                continue;
            }
        }
        if (klass == 0) {
            starter = (int64_t)length;
            last_class = -1;
        } else {
            last_class = klass;
        }
        cps[length++] = c;
    }
    return length;
}

/* ---------------------------------------------------------------------------------------------------- ops */

static int bert(const m2v_op_record *op, const m2v_cps *in, m2v_cps *out, m2v_cps *spare) {
    out->len = 0;
    for (size_t i = 0; i < in->len; i++) {
        uint32_t c = in->data[i];
        if (op->flags & M2V_BERT_CLEAN) {
            if (c == 0 || c == 0xFFFD || m2v_has(c, M2V_CLEAN_REMOVE)) continue;
            if (m2v_has(c, M2V_CLEAN_SPACE)) c = ' ';
        }
        if ((op->flags & M2V_BERT_CHINESE) && m2v_has(c, M2V_CHINESE)) {
            PUT(out, ' ');
            PUT(out, c);
            PUT(out, ' ');
        } else {
            PUT(out, c);
        }
    }
    if (op->flags & M2V_BERT_STRIP_ACCENTS) {
        if (decompose(out->data, out->len, 0, spare)) return -1;
        out->len = 0;
        for (size_t i = 0; i < spare->len; i++) {
            if (!m2v_has(spare->data[i], M2V_NONSPACING_MARK)) PUT(out, spare->data[i]);
        }
    }
    if (op->flags & M2V_BERT_LOWERCASE) {
        spare->len = 0;
        for (size_t i = 0; i < out->len; i++) {
            uint32_t length;
            const uint32_t *lower = m2v_lower(out->data[i], &length);
            if (lower) {
                if (put_all(spare, lower, length)) return -1;
            } else {
                PUT(spare, out->data[i]);
            }
        }
        m2v_cps swap = *out;
        *out = *spare;
        *spare = swap;
    }
    return 0;
}

static int lowercase(const m2v_cps *in, m2v_cps *out) {
    out->len = 0;
    for (size_t i = 0; i < in->len; i++) {
        uint32_t length;
        const uint32_t *lower = m2v_lower(in->data[i], &length);
        if (lower) {
            if (put_all(out, lower, length)) return -1;
        } else {
            PUT(out, in->data[i]);
        }
    }
    return 0;
}

static int strip(unsigned sides, const m2v_cps *in, m2v_cps *out) {
    size_t start = 0, end = in->len;
    if (sides & 1) {
        while (start < end && m2v_has(in->data[start], M2V_WHITESPACE)) start++;
    }
    if (sides & 2) {
        while (end > start && m2v_has(in->data[end - 1], M2V_WHITESPACE)) end--;
    }
    out->len = 0;
    return put_all(out, in->data + start, end - start);
}

/* Append the code points of a UTF-8 string of the file. */
static int put_string(const m2v_vocab *v, uint32_t index, m2v_cps *out) {
    uint32_t n;
    const uint8_t *s = m2v_string(v, index, &n);
    const uint8_t *p = s, *end = s + n;
    while (p < end) PUT(out, m2v_utf8_next(&p, end));
    return 0;
}

static int replace(const m2v_vocab *v, const m2v_op_record *op, const m2v_cps *in, m2v_cps *out, m2v_cps *spare) {
    spare->len = 0;
    if (put_string(v, op->arg1, spare)) return -1; /* the pattern, as code points */
    size_t m = spare->len;
    out->len = 0;
    size_t i = 0;
    while (i < in->len) {
        if (m > 0 && in->len - i >= m && memcmp(in->data + i, spare->data, m * sizeof(uint32_t)) == 0) {
            if (put_string(v, op->arg2, out)) return -1;
            i += m;
        } else {
            PUT(out, in->data[i]);
            i++;
        }
    }
    return 0;
}

static int precompiled(const m2v_vocab *v, m2v_work *w, const m2v_cps *in, m2v_cps *out) {
    if (encode_utf8(in->data, in->len, &w->utf8)) return -1;
    w->utf8b.len = 0;
    if (m2v_precompiled(&v->charsmap, w->utf8.data, w->utf8.len, &w->utf8b)) return -1;
    return decode_utf8(w->utf8b.data, w->utf8b.len, out);
}

static int apply(const m2v_vocab *v, m2v_work *w, const m2v_op_record *op, m2v_cps *in, m2v_cps *out) {
    switch (op->op) {
    case M2V_NORM_BERT: return bert(op, in, out, &w->cps3);
    case M2V_NORM_LOWERCASE: return lowercase(in, out);
    case M2V_NORM_STRIP_ACCENTS:
        out->len = 0;
        for (size_t i = 0; i < in->len; i++) {
            if (!m2v_has(in->data[i], M2V_COMBINING_MARK)) PUT(out, in->data[i]);
        }
        return 0;
    case M2V_NORM_NFD: return decompose(in->data, in->len, 0, out);
    case M2V_NORM_NFKD: return decompose(in->data, in->len, 1, out);
    case M2V_NORM_NFC:
    case M2V_NORM_NFKC:
        if (decompose(in->data, in->len, op->op == M2V_NORM_NFKC, out)) return -1;
        out->len = compose(out->data, out->len);
        return 0;
    case M2V_NORM_STRIP: return strip(op->flags, in, out);
    case M2V_NORM_PREPEND:
        out->len = 0;
        if (in->len == 0) return 0;
        if (put_string(v, op->arg1, out)) return -1;
        return put_all(out, in->data, in->len);
    case M2V_NORM_REPLACE: return replace(v, op, in, out, &w->cps3);
    case M2V_NORM_PRECOMPILED: return precompiled(v, w, in, out);
    default: return -1; /* refused by vocab.c */
    }
}

int m2v_normalize(const m2v_vocab *v, m2v_work *w, const uint8_t *text, size_t n) {
    w->utf8.len = 0;
    if (v->normalizer.count == 0) return m2v_bytes_put(&w->utf8, text, n);
    if (v->ascii_fast) {
        size_t i = 0;
        while (i < n && text[i] < 0x80) i++;
        if (i == n) {
            if (M2V_RESERVE(&w->utf8, n)) return -1;
            for (i = 0; i < n; i++) {
                uint16_t mapped = v->ascii_map[text[i]];
                if (mapped < 256) w->utf8.data[w->utf8.len++] = (uint8_t)mapped;
            }
            return 0;
        }
    }
    if (decode_utf8(text, n, &w->cps)) return -1;
    /* Every scratch array allocated: an op may leave one empty, and the next must not compute NULL + 0. */
    if (M2V_RESERVE(&w->cps2, 0) || M2V_RESERVE(&w->cps3, 0) || M2V_RESERVE(&w->utf8b, 0)) return -1;
    for (uint32_t i = 0; i < v->normalizer.count; i++) {
        if (apply(v, w, &v->normalizer.ops[i], &w->cps, &w->cps2)) return -1;
        m2v_cps swap = w->cps;
        w->cps = w->cps2;
        w->cps2 = swap;
    }
    return encode_utf8(w->cps.data, w->cps.len, &w->utf8);
}
