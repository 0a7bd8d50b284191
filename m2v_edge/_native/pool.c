/* One text's vector from a variant's mapped arrays: the pooling graph's arithmetic, for the single-text path
 * (no onnxruntime call, no padding). Per token t with id i, kept when i is not the unknown id:
 *
 *     row  = mapping[i] (or i);   w = weights[i] (or 1) * scale[row] (int8; int4: one scale per block)
 *     sum  = sum over kept tokens of w * table[row]
 *     out  = sum / (||sum|| + 1e-32) when normalizing, else sum / max(kept tokens, 1)
 *
 * The sum is kept in double precision (the graph sums float32 products in blocks, in another order): the result is
 * the exact weighted mean rounded to float32, and agrees with the graph to the graph's own float32 rounding. */
#include <math.h>
#include <string.h>

#include "m2v_pool.h"

/* IEEE half to float, exact for every value, without branches so that the row loops vectorize: normal values and
 * infinities/NaNs by moving the bits (exponent rebased, and rebased again for the all-ones exponent), subnormals
 * as mantissa x 2^-24 (exact: the mantissa has 10 bits, and the product is a normal float). */
static inline float half_to_float(uint16_t h) {
    uint32_t magnitude = h & 0x7FFFu, exponent = h & 0x7C00u;
    uint32_t bits = (magnitude << 13) + ((127u - 15u) << 23) + (exponent == 0x7C00u ? (128u - 16u) << 23 : 0u);
    float moved, subnormal = (float)(magnitude & 0x3FFu) * 0x1p-24f;
    memcpy(&moved, &bits, sizeof(moved));
    float f = exponent == 0 ? subnormal : moved;
    uint32_t out;
    memcpy(&out, &f, sizeof(out));
    out |= (uint32_t)(h & 0x8000u) << 16;
    memcpy(&f, &out, sizeof(f));
    return f;
}

const char *m2v_pool_check(const m2v_pool_arrays *a) {
    if (a->dim == 0 || a->rows == 0) return "empty table";
    size_t row_bytes;
    switch (a->kind) {
    case M2V_TABLE_F32: row_bytes = (size_t)a->dim * 4; break;
    case M2V_TABLE_F16: row_bytes = (size_t)a->dim * 2; break;
    case M2V_TABLE_I8: row_bytes = a->dim; break;
    case M2V_TABLE_I4:
        if (a->block == 0 || a->block % 2 || a->blocks == 0 || (uint64_t)a->blocks * a->block < a->dim ||
            (uint64_t)(a->blocks - 1) * a->block >= a->dim)
            return "int4 blocks do not cover the dimensions";
        row_bytes = (size_t)a->blocks * a->block / 2;
        break;
    default: return "unknown table kind";
    }
    if (a->rows > UINT64_MAX / row_bytes || a->table_bytes != (uint64_t)a->rows * row_bytes)
        return "table size does not match rows x dim"; /* (a product that wraps around would match a small table) */
    if (a->kind == M2V_TABLE_I8 && a->scales_bytes != (uint64_t)a->rows * 4) return "int8 scales size mismatch";
    if (a->kind == M2V_TABLE_I4 && a->scales_bytes != (uint64_t)a->rows * a->blocks * 2)
        return "int4 scales size mismatch";
    if ((a->kind == M2V_TABLE_F32 || a->kind == M2V_TABLE_F16) && a->scales != NULL) return "unexpected scales";
    if (a->mapping != NULL && a->mapping_count != a->id_count) return "mapping length differs from the vocabulary";
    if (a->weights != NULL && a->weights_count != a->id_count) return "weights length differs from the vocabulary";
    if (a->mapping == NULL && a->id_count > a->rows) return "more token ids than table rows";
    return NULL;
}

/* Add w * row into sum. */
static void add_row(const m2v_pool_arrays *a, uint64_t row, float w, double *sum) {
    uint32_t dim = a->dim;
    switch (a->kind) {
    case M2V_TABLE_F32: {
        const float *r = (const float *)a->table + row * dim;
        for (uint32_t d = 0; d < dim; d++) sum[d] += (double)w * r[d];
        break;
    }
    case M2V_TABLE_F16: {
        const uint16_t *r = (const uint16_t *)a->table + row * dim;
        for (uint32_t d = 0; d < dim; d++) sum[d] += (double)w * half_to_float(r[d]);
        break;
    }
    case M2V_TABLE_I8: {
        const int8_t *r = (const int8_t *)a->table + row * dim;
        double scaled = (double)w * ((const float *)a->scales)[row];
        for (uint32_t d = 0; d < dim; d++) sum[d] += scaled * r[d];
        break;
    }
    case M2V_TABLE_I4: {
        uint32_t half = a->block / 2;
        const uint8_t *r = (const uint8_t *)a->table + row * ((uint64_t)a->blocks * half);
        const uint16_t *scales = (const uint16_t *)a->scales + row * a->blocks;
        for (uint32_t k = 0; k < a->blocks; k++) {
            double scaled = (double)w * half_to_float(scales[k]);
            for (uint32_t j = 0; j < half; j++) {
                uint8_t byte = r[k * half + j];
                uint32_t low = k * a->block + j, high = low + half;
                if (low < dim) sum[low] += scaled * ((int)(byte & 0x0F) - 8);
                if (high < dim) sum[high] += scaled * ((int)(byte >> 4) - 8);
            }
        }
        break;
    }
    }
}

int m2v_pool(const m2v_pool_arrays *a, const int64_t *ids, size_t n, float *out, double *sum) {
    uint32_t dim = a->dim;
    for (uint32_t d = 0; d < dim; d++) sum[d] = 0.0;
    uint64_t kept = 0;
    for (size_t t = 0; t < n; t++) {
        int64_t id = ids[t];
        if (id == a->unk_id) continue;
        if (id < 0 || (uint64_t)id >= a->id_count) return -1;
        int64_t row = a->mapping ? a->mapping[id] : id;
        if (row < 0 || (uint64_t)row >= a->rows) return -1;
        float w = a->weights ? a->weights[id] : 1.0f;
        add_row(a, (uint64_t)row, w, sum);
        kept++;
    }
    if (a->normalize) {
        double squares = 0.0;
        for (uint32_t d = 0; d < dim; d++) squares += sum[d] * sum[d];
        double norm = sqrt(squares) + 1e-32;
        for (uint32_t d = 0; d < dim; d++) out[d] = (float)(sum[d] / norm);
    } else {
        double divisor = kept > 0 ? (double)kept : 1.0;
        for (uint32_t d = 0; d < dim; d++) out[d] = (float)(sum[d] / divisor);
    }
    return 0;
}
