/* engine._native, the log-linear latency histogram (engine/latency/histogram.py reads it). */
#include "mm_native_private.h"

static inline int64_t hist_index(int64_t v) {
    int64_t bits = 64 - __builtin_clzll((uint64_t)v | 1);
    int64_t k = bits - MM_HIST_SUB_BITS;
    if (k < 0) k = 0;
    return (k << (MM_HIST_SUB_BITS - 1)) + (v >> k);
}

/* One writer per histogram: plain read-modify-write, relaxed atomic stores so readers in other
 * processes never see a torn word. */
void mm_hist_record(int64_t *h, int64_t v) {
    if (v < 0) {            /* a stamp out of order (clocks of two sources): counted, never
                               folded into the lowest bucket where it would flatter the P50 */
        __atomic_store_n(&h[MM_HIST_NEGATIVE], h[MM_HIST_NEGATIVE] + 1, __ATOMIC_RELAXED);
        return;
    }
    if ((v >> (MM_HIST_SUB_BITS + MM_HIST_MAX_SHIFT)) != 0) {
        __atomic_store_n(&h[MM_HIST_CLAMPED], h[MM_HIST_CLAMPED] + 1, __ATOMIC_RELAXED);
        v = ((int64_t)1 << (MM_HIST_SUB_BITS + MM_HIST_MAX_SHIFT)) - 1;
    }
    int64_t *b = &h[MM_HIST_FIRST_BUCKET + hist_index(v)];
    __atomic_store_n(b, *b + 1, __ATOMIC_RELAXED);
    int64_t c = h[MM_HIST_COUNT];
    if (c == 0 || v < h[MM_HIST_MIN]) __atomic_store_n(&h[MM_HIST_MIN], v, __ATOMIC_RELAXED);
    if (c == 0 || v > h[MM_HIST_MAX]) __atomic_store_n(&h[MM_HIST_MAX], v, __ATOMIC_RELAXED);
    __atomic_store_n(&h[MM_HIST_SUM], h[MM_HIST_SUM] + v, __ATOMIC_RELAXED);
    __atomic_store_n(&h[MM_HIST_COUNT], c + 1, __ATOMIC_RELEASE);
}
