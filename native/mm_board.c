/* engine._native, the book board (mm_ring.h: its layout): one seqlocked record per instrument,
 * the freshest book, for a reader that lost ring records. */
#include "mm_native_private.h"

/* Seqlock write of one record: odd while writing, even when stable. One writer per board. */
void mm_board_put(void *board, int64_t i, const void *rec) {
    char *slot = (char *)board + MM_BOARD_HEADER + i * *W64(board, MM_BOARD_OFF_SLOT);
    int64_t *seq = (int64_t *)slot;
    int64_t s = *seq;
    __atomic_store_n(seq, s + 1, __ATOMIC_RELAXED);
    __atomic_thread_fence(__ATOMIC_RELEASE);     /* the odd seq before any record byte */
    memcpy(slot + 128, rec, (size_t)*W64(board, MM_BOARD_OFF_RECORD));
    __atomic_store_n(seq, s + 2, __ATOMIC_RELEASE);
}

/* Seqlock read into `out`; returns the (even) sequence read, 0 if never written. */
int64_t mm_board_get(void *board, int64_t i, void *out) {
    char *slot = (char *)board + MM_BOARD_HEADER + i * *W64(board, MM_BOARD_OFF_SLOT);
    int64_t *seq = (int64_t *)slot;
    size_t n = (size_t)*W64(board, MM_BOARD_OFF_RECORD);
    for (;;) {
        int64_t s1 = __atomic_load_n(seq, __ATOMIC_ACQUIRE);
        if (s1 & 1) { mm_cpu_relax(); continue; }
        memcpy(out, slot + 128, n);
        __atomic_thread_fence(__ATOMIC_ACQUIRE);  /* the record bytes before the re-check */
        if (__atomic_load_n(seq, __ATOMIC_RELAXED) == s1) return s1;
    }
}

/* A record the ring could not take: its state stays on the board, counted for the reader. */
void mm_board_lost(void *board) {
    __atomic_fetch_add(W64(board, MM_BOARD_OFF_LOST), 1, __ATOMIC_RELEASE);
}
