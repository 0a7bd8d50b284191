/* sentencepiece's precompiled charsmap, applied as tokenizers' Precompiled normalizer applies it.
 *
 * The charsmap is a darts-clone double array over UTF-8 bytes whose leaves point at NUL-terminated replacement
 * strings (the layout is described in tests/helpers/charsmap.py). tokenizers walks the text grapheme by grapheme:
 * a grapheme shorter than 6 bytes is looked up whole, and if some key is a prefix of it, the shortest such key's
 * replacement stands for the whole grapheme; otherwise each character is looked up alone in the same way. */
#include "m2v_core.h"
#include "m2v_unicode.h"

/* The replacement of the shortest key that is a prefix of `key` (stopping at a NUL byte), or -1. */
static int64_t shortest_match(const m2v_charsmap *map, const uint8_t *key, size_t n) {
    uint32_t unit = map->units[0];
    uint32_t position = (unit >> 10) << ((unit & (1u << 9)) >> 6);
    for (size_t i = 0; i < n && key[i] != 0; i++) {
        position ^= key[i];
        if (position >= map->unit_count) return -1;
        unit = map->units[position];
        if ((unit & (0x80000000u | 0xFFu)) != key[i]) return -1;
        position ^= (unit >> 10) << ((unit & (1u << 9)) >> 6);
        if (unit & (1u << 8)) {
            if (position >= map->unit_count) return -1;
            uint32_t leaf = map->units[position];
            /* darts-clone marks every leaf (bit 31), and vocab.c checked the pointers of exactly those units: a
             * unit without the mark holds no checked pointer (a hostile file), and replaces nothing. */
            return (leaf & 0x80000000u) ? (int64_t)(leaf & 0x7FFFFFFFu) : -1;
        }
    }
    return -1;
}

/* Append the replacement string that starts at byte `at` of the charsmap's strings (checked by vocab.c). */
static int put_replacement(const m2v_charsmap *map, uint32_t at, m2v_bytes *out) {
    uint32_t end = at;
    while (end < map->normalized_len && map->normalized[end] != 0) end++;
    return m2v_bytes_put(out, map->normalized + at, end - at);
}

int m2v_precompiled(const m2v_charsmap *map, const uint8_t *in, size_t n, m2v_bytes *out) {
    size_t start = 0;
    while (start < n) {
        size_t end = m2v_grapheme_end(in, start, n);
        if (end - start < 6) {
            int64_t found = shortest_match(map, in + start, end - start);
            if (found >= 0) {
                if (put_replacement(map, (uint32_t)found, out)) return -1;
                start = end;
                continue;
            }
        }
        while (start < end) {
            size_t length = (size_t)m2v_utf8_length(in[start]);
            if (length > end - start) length = end - start;
            int64_t found = shortest_match(map, in + start, length);
            if (found >= 0) {
                if (put_replacement(map, (uint32_t)found, out)) return -1;
            } else if (m2v_bytes_put(out, in + start, length)) {
                return -1;
            }
            start += length;
        }
    }
    return 0;
}
