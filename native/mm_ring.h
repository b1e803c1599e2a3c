/* Shared-memory SPSC ring: the memory layout, in one place.
 *
 * Every control word has a named offset. The header is cut in 128-byte pairs of cache lines
 * (Intel's adjacent-line prefetcher fetches lines in such pairs, so two words 64 bytes apart
 * can still ping-pong): words written by the producer and words written by the consumer never
 * share a pair. The producer's cached copy of the consumer position lives in the producer's own
 * pair, so the common-case claim touches nothing the consumer writes (Agrona
 * OneToOneRingBuffer.claimCapacity); the consumer reads only the producer's published pair.
 *
 * Python reads these constants from engine._native (engine/ring/header.py); nothing else
 * restates them.
 */
#ifndef MM_RING_H
#define MM_RING_H

#include <stdint.h>

#define MM_RING_MAGIC           0x31474e49524d4d00ULL  /* "\0MMRING1" little-endian */
#define MM_RING_LAYOUT_VERSION  2
#define MM_CACHE_LINE           64
#define MM_PAIR                 128   /* adjacent-line prefetch unit */

/* pair 0: identity, written once by the creator before it publishes MAGIC; read-mostly */
#define MM_OFF_MAGIC            0     /* u64, stored last with release: attachers wait for it */
#define MM_OFF_VERSION          8     /* u32 */
#define MM_OFF_RECORD_SIZE      12    /* u32, multiple of 64 */
#define MM_OFF_CAPACITY         16    /* i64, power of two */
#define MM_OFF_MASK             24    /* i64, capacity - 1 */
#define MM_OFF_POLICY           32    /* u32, MM_POLICY_* */
#define MM_OFF_DTYPE_HASH       40    /* u64, FNV-1a of the dtype description */
#define MM_OFF_BLOCK_TIMEOUT    48    /* i64 ns a blocked producer waits before giving up (0 = forever) */
#define MM_OFF_CREATED_NS       56    /* i64 CLOCK_MONOTONIC at creation */
#define MM_OFF_CONSUMER_SPINS   64    /* i64, 1: the consumer never parks (busy-spin), so commit
                                         needs no full fence and no wake check; set when the
                                         consumer registers, cleared by any park */

/* pair 1: what the producer publishes, the only producer words the consumer reads */
#define MM_OFF_PRODUCER_POS     128   /* i64, release-stored by commit */

/* pair 2: producer-private bookkeeping (read by monitors, written only by the producer) */
#define MM_OFF_CACHED_CONSUMER  256   /* i64, producer's stale copy of the consumer position */
#define MM_OFF_CLAIMED          264   /* i64, slots claimed but not yet committed */
#define MM_OFF_NEXT_SEQ         272   /* i64, sequence stamped into the next record (gaps = drops) */
#define MM_OFF_WRITTEN          280   /* i64, records committed */
#define MM_OFF_DROPPED          288   /* i64, records refused because the ring was full */
#define MM_OFF_BLOCKED          296   /* i64, times the producer had to wait for space */
#define MM_OFF_WAKES            304   /* i64, wake-ups the producer sent to a parked consumer */

/* pair 3: consumer position, the only consumer word the producer reads */
#define MM_OFF_CONSUMER_POS     384   /* i64, release-stored by release */

/* pair 4: consumer-private bookkeeping */
#define MM_OFF_READ             512   /* i64, records released by the consumer */
#define MM_OFF_PARKS            520   /* i64, times the consumer parked */
#define MM_OFF_SKIPPED          528   /* i64, records a (re)starting consumer found unread and
                                         skipped: left for a consumer that died, not fresh */

/* pair 5: park handshake (consumer writes the mode, producer clears it when it wakes) */
#define MM_OFF_PARKED           640   /* u32, MM_PARK_* */
#define MM_OFF_DOORBELL_LEN     644   /* u32, length of the abstract socket name */
#define MM_OFF_DOORBELL         648   /* 56 bytes, abstract unix socket name (without the NUL) */
#define MM_DOORBELL_MAX         56
#define MM_OFF_WAKE_ADDR        704   /* i64, written once by the producer: the address, in the
                                         producer's own mapping, of the shared wake word its
                                         consumer sleeps on in MM_PARK_SHARED mode (0: none) */

/* pair 6: liveness (each side writes only its own words, every few ms) */
#define MM_OFF_PRODUCER_PID     768   /* i64 */
#define MM_OFF_PRODUCER_BEAT    776   /* i64 CLOCK_MONOTONIC ns */
#define MM_OFF_CONSUMER_PID     832   /* i64 */
#define MM_OFF_CONSUMER_BEAT    840   /* i64 */

/* pairs 8..: dtype description text, NUL-padded */
#define MM_OFF_DTYPE_DESCR      1024
#define MM_DTYPE_DESCR_MAX      1024

#define MM_HEADER_SIZE          2048  /* slots start here, cache-line aligned */

#define MM_POLICY_DROP          0     /* full ring: refuse the newest record, count it, leave a seq gap */
#define MM_POLICY_BLOCK         1     /* full ring: producer waits (back-pressure) */

#define MM_PARK_NONE            0
#define MM_PARK_FUTEX           1     /* consumer sleeps in futex_wait on the producer position */
#define MM_PARK_DOORBELL        2     /* consumer sleeps in epoll on its doorbell socket */
#define MM_PARK_SHARED          3     /* consumer sleeps on one wake word for several rings (the
                                         quoter: book updates and fills wake it alike) */

/* Book board: the latest top of book per instrument, seqlocked, beside the md ring. A full md
 * ring drops records, never the newest state: the feed writes every book update here too, and
 * counts the ring records it could not publish in LOST; the quoter reads the board when LOST
 * moves. Layout: header pair, then per instrument one pair for the sequence and the record. */
#define MM_BOARD_MAGIC          0x4452414f42524d4dULL  /* "MMRBOARD" */
#define MM_BOARD_OFF_MAGIC      0
#define MM_BOARD_OFF_COUNT      8     /* instruments */
#define MM_BOARD_OFF_RECORD     16    /* record size (bytes) */
#define MM_BOARD_OFF_SLOT       24    /* slot size (bytes): 128 for the seq pair + the record
                                         rounded up to 128 (256 for an MD record, 512 for a
                                         depth record: engine/records.py DEPTH_DTYPE) */
#define MM_BOARD_OFF_LOST       128   /* i64, ring records lost (their state is on the board) */
#define MM_BOARD_HEADER         256
#define MM_BOARD_SLOT           256   /* the slot of an MD record (<= 128 bytes): seq at +0 (own
                                         pair), record at +128; boards of larger records say
                                         their slot in MM_BOARD_OFF_SLOT */

#define MM_FULL                 (-1)  /* claim status: no slot (dropped or timed out) */

/* Histogram layout (int64 words): log-linear buckets, HDR style. */
#define MM_HIST_SUB_BITS        8                       /* 2^(8-1) = 128 sub-buckets per octave */
#define MM_HIST_MAX_SHIFT       36                      /* values up to 2^44 ns (~4.9 h) */
#define MM_HIST_BUCKETS         ((MM_HIST_MAX_SHIFT + 2) << (MM_HIST_SUB_BITS - 1))
#define MM_HIST_COUNT           0
#define MM_HIST_MIN             1
#define MM_HIST_MAX             2
#define MM_HIST_SUM             3
#define MM_HIST_CLAMPED         4                       /* samples above range (kept at the top) */
#define MM_HIST_NEGATIVE        5                       /* negative samples (not recorded) */
#define MM_HIST_FIRST_BUCKET    8
#define MM_HIST_WORDS           (MM_HIST_FIRST_BUCKET + MM_HIST_BUCKETS)

#endif
