/* engine._native, primitives (mm_native.c says what the module is): acquire/release atomics,
 * compare-and-swap, fences, the CPU-relax pause, yield, the TSC, CLOCK_MONOTONIC, mlock. */
#include "mm_native_private.h"

int64_t mm_load_acquire(int64_t *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
void mm_store_release(int64_t *p, int64_t v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }
/* Compare-and-swap (acq_rel): store `desired` only if *p == `expected`; returns what *p held
 * (== expected when the swap happened). The kill word's "first reason wins" rests on it. */
int64_t mm_cas64(int64_t *p, int64_t expected, int64_t desired) {
    __atomic_compare_exchange_n(p, &expected, desired, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
    return expected;
}
void mm_fence(void) { __atomic_thread_fence(__ATOMIC_SEQ_CST); }

void mm_cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    _mm_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield" ::: "memory");
#else
    __asm__ __volatile__("" ::: "memory");
#endif
}

void mm_yield(void) { sched_yield(); }

int64_t mm_rdtsc(void) {
#if defined(__x86_64__) || defined(__i386__)
    return (int64_t)__rdtsc();
#else
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_RAW, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
#endif
}

/* Same clock as Python's time.perf_counter_ns() on Linux, so stamps compare across processes. */
int64_t mm_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* Lock `len` bytes at `addr` in RAM (no page faults, no swap on the hot path). Returns 0 or
 * errno (EPERM/ENOMEM: not permitted by RLIMIT_MEMLOCK or CAP_IPC_LOCK). */
int mm_lock(void *addr, int64_t len) {
    return mlock(addr, (size_t)len) == 0 ? 0 : errno;
}
