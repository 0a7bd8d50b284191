/* libFuzzer harness: hostile arrays for the Pooler (pool.c), as a caller of m2v_edge._core.Pooler may hand them.
 *
 * Input: a 40-byte header, then the bytes the arrays are cut from, then token ids.
 *   0  u8  table kind (any value: unknown kinds must be refused)
 *   1  u8  bit 0 mapping, bit 1 weights, bit 2 scales, bit 3 normalize (absent arrays are NULL)
 *   2  u16 table bytes
 *   4  u16 scales bytes
 *   6  u16 mapping entries (int64)
 *   8  u16 weights entries (float32)
 *   10 u16 block; 12 u16 blocks; 14 u16 dim
 *   16 u64 rows; 24 u64 id count; 32 i64 unknown id (only its low 16 bits, sign-extended: ids below are small)
 * The arrays take the following bytes in order (zeros when the input runs out), each in its own exact-size
 * allocation; the remaining bytes are the ids, as int16. When m2v_pool_check accepts the arrays, m2v_pool must pool
 * the ids without reading outside them. */
#include "fuzz_common.h"
#include "m2v_pool.h"

static uint64_t read_le(const uint8_t *p, int bytes) {
    uint64_t value = 0;
    for (int i = 0; i < bytes; i++) value |= (uint64_t)p[i] << (8 * i);
    return value;
}

/* The next `n` bytes of the input (zero-filled past its end) in their own allocation. */
static void *take(const uint8_t **p, const uint8_t *end, size_t n) {
    uint8_t *block = calloc(n ? n : 1, 1);
    if (block == NULL) abort();
    size_t have = (size_t)(end - *p) < n ? (size_t)(end - *p) : n;
    memcpy(block, *p, have);
    *p += have;
    return block;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 40) return 0;
    unsigned flags = data[1];
    size_t table_bytes = read_le(data + 2, 2), scales_bytes = read_le(data + 4, 2);
    size_t mapping_count = read_le(data + 6, 2), weights_count = read_le(data + 8, 2);
    const uint8_t *p = data + 40, *end = data + size;
    void *table = take(&p, end, table_bytes);
    void *scales = take(&p, end, scales_bytes);
    int64_t *mapping = take(&p, end, mapping_count * 8);
    float *weights = take(&p, end, weights_count * 4);
    m2v_pool_arrays a = {
        .kind = data[0], .table = table, .table_bytes = table_bytes, .rows = read_le(data + 16, 8),
        .dim = (uint32_t)read_le(data + 14, 2), .block = (uint32_t)read_le(data + 10, 2),
        .blocks = (uint32_t)read_le(data + 12, 2),
        .scales = (flags & 4) ? scales : NULL, .scales_bytes = (flags & 4) ? scales_bytes : 0,
        .mapping = (flags & 1) ? mapping : NULL, .mapping_count = (flags & 1) ? mapping_count : 0,
        .weights = (flags & 2) ? weights : NULL, .weights_count = (flags & 2) ? weights_count : 0,
        .id_count = read_le(data + 24, 8), .unk_id = (int16_t)read_le(data + 32, 2), .normalize = (flags & 8) != 0,
    };
    if (m2v_pool_check(&a) == NULL) {
        size_t n = (size_t)(end - p) / 2;
        int64_t *ids = malloc((n ? n : 1) * sizeof(int64_t));
        float *out = malloc(a.dim * sizeof(float));
        double *sum = malloc(a.dim * sizeof(double)); /* the caller's scratch, as module_pooler.c gives it */
        if (ids == NULL || out == NULL || sum == NULL) abort();
        for (size_t i = 0; i < n; i++) ids[i] = (int16_t)read_le(p + 2 * i, 2);
        (void)m2v_pool(&a, ids, n, out, sum);
        free(ids);
        free(out);
        free(sum);
    }
    free(table);
    free(scales);
    free(mapping);
    free(weights);
    return 0;
}
