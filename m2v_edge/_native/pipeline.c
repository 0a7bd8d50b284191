/* One text to ids, in tokenizers' order: added tokens found in the raw text; each stretch between them
 * normalized on its own; added tokens found in the normalized stretch; the rest pre-tokenized; each pre-token
 * through the model. Ids stop at `limit` (truncation keeps the first ones; unknown ids are kept, as tokenizers
 * gives them: the pooling drops them after truncating, as model2vec does). */
#include <stdlib.h>
#include <string.h>

#include "m2v_core.h"

static int push(m2v_ids *out, int64_t id) {
    if (M2V_RESERVE(out, 1)) return -1;
    out->data[out->len++] = id;
    return 0;
}

/* One pre-token through the model, from the thread's cache when it was seen before. */
static int encode_piece(const m2v_vocab *v, m2v_work *w, const uint8_t *piece, size_t n, m2v_ids *out) {
    if (w->cache == NULL) w->cache = calloc(1, sizeof(m2v_piece_cache)); /* none: no caching, same ids */
    uint32_t count;
    const int64_t *cached = w->cache ? m2v_piece_cache_find(w->cache, piece, n, &count) : NULL;
    if (cached != NULL) {
        if (M2V_RESERVE(out, count)) return -1;
        memcpy(out->data + out->len, cached, count * sizeof(int64_t));
        out->len += count;
        return 0;
    }
    size_t before = out->len;
    int status = v->model.kind == M2V_MODEL_WORDPIECE ? m2v_wordpiece(v, piece, n, out) : m2v_unigram(v, w, piece, n, out);
    if (status == 0 && w->cache != NULL) {
        m2v_piece_cache_put(w->cache, piece, n, out->data + before, (uint32_t)(out->len - before));
    }
    return status;
}

/* Normalized text (w->utf8): its added tokens, then the model on the pre-tokens of the stretches between. */
static int encode_normalized(const m2v_vocab *v, m2v_work *w, size_t first, int64_t limit, m2v_ids *out) {
    m2v_span whole = {0, (uint32_t)w->utf8.len, -1};
    const m2v_span *stretches = &whole;
    size_t count = 1;
    if (v->added_normalized.count) {
        if (m2v_split_added(v, &v->added_normalized, w->utf8.data, w->utf8.len, &w->stretches)) return -1;
        stretches = w->stretches.data;
        count = w->stretches.len;
    }
    for (size_t s = 0; s < count && (int64_t)(out->len - first) < limit; s++) {
        if (stretches[s].added >= 0) {
            if (push(out, v->added[2 * stretches[s].added])) return -1;
            continue;
        }
        if (m2v_pretokenize(v, w, w->utf8.data + stretches[s].start, stretches[s].len)) return -1;
        for (size_t p = 0; p < w->pieces.len && (int64_t)(out->len - first) < limit; p++) {
            const uint8_t *piece = w->arena.data + w->pieces.data[p].start;
            size_t n = w->pieces.data[p].len;
            if (encode_piece(v, w, piece, n, out)) return -1;
        }
    }
    return 0;
}

/* Whether the ids given since `first` are still fewer than `limit`. */
static inline int under_limit(const m2v_ids *out, size_t first, int64_t limit) {
    return (int64_t)(out->len - first) < limit;
}

/* Bytes [start, end) of ASCII text through (Bert-like normalizer) + BertPreTokenizer + WordPiece in one pass. */
static int ascii_span(const m2v_vocab *v, m2v_work *w, const uint8_t *text, size_t start, size_t end, size_t first,
                      int64_t limit, m2v_ids *out) {
    if (M2V_RESERVE(&w->arena, end - start)) return -1;
    uint8_t *word = w->arena.data;
    size_t length = 0;
    for (size_t i = start; i < end && under_limit(out, first, limit); i++) {
        uint16_t c = v->ascii_map[text[i]];
        if (c >= 128) continue; /* deleted */
        uint8_t kind = v->ascii_class[c];
        if (kind == 0) {
            word[length++] = (uint8_t)c;
            continue;
        }
        if (length && m2v_wordpiece(v, word, length, out)) return -1;
        length = 0;
        if (kind == 2 && under_limit(out, first, limit)) {
            uint8_t punctuation = (uint8_t)c;
            if (m2v_wordpiece(v, &punctuation, 1, out)) return -1;
        }
    }
    if (length && under_limit(out, first, limit) && m2v_wordpiece(v, word, length, out)) return -1;
    return 0;
}

/* Text mixing ASCII with other characters, when the normalizer is local (v->ascii_mixed: no op looks across an
 * ASCII whitespace character, which no normalization composes with and BertPreTokenizer always splits at): cut
 * at ASCII whitespace, each all-ASCII word through the one-pass path and each other word through the general
 * stages on its own. Curly quotes or an accented name then cost only their own words. */
static int mixed_spans(const m2v_vocab *v, m2v_work *w, const uint8_t *text, size_t n, size_t first, int64_t limit,
                       m2v_ids *out) {
    size_t i = 0;
    while (i < n && under_limit(out, first, limit)) {
        size_t start = i;
        int ascii = 1;
        for (; i < n; i++) {
            if (text[i] >= 0x80) {
                ascii = 0;
            } else {
                uint16_t c = v->ascii_map[text[i]];
                if (c < 128 && v->ascii_class[c] == 1) break;
            }
        }
        if (i > start) {
            if (ascii) {
                if (ascii_span(v, w, text, start, i, first, limit, out)) return -1;
            } else if (i - start > UINT32_MAX / 8 || m2v_normalize(v, w, text + start, i - start) ||
                       encode_normalized(v, w, first, limit, out)) {
                return -1;
            }
        }
        i++; /* the whitespace byte */
    }
    return 0;
}

/* The one-pass path for WordPiece pipelines whose normalizer works on ASCII one byte at a time; 1 when it did the
 * text (status in *status), 0 when the text needs the general path (a byte that starts a raw added token, or a
 * non-ASCII byte under a normalizer that is not local). */
static int encode_ascii_wordpiece(const m2v_vocab *v, m2v_work *w, const uint8_t *text, size_t n, int64_t limit,
                                  m2v_ids *out, int *status) {
    int mixed = 0;
    for (size_t i = 0; i < n; i++) {
        if (v->added_first[text[i]]) return 0;
        mixed |= text[i] >= 0x80;
    }
    if (mixed && !v->ascii_mixed) return 0;
    size_t first = out->len;
    *status = mixed ? mixed_spans(v, w, text, n, first, limit, out) : ascii_span(v, w, text, 0, n, first, limit, out);
    if (*status == 0 && (int64_t)(out->len - first) > limit) out->len = first + (size_t)limit;
    return 1;
}

int m2v_encode(const m2v_vocab *v, m2v_work *w, const uint8_t *text, size_t n, int64_t limit, m2v_ids *out) {
    size_t first = out->len;
    if (limit <= 0 || n == 0) return 0;
    int status;
    if (v->ascii_wordpiece && encode_ascii_wordpiece(v, w, text, n, limit, out, &status)) return status;
    if (n > UINT32_MAX / 8) return -1;
    m2v_span whole = {0, (uint32_t)n, -1};
    const m2v_span *segments = &whole;
    size_t count = 1;
    if (v->added_raw.count) {
        if (m2v_split_added(v, &v->added_raw, text, n, &w->segments)) return -1;
        segments = w->segments.data;
        count = w->segments.len;
    }
    for (size_t s = 0; s < count && (int64_t)(out->len - first) < limit; s++) {
        m2v_span segment = segments[s];
        if (segment.added >= 0) {
            if (push(out, v->added[2 * segment.added])) return -1;
            continue;
        }
        if (m2v_normalize(v, w, text + segment.start, segment.len)) return -1;
        if (encode_normalized(v, w, first, limit, out)) return -1;
    }
    if ((int64_t)(out->len - first) > limit) out->len = first + (size_t)limit;
    return 0;
}
