/* Pooling one text's ids from a variant's mapped arrays (pool.c). */
#ifndef M2V_POOL_H
#define M2V_POOL_H

#include <stddef.h>
#include <stdint.h>

enum m2v_table_kind { M2V_TABLE_F32 = 0, M2V_TABLE_F16 = 1, M2V_TABLE_I8 = 2, M2V_TABLE_I4 = 3 };

typedef struct {
    int kind;                 /* enum m2v_table_kind */
    const void *table;        /* [rows, dim] (int4: [rows, blocks * block / 2] packed, see export/quantize.py) */
    uint64_t table_bytes;
    uint64_t rows;
    uint32_t dim;
    uint32_t block, blocks;   /* int4 only */
    const void *scales;       /* int8: float32 [rows]; int4: float16 [rows, blocks]; else NULL */
    uint64_t scales_bytes;
    const int64_t *mapping;   /* token id -> row, or NULL */
    uint64_t mapping_count;
    const float *weights;     /* per token id, or NULL */
    uint64_t weights_count;
    uint64_t id_count;        /* token ids are below this */
    int64_t unk_id;           /* dropped; -1 for none */
    int normalize;
} m2v_pool_arrays;

/* NULL when the arrays are consistent, else what is wrong. */
const char *m2v_pool_check(const m2v_pool_arrays *a);
/* out[dim] = the pooled vector of `ids` (sum[dim] is scratch); -1 when an id or a mapped row is out of range. */
int m2v_pool(const m2v_pool_arrays *a, const int64_t *ids, size_t n, float *out, double *sum);

#endif
