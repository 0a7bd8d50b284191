/* A per-thread cache of pre-tokens already through the model: words repeat (a Zipf law), and a hash lookup is
 * cheaper than another Viterbi search or WordPiece walk. tokenizers keeps such a cache too; ids do not depend on it.
 *
 * Open addressing over PIECE_CACHE_SLOTS slots; keys (the pre-token's bytes) and values (its ids) live in two
 * growing arenas. When the table is half full or the arenas pass their bound, the cache starts over empty. */
#include <stdlib.h>
#include <string.h>

#include "m2v_core.h"

#define SLOTS PIECE_CACHE_SLOTS
#define MAX_KEY 48             /* longer pre-tokens are rare and rarely repeat: not cached */
#define MAX_KEY_BYTES (1 << 20)
#define MAX_ID_COUNT (1 << 18)

static uint64_t hash_bytes(const uint8_t *s, size_t n) {
    uint64_t h = 0x9E3779B97F4A7C15ull ^ (uint64_t)n;
    for (size_t i = 0; i < n; i++) h = (h ^ s[i]) * 0x100000001B3ull;
    return h ^ (h >> 29);
}

static void clear(m2v_piece_cache *c) {
    memset(c->slots, 0, sizeof(c->slots));
    c->used = 0;
    c->keys.len = 0;
    c->ids.len = 0;
}

const int64_t *m2v_piece_cache_find(m2v_piece_cache *c, const uint8_t *piece, size_t n, uint32_t *count) {
    if (n > MAX_KEY || c->used == 0) return NULL;
    uint64_t h = hash_bytes(piece, n) | 1;
    for (uint32_t i = (uint32_t)h & (SLOTS - 1);; i = (i + 1) & (SLOTS - 1)) {
        m2v_piece_slot *slot = &c->slots[i];
        if (slot->hash == 0) return NULL;
        if (slot->hash == h && slot->key_length == n && memcmp(c->keys.data + slot->key, piece, n) == 0) {
            *count = slot->id_count;
            return c->ids.data + slot->ids;
        }
    }
}

void m2v_piece_cache_put(m2v_piece_cache *c, const uint8_t *piece, size_t n, const int64_t *ids, uint32_t count) {
    if (n > MAX_KEY || count > 0xFFFF) return;
    if (c->used >= SLOTS / 2 || c->keys.len + n > MAX_KEY_BYTES || c->ids.len + count > MAX_ID_COUNT) clear(c);
    if (M2V_RESERVE(&c->keys, n) || M2V_RESERVE(&c->ids, count)) return; /* no memory: just do not cache */
    uint64_t h = hash_bytes(piece, n) | 1; /* never 0, the empty slot's mark */
    uint32_t i = (uint32_t)h & (SLOTS - 1);
    while (c->slots[i].hash != 0) i = (i + 1) & (SLOTS - 1);
    c->slots[i] = (m2v_piece_slot){h, (uint32_t)c->keys.len, (uint32_t)c->ids.len, (uint16_t)n, (uint16_t)count};
    memcpy(c->keys.data + c->keys.len, piece, n);
    c->keys.len += n;
    if (count) memcpy(c->ids.data + c->ids.len, ids, count * sizeof(int64_t));
    c->ids.len += count;
    c->used++;
}
