/* The tokenizer file of an m2v-edge bundle (`tokenizer.m2v`), format version 1: byte by byte.
 *
 * Written at export by m2v_edge/export/tokenizer_core.py from the bundle's tokenizer.json; mapped read-only by the
 * runtime, which checks every offset, count and value below against the file's size before it is used
 * (vocab.c), because a bundle may come from anywhere. All integers are little-endian; all offsets count from the
 * start of the file; every section starts at a multiple of 8.
 *
 * Header, 32 bytes
 *   0   8  magic "M2VTOKEN"
 *   8   4  u32 format version (M2V_FORMAT_VERSION)
 *   12  4  u32 section count S (at most M2V_SECTION_KINDS)
 *   16  8  u64 file size in bytes (must equal the mapped size)
 *   24  8  zero
 * Section table, S entries of 24 bytes, from offset 32
 *   0   4  u32 kind (enum m2v_section); each kind at most once
 *   4   4  u32 item size in bytes (must equal the kind's, listed below)
 *   8   8  u64 offset of the first item
 *   16  8  u64 item count
 *
 * Sections (kind: item, meaning)
 *   MODEL 1 x 40 bytes (m2v_model_record): the model kind and its parameters. Required.
 *   NORMALIZER 16-byte op records (m2v_op_record), applied in order to each text segment. May be absent.
 *   PRETOKENIZER 16-byte op records, applied in order to the normalized pieces. May be absent.
 *   STRING_TABLE 8-byte records {u32 offset, u32 length} of strings inside STRINGS; ops name strings by index.
 *   STRINGS bytes: the op strings (UTF-8).
 *   VOCAB 12-byte units {u32 base, u32 check, i32 value}: the model vocabulary as a double-array trie over UTF-8
 *     bytes. Unit 0 is the root (check 0xFFFFFFFE); the child of the node at unit n along byte b is unit
 *     base[n] ^ b if that unit's check is n; unused units have check 0xFFFFFFFF; value is the token id of the
 *     string spelled from the root to the node, or -1. The unit count is a multiple of 256 and every base is below
 *     it (so base ^ b is too); nodes without children have base 0. Required.
 *   SCORES f64[V]: Unigram scores by token id (Unigram only; every vocabulary id < V).
 *   ADDED_TOKENS 8-byte records {i32 id, u32 flags (M2V_ADDED_*)}: tokenizers' added tokens.
 *   ADDED_RAW, ADDED_NORMALIZED: double arrays, laid out as VOCAB, of the added tokens matched in the raw text and
 *     in the normalized text; values index ADDED_TOKENS.
 *   PRECOMPILED bytes: a sentencepiece precompiled_charsmap, as tokenizer.json holds it (base64-decoded).
 *   BYTE_IDS i32[256]: the id of each byte-fallback token <0xXX>, or -1 (Unigram with byte_fallback).
 */
#ifndef M2V_FORMAT_H
#define M2V_FORMAT_H

#include <stdint.h>

#define M2V_MAGIC "M2VTOKEN"
#define M2V_FORMAT_VERSION 1u
#define M2V_HEADER_BYTES 32u
#define M2V_SECTION_ENTRY_BYTES 24u

enum m2v_section {
    M2V_SEC_MODEL = 1,
    M2V_SEC_NORMALIZER = 2,
    M2V_SEC_PRETOKENIZER = 3,
    M2V_SEC_STRING_TABLE = 4,
    M2V_SEC_STRINGS = 5,
    M2V_SEC_VOCAB = 6,
    M2V_SEC_SCORES = 7,
    M2V_SEC_ADDED_TOKENS = 8,
    M2V_SEC_ADDED_RAW = 9,
    M2V_SEC_ADDED_NORMALIZED = 10,
    M2V_SEC_PRECOMPILED = 11,
    M2V_SEC_BYTE_IDS = 12,
    M2V_SECTION_KINDS = 12,
};

/* MODEL: 40 bytes. */
typedef struct {
    uint32_t kind;              /* M2V_MODEL_WORDPIECE or M2V_MODEL_UNIGRAM */
    int32_t unk_id;             /* the unknown token's id (WordPiece: of unk_token; Unigram: unk_id), or -1 */
    uint32_t flags;             /* M2V_MODEL_BYTE_FALLBACK */
    uint32_t max_word_chars;    /* WordPiece: max_input_chars_per_word */
    uint32_t prefix_string;     /* WordPiece: STRING_TABLE index of continuing_subword_prefix */
    uint32_t id_limit;          /* every id in the file is below this (the bundle's table rows) */
    uint32_t reserved[2];       /* zero */
    double unk_score;           /* Unigram: the score of an unknown character (min score - 10) */
} m2v_model_record;

enum { M2V_MODEL_WORDPIECE = 1, M2V_MODEL_UNIGRAM = 2 };
enum { M2V_MODEL_BYTE_FALLBACK = 1 };

/* NORMALIZER and PRETOKENIZER: 16 bytes each. */
typedef struct {
    uint32_t op;     /* enum m2v_normalizer_op or m2v_pretokenizer_op */
    uint32_t flags;  /* op-specific, below */
    uint32_t arg1;   /* op-specific: a STRING_TABLE index */
    uint32_t arg2;   /* op-specific: a STRING_TABLE index */
} m2v_op_record;

enum m2v_normalizer_op {
    M2V_NORM_BERT = 1,          /* flags: M2V_BERT_* */
    M2V_NORM_LOWERCASE = 2,
    M2V_NORM_STRIP_ACCENTS = 3,
    M2V_NORM_NFD = 4,
    M2V_NORM_NFKD = 5,
    M2V_NORM_NFC = 6,
    M2V_NORM_NFKC = 7,
    M2V_NORM_STRIP = 8,         /* flags: 1 left, 2 right */
    M2V_NORM_PREPEND = 9,       /* arg1: the string */
    M2V_NORM_REPLACE = 10,      /* arg1: the literal pattern (not empty), arg2: its replacement */
    M2V_NORM_PRECOMPILED = 11,  /* the PRECOMPILED section */
};
enum { M2V_BERT_CLEAN = 1, M2V_BERT_CHINESE = 2, M2V_BERT_STRIP_ACCENTS = 4, M2V_BERT_LOWERCASE = 8 };

enum m2v_pretokenizer_op {
    M2V_PRE_BERT = 1,
    M2V_PRE_WHITESPACE_SPLIT = 2,
    M2V_PRE_WHITESPACE = 3,     /* the regex \w+|[^\w\s]+ */
    M2V_PRE_METASPACE = 4,      /* arg1: the replacement (one character); flags: 1 prepend always, 2 split */
    M2V_PRE_PUNCTUATION = 5,    /* flags: enum m2v_split_behavior */
    M2V_PRE_DIGITS = 6,         /* flags: 1 individual digits */
    M2V_PRE_CHAR_DELIMITER = 7, /* arg1: the delimiter (one character) */
    M2V_PRE_SPLIT = 8,          /* arg1: the literal pattern (not empty); flags: behavior | 16 invert */
};
enum m2v_split_behavior {
    M2V_SPLIT_REMOVED = 0,
    M2V_SPLIT_ISOLATED = 1,
    M2V_SPLIT_MERGED_WITH_PREVIOUS = 2,
    M2V_SPLIT_MERGED_WITH_NEXT = 3,
    M2V_SPLIT_CONTIGUOUS = 4,
};
#define M2V_SPLIT_INVERT 16u

/* ADDED_TOKENS flags. */
enum { M2V_ADDED_SINGLE_WORD = 1, M2V_ADDED_LSTRIP = 2, M2V_ADDED_RSTRIP = 4 };

#endif
