/* engine._native: the few things Python and numba cannot express portably.
 *
 *  - the SPSC ring protocol (claim / commit / available / release / park / wake) over the layout
 *    in mm_ring.h, with acquire/release atomics and the full fences of the park handshake;
 *  - futex park/wake, the doorbell wake (a datagram to an abstract unix socket, for consumers
 *    that sleep in an event loop), a CPU-relax pause, a TSC read, CLOCK_MONOTONIC;
 *  - the log-linear latency histogram record.
 *
 * Every function takes raw addresses so the same code serves both faces: Python calls the
 * METH_FASTCALL wrappers at the bottom; numba calls the mm_* symbols directly (engine/native.py
 * registers their addresses with LLVM, so cached numba code links by name, not by address).
 *
 * Memory-ordering argument (the whole correctness case of the ring):
 *  - The producer writes a slot with plain stores, then publishes the new producer position with
 *    a RELEASE store. The consumer reads the producer position with an ACQUIRE load. Release/acquire
 *    pairing guarantees every slot write before the release is visible after the acquire that
 *    observes it, so the consumer never reads a half-written record.
 *  - Symmetrically the consumer finishes reading slots, then RELEASE-stores the consumer position;
 *    the producer ACQUIRE-loads it before reusing a slot, so it never overwrites a slot still being
 *    read. The producer's cached copy only ever lags the real value, so it can only under-estimate
 *    free space, never over-estimate it.
 *  - Each position has exactly one writer, so plain read-modify of one's own position is safe.
 *  - Park handshake (Dekker pattern): consumer stores PARKED, then re-reads the producer position;
 *    producer stores the position, then reads PARKED. Store->load reordering is allowed even on
 *    x86 (store buffer), so without a full fence on BOTH sides each could miss the other's store
 *    and the wake-up is lost. Both sides therefore issue a seq_cst fence between their store and
 *    their load. The futex itself re-checks the position word in the kernel, closing the last gap
 *    between the consumer's check and its sleep.
 *  - Compiled with GCC __atomic builtins: on x86-64 the acquire load and release store are plain
 *    MOVs (TSO), the fence is MFENCE; on arm64 they are LDAR/STLR/DMB. Correct by construction,
 *    not by luck of the compiler, and opaque calls stop LLVM from hoisting a poll out of a loop.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <errno.h>
#include <linux/futex.h>
#include <sched.h>
#include <signal.h>
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

/* ---------------------------------------------------------------- primitives */

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

/* Lock `len` bytes at `addr` in RAM (no page faults, no swap on the hot path). Returns 0 or
 * errno (EPERM/ENOMEM: not permitted by RLIMIT_MEMLOCK or CAP_IPC_LOCK). */
int mm_lock(void *addr, int64_t len) {
    return mlock(addr, (size_t)len) == 0 ? 0 : errno;
}

int mm_futex_wake(uint32_t *addr, int n) {
    return (int)syscall(SYS_futex, addr, FUTEX_WAKE, n, NULL, NULL, 0);
}

/* ---------------------------------------------------------------- doorbell */

static int doorbell_fd = -1;

static void doorbell_ring(void *hdr) {
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

/* ---------------------------------------------------------------- ring: producer */

int64_t mm_ring_commit(void *hdr);

static inline int pid_alive(int64_t pid) {
    return pid > 0 && (kill((pid_t)pid, 0) == 0 || errno == EPERM);
}

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

static inline int has_space(void *hdr, int64_t pos) {
    int64_t cap = *W64(hdr, MM_OFF_CAPACITY);
    int64_t *cached = W64(hdr, MM_OFF_CACHED_CONSUMER);
    if (pos - *cached < cap) return 1;
    *cached = __atomic_load_n(W64(hdr, MM_OFF_CONSUMER_POS), __ATOMIC_ACQUIRE);
    return pos - *cached < cap;
}

static inline int64_t claim_slot(void *hdr, int64_t pos) {
    int64_t idx = pos & *W64(hdr, MM_OFF_MASK);
    int64_t *seq = W64(hdr, MM_OFF_NEXT_SEQ);
    char *slot = (char *)hdr + MM_HEADER_SIZE + idx * (int64_t)*W32(hdr, MM_OFF_RECORD_SIZE);
    *(int64_t *)slot = (*seq)++; /* every record starts with its int64 sequence number */
    *W64(hdr, MM_OFF_CLAIMED) += 1;
    return idx;
}

/* Non-blocking claim: slot index, or MM_FULL. Under the DROP policy a refusal is a counted drop
 * and burns a sequence number so the consumer sees the gap. Under BLOCK it only reports FULL;
 * the caller then waits with mm_ring_claim_wait (the Python face releases the GIL first). */
int64_t mm_ring_try_claim(void *hdr) {
    int64_t pos = *W64(hdr, MM_OFF_PRODUCER_POS) + *W64(hdr, MM_OFF_CLAIMED);
    if (has_space(hdr, pos)) return claim_slot(hdr, pos);
    if (*W32(hdr, MM_OFF_POLICY) == MM_POLICY_DROP) {
        *W64(hdr, MM_OFF_DROPPED) += 1;
        *W64(hdr, MM_OFF_NEXT_SEQ) += 1;
    }
    return MM_FULL;
}

/* Back-pressure wait: spin, then yield, then sleep 20 us; gives up (a counted drop, a seq gap)
 * after the ring's block timeout or when a registered consumer has died. */
int64_t mm_ring_claim_wait(void *hdr) {
    /* Publish what is already claimed first: a consumer can only make room from what it sees. */
    mm_ring_commit(hdr);
    int64_t pos = *W64(hdr, MM_OFF_PRODUCER_POS);
    *W64(hdr, MM_OFF_BLOCKED) += 1;
    int64_t timeout = *W64(hdr, MM_OFF_BLOCK_TIMEOUT);
    int64_t start = mm_now_ns();
    for (uint64_t i = 0;; i++) {
        if (has_space(hdr, pos)) return claim_slot(hdr, pos);
        if (i < 2000) mm_cpu_relax();
        else if (i < 2100) sched_yield();
        else {
            struct timespec ts = {0, 20000};
            nanosleep(&ts, NULL);
            if ((i & 63) == 0) {
                int64_t now = mm_now_ns();
                int64_t cpid = __atomic_load_n(W64(hdr, MM_OFF_CONSUMER_PID), __ATOMIC_RELAXED);
                if ((timeout > 0 && now - start > timeout) || (cpid > 0 && !pid_alive(cpid))) {
                    *W64(hdr, MM_OFF_DROPPED) += 1;
                    *W64(hdr, MM_OFF_NEXT_SEQ) += 1;
                    return MM_FULL;
                }
            }
        }
    }
}

int64_t mm_ring_claim(void *hdr) {
    int64_t idx = mm_ring_try_claim(hdr);
    if (idx == MM_FULL && *W32(hdr, MM_OFF_POLICY) == MM_POLICY_BLOCK) idx = mm_ring_claim_wait(hdr);
    return idx;
}

/* Publish every claimed slot at once (one release store per batch), then wake a parked consumer. */
int64_t mm_ring_commit(void *hdr) {
    int64_t n = *W64(hdr, MM_OFF_CLAIMED);
    if (n == 0) return 0;
    int64_t *pos = W64(hdr, MM_OFF_PRODUCER_POS);
    __atomic_store_n(pos, *pos + n, __ATOMIC_RELEASE);
    *W64(hdr, MM_OFF_CLAIMED) = 0;
    *W64(hdr, MM_OFF_WRITTEN) += n;
    /* A consumer that only spins never parks: no handshake, so no full fence (an MFENCE costs
     * tens of ns) and no wake check. The flag sits in the read-mostly identity pair. */
    if (__atomic_load_n(W64(hdr, MM_OFF_CONSUMER_SPINS), __ATOMIC_RELAXED)) return n;
    __atomic_thread_fence(__ATOMIC_SEQ_CST); /* store pos -> load PARKED: see the header comment */
    wake_consumer(hdr);
    return n;
}

/* ---------------------------------------------------------------- ring: consumer */

int64_t mm_ring_available(void *hdr) {
    return __atomic_load_n(W64(hdr, MM_OFF_PRODUCER_POS), __ATOMIC_ACQUIRE) -
           *W64(hdr, MM_OFF_CONSUMER_POS);
}

/* Spin (CPU-relax pauses) until more than `have` records are available or `max_spins` pauses
 * passed; returns the count. Lets a Python consumer poll at C speed between interpreter steps. */
int64_t mm_ring_spin(void *hdr, int64_t have, int64_t max_spins) {
    int64_t n = mm_ring_available(hdr);
    for (int64_t i = 0; n <= have && i < max_spins; i++) {
        mm_cpu_relax();
        n = mm_ring_available(hdr);
    }
    return n;
}

/* Spin until records are available (returns how many), the socket `fd` has data to read
 * (returns -1; checked with a zero-timeout poll every ~16 us), or `max_ns` passed (returns 0).
 * A spinning event-loop consumer (the sender) polls its ring at C speed and enters the event
 * loop only when there is socket work or a timer may be due. */
int64_t mm_ring_spin_fd(void *hdr, int64_t fd, int64_t max_ns) {
    int64_t start = mm_now_ns(), next_poll = start + 16000;
    for (uint64_t i = 1;; i++) {
        int64_t n = mm_ring_available(hdr);
        if (n > 0) return n;
        mm_cpu_relax();
        if ((i & 31) == 0) {
            int64_t now = mm_now_ns();
            if (fd >= 0 && now >= next_poll) {
                struct pollfd p = {(int)fd, POLLIN, 0};
                if (poll(&p, 1, 0) > 0) return -1;
                next_poll = now + 16000;
            }
            if (now - start >= max_ns) return 0;
        }
    }
}

/* Address of slot idx: the one definition of where slots live (the feed's publisher uses it). */
void *mm_ring_slot(void *hdr, int64_t idx) {
    return (char *)hdr + MM_HEADER_SIZE + idx * (int64_t)*W32(hdr, MM_OFF_RECORD_SIZE);
}

/* Slot index of the i-th unread record. */
int64_t mm_ring_read_index(void *hdr, int64_t i) {
    return (*W64(hdr, MM_OFF_CONSUMER_POS) + i) & *W64(hdr, MM_OFF_MASK);
}

void mm_ring_release(void *hdr, int64_t n) {
    int64_t *pos = W64(hdr, MM_OFF_CONSUMER_POS);
    __atomic_store_n(pos, *pos + n, __ATOMIC_RELEASE);
    *W64(hdr, MM_OFF_READ) += n;
}

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

/* ---------------------------------------------------------------- book board */

/* Seqlock write of one record: odd while writing, even when stable. One writer per board. */
void mm_board_put(void *board, int64_t i, const void *rec) {
    char *slot = (char *)board + MM_BOARD_HEADER + i * MM_BOARD_SLOT;
    int64_t *seq = (int64_t *)slot;
    int64_t s = *seq;
    __atomic_store_n(seq, s + 1, __ATOMIC_RELAXED);
    __atomic_thread_fence(__ATOMIC_RELEASE);     /* the odd seq before any record byte */
    memcpy(slot + 128, rec, (size_t)*W64(board, MM_BOARD_OFF_RECORD));
    __atomic_store_n(seq, s + 2, __ATOMIC_RELEASE);
}

/* Seqlock read into `out`; returns the (even) sequence read, 0 if never written. */
int64_t mm_board_get(void *board, int64_t i, void *out) {
    char *slot = (char *)board + MM_BOARD_HEADER + i * MM_BOARD_SLOT;
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

/* ---------------------------------------------------------------- histogram */

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

/* ================================================================ Python face */

static inline void *arg_ptr(PyObject *o) { return PyLong_AsVoidPtr(o); }

#define CHECK_NARGS(n)                                                                  \
    if (nargs != (n)) {                                                                 \
        PyErr_Format(PyExc_TypeError, "expected %d arguments, got %zd", (n), nargs);    \
        return NULL;                                                                    \
    }

static PyObject *py_load_acquire(PyObject *m, PyObject *const *a, Py_ssize_t nargs) {
    CHECK_NARGS(1);
    return PyLong_FromLongLong(mm_load_acquire(arg_ptr(a[0])));
}

static PyObject *py_store_release(PyObject *m, PyObject *const *a, Py_ssize_t nargs) {
    CHECK_NARGS(2);
    int64_t *p = arg_ptr(a[0]);
    long long v = PyLong_AsLongLong(a[1]);
    if (PyErr_Occurred()) return NULL;
    mm_store_release(p, v);
    Py_RETURN_NONE;
}

static PyObject *py_cas64(PyObject *m, PyObject *const *a, Py_ssize_t nargs) {
    CHECK_NARGS(3);
    int64_t *p = arg_ptr(a[0]);
    long long e = PyLong_AsLongLong(a[1]), d = PyLong_AsLongLong(a[2]);
    if (PyErr_Occurred()) return NULL;
    return PyLong_FromLongLong(mm_cas64(p, e, d));
}

static PyObject *py_lock(PyObject *m, PyObject *const *a, Py_ssize_t nargs) {
    CHECK_NARGS(2);
    void *p = arg_ptr(a[0]);
    long long n = PyLong_AsLongLong(a[1]);
    if (PyErr_Occurred()) return NULL;
    return PyLong_FromLong(mm_lock(p, n));
}

static PyObject *py_fence(PyObject *m, PyObject *const *a, Py_ssize_t nargs) {
    mm_fence();
    Py_RETURN_NONE;
}

static PyObject *py_cpu_relax(PyObject *m, PyObject *const *a, Py_ssize_t nargs) {
    mm_cpu_relax();
    Py_RETURN_NONE;
}

static PyObject *py_rdtsc(PyObject *m, PyObject *const *a, Py_ssize_t nargs) {
    return PyLong_FromLongLong(mm_rdtsc());
}

static PyObject *py_now_ns(PyObject *m, PyObject *const *a, Py_ssize_t nargs) {
    return PyLong_FromLongLong(mm_now_ns());
}

static PyObject *py_futex_wait(PyObject *m, PyObject *const *a, Py_ssize_t nargs) {
    CHECK_NARGS(3);
    uint32_t *p = arg_ptr(a[0]);
    unsigned long exp = PyLong_AsUnsignedLong(a[1]);
    long long t = PyLong_AsLongLong(a[2]);
    if (PyErr_Occurred()) return NULL;
    int r;
    Py_BEGIN_ALLOW_THREADS r = mm_futex_wait(p, (uint32_t)exp, t);
    Py_END_ALLOW_THREADS return PyLong_FromLong(r);
}

static PyObject *py_futex_wake(PyObject *m, PyObject *const *a, Py_ssize_t nargs) {
    CHECK_NARGS(2);
    return PyLong_FromLong(mm_futex_wake(arg_ptr(a[0]), (int)PyLong_AsLong(a[1])));
}

/* push(hdr, record): copy one record-size buffer into the next slot and publish it.
 * Returns the slot index or MM_FULL. The record's first 8 bytes are overwritten by the seq. */
static PyObject *py_push(PyObject *m, PyObject *const *a, Py_ssize_t nargs) {
    CHECK_NARGS(2);
    void *hdr = arg_ptr(a[0]);
    Py_buffer view;
    if (PyObject_GetBuffer(a[1], &view, PyBUF_SIMPLE) < 0) return NULL;
    uint32_t size = *W32(hdr, MM_OFF_RECORD_SIZE);
    if ((uint32_t)view.len != size) {
        PyBuffer_Release(&view);
        return PyErr_Format(PyExc_ValueError, "record is %zd bytes, ring slots are %u", view.len,
                            size);
    }
    int64_t idx = mm_ring_try_claim(hdr);
    if (idx == MM_FULL && *W32(hdr, MM_OFF_POLICY) == MM_POLICY_BLOCK) {
        Py_BEGIN_ALLOW_THREADS idx = mm_ring_claim_wait(hdr);
        Py_END_ALLOW_THREADS
    }
    if (idx != MM_FULL) {
        char *slot = (char *)hdr + MM_HEADER_SIZE + idx * (int64_t)size;
        memcpy(slot + 8, (char *)view.buf + 8, size - 8);
        mm_ring_commit(hdr);
    }
    PyBuffer_Release(&view);
    return PyLong_FromLongLong(idx);
}

/* push_many(hdr, records, n): copy n contiguous records, publish once. Returns how many went in
 * (fewer than n only when the ring refused the rest: drops under DROP, timeout under BLOCK). */
static PyObject *py_push_many(PyObject *m, PyObject *const *a, Py_ssize_t nargs) {
    CHECK_NARGS(3);
    void *hdr = arg_ptr(a[0]);
    Py_ssize_t n = PyLong_AsSsize_t(a[2]);
    if (n < 0 && PyErr_Occurred()) return NULL;
    Py_buffer view;
    if (PyObject_GetBuffer(a[1], &view, PyBUF_SIMPLE) < 0) return NULL;
    uint32_t size = *W32(hdr, MM_OFF_RECORD_SIZE);
    if (view.len < n * (Py_ssize_t)size) {
        PyBuffer_Release(&view);
        return PyErr_Format(PyExc_ValueError, "buffer holds %zd bytes, %zd records need %zd",
                            view.len, n, n * (Py_ssize_t)size);
    }
    int block = *W32(hdr, MM_OFF_POLICY) == MM_POLICY_BLOCK;
    Py_ssize_t done = 0;
    for (; done < n; done++) {
        int64_t idx = mm_ring_try_claim(hdr);
        if (idx == MM_FULL && block) {
            Py_BEGIN_ALLOW_THREADS idx = mm_ring_claim_wait(hdr);
            Py_END_ALLOW_THREADS
        }
        if (idx == MM_FULL) { /* this one was counted; the rest are refused too: count each */
            *W64(hdr, MM_OFF_DROPPED) += n - done - 1;
            *W64(hdr, MM_OFF_NEXT_SEQ) += n - done - 1;
            break;
        }
        char *slot = (char *)hdr + MM_HEADER_SIZE + idx * (int64_t)size;
        memcpy(slot + 8, (char *)view.buf + done * size + 8, size - 8);
    }
    mm_ring_commit(hdr);
    PyBuffer_Release(&view);
    return PyLong_FromSsize_t(done);
}

static PyObject *py_try_claim(PyObject *m, PyObject *const *a, Py_ssize_t nargs) {
    CHECK_NARGS(1);
    return PyLong_FromLongLong(mm_ring_try_claim(arg_ptr(a[0])));
}

static PyObject *py_claim(PyObject *m, PyObject *const *a, Py_ssize_t nargs) {
    CHECK_NARGS(1);
    void *hdr = arg_ptr(a[0]);
    int64_t idx = mm_ring_try_claim(hdr);
    if (idx == MM_FULL && *W32(hdr, MM_OFF_POLICY) == MM_POLICY_BLOCK) {
        Py_BEGIN_ALLOW_THREADS idx = mm_ring_claim_wait(hdr);
        Py_END_ALLOW_THREADS
    }
    return PyLong_FromLongLong(idx);
}

static PyObject *py_commit(PyObject *m, PyObject *const *a, Py_ssize_t nargs) {
    CHECK_NARGS(1);
    return PyLong_FromLongLong(mm_ring_commit(arg_ptr(a[0])));
}

static PyObject *py_available(PyObject *m, PyObject *const *a, Py_ssize_t nargs) {
    CHECK_NARGS(1);
    return PyLong_FromLongLong(mm_ring_available(arg_ptr(a[0])));
}

static PyObject *py_spin(PyObject *m, PyObject *const *a, Py_ssize_t nargs) {
    CHECK_NARGS(3);
    return PyLong_FromLongLong(
        mm_ring_spin(arg_ptr(a[0]), PyLong_AsLongLong(a[1]), PyLong_AsLongLong(a[2])));
}

static PyObject *py_spin_fd(PyObject *m, PyObject *const *a, Py_ssize_t nargs) {
    CHECK_NARGS(3);
    void *hdr = arg_ptr(a[0]);
    long long fd = PyLong_AsLongLong(a[1]), max_ns = PyLong_AsLongLong(a[2]);
    if (PyErr_Occurred()) return NULL;
    return PyLong_FromLongLong(mm_ring_spin_fd(hdr, fd, max_ns));
}

static PyObject *py_park_shared(PyObject *m, PyObject *const *a, Py_ssize_t nargs) {
    /* park_shared(wake_addr, timeout_ns, hdr...) */
    if (nargs < 3 || nargs > 10) {
        PyErr_SetString(PyExc_TypeError, "park_shared(wake_addr, timeout_ns, hdr, ...)");
        return NULL;
    }
    void *hdrs[8];
    uint32_t *wake = arg_ptr(a[0]);
    long long t = PyLong_AsLongLong(a[1]);
    for (Py_ssize_t i = 2; i < nargs; i++) hdrs[i - 2] = arg_ptr(a[i]);
    if (PyErr_Occurred()) return NULL;
    int64_t n;
    Py_BEGIN_ALLOW_THREADS n = mm_park_shared(hdrs, nargs - 2, wake, t);
    Py_END_ALLOW_THREADS
    return PyLong_FromLongLong(n);
}

static PyObject *py_board_put(PyObject *m, PyObject *const *a, Py_ssize_t nargs) {
    CHECK_NARGS(3);
    void *b = arg_ptr(a[0]), *rec = arg_ptr(a[2]);
    long long i = PyLong_AsLongLong(a[1]);
    if (PyErr_Occurred()) return NULL;
    mm_board_put(b, i, rec);
    Py_RETURN_NONE;
}

static PyObject *py_board_get(PyObject *m, PyObject *const *a, Py_ssize_t nargs) {
    CHECK_NARGS(3);
    void *b = arg_ptr(a[0]), *out = arg_ptr(a[2]);
    long long i = PyLong_AsLongLong(a[1]);
    if (PyErr_Occurred()) return NULL;
    return PyLong_FromLongLong(mm_board_get(b, i, out));
}

static PyObject *py_release(PyObject *m, PyObject *const *a, Py_ssize_t nargs) {
    CHECK_NARGS(2);
    mm_ring_release(arg_ptr(a[0]), PyLong_AsLongLong(a[1]));
    Py_RETURN_NONE;
}

static PyObject *py_arm(PyObject *m, PyObject *const *a, Py_ssize_t nargs) {
    CHECK_NARGS(2);
    return PyLong_FromLongLong(mm_ring_arm(arg_ptr(a[0]), (uint32_t)PyLong_AsUnsignedLong(a[1])));
}

static PyObject *py_disarm(PyObject *m, PyObject *const *a, Py_ssize_t nargs) {
    CHECK_NARGS(1);
    mm_ring_disarm(arg_ptr(a[0]));
    Py_RETURN_NONE;
}

static PyObject *py_park(PyObject *m, PyObject *const *a, Py_ssize_t nargs) {
    CHECK_NARGS(2);
    void *hdr = arg_ptr(a[0]);
    long long t = PyLong_AsLongLong(a[1]);
    int64_t n;
    Py_BEGIN_ALLOW_THREADS n = mm_ring_park(hdr, t);
    Py_END_ALLOW_THREADS return PyLong_FromLongLong(n);
}

static PyObject *py_hist_record(PyObject *m, PyObject *const *a, Py_ssize_t nargs) {
    CHECK_NARGS(2);
    mm_hist_record(arg_ptr(a[0]), PyLong_AsLongLong(a[1]));
    Py_RETURN_NONE;
}

#define FN(name) {#name, (PyCFunction)(void (*)(void))py_##name, METH_FASTCALL, NULL}
static PyMethodDef methods[] = {
    FN(load_acquire), FN(store_release), FN(cas64),   FN(fence),   FN(cpu_relax),  FN(rdtsc),
    FN(now_ns),       FN(futex_wait),    FN(futex_wake), FN(push),    FN(push_many),
    FN(try_claim),    FN(claim),         FN(commit),  FN(available),  FN(release),
    FN(spin),         FN(spin_fd),       FN(park_shared), FN(board_put), FN(board_get),
    FN(arm),          FN(disarm),        FN(park),    FN(hist_record),  FN(lock),
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef moduledef = {PyModuleDef_HEAD_INIT, "engine._native",
                                       "Ring protocol, atomics, futex, histogram (see mm_native.c)",
                                       -1, methods};

#define ADD_INT(name) PyModule_AddIntConstant(mod, #name, (long)(name))
#define ADD_SYM(fn) \
    PyDict_SetItemString(syms, #fn, tmp = PyLong_FromVoidPtr((void *)&fn)); Py_DECREF(tmp)

PyMODINIT_FUNC PyInit__native(void) {
    PyObject *mod = PyModule_Create(&moduledef);
    if (!mod) return NULL;
    PyModule_AddObject(mod, "RING_MAGIC", PyLong_FromUnsignedLongLong(MM_RING_MAGIC));
    ADD_INT(MM_RING_LAYOUT_VERSION); ADD_INT(MM_CACHE_LINE);
    ADD_INT(MM_OFF_MAGIC); ADD_INT(MM_OFF_VERSION); ADD_INT(MM_OFF_RECORD_SIZE);
    ADD_INT(MM_OFF_CAPACITY); ADD_INT(MM_OFF_MASK); ADD_INT(MM_OFF_POLICY); ADD_INT(MM_PAIR);
    ADD_INT(MM_OFF_CONSUMER_SPINS); ADD_INT(MM_OFF_SKIPPED); ADD_INT(MM_OFF_WAKE_ADDR);
    ADD_INT(MM_PARK_SHARED); ADD_INT(MM_BOARD_OFF_MAGIC); ADD_INT(MM_BOARD_OFF_COUNT);
    ADD_INT(MM_BOARD_OFF_RECORD); ADD_INT(MM_BOARD_OFF_LOST); ADD_INT(MM_BOARD_HEADER);
    ADD_INT(MM_BOARD_SLOT);
    PyModule_AddObject(mod, "BOARD_MAGIC", PyLong_FromUnsignedLongLong(MM_BOARD_MAGIC));
    ADD_INT(MM_OFF_DTYPE_HASH); ADD_INT(MM_OFF_BLOCK_TIMEOUT); ADD_INT(MM_OFF_CREATED_NS);
    ADD_INT(MM_OFF_PRODUCER_POS); ADD_INT(MM_OFF_CACHED_CONSUMER); ADD_INT(MM_OFF_CLAIMED);
    ADD_INT(MM_OFF_NEXT_SEQ); ADD_INT(MM_OFF_WRITTEN); ADD_INT(MM_OFF_DROPPED);
    ADD_INT(MM_OFF_BLOCKED); ADD_INT(MM_OFF_WAKES); ADD_INT(MM_OFF_CONSUMER_POS);
    ADD_INT(MM_OFF_READ); ADD_INT(MM_OFF_PARKS); ADD_INT(MM_OFF_PARKED);
    ADD_INT(MM_OFF_DOORBELL_LEN); ADD_INT(MM_OFF_DOORBELL); ADD_INT(MM_DOORBELL_MAX);
    ADD_INT(MM_OFF_PRODUCER_PID); ADD_INT(MM_OFF_PRODUCER_BEAT); ADD_INT(MM_OFF_CONSUMER_PID);
    ADD_INT(MM_OFF_CONSUMER_BEAT); ADD_INT(MM_OFF_DTYPE_DESCR); ADD_INT(MM_DTYPE_DESCR_MAX);
    ADD_INT(MM_HEADER_SIZE); ADD_INT(MM_POLICY_DROP); ADD_INT(MM_POLICY_BLOCK);
    ADD_INT(MM_PARK_NONE); ADD_INT(MM_PARK_FUTEX); ADD_INT(MM_PARK_DOORBELL); ADD_INT(MM_FULL);
    ADD_INT(MM_HIST_SUB_BITS); ADD_INT(MM_HIST_MAX_SHIFT); ADD_INT(MM_HIST_BUCKETS);
    ADD_INT(MM_HIST_COUNT); ADD_INT(MM_HIST_MIN); ADD_INT(MM_HIST_MAX); ADD_INT(MM_HIST_SUM);
    ADD_INT(MM_HIST_CLAMPED); ADD_INT(MM_HIST_NEGATIVE); ADD_INT(MM_HIST_FIRST_BUCKET); ADD_INT(MM_HIST_WORDS);

    /* Raw addresses of the C entry points, for numba (engine/native.py). */
    PyObject *syms = PyDict_New(), *tmp;
    ADD_SYM(mm_load_acquire); ADD_SYM(mm_store_release); ADD_SYM(mm_cas64); ADD_SYM(mm_fence);
    ADD_SYM(mm_cpu_relax); ADD_SYM(mm_yield); ADD_SYM(mm_rdtsc); ADD_SYM(mm_now_ns);
    ADD_SYM(mm_futex_wait); ADD_SYM(mm_futex_wake);
    ADD_SYM(mm_ring_try_claim); ADD_SYM(mm_ring_claim_wait); ADD_SYM(mm_ring_claim);
    ADD_SYM(mm_ring_commit); ADD_SYM(mm_ring_available); ADD_SYM(mm_ring_spin); ADD_SYM(mm_ring_read_index);
    ADD_SYM(mm_ring_release); ADD_SYM(mm_ring_arm); ADD_SYM(mm_ring_disarm);
    ADD_SYM(mm_ring_park); ADD_SYM(mm_hist_record); ADD_SYM(mm_park2);
    ADD_SYM(mm_board_put); ADD_SYM(mm_board_get); ADD_SYM(mm_board_lost); ADD_SYM(mm_ring_slot);
    PyModule_AddObject(mod, "symbols", syms);
    return mod;
}
