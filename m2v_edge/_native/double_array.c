/* Building the double-array tries of the tokenizer file (the export side; m2v_format.h describes the result).
 *
 * Input: the keys, sorted and unique, end to end in one blob with their offsets, and their values. Output: units
 * {base, check, value}: node n's child along byte b sits at unit base[n] ^ b, and
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

/* A node waiting to be placed: its unit, the keys below it (a range of the sorted keys) and its depth. */
typedef struct {
    uint32_t unit, first, last, depth;
} pending;

int m2v_build_double_array(const uint8_t *blob, const uint64_t *offsets, const int32_t *values, uint32_t count,
                           m2v_unit **out, uint32_t *out_size) {
    builder b = {0};
    b.head = b.tail = -1;
    pending *queue = malloc(sizeof(pending) * 1024);
    size_t queue_cap = 1024, queue_head = 0, queue_len = 0;
    uint8_t labels[256];
    uint32_t starts[257];
    if (queue == NULL || grow(&b)) goto fail;
    unlink_unit(&b, 0);
    b.units[0] = (m2v_unit){0, M2V_UNIT_ROOT, -1};
    queue[queue_len++] = (pending){0, 0, count, 0};
    /* Breadth-first: a node's children are placed together, at the first free units that fit all of them. */
    while (queue_head < queue_len) {
        pending node = queue[queue_head++];
        uint32_t key = node.first, n = 0;
        if (key < node.last && offsets[key + 1] - offsets[key] == node.depth) {
            b.units[node.unit].value = values[key]; /* the key that ends here sorts first */
            key++;
        }
        for (; key < node.last; key++) {
            uint8_t label = blob[offsets[key] + node.depth];
            if (n == 0 || labels[n - 1] != label) {
                labels[n] = label;
                starts[n++] = key;
            }
        }
        if (n == 0) continue;
        starts[n] = node.last;
        int64_t base = find_base(&b, labels, n);
        if (base < 0) goto fail;
        b.units[node.unit].base = (uint32_t)base;
        if (queue_len + n > queue_cap) {
            /* drop what was placed already, then grow */
            memmove(queue, queue + queue_head, (queue_len - queue_head) * sizeof(pending));
            queue_len -= queue_head;
            queue_head = 0;
            if (queue_len + n > queue_cap) {
                pending *grown = realloc(queue, (queue_cap *= 2) * sizeof(pending));
                if (grown == NULL) goto fail;
                queue = grown;
            }
        }
        for (uint32_t i = 0; i < n; i++) {
            uint32_t unit = (uint32_t)base ^ labels[i];
            unlink_unit(&b, unit);
            b.units[unit] = (m2v_unit){0, node.unit, -1};
            queue[queue_len++] = (pending){unit, starts[i], starts[i + 1], node.depth + 1};
        }
    }
    free(queue);
    free(b.next);
    free(b.prev);
    free(b.rejects);
    *out = b.units;
    *out_size = b.size;
    return 0;
fail:
    free(queue);
    free(b.units);
    free(b.next);
    free(b.prev);
    free(b.rejects);
    return -1;
}
