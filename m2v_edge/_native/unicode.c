/* Lookups in the generated Unicode tables (see m2v_unicode.h). */
#include "m2v_unicode.h"

#include "unicode_data.h"

m2v_uprop m2v_props_beyond_ascii(uint32_t cp) {
    if (cp >= 0x110000u) cp = 0x10FFFFu; /* a noncharacter: no flag, class 0 */
    unsigned block = m2v_uprop_stage1[cp / M2V_UPROP_BLOCK];
    const uint16_t *record = m2v_uprop_records[m2v_uprop_stage2[block][cp % M2V_UPROP_BLOCK]];
    m2v_uprop props = {record[0], (uint8_t)record[1], (uint8_t)record[2]};
    return props;
}

/* Binary search of `cp` in a sorted key array; the matching value's pool entry, or NULL. */
static const uint32_t *find_mapping(const uint32_t *keys, const uint32_t *values, size_t count, uint32_t cp,
                                    uint32_t *length) {
    size_t lo = 0, hi = count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (keys[mid] < cp) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    if (lo == count || keys[lo] != cp) return NULL;
    const uint32_t *entry = m2v_pool + values[lo];
    *length = entry[0];
    return entry + 1;
}

const uint32_t *m2v_lower(uint32_t cp, uint32_t *length) {
    if (!m2v_has(cp, M2V_HAS_LOWER)) return NULL;
    return find_mapping(m2v_lower_keys, m2v_lower_values, M2V_LOWER_COUNT, cp, length);
}

const uint32_t *m2v_decomposition(uint32_t cp, int compatibility, uint32_t *length) {
    if (compatibility) {
        if (!m2v_has(cp, M2V_HAS_NFKD)) return NULL;
        return find_mapping(m2v_nfkd_keys, m2v_nfkd_values, M2V_NFKD_COUNT, cp, length);
    }
    if (!m2v_has(cp, M2V_HAS_NFD)) return NULL;
    return find_mapping(m2v_nfd_keys, m2v_nfd_values, M2V_NFD_COUNT, cp, length);
}

uint32_t m2v_compose(uint32_t first, uint32_t second) {
    /* Hangul: leading consonant + vowel -> LV syllable; LV syllable + trailing consonant -> LVT syllable. */
    if (first >= 0x1100u && first < 0x1113u && second >= 0x1161u && second < 0x1176u) {
        return M2V_HANGUL_FIRST + ((first - 0x1100u) * 21u + (second - 0x1161u)) * 28u;
    }
    if (first >= M2V_HANGUL_FIRST && first < M2V_HANGUL_FIRST + M2V_HANGUL_COUNT &&
        (first - M2V_HANGUL_FIRST) % 28u == 0 && second > 0x11A7u && second < 0x11C3u) {
        return first + (second - 0x11A7u);
    }
    uint64_t key = ((uint64_t)first << 21) | second;
    size_t lo = 0, hi = M2V_COMPOSE_COUNT;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (m2v_compose_keys[mid] < key) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo < M2V_COMPOSE_COUNT && m2v_compose_keys[lo] == key ? m2v_compose_values[lo] : 0;
}
