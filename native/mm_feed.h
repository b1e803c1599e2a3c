/* mm_feed.h: what the parts of engine._feed share, private to the extension (mm_feed.c lists
 * the parts). The hot helpers more than one part calls are static inline here, so every part
 * inlines them as the one-file build did; what crosses between the parts is declared hidden
 * (never exported from the .so: direct calls, no PLT).
 */
#ifndef MM_FEED_H
#define MM_FEED_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>

#include <stdint.h>
#include <string.h>
#include <time.h>

#define NS 1000000000LL

static inline int64_t clock_ns(clockid_t id) {
    struct timespec ts;
    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * NS + ts.tv_nsec;
}

/* Same clock as time.perf_counter_ns() on Linux: stamps compare across processes. */
static inline int64_t now_ns(void) { return clock_ns(CLOCK_MONOTONIC); }

/* ================================================================ Publisher (mm_feed_publish.c) */

/* The record fields the feed writes (their names and sizes: mm_feed_publish.c). */
enum {
    F_UPDATE_ID, F_INSTRUMENT, F_KIND, F_VENUE, F_CONN, F_BID_PX, F_BID_QTY, F_ASK_PX, F_ASK_QTY,
    F_TRADE_PX, F_TRADE_QTY, F_TRADE_SIDE, F_TS_VENUE, F_TS_ARRIVAL, F_TS_DECODED, F_TS_PUBLISHED,
    F_COUNT
};

typedef struct {
    int64_t update_id, bid_px, bid_qty, ask_px, ask_qty, trade_px, trade_qty, ts_venue;
    int64_t ts_arrival, ts_decoded;
    uint32_t instrument;
    uint16_t kind;
    uint8_t conn, trade_side;
} md_event;

typedef struct {
    PyObject_HEAD
    char *hdr;                  /* ring header; slots follow at MM_HEADER_SIZE */
    char *board;                /* the book board (latest book per instrument), or NULL */
    int64_t record_size;
    int32_t off[F_COUNT];       /* field offsets in a slot */
    int64_t *h_a2d, *h_d2p, *h_a2p;   /* histograms, NULL when not recorded */
    int64_t *last_book, *last_trade;  /* last published id per instrument */
    Py_ssize_t n;               /* instruments */
    int venue;
    int kind_trade, kind_stale, kind_fresh;
    /* per frame, set by the connection */
    long long ts_arrival;
    int conn;
    /* state and counters (read by reporting code) */
    char stale;
    long long published, dupes, ring_full, stale_marks, fresh_marks, id_resets, conflated;
    long long last_published_ns, stale_since_ns;
} Publisher;

static inline int pub_ready(Publisher *p) {
    if (p->hdr != NULL) return 1;
    PyErr_SetString(PyExc_RuntimeError, "Publisher: not initialised or detached");
    return 0;
}

#pragma GCC visibility push(hidden)

extern PyTypeObject PublisherType;      /* mm_feed_publish.c */
extern PyTypeObject BookDecoderType;    /* mm_feed_decode.c */
extern PyTypeObject StampedReaderType;  /* mm_feed_stamps.c */

/* One event into the md ring unless a copy was published (mm_feed_publish.c says more). */
void publish_event(Publisher *p, md_event *e);

/* count_allocations(fn, *args) (mm_feed_alloc_probe.c) */
PyObject *py_count_allocations(PyObject *m, PyObject *const *a, Py_ssize_t nargs);

#pragma GCC visibility pop

#endif /* MM_FEED_H */
