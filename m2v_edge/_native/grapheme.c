/* Extended grapheme clusters (UAX #29, the rules of the unicode-segmentation crate tokenizers uses), for the
 * Precompiled normalizer, which rewrites a text grapheme by grapheme. */
#include "m2v_core.h"
#include "m2v_unicode.h"

static int is_control(uint8_t gcb) { return gcb == M2V_GCB_CONTROL || gcb == M2V_GCB_CR || gcb == M2V_GCB_LF; }

static unsigned incb(m2v_uprop p) { return (p.flags >> M2V_INCB_SHIFT) & 3u; }

size_t m2v_grapheme_end(const uint8_t *s, size_t start, size_t n) {
    const uint8_t *p = s + start, *end = s + n;
    m2v_uprop prev = m2v_props(m2v_utf8_next(&p, end));
    /* State of the rules that look back further than one character. */
    int emoji = (prev.flags & M2V_EXTENDED_PICTOGRAPHIC) ? 1 : 0; /* GB11: 1 ExtPict Extend*, 2 then ZWJ */
    int conjunct = incb(prev) == M2V_INCB_CONSONANT ? 1 : 0;      /* GB9c: 1 Consonant [Extend Linker]*, 2 + Linker */
    int regional = prev.gcb == M2V_GCB_RI ? 1 : 0;                 /* GB12/13: regional indicators so far */
    while (p < end) {
        const uint8_t *next = p;
        m2v_uprop cur = m2v_props(m2v_utf8_next(&next, end));
        int joins;
        if (prev.gcb == M2V_GCB_CR && cur.gcb == M2V_GCB_LF) {
            joins = 1; /* GB3 */
        } else if (is_control(prev.gcb) || is_control(cur.gcb)) {
            joins = 0; /* GB4, GB5 */
        } else if (prev.gcb == M2V_GCB_L && (cur.gcb == M2V_GCB_L || cur.gcb == M2V_GCB_V || cur.gcb == M2V_GCB_LV ||
                                             cur.gcb == M2V_GCB_LVT)) {
            joins = 1; /* GB6 */
        } else if ((prev.gcb == M2V_GCB_LV || prev.gcb == M2V_GCB_V) && (cur.gcb == M2V_GCB_V || cur.gcb == M2V_GCB_T)) {
            joins = 1; /* GB7 */
        } else if ((prev.gcb == M2V_GCB_LVT || prev.gcb == M2V_GCB_T) && cur.gcb == M2V_GCB_T) {
            joins = 1; /* GB8 */
        } else if (cur.gcb == M2V_GCB_EXTEND || cur.gcb == M2V_GCB_ZWJ || cur.gcb == M2V_GCB_SPACINGMARK ||
                   prev.gcb == M2V_GCB_PREPEND) {
            joins = 1; /* GB9, GB9a, GB9b */
        } else if (incb(cur) == M2V_INCB_CONSONANT && conjunct == 2) {
            joins = 1; /* GB9c */
        } else if ((cur.flags & M2V_EXTENDED_PICTOGRAPHIC) && emoji == 2) {
            joins = 1; /* GB11 */
        } else if (prev.gcb == M2V_GCB_RI && cur.gcb == M2V_GCB_RI && regional % 2 == 1) {
            joins = 1; /* GB12, GB13 */
        } else {
            joins = 0; /* GB999 */
        }
        if (!joins) break;
        if (cur.flags & M2V_EXTENDED_PICTOGRAPHIC) {
            emoji = 1;
        } else if (cur.gcb == M2V_GCB_EXTEND && emoji == 1) {
            emoji = 1;
        } else if (cur.gcb == M2V_GCB_ZWJ && emoji == 1) {
            emoji = 2;
        } else {
            emoji = 0;
        }
        unsigned c_incb = incb(cur);
        if (c_incb == M2V_INCB_CONSONANT) {
            conjunct = 1;
        } else if (c_incb == M2V_INCB_LINKER && conjunct) {
            conjunct = 2;
        } else if (c_incb != M2V_INCB_EXTEND) {
            conjunct = 0;
        }
        regional = cur.gcb == M2V_GCB_RI ? regional + 1 : 0;
        prev = cur;
        p = next;
    }
    return (size_t)(p - s);
}
