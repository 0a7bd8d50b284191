/* Unigram as tokenizers runs it on one pre-token (its encode_optimized):
 *
 * Viterbi over byte positions: from each character start, every vocabulary entry that starts there extends the
 * best path to its end (scores are f64 sums; a candidate replaces the best only when strictly greater, entries are
 * tried shortest first); a character that no single entry covers alone also gets the unknown token, scored
 * min score - 10. Backtracking from the end gives the tokens; consecutive tokens whose id is the unknown id (an
 * unknown character, or an entry that shares that id) are fused into one string. Each resulting string is looked up
 * in the vocabulary: a fused string that is not an entry becomes its UTF-8 bytes' <0xXX> tokens with byte_fallback
 * (when every byte has one), else the unknown id. */
#include <stdlib.h>

#include "m2v_core.h"
#include "m2v_unicode.h"

static int reserve_lattice(m2v_work *w, size_t n) {
    if (n + 1 <= w->lattice_cap) return 0;
    size_t cap = (n + 1) * 2;
    double *score = realloc(w->best_score, cap * sizeof(double));
    if (score) w->best_score = score;
    int32_t *start = realloc(w->best_start, cap * sizeof(int32_t));
    if (start) w->best_start = start;
    int32_t *id = realloc(w->best_id, cap * sizeof(int32_t));
    if (id) w->best_id = id;
    if (!score || !start || !id) return -1;
    w->lattice_cap = cap;
    return 0;
}

static int push(m2v_ids *out, int64_t id) {
    if (M2V_RESERVE(out, 1)) return -1;
    out->data[out->len++] = id;
    return 0;
}

/* The id of a fused unknown string: the entry it spells, its byte-fallback tokens, or the unknown id. */
static int push_unknown(const m2v_vocab *v, const uint8_t *s, size_t n, m2v_ids *out) {
    int32_t id = m2v_trie_lookup(&v->vocab, s, n);
    if (id >= 0) return push(out, id);
    if (v->model.flags & M2V_MODEL_BYTE_FALLBACK) {
        size_t i = 0;
        while (i < n && v->byte_ids[s[i]] >= 0) i++;
        if (i == n) {
            for (i = 0; i < n; i++) {
                if (push(out, v->byte_ids[s[i]])) return -1;
            }
            return 0;
        }
    }
    return push(out, v->model.unk_id);
}

int m2v_unigram(const m2v_vocab *v, m2v_work *w, const uint8_t *piece, size_t n, m2v_ids *out) {
    if (n == 0) return 0;
    if (n > INT32_MAX - 1 || reserve_lattice(w, n)) return -1;
    const m2v_trie *t = &v->vocab;
    double *score = w->best_score;
    int32_t *from = w->best_start, *id = w->best_id;
    for (size_t i = 0; i <= n; i++) from[i] = -1;
    score[0] = 0.0;
    int32_t unk = v->model.unk_id;
    for (size_t start = 0; start < n;) {
        size_t width = (size_t)m2v_utf8_length(piece[start]);
        if (width > n - start) width = n - start;
        double here = from[start] >= 0 || start == 0 ? score[start] : 0.0;
        int single = 0;
        int32_t node = 0;
        for (size_t k = start; k < n; k++) {
            node = m2v_trie_child(t, node, piece[k]);
            if (node < 0) break;
            int32_t token = t->units[node].value;
            if (token < 0) continue;
            size_t end = k + 1;
            double candidate = v->scores[token] + here;
            if (from[end] < 0 || candidate > score[end]) {
                score[end] = candidate;
                from[end] = (int32_t)start;
                id[end] = token;
            }
            if (end - start == width) single = 1;
        }
        if (!single) {
            size_t end = start + width;
            double candidate = v->model.unk_score + here;
            if (from[end] < 0 || candidate > score[end]) {
                score[end] = candidate;
                from[end] = (int32_t)start;
                id[end] = unk;
            }
        }
        start += width;
    }
    /* Backtrack into piece_ids (reversed), fusing runs of the unknown id; then emit in order. */
    m2v_ids *path = &w->piece_ids;
    path->len = 0;
    size_t end = n;
    while (end > 0) {
        int32_t start = from[end];
        if (start < 0) return -1; /* unreachable: every character start gets at least the unknown token */
        int32_t token = id[end];
        size_t fused_end = end;
        if (token == unk) {
            while (start > 0 && id[start] == unk && from[start] >= 0) start = from[start];
        }
        if (M2V_RESERVE(path, 3)) return -1;
        path->data[path->len++] = token;
        path->data[path->len++] = start;
        path->data[path->len++] = (int64_t)fused_end;
        end = (size_t)start;
    }
    for (size_t k = path->len; k > 0; k -= 3) {
        int64_t token = path->data[k - 3], start = path->data[k - 2], stop = path->data[k - 1];
        int status = token == unk ? push_unknown(v, piece + start, (size_t)(stop - start), out) : push(out, token);
        if (status) return -1;
    }
    return 0;
}
