/* WordPiece as tokenizers runs it on one pre-token: a word of more than max_input_chars_per_word characters is the
 * unknown token; otherwise the longest vocabulary entry that starts the word is taken, then the longest
 * prefix-marked entry ("##" + ...) that starts the rest, and so on; if some position has no entry, the whole word
 * is the unknown token. One walk down the vocabulary trie finds each longest entry. */
#include "m2v_core.h"
#include "m2v_unicode.h"

static int push(m2v_ids *out, int64_t id) {
    if (M2V_RESERVE(out, 1)) return -1;
    out->data[out->len++] = id;
    return 0;
}

int m2v_wordpiece(const m2v_vocab *v, const uint8_t *piece, size_t n, m2v_ids *out) {
    const m2v_trie *t = &v->vocab;
    size_t chars = 0;
    for (size_t i = 0; i < n; i++) chars += (piece[i] & 0xC0) != 0x80;
    if (chars > v->model.max_word_chars) return push(out, v->model.unk_id);
    size_t mark = out->len;
    size_t start = 0;
    while (start < n) {
        int32_t node = start == 0 ? 0 : v->prefix_node;
        int32_t best = -1;
        size_t best_end = 0;
        for (size_t k = start; k < n && node >= 0; k++) {
            node = m2v_trie_child(t, node, piece[k]);
            if (node >= 0 && t->units[node].value >= 0) {
                best = t->units[node].value;
                best_end = k + 1;
            }
        }
        if (best < 0) {
            out->len = mark; /* the pieces found so far are dropped */
            return push(out, v->model.unk_id);
        }
        if (push(out, best)) return -1;
        start = best_end;
    }
    return 0;
}
