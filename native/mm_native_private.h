/* engine._native's private header: what its parts (mm_atomics.c, mm_ring.c, mm_park.c,
 * mm_board.c, mm_hist.c, mm_native.c) share. Every mm_* function is exported by name to numba
 * (engine/native.py) and to the feed (native/mm_feed_publish.c): the prototypes are here, the
 * addresses in mm_native.c's `symbols`. Hot helpers two parts need sit here as static inline,
 * so splitting the file did not turn an inlined call into a call. */
#ifndef MM_NATIVE_PRIVATE_H
#define MM_NATIVE_PRIVATE_H

#include <errno.h>
#include <linux/futex.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#if defined(__x86_64__) || defined(__i386__)
#include <x86intrin.h>
#endif

#include "mm_ring.h"

#define W64(hdr, off) ((int64_t *)((char *)(hdr) + (off)))
#define W32(hdr, off) ((uint32_t *)((char *)(hdr) + (off)))

/* mm_atomics.c */
int64_t mm_load_acquire(int64_t *p);
void mm_store_release(int64_t *p, int64_t v);
int64_t mm_cas64(int64_t *p, int64_t expected, int64_t desired);
void mm_fence(void);
void mm_cpu_relax(void);
void mm_yield(void);
int64_t mm_rdtsc(void);
int64_t mm_now_ns(void);
int mm_lock(void *addr, int64_t len);

/* mm_ring.c */
int64_t mm_ring_try_claim(void *hdr);
int64_t mm_ring_claim_wait(void *hdr);
int64_t mm_ring_claim(void *hdr);
int64_t mm_ring_commit(void *hdr);
int64_t mm_ring_available(void *hdr);
int64_t mm_ring_spin(void *hdr, int64_t have, int64_t max_spins);
int64_t mm_ring_spin_fd(void *hdr, int64_t fd, int64_t max_ns);
void *mm_ring_slot(void *hdr, int64_t idx);
int64_t mm_ring_read_index(void *hdr, int64_t i);
void mm_ring_release(void *hdr, int64_t n);

/* mm_park.c */
int mm_futex_wait(uint32_t *addr, uint32_t expected, int64_t timeout_ns);
int mm_futex_wake(uint32_t *addr, int n);
int64_t mm_ring_arm(void *hdr, uint32_t mode);
void mm_ring_disarm(void *hdr);
int64_t mm_ring_park(void *hdr, int64_t timeout_ns);
int64_t mm_park_shared(void **hdrs, int64_t n, uint32_t *wake, int64_t timeout_ns);
int64_t mm_park2(void *a, void *b, void *wake, int64_t timeout_ns);
/* hidden: a helper of wake_consumer, not one of the module's symbols */
__attribute__((visibility("hidden"))) void doorbell_ring(void *hdr);

/* mm_board.c */
void mm_board_put(void *board, int64_t i, const void *rec);
int64_t mm_board_get(void *board, int64_t i, void *out);
void mm_board_lost(void *board);

/* mm_hist.c */
void mm_hist_record(int64_t *h, int64_t v);

/* ---------------------------------------------------------------- the producer's wake-up */

/* Wake the consumer if it announced it is parked. Called after the release store + full fence. */
static inline void wake_consumer(void *hdr) {
    uint32_t *parked = W32(hdr, MM_OFF_PARKED);
    uint32_t mode = __atomic_load_n(parked, __ATOMIC_RELAXED);
    if (mode == MM_PARK_NONE) return;
    /* One wake per park: whoever clears the flag sends the wake-up. */
    if (!__atomic_compare_exchange_n(parked, &mode, MM_PARK_NONE, 0, __ATOMIC_ACQ_REL,
                                     __ATOMIC_RELAXED))
        return;
    *W64(hdr, MM_OFF_WAKES) += 1;
    if (mode == MM_PARK_FUTEX) {
        mm_futex_wake(W32(hdr, MM_OFF_PRODUCER_POS), 1);
    } else if (mode == MM_PARK_SHARED) {
        uint32_t *word = (uint32_t *)(intptr_t)*W64(hdr, MM_OFF_WAKE_ADDR);
        if (word) {                      /* bump, then wake: a sleeper that read the old value */
            __atomic_fetch_add(word, 1, __ATOMIC_ACQ_REL);  /* before the bump cannot sleep */
            mm_futex_wake(word, 1);
        }
    } else {
        doorbell_ring(hdr);
    }
}

#endif
