/* The native tokenizing core: internal interfaces between its files.
 *
 *   vocab.c        opens and checks a mapped tokenizer file (m2v_format.h)
 *   normalize.c    normalizer ops on code points (BertNormalizer, Lowercase, NFx, ...)
 *   precompiled.c  sentencepiece's precompiled charsmap, grapheme by grapheme (grapheme.c)
 *   pretokenize.c  pre-tokenizer ops on UTF-8 pieces
 *   added.c        tokenizers' added tokens: leftmost-longest matching, single_word, lstrip, rstrip
 *   wordpiece.c    greedy longest-match WordPiece
 *   unigram.c      Unigram Viterbi, unknown-character fusing and byte fallback
 *   pipeline.c     one text to ids: added tokens, normalizer, pre-tokenizer, model, truncation
 *   pool.c         one text's vector from a variant's mapped table (the single-text path)
 *   module.c       the Python extension: threads, the GIL, buffers
 *
 * Every function that allocates returns 0 on success and -1 when memory runs out. */
#ifndef M2V_CORE_H
#define M2V_CORE_H

#include <stddef.h>
#include <stdint.h>

#include "m2v_format.h"

/* The core's version: raised whenever a change to the core could change any id it gives (new Unicode tables, a
 * fixed rule). An export records it with its decision; a runtime with another version does not use the file. */
#define M2V_CORE_VERSION 1

/* Growable arrays. */
typedef struct {
    uint8_t *data;
    size_t len, cap;
} m2v_bytes;
typedef struct {
    uint32_t *data;
    size_t len, cap;
} m2v_cps;
typedef struct {
    int64_t *data;
    size_t len, cap;
} m2v_ids;
typedef struct {
    uint32_t start, len; /* a byte range */
    int32_t added;       /* the ADDED_TOKENS index of an added token's range, else -1 */
} m2v_span;
typedef struct {
    m2v_span *data;
    size_t len, cap;
} m2v_spans;

int m2v_reserve(void **data, size_t *cap, size_t need, size_t item);
#define M2V_RESERVE(array, extra) \
    m2v_reserve((void **)&(array)->data, &(array)->cap, (array)->len + (extra), sizeof(*(array)->data))

static inline int m2v_bytes_put(m2v_bytes *b, const uint8_t *src, size_t n) {
    if (M2V_RESERVE(b, n)) return -1;
    for (size_t i = 0; i < n; i++) b->data[b->len + i] = src[i];
    b->len += n;
    return 0;
}

/* A double-array trie of the file's layout (m2v_format.h), checked by vocab.c: node n's child along byte b is
 * unit units[n].base ^ b when that unit's check is n. The root is unit 0. */
typedef struct {
    uint32_t base;
    uint32_t check; /* the parent's unit; M2V_UNIT_FREE for an unused unit, M2V_UNIT_ROOT for the root */
    int32_t value;  /* the id of the string spelled from the root to this node, or -1 */
} m2v_unit;
#define M2V_UNIT_FREE 0xFFFFFFFFu
#define M2V_UNIT_ROOT 0xFFFFFFFEu

typedef struct {
    const m2v_unit *units;
    uint32_t count; /* units, a multiple of 256; 0 when the trie is absent */
} m2v_trie;

/* The child of `node` along byte `label`, or -1. */
static inline int32_t m2v_trie_child(const m2v_trie *t, int32_t node, uint8_t label) {
    uint32_t unit = t->units[node].base ^ label;
    return t->units[unit].check == (uint32_t)node ? (int32_t)unit : -1;
}

/* Build a double array of `count` keys, sorted (bytewise) and unique, non-empty: key i is blob[offsets[i] ..
 * offsets[i+1]) with value values[i]. On success *out (malloc'd) holds *size units. */
int m2v_build_double_array(const uint8_t *blob, const uint64_t *offsets, const int32_t *values, uint32_t count,
                           m2v_unit **out, uint32_t *size);

/* The value of the whole string `s` in the trie, or -1. */
int32_t m2v_trie_lookup(const m2v_trie *t, const uint8_t *s, size_t n);

typedef struct {
    const uint32_t *units;
    uint32_t unit_count;
    const uint8_t *normalized;
    uint32_t normalized_len;
} m2v_charsmap;

typedef struct {
    const m2v_op_record *ops;
    uint32_t count;
} m2v_ops;

typedef struct m2v_vocab {
    m2v_model_record model;
    m2v_ops normalizer, pretokenizer;
    const uint32_t *string_table; /* pairs (offset, length) */
    uint32_t string_count;
    const uint8_t *strings;
    uint64_t strings_len;
    m2v_trie vocab, added_raw, added_normalized;
    const double *scores;
    uint32_t score_count;
    const int32_t *added; /* pairs (id, flags) */
    uint32_t added_count;
    m2v_charsmap charsmap;
    const int32_t *byte_ids; /* 256 entries, or NULL */
    int32_t prefix_node;     /* WordPiece: the node of the continuing-subword prefix, -1 if no key starts so */
    /* ASCII texts through the whole normalizer at once: ascii_map[b] is the byte b becomes, 256 to delete it;
     * used only when ascii_fast is set (every op maps ASCII one byte at a time). */
    int ascii_fast;
    uint16_t ascii_map[128];
    /* ASCII texts through BertPreTokenizer + WordPiece in one pass (pipeline.c), when the pipeline is exactly that
     * (normalizer on ascii_map, no normalized added tokens): ascii_class[b] is 0 for a word byte, 1 whitespace,
     * 2 punctuation; added_first[b] marks bytes that start a raw added token (texts holding one take the general
     * path). */
    int ascii_wordpiece;
    /* ... and texts mixing ASCII with other characters too, cut at ASCII whitespace, when no normalizer op looks
     * across it (no Precompiled op: its graphemes can join a space to what follows it). */
    int ascii_mixed;
    uint8_t ascii_class[128];
    uint8_t added_first[256];
} m2v_vocab;

/* Open a mapped tokenizer file: check it whole and fill `v`. Returns NULL, or a message saying what is wrong. */
const char *m2v_vocab_open(m2v_vocab *v, const uint8_t *data, uint64_t size);

/* A string of the file's STRING_TABLE (the loader checked every index the ops use). */
static inline const uint8_t *m2v_string(const m2v_vocab *v, uint32_t index, uint32_t *length) {
    *length = v->string_table[2 * index + 1];
    return v->strings + v->string_table[2 * index];
}

/* A cache of pre-tokens already through the model (piece_cache.c). */
#define PIECE_CACHE_SLOTS 8192
typedef struct {
    uint64_t hash; /* 0: an empty slot */
    uint32_t key, ids;
    uint16_t key_length, id_count;
} m2v_piece_slot;
typedef struct {
    m2v_piece_slot slots[PIECE_CACHE_SLOTS];
    uint32_t used;
    m2v_bytes keys;
    m2v_ids ids;
} m2v_piece_cache;

/* The cached ids of a pre-token (*count of them), or NULL. */
const int64_t *m2v_piece_cache_find(m2v_piece_cache *c, const uint8_t *piece, size_t n, uint32_t *count);
/* Remember a pre-token's ids (silently nothing when it is too long or memory runs out). */
void m2v_piece_cache_put(m2v_piece_cache *c, const uint8_t *piece, size_t n, const int64_t *ids, uint32_t count);

/* Scratch space of one thread; reused from text to text. */
typedef struct {
    m2v_cps cps, cps2, cps3;     /* normalizer ping-pong and scratch */
    m2v_bytes utf8, utf8b;       /* normalized text; charsmap output */
    m2v_bytes arena;             /* pre-tokenizer output text */
    m2v_spans segments, stretches;  /* split at raw and at normalized added tokens */
    m2v_spans pieces, pieces2, elements;
    m2v_ids piece_ids;
    double *best_score; /* Unigram lattice */
    int32_t *best_start, *best_id;
    size_t lattice_cap;
    m2v_piece_cache *cache; /* made on first use */
} m2v_work;

void m2v_work_free(m2v_work *w);

/* Normalize `text` (UTF-8) with the file's normalizer into w->utf8. */
int m2v_normalize(const m2v_vocab *v, m2v_work *w, const uint8_t *text, size_t n);
/* The precompiled charsmap on UTF-8 `in`, appended to `out`. */
int m2v_precompiled(const m2v_charsmap *map, const uint8_t *in, size_t n, m2v_bytes *out);
/* The end (byte offset) of the extended grapheme cluster that starts at `start`. */
size_t m2v_grapheme_end(const uint8_t *s, size_t start, size_t n);
/* Split `text` (UTF-8) with the file's pre-tokenizer: pieces in w->pieces, ranges of w->arena. */
int m2v_pretokenize(const m2v_vocab *v, m2v_work *w, const uint8_t *text, size_t n);
/* Split `text` at the added tokens of `trie` (raw or normalized) into `out` (added = -1 for plain text). */
int m2v_split_added(const m2v_vocab *v, const m2v_trie *trie, const uint8_t *text, size_t n, m2v_spans *out);
/* One pre-token's ids, appended to `out`. */
int m2v_wordpiece(const m2v_vocab *v, const uint8_t *piece, size_t n, m2v_ids *out);
int m2v_unigram(const m2v_vocab *v, m2v_work *w, const uint8_t *piece, size_t n, m2v_ids *out);
/* One text's ids (unk ids included, as tokenizers gives them), at most `limit` of them, appended to `out`. */
int m2v_encode(const m2v_vocab *v, m2v_work *w, const uint8_t *text, size_t n, int64_t limit, m2v_ids *out);

#endif
