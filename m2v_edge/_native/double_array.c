/* Building the double-array tries of the tokenizer file (the export side; m2v_format.h describes the result).
 *
 * Input: a byte trie in breadth-first order (labels, children ranges, values), as export/tokenizer_file.py builds
 * it with numpy. Output: units {base, check, value}: node n's child along byte b sits at unit base[n] ^ b, and
 * check[unit] names the parent's unit, so a lookup is two loads. Nodes are placed in breadth-first order, each at
 * the first free units that fit all its children; the array grows by blocks of 256 units, so every base ^ b stays
 * inside it. A free unit that has turned many nodes away is dropped from the free list (left empty), which keeps
 * the search short for large vocabularies. */
#include <stdlib.h>
#include <string.h>

#include "m2v_core.h"

#define REJECTS_BEFORE_SKIP 16

typedef struct {
    m2v_unit *units;
    int32_t *next, *prev; /* the free list, through unit indices; -1 ends it, -2 marks a unit not in it */
    uint8_t *rejects;
    uint32_t size, capacity;
    int32_t head, tail;
} builder;

static void unlink_unit(builder *b, uint32_t unit) {
    int32_t next = b->next[unit], prev = b->prev[unit];
    if (next == -2) return;
    if (prev >= 0) {
        b->next[prev] = next;
    } else {
        b->head = next;
    }
    if (next >= 0) {
        b->prev[next] = prev;
    } else {
        b->tail = prev;
    }
    b->next[unit] = b->prev[unit] = -2;
}

static int grow(builder *b) {
    uint32_t old = b->size, size = old + 256;
    if (size > b->capacity) {
        uint32_t capacity = b->capacity ? b->capacity * 2 : 1024;
        if (capacity > (1u << 31) / sizeof(m2v_unit)) return -1;
        m2v_unit *units = realloc(b->units, capacity * sizeof(m2v_unit));
        if (units) b->units = units;
        int32_t *next = realloc(b->next, capacity * sizeof(int32_t));
        if (next) b->next = next;
        int32_t *prev = realloc(b->prev, capacity * sizeof(int32_t));
        if (prev) b->prev = prev;
        uint8_t *rejects = realloc(b->rejects, capacity);
        if (rejects) b->rejects = rejects;
        if (!units || !next || !prev || !rejects) return -1;
        b->capacity = capacity;
    }
    for (uint32_t i = old; i < size; i++) {
        b->units[i] = (m2v_unit){0, M2V_UNIT_FREE, -1};
        b->rejects[i] = 0;
        b->prev[i] = i == old ? b->tail : (int32_t)i - 1;
        b->next[i] = i + 1 < size ? (int32_t)i + 1 : -1;
    }
    if (b->tail >= 0) {
        b->next[b->tail] = (int32_t)old;
    } else {
        b->head = (int32_t)old;
    }
    b->tail = (int32_t)size - 1;
    b->size = size;
    return 0;
}

/* A base whose units base ^ label are free for every label of `labels` (sorted, n > 0); -1 out of memory. Every
 * unit base ^ label lies in the 256-unit block of the free unit it starts from, so inside the array. */
static int64_t find_base(builder *b, const uint8_t *labels, uint32_t n) {
    for (;;) {
        for (int32_t f = b->head; f >= 0;) {
            int32_t following = b->next[f];
            uint32_t base = (uint32_t)f ^ labels[0];
            int fits = base != 0; /* base 0 belongs to the nodes without children */
            for (uint32_t i = 1; fits && i < n; i++) fits = b->units[base ^ labels[i]].check == M2V_UNIT_FREE;
            if (fits) return base;
            if (++b->rejects[f] >= REJECTS_BEFORE_SKIP) unlink_unit(b, (uint32_t)f); /* stays free, unsearched */
            f = following;
        }
        if (grow(b)) return -1;
    }
}

int m2v_build_double_array(const uint8_t *labels, const uint32_t *children, const int32_t *values, uint32_t nodes,
                           m2v_unit **out, uint32_t *out_size) {
    builder b = {0};
    b.head = b.tail = -1;
    uint32_t *position = malloc((size_t)nodes * sizeof(uint32_t));
    if (position == NULL || grow(&b)) goto fail;
    unlink_unit(&b, 0);
    b.units[0] = (m2v_unit){0, M2V_UNIT_ROOT, values[0]};
    position[0] = 0;
    for (uint32_t node = 0; node < nodes; node++) {
        uint32_t first = children[node], last = children[node + 1], at = position[node];
        b.units[at].value = values[node];
        if (first == last) continue;
        int64_t base = find_base(&b, labels + first, last - first);
        if (base < 0) goto fail;
        b.units[at].base = (uint32_t)base;
        for (uint32_t child = first; child < last; child++) {
            uint32_t unit = (uint32_t)base ^ labels[child];
            unlink_unit(&b, unit);
            b.units[unit] = (m2v_unit){0, at, -1};
            position[child] = unit;
        }
    }
    free(position);
    free(b.next);
    free(b.prev);
    free(b.rejects);
    *out = b.units;
    *out_size = b.size;
    return 0;
fail:
    free(position);
    free(b.units);
    free(b.next);
    free(b.prev);
    free(b.rejects);
    return -1;
}
