/* tokenizers' added tokens: found before the model sees the text, as its AddedVocabulary finds them.
 *
 * Matching is leftmost-longest and non-overlapping (an Aho-Corasick automaton in tokenizers; a trie walk from each
 * position here). A match of a `single_word` token is discarded unless no word character (regex \w) touches it on
 * either side, and the search goes on after it. `lstrip` takes the whitespace (regex \s) before a match into it,
 * but not before the end of the previous match; `rstrip` takes the whitespace after it. */
#include "m2v_core.h"
#include "m2v_unicode.h"

#define PUSH(list, s, l, flag)                                              \
    do {                                                                    \
        if (M2V_RESERVE(list, 1)) return -1;                                \
        (list)->data[(list)->len++] = (m2v_span){(uint32_t)(s), (uint32_t)(l), (flag)}; \
    } while (0)

/* The code point that ends just before byte `at` (valid UTF-8: step back over continuation bytes). */
static uint32_t char_before(const uint8_t *text, size_t at) {
    size_t start = at - 1;
    while (start > 0 && (text[start] & 0xC0) == 0x80) start--;
    const uint8_t *p = text + start;
    return m2v_utf8_next(&p, text + at);
}

static uint32_t char_at(const uint8_t *text, size_t at, size_t n) {
    const uint8_t *p = text + at;
    return m2v_utf8_next(&p, text + n);
}

int m2v_split_added(const m2v_vocab *v, const m2v_trie *trie, const uint8_t *text, size_t n, m2v_spans *out) {
    out->len = 0;
    if (n == 0) return 0;
    if (n > UINT32_MAX) return -1;
    size_t done = 0; /* end of the last kept match */
    size_t i = 0;
    while (i < n) {
        /* The longest match starting at i. */
        int32_t node = 0, found = -1;
        size_t stop = 0;
        for (size_t k = i; k < n; k++) {
            node = m2v_trie_child(trie, node, text[k]);
            if (node < 0) break;
            if (trie->units[node].value >= 0) {
                found = trie->units[node].value;
                stop = k + 1;
            }
        }
        if (found < 0) {
            i++;
            continue;
        }
        size_t start = i;
        i = stop; /* the search goes on after this match, whether it is kept or not */
        uint32_t flags = (uint32_t)v->added[2 * found + 1];
        if (flags & M2V_ADDED_SINGLE_WORD) {
            if ((start > 0 && m2v_has(char_before(text, start), M2V_WORD)) ||
                (stop < n && m2v_has(char_at(text, stop, n), M2V_WORD)))
                continue;
        }
        if (flags & M2V_ADDED_LSTRIP) {
            while (start > done && m2v_has(char_before(text, start), M2V_REGEX_SPACE)) {
                size_t back = start - 1;
                while (back > 0 && (text[back] & 0xC0) == 0x80) back--;
                start = back;
            }
        }
        if (flags & M2V_ADDED_RSTRIP) {
            while (stop < n && m2v_has(char_at(text, stop, n), M2V_REGEX_SPACE)) {
                stop += (size_t)m2v_utf8_length(text[stop]);
            }
        }
        if (done < start) PUSH(out, done, start - done, -1);
        PUSH(out, start, stop - start, found);
        done = stop;
    }
    if (done < n) PUSH(out, done, n - done, -1);
    return 0;
}
