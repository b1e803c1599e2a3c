/* engine._native, the SPSC ring protocol over the layout in mm_ring.h (mm_native.c's header
 * comment is the memory-ordering argument): claim / commit on the producer's side, available /
 * spin / read / release on the consumer's. Parking is in mm_park.c. */
#include "mm_native_private.h"

/* ---------------------------------------------------------------- ring: producer */

static inline int pid_alive(int64_t pid) {
    return pid > 0 && (kill((pid_t)pid, 0) == 0 || errno == EPERM);
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
