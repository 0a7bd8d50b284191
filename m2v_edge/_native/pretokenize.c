/* Pre-tokenizer ops, as tokenizers runs them: each op splits every piece of the previous op into pieces.
 *
 * A piece is a byte range of w->arena, which starts as a copy of the text; ops that rewrite text (Metaspace)
 * append the new text to the arena. Splits follow tokenizers' SplitDelimiterBehavior: the text is first cut into
 * elements (each matching character or pattern occurrence, and the runs between them), then the elements are
 * kept, dropped or merged according to the behavior. Empty pieces are dropped, as tokenizers drops them. */
#include <string.h>

#include "m2v_core.h"
#include "m2v_unicode.h"

#define PUSH(list, s, l, flag)                                              \
    do {                                                                    \
        if (M2V_RESERVE(list, 1)) return -1;                                \
        (list)->data[(list)->len++] = (m2v_span){(uint32_t)(s), (uint32_t)(l), (flag)}; \
    } while (0)

/* ------------------------------------------------------------------------------------ elements and behaviors */

typedef int (*char_test)(uint32_t cp, uint32_t arg);

static int has_flag(uint32_t cp, uint32_t flag) { return m2v_has(cp, flag); }
static int is_char(uint32_t cp, uint32_t wanted) { return cp == wanted; }

/* Cut a piece into elements: each character passing `test` alone (added = 1), the runs between (added = 0). */
static int elements_by_char(const m2v_work *w, m2v_span piece, char_test test, uint32_t arg, m2v_spans *out) {
    const uint8_t *base = w->arena.data;
    const uint8_t *p = base + piece.start, *end = p + piece.len, *run = p;
    out->len = 0;
    while (p < end) {
        const uint8_t *at = p;
        uint32_t c = m2v_utf8_next(&p, end);
        if (test(c, arg)) {
            if (run < at) PUSH(out, run - base, at - run, 0);
            PUSH(out, at - base, p - at, 1);
            run = p;
        }
    }
    if (run < end) PUSH(out, run - base, end - run, 0);
    return 0;
}

/* Cut a piece into elements at each non-overlapping occurrence of a literal pattern. */
static int elements_by_pattern(const m2v_work *w, m2v_span piece, const uint8_t *pattern, size_t m,
                               m2v_spans *out) {
    const uint8_t *base = w->arena.data;
    size_t i = piece.start, run = i, end = piece.start + piece.len;
    out->len = 0;
    while (i + m <= end) {
        if (memcmp(base + i, pattern, m) == 0) {
            if (run < i) PUSH(out, run, i - run, 0);
            PUSH(out, i, m, 1);
            i += m;
            run = i;
        } else {
            i++;
        }
    }
    if (run < end) PUSH(out, run, end - run, 0);
    return 0;
}

/* Keep, drop or merge elements (added = 1 marks a match) into pieces, appended to `out`. */
static int apply_behavior(const m2v_spans *e, unsigned behavior, m2v_spans *out) {
    size_t n = e->len;
    int previous = 0;
    size_t first_new = out->len;
    switch (behavior) {
    case M2V_SPLIT_REMOVED:
        for (size_t i = 0; i < n; i++) {
            if (!e->data[i].added) PUSH(out, e->data[i].start, e->data[i].len, -1);
        }
        return 0;
    case M2V_SPLIT_ISOLATED:
        for (size_t i = 0; i < n; i++) PUSH(out, e->data[i].start, e->data[i].len, -1);
        return 0;
    case M2V_SPLIT_CONTIGUOUS:
        for (size_t i = 0; i < n; i++) {
            int match = e->data[i].added;
            if (match == previous && out->len > first_new) {
                out->data[out->len - 1].len += e->data[i].len;
            } else {
                PUSH(out, e->data[i].start, e->data[i].len, -1);
            }
            previous = match;
        }
        return 0;
    case M2V_SPLIT_MERGED_WITH_PREVIOUS:
        for (size_t i = 0; i < n; i++) {
            int match = e->data[i].added;
            if (match && !previous && out->len > first_new) {
                out->data[out->len - 1].len += e->data[i].len;
            } else {
                PUSH(out, e->data[i].start, e->data[i].len, -1);
            }
            previous = match;
        }
        return 0;
    case M2V_SPLIT_MERGED_WITH_NEXT:
        for (size_t i = 0; i < n; i++) {
            m2v_span s = e->data[i];
            if (s.added && i + 1 < n && !e->data[i + 1].added) {
                PUSH(out, s.start, s.len + e->data[i + 1].len, -1);
                i++;
            } else {
                PUSH(out, s.start, s.len, -1);
            }
        }
        return 0;
    default: return -1; /* refused by vocab.c */
    }
}

/* ------------------------------------------------------------------------------------------------------ ops */

/* BertPreTokenizer: whitespace removed, each punctuation character isolated (one pass). */
static int bert(const m2v_work *w, m2v_span piece, m2v_spans *out) {
    const uint8_t *base = w->arena.data;
    const uint8_t *p = base + piece.start, *end = p + piece.len, *word = p;
    while (p < end) {
        const uint8_t *at = p;
        uint32_t c = m2v_utf8_next(&p, end);
        unsigned flags = m2v_props(c).flags;
        if (flags & (M2V_WHITESPACE | M2V_PUNCTUATION)) {
            if (word < at) PUSH(out, word - base, at - word, -1);
            if (!(flags & M2V_WHITESPACE)) PUSH(out, at - base, p - at, -1);
            word = p;
        }
    }
    if (word < end) PUSH(out, word - base, end - word, -1);
    return 0;
}

/* Whitespace: the regex \w+|[^\w\s]+, keeping the matches: runs of word characters, runs of other characters. */
static int whitespace(const m2v_work *w, m2v_span piece, m2v_spans *out) {
    const uint8_t *base = w->arena.data;
    const uint8_t *p = base + piece.start, *end = p + piece.len, *run = p;
    int kind = 0; /* of the current run: 0 none, 1 word, 2 other */
    while (p < end) {
        const uint8_t *at = p;
        uint32_t c = m2v_utf8_next(&p, end);
        unsigned flags = m2v_props(c).flags;
        int now = (flags & M2V_WORD) ? 1 : (flags & M2V_REGEX_SPACE) ? 0 : 2;
        if (now != kind) {
            if (kind) PUSH(out, run - base, at - run, -1);
            run = at;
            kind = now;
        }
    }
    if (kind) PUSH(out, run - base, end - run, -1);
    return 0;
}

/* Metaspace: spaces become the replacement, which is prepended unless already there; then (with split) a new
 * piece starts at each replacement. */
static int metaspace(const m2v_vocab *v, m2v_work *w, const m2v_op_record *op, m2v_span piece, m2v_spans *out) {
    uint32_t m;
    const uint8_t *replacement = m2v_string(v, op->arg1, &m);
    size_t start = w->arena.len;
    if (M2V_RESERVE(&w->arena, (size_t)piece.len * m + m)) return -1;
    const uint8_t *text = w->arena.data + piece.start; /* after the reserve: the arena may have moved */
    uint8_t *o = w->arena.data + start;
    size_t length = 0;
    int starts_with = piece.len > 0 && (text[0] == ' ' || (piece.len >= m && memcmp(text, replacement, m) == 0));
    int prepend = (op->flags & 1) && piece.len > 0 && !starts_with;
    if (prepend) {
        memcpy(o, replacement, m);
        length = m;
    }
    for (uint32_t i = 0; i < piece.len; i++) {
        if (text[i] == ' ') {
            memcpy(o + length, replacement, m);
            length += m;
        } else {
            o[length++] = text[i];
        }
    }
    w->arena.len = start + length;
    if (!(op->flags & 2)) {
        if (length) PUSH(out, start, length, -1);
        return 0;
    }
    size_t from = start, end = start + length;
    for (size_t i = start + 1; i + m <= end; i++) {
        if (memcmp(w->arena.data + i, replacement, m) == 0) {
            PUSH(out, from, i - from, -1);
            from = i;
        }
    }
    if (from < end) PUSH(out, from, end - from, -1);
    return 0;
}

static int apply(const m2v_vocab *v, m2v_work *w, const m2v_op_record *op, m2v_span piece, m2v_spans *out) {
    switch (op->op) {
    case M2V_PRE_BERT: return bert(w, piece, out);
    case M2V_PRE_WHITESPACE: return whitespace(w, piece, out);
    case M2V_PRE_METASPACE: return metaspace(v, w, op, piece, out);
    default: break;
    }
    m2v_spans *e = &w->elements;
    unsigned behavior;
    uint32_t n;
    const uint8_t *s;
    const uint8_t *cursor;
    switch (op->op) {
    case M2V_PRE_WHITESPACE_SPLIT:
        if (elements_by_char(w, piece, has_flag, M2V_WHITESPACE, e)) return -1;
        behavior = M2V_SPLIT_REMOVED;
        break;
    case M2V_PRE_PUNCTUATION:
        if (elements_by_char(w, piece, has_flag, M2V_PUNCTUATION, e)) return -1;
        behavior = op->flags;
        break;
    case M2V_PRE_DIGITS:
        if (elements_by_char(w, piece, has_flag, M2V_NUMERIC, e)) return -1;
        behavior = (op->flags & 1) ? M2V_SPLIT_ISOLATED : M2V_SPLIT_CONTIGUOUS;
        break;
    case M2V_PRE_CHAR_DELIMITER:
        s = m2v_string(v, op->arg1, &n);
        cursor = s;
        if (elements_by_char(w, piece, is_char, m2v_utf8_next(&cursor, s + n), e)) return -1;
        behavior = M2V_SPLIT_REMOVED;
        break;
    case M2V_PRE_SPLIT:
        s = m2v_string(v, op->arg1, &n);
        if (elements_by_pattern(w, piece, s, n, e)) return -1;
        if (op->flags & M2V_SPLIT_INVERT) {
            for (size_t i = 0; i < e->len; i++) e->data[i].added = !e->data[i].added;
        }
        behavior = op->flags & ~M2V_SPLIT_INVERT;
        break;
    default: return -1; /* refused by vocab.c */
    }
    return apply_behavior(e, behavior, out);
}

int m2v_pretokenize(const m2v_vocab *v, m2v_work *w, const uint8_t *text, size_t n) {
    w->arena.len = 0;
    w->pieces.len = 0;
    if (n == 0) return 0;
    if (n > UINT32_MAX / 8) return -1; /* pieces are 32-bit ranges, and Metaspace may grow the text */
    if (m2v_bytes_put(&w->arena, text, n)) return -1;
    PUSH(&w->pieces, 0, n, -1);
    for (uint32_t i = 0; i < v->pretokenizer.count; i++) {
        w->pieces2.len = 0;
        for (size_t k = 0; k < w->pieces.len; k++) {
            if (apply(v, w, &v->pretokenizer.ops[i], w->pieces.data[k], &w->pieces2)) return -1;
        }
        m2v_spans swap = w->pieces;
        w->pieces = w->pieces2;
        w->pieces2 = swap;
    }
    return 0;
}
