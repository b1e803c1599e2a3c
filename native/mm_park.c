/* engine._native, park and wake (mm_native.c says what the module is; its header comment, the
 * park handshake): the shared futex, the doorbell datagram, and a consumer's park on one ring
 * or on several sharing a wake word. The producer's side of the wake-up, wake_consumer, is in
 * mm_native_private.h: it is inlined into mm_ring_commit. */
#include "mm_native_private.h"

/* Shared (not PRIVATE) futex: waiter and waker are different processes mapping the same page. */
int mm_futex_wait(uint32_t *addr, uint32_t expected, int64_t timeout_ns) {
    struct timespec ts, *tsp = NULL;
    if (timeout_ns >= 0) {
        ts.tv_sec = timeout_ns / 1000000000LL;
        ts.tv_nsec = timeout_ns % 1000000000LL;
        tsp = &ts;
    }
    long r = syscall(SYS_futex, addr, FUTEX_WAIT, expected, tsp, NULL, 0);
    return r == 0 ? 0 : errno;
}

int mm_futex_wake(uint32_t *addr, int n) {
    return (int)syscall(SYS_futex, addr, FUTEX_WAKE, n, NULL, NULL, 0);
}

/* ---------------------------------------------------------------- doorbell */

static int doorbell_fd = -1;

__attribute__((visibility("hidden"))) void doorbell_ring(void *hdr) {
    uint32_t len = __atomic_load_n(W32(hdr, MM_OFF_DOORBELL_LEN), __ATOMIC_ACQUIRE);
    if (len == 0 || len > MM_DOORBELL_MAX) return;
    int fd = __atomic_load_n(&doorbell_fd, __ATOMIC_ACQUIRE);
    if (fd < 0) {
        int nfd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (nfd < 0) return;
        int expect = -1;
        if (!__atomic_compare_exchange_n(&doorbell_fd, &expect, nfd, 0, __ATOMIC_ACQ_REL,
                                         __ATOMIC_ACQUIRE)) {
            close(nfd);
            nfd = expect;
        }
        fd = nfd;
    }
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    memcpy(sa.sun_path + 1, (char *)hdr + MM_OFF_DOORBELL, len); /* abstract: leading NUL */
    /* EAGAIN (socket buffer full) means the consumer already has wake-ups queued: ignore. */
    (void)sendto(fd, "!", 1, MSG_DONTWAIT, (struct sockaddr *)&sa,
                 (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + len));
}

/* ---------------------------------------------------------------- ring: park */

/* Announce a park in `mode`, then re-check. Returns records available; 0 means the consumer is
 * now registered as parked and must sleep (futex or doorbell), any other value means it is not. */
int64_t mm_ring_arm(void *hdr, uint32_t mode) {
    /* A consumer registered as spin-only that parks after all: producers must fence again. */
    if (__atomic_load_n(W64(hdr, MM_OFF_CONSUMER_SPINS), __ATOMIC_RELAXED))
        __atomic_store_n(W64(hdr, MM_OFF_CONSUMER_SPINS), 0, __ATOMIC_RELAXED);
    __atomic_store_n(W32(hdr, MM_OFF_PARKED), mode, __ATOMIC_RELAXED);
    __atomic_thread_fence(__ATOMIC_SEQ_CST); /* store PARKED -> load pos: see the header comment */
    int64_t n = mm_ring_available(hdr);
    if (n != 0) __atomic_store_n(W32(hdr, MM_OFF_PARKED), MM_PARK_NONE, __ATOMIC_RELAXED);
    return n;
}

void mm_ring_disarm(void *hdr) {
    __atomic_store_n(W32(hdr, MM_OFF_PARKED), MM_PARK_NONE, __ATOMIC_RELAXED);
}

/* Futex park: sleep until the producer publishes or timeout_ns passes (<0 = no timeout).
 * Returns records available on return. */
int64_t mm_ring_park(void *hdr, int64_t timeout_ns) {
    int64_t *ppos = W64(hdr, MM_OFF_PRODUCER_POS);
    uint32_t seen = (uint32_t)__atomic_load_n(ppos, __ATOMIC_ACQUIRE);
    int64_t n = mm_ring_arm(hdr, MM_PARK_FUTEX);
    if (n != 0) return n;
    *W64(hdr, MM_OFF_PARKS) += 1;
    /* Little-endian: the futex word is the low half of the producer position. The kernel compares
     * it with `seen` atomically with going to sleep, so a publish in between is never missed. */
    mm_futex_wait((uint32_t *)ppos, seen, timeout_ns);
    mm_ring_disarm(hdr);
    return mm_ring_available(hdr);
}

/* Park on several rings at once (MM_PARK_SHARED): sleep on the consumer's shared wake word
 * until any ring's producer publishes (it bumps the word and wakes it) or timeout_ns passes.
 * The wake word is read before the rings are armed and checked, and the futex compares it in
 * the kernel, so a publish anywhere in between wakes us (or keeps us from sleeping). Returns
 * the records available on the rings together. */
int64_t mm_park_shared(void **hdrs, int64_t n, uint32_t *wake, int64_t timeout_ns) {
    uint32_t seen = __atomic_load_n(wake, __ATOMIC_ACQUIRE);
    int64_t avail = 0;
    for (int64_t i = 0; i < n && !avail; i++) avail = mm_ring_arm(hdrs[i], MM_PARK_SHARED);
    if (!avail) {
        *W64(hdrs[0], MM_OFF_PARKS) += 1;
        mm_futex_wait(wake, seen, timeout_ns);
    }
    avail = 0;
    for (int64_t i = 0; i < n; i++) {
        mm_ring_disarm(hdrs[i]);
        avail += mm_ring_available(hdrs[i]);
    }
    return avail;
}

/* Two rings, for numba (arrays of pointers do not cross that boundary cheaply). */
int64_t mm_park2(void *a, void *b, void *wake, int64_t timeout_ns) {
    void *hdrs[2] = {a, b};
    return mm_park_shared(hdrs, 2, (uint32_t *)wake, timeout_ns);
}
