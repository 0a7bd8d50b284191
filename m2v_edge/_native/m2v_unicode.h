/* Per-character facts and the Unicode algorithms tokenizers' normalizers run: UTF-8, properties, case mapping,
 * canonical and compatibility decomposition, canonical composition.
 *
 * The facts come from unicode_data.h, read off tokenizers itself one code point at a time
 * (scripts/gen_unicode_tables.py), so that each answer is the one tokenizers gives: a two-stage table maps a code
 * point to a record (flags, canonical combining class, grapheme cluster break); mappings (lowercase, NFD, NFKD)
 * are sorted key arrays into a pool of code points, each entry its length then its code points. */
#ifndef M2V_UNICODE_H
#define M2V_UNICODE_H

#include <stddef.h>
#include <stdint.h>

enum m2v_char_flag {
    M2V_CLEAN_REMOVE = 1 << 0,     /* BertNormalizer(clean_text) deletes it */
    M2V_CLEAN_SPACE = 1 << 1,      /* BertNormalizer(clean_text) turns it into a space */
    M2V_CHINESE = 1 << 2,          /* BertNormalizer(handle_chinese_chars) surrounds it with spaces */
    M2V_NONSPACING_MARK = 1 << 3,  /* BertNormalizer(strip_accents) deletes it after NFD */
    M2V_COMBINING_MARK = 1 << 4,   /* StripAccents deletes it */
    M2V_WHITESPACE = 1 << 5,       /* Rust's char::is_whitespace */
    M2V_PUNCTUATION = 1 << 6,      /* BertPreTokenizer and Punctuation isolate it */
    M2V_WORD = 1 << 7,             /* regex \w */
    M2V_REGEX_SPACE = 1 << 8,      /* regex \s */
    M2V_NUMERIC = 1 << 9,          /* Rust's char::is_numeric (Digits) */
    M2V_HAS_LOWER = 1 << 10,
    M2V_HAS_NFD = 1 << 11,
    M2V_HAS_NFKD = 1 << 12,
    M2V_EXTENDED_PICTOGRAPHIC = 1 << 13,
};
#define M2V_INCB_SHIFT 14 /* bits 14-15 of the flags: Indic_Conjunct_Break */
enum m2v_incb { M2V_INCB_NONE, M2V_INCB_LINKER, M2V_INCB_CONSONANT, M2V_INCB_EXTEND };

enum m2v_gcb {
    M2V_GCB_OTHER, M2V_GCB_CR, M2V_GCB_LF, M2V_GCB_CONTROL, M2V_GCB_EXTEND, M2V_GCB_ZWJ, M2V_GCB_RI,
    M2V_GCB_PREPEND, M2V_GCB_SPACINGMARK, M2V_GCB_L, M2V_GCB_V, M2V_GCB_T, M2V_GCB_LV, M2V_GCB_LVT,
};

typedef struct {
    uint16_t flags;
    uint8_t ccc;
    uint8_t gcb;
} m2v_uprop;

/* The facts about code point `cp` (any value: out-of-range values get those of an unassigned character). ASCII, most
 * of most texts, is one table read inline. */
extern const m2v_uprop m2v_ascii_props[128];
m2v_uprop m2v_props_beyond_ascii(uint32_t cp);
static inline m2v_uprop m2v_props(uint32_t cp) { return cp < 128 ? m2v_ascii_props[cp] : m2v_props_beyond_ascii(cp); }

static inline int m2v_has(uint32_t cp, unsigned flag) { return (m2v_props(cp).flags & flag) != 0; }

/* A mapping of `cp` (lowercase, NFD or NFKD): its code points, or NULL when `cp` maps to itself. */
const uint32_t *m2v_lower(uint32_t cp, uint32_t *length);
const uint32_t *m2v_decomposition(uint32_t cp, int compatibility, uint32_t *length);

/* The canonical composition of a starter and a following character, or 0 when they do not compose. */
uint32_t m2v_compose(uint32_t first, uint32_t second);

/* UTF-8. The decoder is given valid UTF-8 (Python's encoder or the core's own output); it still never reads past
 * `end` and reads a malformed byte as U+FFFD. */
static inline uint32_t m2v_utf8_next(const uint8_t **cursor, const uint8_t *end) {
    const uint8_t *p = *cursor;
    uint32_t c = p[0];
    if (c < 0x80) {
        *cursor = p + 1;
        return c;
    }
    int extra = c >= 0xF0 ? 3 : c >= 0xE0 ? 2 : c >= 0xC0 ? 1 : -1;
    if (extra < 0 || end - p <= extra) { /* a stray continuation byte, or a sequence cut by `end` */
        *cursor = p + 1;
        return 0xFFFD;
    }
    c &= 0x3F >> extra;
    for (int i = 1; i <= extra; i++) {
        if ((p[i] & 0xC0) != 0x80) {
            *cursor = p + i;
            return 0xFFFD;
        }
        c = (c << 6) | (p[i] & 0x3F);
    }
    *cursor = p + extra + 1;
    return c;
}

/* Bytes of the UTF-8 sequence that starts with `lead` (1 for a stray continuation byte). */
static inline int m2v_utf8_length(uint8_t lead) {
    return lead < 0xC0 ? 1 : lead < 0xE0 ? 2 : lead < 0xF0 ? 3 : 4;
}

/* Write `cp` as UTF-8 into `out` (room for 4 bytes); return the bytes written. */
static inline int m2v_utf8_put(uint8_t *out, uint32_t cp) {
    if (cp < 0x80) {
        out[0] = (uint8_t)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (uint8_t)(0xC0 | (cp >> 6));
        out[1] = (uint8_t)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (uint8_t)(0xE0 | (cp >> 12));
        out[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (uint8_t)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (uint8_t)(0xF0 | (cp >> 18));
    out[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (uint8_t)(0x80 | (cp & 0x3F));
    return 4;
}

/* Hangul syllables (U+AC00..U+D7A3) decompose and compose by arithmetic, not by table. */
#define M2V_HANGUL_FIRST 0xAC00u
#define M2V_HANGUL_COUNT 11172u

#endif
