/* Opening a mapped tokenizer file: every offset, count and value is checked here, once, so that the rest of the
 * core can index without checks (see m2v_format.h for the layout). A file that fails any check is refused with a
 * message; the runtime then falls back to tokenizers. */
#include <stdlib.h>
#include <string.h>

#include "m2v_core.h"
#include "m2v_unicode.h"

int m2v_reserve(void **data, size_t *cap, size_t need, size_t item) {
    if (need <= *cap && *data != NULL) return 0; /* a reserved array is never NULL, even when empty: NULL + 0 is UB */
    size_t grown = *cap ? *cap * 2 : 64;
    if (grown < need) grown = need;
    if (grown > SIZE_MAX / item) return -1;
    void *moved = realloc(*data, grown * item);
    if (moved == NULL) return -1;
    *data = moved;
    *cap = grown;
    return 0;
}

void m2v_work_free(m2v_work *w) {
    free(w->cps.data);
    free(w->cps2.data);
    free(w->cps3.data);
    free(w->utf8.data);
    free(w->utf8b.data);
    free(w->arena.data);
    free(w->segments.data);
    free(w->stretches.data);
    free(w->pieces.data);
    free(w->pieces2.data);
    free(w->elements.data);
    free(w->piece_ids.data);
    free(w->best_score);
    free(w->best_start);
    free(w->best_id);
    if (w->cache != NULL) {
        free(w->cache->keys.data);
        free(w->cache->ids.data);
        free(w->cache);
    }
    memset(w, 0, sizeof(*w));
}

int32_t m2v_trie_lookup(const m2v_trie *t, const uint8_t *s, size_t n) {
    if (t->count == 0) return -1;
    int32_t node = 0;
    for (size_t i = 0; i < n && node >= 0; i++) node = m2v_trie_child(t, node, s[i]);
    return node > 0 ? t->units[node].value : -1;
}

/* ------------------------------------------------------------------------------------------ the section table */

static const uint32_t ITEM_SIZE[M2V_SECTION_KINDS + 1] = {
    [M2V_SEC_MODEL] = sizeof(m2v_model_record), [M2V_SEC_NORMALIZER] = sizeof(m2v_op_record),
    [M2V_SEC_PRETOKENIZER] = sizeof(m2v_op_record), [M2V_SEC_STRING_TABLE] = 8, [M2V_SEC_STRINGS] = 1,
    [M2V_SEC_VOCAB] = sizeof(m2v_unit), [M2V_SEC_SCORES] = 8, [M2V_SEC_ADDED_TOKENS] = 8,
    [M2V_SEC_ADDED_RAW] = sizeof(m2v_unit), [M2V_SEC_ADDED_NORMALIZED] = sizeof(m2v_unit),
    [M2V_SEC_PRECOMPILED] = 1, [M2V_SEC_BYTE_IDS] = 4,
};

typedef struct {
    const uint8_t *data;
    uint64_t count;
    int present;
} section;

static uint32_t read_u32(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }
static uint64_t read_u64(const uint8_t *p) { return read_u32(p) | (uint64_t)read_u32(p + 4) << 32; }

static const char *read_sections(const uint8_t *data, uint64_t size, section *sections) {
    if ((uintptr_t)data % 8 != 0) return "tokenizer file not 8-byte aligned in memory"; /* sections hold u32, f64 */
    if (size < M2V_HEADER_BYTES || memcmp(data, M2V_MAGIC, 8) != 0) return "not an m2v-edge tokenizer file";
    if (read_u32(data + 8) != M2V_FORMAT_VERSION) return "tokenizer file of another format version";
    uint32_t count = read_u32(data + 12);
    if (read_u64(data + 16) != size) return "tokenizer file size differs from its header (truncated?)";
    if (count > M2V_SECTION_KINDS || (uint64_t)count * M2V_SECTION_ENTRY_BYTES > size - M2V_HEADER_BYTES)
        return "section table runs past the end of the file";
    uint64_t first_free = M2V_HEADER_BYTES + (uint64_t)count * M2V_SECTION_ENTRY_BYTES;
    for (uint32_t i = 0; i < count; i++) {
        const uint8_t *entry = data + M2V_HEADER_BYTES + (uint64_t)i * M2V_SECTION_ENTRY_BYTES;
        uint32_t kind = read_u32(entry), item = read_u32(entry + 4);
        uint64_t offset = read_u64(entry + 8), items = read_u64(entry + 16);
        if (kind < 1 || kind > M2V_SECTION_KINDS) return "unknown section kind";
        if (sections[kind].present) return "a section kind appears twice";
        if (item != ITEM_SIZE[kind]) return "section with a wrong item size";
        if (offset % 8 != 0 || offset < first_free || offset > size) return "section offset out of place";
        if (items > (size - offset) / item) return "section runs past the end of the file";
        sections[kind] = (section){data + offset, items, 1};
    }
    return NULL;
}

/* ----------------------------------------------------------------------------------------------------- tries */

static const char *open_trie(m2v_trie *t, const section *units, int64_t value_limit) {
    t->count = 0;
    t->units = NULL;
    if (!units->present) return NULL;
    uint64_t n = units->count;
    if (n == 0 || n % 256 != 0 || n > INT32_MAX) return "a trie's unit count is not a positive multiple of 256";
    const m2v_unit *u = (const m2v_unit *)units->data;
    if (u[0].check != M2V_UNIT_ROOT) return "a trie's first unit is not its root";
    for (uint64_t i = 0; i < n; i++) {
        if (u[i].base >= n) return "a trie unit points outside the trie";
        if (i > 0 && u[i].check != M2V_UNIT_FREE && u[i].check >= n) return "a trie unit names a parent outside it";
        if (u[i].value < -1 || u[i].value >= value_limit) return "a trie value is out of range";
    }
    t->units = u;
    t->count = (uint32_t)n;
    return NULL;
}

/* ----------------------------------------------------------------------------------------------- charsmap */

static int valid_utf8(const uint8_t *s, uint32_t n) {
    for (uint32_t i = 0; i < n;) {
        uint8_t lead = s[i];
        uint32_t extra = lead < 0x80 ? 0 : lead >= 0xC2 && lead < 0xE0 ? 1 : lead >= 0xE0 && lead < 0xF0 ? 2
                         : lead >= 0xF0 && lead < 0xF5 ? 3 : 9;
        if (extra == 9 || n - i <= extra) return 0; /* not a lead byte, or a sequence cut short */
        uint32_t cp = lead & (0x7F >> (extra + (extra > 0)));
        for (uint32_t k = 1; k <= extra; k++) {
            if ((s[i + k] & 0xC0) != 0x80) return 0;
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        static const uint32_t smallest[4] = {0, 0x80, 0x800, 0x10000};
        if (cp < smallest[extra] || cp > 0x10FFFF || (cp >= 0xD800 && cp < 0xE000)) return 0;
        i += extra + 1;
    }
    return 1;
}

static const char *open_charsmap(m2v_charsmap *map, const section *blob) {
    if (blob->count < 4) return "precompiled charsmap shorter than its header";
    uint32_t trie_bytes = read_u32(blob->data);
    if (trie_bytes % 4 != 0 || trie_bytes == 0 || trie_bytes > blob->count - 4)
        return "precompiled charsmap trie size out of range";
    map->units = (const uint32_t *)(blob->data + 4);
    map->unit_count = trie_bytes / 4;
    map->normalized = blob->data + 4 + trie_bytes;
    uint64_t rest = blob->count - 4 - trie_bytes;
    if (rest > UINT32_MAX) return "precompiled charsmap too large";
    map->normalized_len = (uint32_t)rest;
    if (!valid_utf8(map->normalized, map->normalized_len)) return "precompiled charsmap strings are not UTF-8";
    for (uint32_t i = 0; i < map->unit_count; i++) {
        uint32_t unit = map->units[i];
        if (!(unit & 0x80000000u)) continue;
        uint32_t at = unit & 0x7FFFFFFFu;
        if (at > map->normalized_len || (at < map->normalized_len && (map->normalized[at] & 0xC0) == 0x80))
            return "precompiled charsmap points outside its strings";
    }
    return NULL;
}

/* Whether any charsmap key starts with an ASCII byte (then ASCII text is not left unchanged). */
static int charsmap_touches_ascii(const m2v_charsmap *map) {
    uint32_t root = map->units[0];
    uint32_t base = (root >> 10) << ((root & (1u << 9)) >> 6);
    for (uint32_t byte = 1; byte < 128; byte++) {
        uint32_t at = base ^ byte;
        if (at < map->unit_count && (map->units[at] & (0x80000000u | 0xFFu)) == byte) return 1;
    }
    return 0;
}

/* --------------------------------------------------------------------------------------------------- ops */

static const char *check_string(const m2v_vocab *v, uint32_t index, int one_char) {
    if (index >= v->string_count) return "an op names a string the file does not have";
    if (one_char) {
        uint32_t n;
        const uint8_t *s = m2v_string(v, index, &n);
        if (n == 0 || n > 4 || m2v_utf8_length(s[0]) != (int)n || !valid_utf8(s, n))
            return "an op needs exactly one character";
    }
    return NULL;
}

static const char *check_ops(const m2v_vocab *v, const m2v_ops *ops, int normalizer) {
    const char *error;
    for (uint32_t i = 0; i < ops->count; i++) {
        const m2v_op_record *op = &ops->ops[i];
        if (normalizer) {
            switch (op->op) {
            case M2V_NORM_BERT: if (op->flags > 15) return "bad BertNormalizer flags"; break;
            case M2V_NORM_LOWERCASE: case M2V_NORM_STRIP_ACCENTS: case M2V_NORM_NFD: case M2V_NORM_NFKD:
            case M2V_NORM_NFC: case M2V_NORM_NFKC: break;
            case M2V_NORM_STRIP: if (op->flags > 3) return "bad Strip flags"; break;
            case M2V_NORM_PREPEND: if ((error = check_string(v, op->arg1, 0))) return error; break;
            case M2V_NORM_REPLACE:
                if ((error = check_string(v, op->arg1, 0)) || (error = check_string(v, op->arg2, 0))) return error;
                if (v->string_table[2 * op->arg1 + 1] == 0) return "Replace with an empty pattern";
                break;
            case M2V_NORM_PRECOMPILED: if (v->charsmap.units == NULL) return "Precompiled without a charsmap"; break;
            default: return "unknown normalizer op";
            }
        } else {
            switch (op->op) {
            case M2V_PRE_BERT: case M2V_PRE_WHITESPACE_SPLIT: case M2V_PRE_WHITESPACE: break;
            case M2V_PRE_METASPACE:
                if (op->flags > 3) return "bad Metaspace flags";
                if ((error = check_string(v, op->arg1, 1))) return error;
                break;
            case M2V_PRE_PUNCTUATION: if (op->flags > M2V_SPLIT_CONTIGUOUS) return "bad split behavior"; break;
            case M2V_PRE_DIGITS: if (op->flags > 1) return "bad Digits flags"; break;
            case M2V_PRE_CHAR_DELIMITER: if ((error = check_string(v, op->arg1, 1))) return error; break;
            case M2V_PRE_SPLIT:
                if ((op->flags & ~M2V_SPLIT_INVERT) > M2V_SPLIT_CONTIGUOUS) return "bad split behavior";
                if ((error = check_string(v, op->arg1, 0))) return error;
                if (v->string_table[2 * op->arg1 + 1] == 0) return "Split with an empty pattern";
                break;
            default: return "unknown pre-tokenizer op";
            }
        }
    }
    return NULL;
}

/* What the normalizer does to each ASCII byte, when every op works one byte at a time on ASCII text. */
static void plan_ascii(m2v_vocab *v) {
    for (int b = 0; b < 128; b++) v->ascii_map[b] = (uint16_t)b;
    v->ascii_fast = 1;
    for (uint32_t i = 0; i < v->normalizer.count && v->ascii_fast; i++) {
        const m2v_op_record *op = &v->normalizer.ops[i];
        if (op->op == M2V_NORM_STRIP || op->op == M2V_NORM_PREPEND || op->op == M2V_NORM_REPLACE ||
            (op->op == M2V_NORM_PRECOMPILED && charsmap_touches_ascii(&v->charsmap))) {
            v->ascii_fast = 0; /* they look beyond one character, or change ASCII */
            return;
        }
        for (int b = 0; b < 128; b++) {
            uint32_t c = v->ascii_map[b], length;
            const uint32_t *mapped = NULL;
            if (c == 256) continue;
            switch (op->op) {
            case M2V_NORM_BERT:
                if ((op->flags & M2V_BERT_CLEAN) && (c == 0 || m2v_has(c, M2V_CLEAN_REMOVE))) {
                    c = 256;
                    break;
                }
                if ((op->flags & M2V_BERT_CLEAN) && m2v_has(c, M2V_CLEAN_SPACE)) c = ' ';
                if (op->flags & M2V_BERT_LOWERCASE) mapped = m2v_lower(c, &length);
                break;
            case M2V_NORM_LOWERCASE: mapped = m2v_lower(c, &length); break;
            case M2V_NORM_STRIP_ACCENTS: if (m2v_has(c, M2V_COMBINING_MARK)) c = 256; break;
            case M2V_NORM_NFD: case M2V_NORM_NFKD: case M2V_NORM_NFC: case M2V_NORM_NFKC:
                if (m2v_decomposition(c, op->op == M2V_NORM_NFKD || op->op == M2V_NORM_NFKC, &length))
                    v->ascii_fast = 0;
                break;
            default: break; /* Precompiled that leaves ASCII alone */
            }
            if (mapped != NULL) {
                if (length != 1) v->ascii_fast = 0;
                c = mapped[0];
            }
            if (c > 256 || (c < 256 && c >= 128)) v->ascii_fast = 0;
            v->ascii_map[b] = (uint16_t)c;
        }
    }
}

static void plan_ascii_wordpiece(m2v_vocab *v) {
    v->ascii_wordpiece = v->ascii_fast && v->model.kind == M2V_MODEL_WORDPIECE && v->pretokenizer.count == 1 &&
                         v->pretokenizer.ops[0].op == M2V_PRE_BERT && v->added_normalized.count == 0;
    v->ascii_mixed = v->ascii_wordpiece;
    for (uint32_t i = 0; i < v->normalizer.count; i++) {
        if (v->normalizer.ops[i].op == M2V_NORM_PRECOMPILED) v->ascii_mixed = 0;
    }
    for (int b = 0; b < 128; b++) {
        unsigned flags = m2v_props((uint32_t)b).flags;
        v->ascii_class[b] = (flags & M2V_WHITESPACE) ? 1 : (flags & M2V_PUNCTUATION) ? 2 : 0;
    }
    for (int b = 0; b < 256; b++) {
        v->added_first[b] = v->added_raw.count > 0 && m2v_trie_child(&v->added_raw, 0, (uint8_t)b) >= 0;
    }
}

/* --------------------------------------------------------------------------------------------------- open */

const char *m2v_vocab_open(m2v_vocab *v, const uint8_t *data, uint64_t size) {
    section s[M2V_SECTION_KINDS + 1];
    memset(s, 0, sizeof(s));
    memset(v, 0, sizeof(*v));
    const char *error = read_sections(data, size, s);
    if (error) return error;
    if (!s[M2V_SEC_MODEL].present || s[M2V_SEC_MODEL].count != 1) return "the model section is missing";
    memcpy(&v->model, s[M2V_SEC_MODEL].data, sizeof(v->model));
    const m2v_model_record *m = &v->model;
    int64_t limit = m->id_limit;
    if (m->kind != M2V_MODEL_WORDPIECE && m->kind != M2V_MODEL_UNIGRAM) return "unknown model kind";
    if (limit < 1 || m->unk_id < 0 || m->unk_id >= limit) return "the unknown token's id is out of range";
    if (m->flags > M2V_MODEL_BYTE_FALLBACK) return "unknown model flags";

    v->string_table = (const uint32_t *)s[M2V_SEC_STRING_TABLE].data;
    v->strings = s[M2V_SEC_STRINGS].data;
    v->strings_len = s[M2V_SEC_STRINGS].count;
    if (s[M2V_SEC_STRING_TABLE].count > UINT32_MAX) return "too many strings";
    v->string_count = (uint32_t)s[M2V_SEC_STRING_TABLE].count;
    for (uint32_t i = 0; i < v->string_count; i++) {
        uint64_t start = v->string_table[2 * i], length = v->string_table[2 * i + 1];
        if (start + length > v->strings_len) return "a string runs past its section";
    }
    if (s[M2V_SEC_PRECOMPILED].present && (error = open_charsmap(&v->charsmap, &s[M2V_SEC_PRECOMPILED])))
        return error;
    v->normalizer = (m2v_ops){(const m2v_op_record *)s[M2V_SEC_NORMALIZER].data,
                              (uint32_t)s[M2V_SEC_NORMALIZER].count};
    v->pretokenizer = (m2v_ops){(const m2v_op_record *)s[M2V_SEC_PRETOKENIZER].data,
                                (uint32_t)s[M2V_SEC_PRETOKENIZER].count};
    if (s[M2V_SEC_NORMALIZER].count > 64 || s[M2V_SEC_PRETOKENIZER].count > 64) return "too many ops";
    if ((error = check_ops(v, &v->normalizer, 1)) || (error = check_ops(v, &v->pretokenizer, 0))) return error;

    int64_t value_limit = limit;
    if (m->kind == M2V_MODEL_UNIGRAM) {
        if (!s[M2V_SEC_SCORES].present) return "a Unigram model without scores";
        if (s[M2V_SEC_SCORES].count < (uint64_t)value_limit) value_limit = (int64_t)s[M2V_SEC_SCORES].count;
        v->scores = (const double *)s[M2V_SEC_SCORES].data;
        v->score_count = (uint32_t)s[M2V_SEC_SCORES].count;
    }
    if ((error = open_trie(&v->vocab, &s[M2V_SEC_VOCAB], value_limit))) return error;
    if (v->vocab.count == 0) return "the vocabulary is missing";

    if (s[M2V_SEC_ADDED_TOKENS].count > INT32_MAX) return "too many added tokens";
    v->added = (const int32_t *)s[M2V_SEC_ADDED_TOKENS].data;
    v->added_count = (uint32_t)s[M2V_SEC_ADDED_TOKENS].count;
    for (uint32_t i = 0; i < v->added_count; i++) {
        if (v->added[2 * i] < 0 || v->added[2 * i] >= limit) return "an added token's id is out of range";
        if ((uint32_t)v->added[2 * i + 1] > 7) return "unknown added-token flags";
    }
    if ((error = open_trie(&v->added_raw, &s[M2V_SEC_ADDED_RAW], v->added_count)) ||
        (error = open_trie(&v->added_normalized, &s[M2V_SEC_ADDED_NORMALIZED], v->added_count)))
        return error;

    if (s[M2V_SEC_BYTE_IDS].present) {
        if (s[M2V_SEC_BYTE_IDS].count != 256) return "byte-fallback ids must number 256";
        v->byte_ids = (const int32_t *)s[M2V_SEC_BYTE_IDS].data;
        for (int i = 0; i < 256; i++) {
            if (v->byte_ids[i] < -1 || v->byte_ids[i] >= limit) return "a byte-fallback id is out of range";
        }
    }
    if ((m->flags & M2V_MODEL_BYTE_FALLBACK) && v->byte_ids == NULL) return "byte fallback without byte ids";

    v->prefix_node = -1;
    if (m->kind == M2V_MODEL_WORDPIECE) {
        if ((error = check_string(v, m->prefix_string, 0))) return error;
        uint32_t n;
        const uint8_t *prefix = m2v_string(v, m->prefix_string, &n);
        int32_t node = 0;
        for (uint32_t i = 0; i < n && node >= 0; i++) node = m2v_trie_child(&v->vocab, node, prefix[i]);
        v->prefix_node = node;
    }
    plan_ascii(v);
    plan_ascii_wordpiece(v);
    return NULL;
}
