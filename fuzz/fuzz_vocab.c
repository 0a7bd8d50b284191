/* libFuzzer harness: hostile bytes as a tokenizer file (tokenizer.m2v).
 *
 * The bytes go to m2v_vocab_open as the runtime hands it a mapped file. When the loader refuses them, they are tried
 * once more with the header's size field set to their length, so that mutations which change the length still reach
 * the checks behind that one. A file the loader accepts must then tokenize every text below without reading outside
 * itself (AddressSanitizer), without undefined behaviour (UBSan), and give only ids below its id_limit. */
#include "fuzz_common.h"

static const char *const TEXTS[] = {
    "",
    "the quick brown fox jumps over the lazy dog",
    "Hello, WORLD! It's 42 degrees -- isn't it? a|b ``quoted'' x--y",
    "\xe2\x80\x9c" "curly\xe2\x80\x9d caf\xc3\xa9 na\xc3\xafve \xc3\x9c" "ber stra\xc3\x9f" "e e\xcc\x81 \xef\xac\x81",
    ("\xe4\xb8\xad\xe6\x96\x87\xe5\xad\x97 \xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e \xed\x95\x9c\xea\xb5\xad\xec\x96\xb4 "
    "\xd0\xbf\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82 \xd7\xa9\xd7\x9c\xd7\x95\xd7\x9d "
    "\xd9\x85\xd8\xb1\xd8\xad\xd8\xa8\xd8\xa7"),
    "[CLS] fox [SEP] [MASK][PAD][UNK] <unk> <pad> <mask> <s></s> [[x]]the ##ing",
    ("\xf0\x9f\x98\x80\xf0\x9f\x8e\x89 \xf0\x9f\x91\xa8\xe2\x80\x8d\xf0\x9f\x91\xa9\xe2\x80\x8d\xf0\x9f\x91\xa7 "
    "\xf0\x9f\x87\xa9\xf0\x9f\x87\xaa\x01\x1b[0m\x7f \t\r\n\xc2\xa0\xe3\x80\x80\xe2\x80\x83 \xef\xbf\xbd"),
    "\xe2\x96\x81\xe2\x96\x81 \xe2\x96\x81start 0123456789 \xef\xbc\xa1\xef\xbc\xa2 \xe2\x91\xa0 \xe2\x84\xa2",
};

static char long_text[3000];

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    size_t at = 0;
    for (size_t i = 0; at + 200 < sizeof(long_text); i++) {
        const char *piece = TEXTS[1 + i % (sizeof(TEXTS) / sizeof(TEXTS[0]) - 1)];
        size_t n = strlen(piece);
        memcpy(long_text + at, piece, n);
        at += n;
        long_text[at++] = i % 3 ? ' ' : 'x';
    }
    long_text[at] = 0;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    uint8_t *file = fuzz_copy(data, size);
    m2v_vocab v;
    const char *refused = m2v_vocab_open(&v, file, size);
    if (refused != NULL && size >= 24) {
        for (int i = 0; i < 8; i++) file[16 + i] = (uint8_t)((uint64_t)size >> (8 * i));
        refused = m2v_vocab_open(&v, file, size);
    }
    if (refused == NULL) {
        m2v_work w = {0};
        for (size_t i = 0; i < sizeof(TEXTS) / sizeof(TEXTS[0]); i++) {
            fuzz_tokenize(&v, &w, (const uint8_t *)TEXTS[i], strlen(TEXTS[i]), 1 + (int64_t)(i % 4));
        }
        fuzz_tokenize(&v, &w, (const uint8_t *)long_text, strlen(long_text), 7);
        m2v_work_free(&w);
    }
    free(file);
    return 0;
}
