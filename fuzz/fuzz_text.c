/* libFuzzer harness: hostile text given to real, valid tokenizer files.
 *
 * The files are read once from the folder named by M2V_FUZZ_FILES (every *.m2v in it; fuzz/make_seeds.py writes
 * them: potion-base-8M's WordPiece, tokenlearn's Unigram with its Precompiled charsmap, and small files that use
 * every op, in name order). The input's first byte picks the file (its low 4 bits, modulo the file count) and the
 * truncation limit (1 + its high 4 bits); the rest is the text, any bytes (the runtime hands the core valid UTF-8,
 * but the core must not misbehave on anything). */
#define _DEFAULT_SOURCE /* scandir */
#include <dirent.h>

#include "fuzz_common.h"

#define MAX_FILES 16

static m2v_vocab vocabs[MAX_FILES];
static uint8_t *files[MAX_FILES];
static size_t file_count;

static uint8_t *read_whole(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    if (f == NULL || fseek(f, 0, SEEK_END) != 0) abort();
    long n = ftell(f);
    if (n < 0 || fseek(f, 0, SEEK_SET) != 0) abort();
    uint8_t *data = malloc((size_t)n + 1);
    if (data == NULL || fread(data, 1, (size_t)n, f) != (size_t)n) abort();
    fclose(f);
    *size = (size_t)n;
    return data;
}

static int by_name(const struct dirent **a, const struct dirent **b) { return strcmp((*a)->d_name, (*b)->d_name); }

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    const char *folder = getenv("M2V_FUZZ_FILES");
    if (folder == NULL) {
        fprintf(stderr, "set M2V_FUZZ_FILES to a folder of valid tokenizer.m2v files (fuzz/make_seeds.py)\n");
        exit(2);
    }
    struct dirent **names;
    int n = scandir(folder, &names, NULL, by_name);
    if (n < 0) abort();
    for (int i = 0; i < n; i++) {
        size_t length = strlen(names[i]->d_name), size;
        if (length > 4 && strcmp(names[i]->d_name + length - 4, ".m2v") == 0 && file_count < MAX_FILES) {
            char path[4096];
            snprintf(path, sizeof(path), "%s/%s", folder, names[i]->d_name);
            files[file_count] = read_whole(path, &size);
            const char *error = m2v_vocab_open(&vocabs[file_count], files[file_count], size);
            if (error != NULL) {
                fprintf(stderr, "%s: refused (%s)\n", path, error);
                exit(2);
            }
            file_count++;
        }
        free(names[i]);
    }
    free(names);
    if (file_count == 0) {
        fprintf(stderr, "no *.m2v files in %s\n", folder);
        exit(2);
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0) return 0;
    const m2v_vocab *v = &vocabs[(data[0] & 15u) % file_count];
    int64_t limit = 1 + (data[0] >> 4);
    uint8_t *text = fuzz_copy(data + 1, size - 1);
    m2v_work w = {0};
    fuzz_tokenize(v, &w, text, size - 1, limit);
    m2v_work_free(&w);
    free(text);
    return 0;
}
