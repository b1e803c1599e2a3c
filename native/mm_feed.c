/* engine._feed: the feed's per-frame work in C, so a frame costs no Python objects.
 *
 *  - Publisher: the md ring's producer (engine/feed/publish.py's RingSink is its Python face):
 *    drop copies of an update already published by another connection, stamp, write one record
 *    into a claimed slot, commit, record the hop histograms; stale/fresh marks.
 *  - BookDecoder: the two latency-critical frame shapes (a Binance combined-stream bookTicker in
 *    JSON, an SBE bestBidAsk) decoded and published in one call. It handles only the clean,
 *    canonical case and hands every other frame, untouched, to the adapter's Python decoder
 *    (msgspec / struct), which stays the reference for what a frame means: anything the fast
 *    path accepts, the Python path would have decoded to the same event (tests/feed check it
 *    frame by frame on the corpus and on generated frames).
 *  - StampedReader: the arrival stamp of a frame from the kernel's receive timestamp
 *    (SO_TIMESTAMPNS) of the newest data read with it, so time a frame waits in the socket
 *    while the feed is busy counts. See StampedReader below for how, and the clock conversion.
 *  - count_allocations: how many heap allocations a call makes (tests and benchmarks).
 *
 * The ring protocol and the histogram are not repeated here: the producer calls engine._native's
 * mm_ring_try_claim / mm_ring_commit / mm_hist_record through the addresses that module
 * publishes in `symbols`, so a change of the ring's protocol reaches the feed unchanged as long
 * as claim and commit keep their signatures. A slot's address is the ring's own
 * `mm_ring_slot(hdr, idx)` once the ring publishes one, else computed as claim does it. The
 * record layout comes from the MD dtype (names, offsets, sizes passed in by publish.py), never
 * from constants written here.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>

#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "mm_ring.h"

#define NS 1000000000LL

static inline int64_t clock_ns(clockid_t id) {
    struct timespec ts;
    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * NS + ts.tv_nsec;
}

/* Same clock as time.perf_counter_ns() on Linux: stamps compare across processes. */
static inline int64_t now_ns(void) { return clock_ns(CLOCK_MONOTONIC); }

/* ================================================================ engine._native entry points */

typedef int64_t (*claim_fn)(void *hdr);
typedef int64_t (*commit_fn)(void *hdr);
typedef void *(*slot_fn)(void *hdr, int64_t idx);
typedef void (*hist_fn)(int64_t *h, int64_t v);

static claim_fn ring_try_claim;
static commit_fn ring_commit;
static slot_fn ring_slot;       /* mm_ring_slot when the ring publishes one, else NULL */
static hist_fn hist_record;
typedef void (*board_put_fn)(void *board, int64_t i, const void *rec);
typedef void (*board_lost_fn)(void *board);
static board_put_fn board_put;
static board_lost_fn board_lost;

static void *native_symbol(PyObject *syms, const char *name) {
    PyObject *v = PyDict_GetItemString(syms, name); /* borrowed */
    if (v == NULL) {
        PyErr_Format(PyExc_ImportError, "engine._native.symbols has no %s: rebuild the native "
                     "modules (make install)", name);
        return NULL;
    }
    return PyLong_AsVoidPtr(v);
}

static int load_native(void) {
    if (ring_try_claim != NULL) return 0;
    PyObject *mod = PyImport_ImportModule("engine._native");
    if (mod == NULL) return -1;
    PyObject *syms = PyObject_GetAttrString(mod, "symbols");
    Py_DECREF(mod);
    if (syms == NULL) return -1;
    claim_fn c = (claim_fn)native_symbol(syms, "mm_ring_try_claim");
    commit_fn m = c ? (commit_fn)native_symbol(syms, "mm_ring_commit") : NULL;
    hist_fn h = m ? (hist_fn)native_symbol(syms, "mm_hist_record") : NULL;
    board_put_fn bp = h ? (board_put_fn)native_symbol(syms, "mm_board_put") : NULL;
    board_lost_fn bl = bp ? (board_lost_fn)native_symbol(syms, "mm_board_lost") : NULL;
    PyObject *slot = h ? PyDict_GetItemString(syms, "mm_ring_slot") : NULL; /* optional */
    ring_slot = slot ? (slot_fn)PyLong_AsVoidPtr(slot) : NULL;
    Py_DECREF(syms);
    if (bl == NULL || PyErr_Occurred()) return -1;
    board_put = bp;
    board_lost = bl;
    ring_commit = m;
    hist_record = h;
    ring_try_claim = c;
    return 0;
}

/* ================================================================ Publisher */

/* The record fields the feed writes, with the size each must have in the dtype. */
enum {
    F_UPDATE_ID, F_INSTRUMENT, F_KIND, F_VENUE, F_CONN, F_BID_PX, F_BID_QTY, F_ASK_PX, F_ASK_QTY,
    F_TRADE_PX, F_TRADE_QTY, F_TRADE_SIDE, F_TS_VENUE, F_TS_ARRIVAL, F_TS_DECODED, F_TS_PUBLISHED,
    F_COUNT
};
static const char *const field_names[F_COUNT] = {
    "update_id", "instrument", "kind", "venue", "conn", "bid_px", "bid_qty", "ask_px", "ask_qty",
    "trade_px", "trade_qty", "trade_side", "ts_venue", "ts_arrival", "ts_decoded", "ts_published"};
static const int field_sizes[F_COUNT] = {8, 4, 2, 1, 1, 8, 8, 8, 8, 8, 8, 1, 8, 8, 8, 8};

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

#define NO_ID INT64_MIN

static inline void put64(char *s, int32_t off, int64_t v) { memcpy(s + off, &v, 8); }

/* A claimed slot's address: the ring's own accessor when it has one, else where claim_slot in
 * mm_native.c puts slot idx (after the header, record_size bytes each). */
static inline char *slot_address(Publisher *p, int64_t idx) {
    return ring_slot ? (char *)ring_slot(p->hdr, idx)
                     : p->hdr + MM_HEADER_SIZE + idx * p->record_size;
}

static void write_record(Publisher *p, char *s, const md_event *e, int64_t ts_published) {
    const int32_t *o = p->off;
    /* Fields the feed does not know (added to the dtype later) read as zero, never as the
     * leftovers of the record this slot held a lap ago. The seq word is the ring's. */
    memset(s + 8, 0, (size_t)(p->record_size - 8));
    put64(s, o[F_UPDATE_ID], e->update_id);
    memcpy(s + o[F_INSTRUMENT], &e->instrument, 4);
    memcpy(s + o[F_KIND], &e->kind, 2);
    s[o[F_VENUE]] = (char)p->venue;
    s[o[F_CONN]] = (char)e->conn;
    put64(s, o[F_BID_PX], e->bid_px);
    put64(s, o[F_BID_QTY], e->bid_qty);
    put64(s, o[F_ASK_PX], e->ask_px);
    put64(s, o[F_ASK_QTY], e->ask_qty);
    put64(s, o[F_TRADE_PX], e->trade_px);
    put64(s, o[F_TRADE_QTY], e->trade_qty);
    s[o[F_TRADE_SIDE]] = (char)e->trade_side;
    put64(s, o[F_TS_VENUE], e->ts_venue);
    put64(s, o[F_TS_ARRIVAL], e->ts_arrival);
    put64(s, o[F_TS_DECODED], e->ts_decoded);
    put64(s, o[F_TS_PUBLISHED], ts_published);
}

static inline void write_slot(Publisher *p, int64_t idx, const md_event *e, int64_t ts_published) {
    write_record(p, slot_address(p, idx), e, ts_published);
}

/* One mark record per instrument (update id = its last published book update, 0 if none),
 * committed together. Marks carry no prices and move no histogram. */
static void publish_marks(Publisher *p, int kind, int conn, int64_t ts_arrival,
                          int64_t ts_decoded) {
    md_event e;
    memset(&e, 0, sizeof e);
    e.kind = (uint16_t)kind;
    e.conn = (uint8_t)conn;
    e.ts_arrival = ts_arrival;
    e.ts_decoded = ts_decoded;
    for (Py_ssize_t i = 0; i < p->n; i++) {
        int64_t idx = ring_try_claim(p->hdr);
        if (idx < 0) {
            p->ring_full++;
            continue;
        }
        e.instrument = (uint32_t)i;
        e.update_id = p->last_book[i] != NO_ID ? p->last_book[i] : 0;
        write_slot(p, idx, &e, now_ns());
        p->published++;
    }
    ring_commit(p->hdr);
}

/* Publish one event unless an earlier copy of it was published (id 0: the venue gave none to
 * compare). The caller checked `instrument < n`. Returns 1 written, 0 dropped (dupe, full). */
static int publish_event(Publisher *p, md_event *e) {
    int64_t ts_decoded = now_ns();
    int64_t *last = (e->kind & p->kind_trade) ? p->last_trade : p->last_book;
    if (e->update_id && e->update_id <= last[e->instrument]) {
        p->dupes++;
        return 0;
    }
    if (p->stale) { /* new data again: the fresh marks go first, stamped like this event */
        p->stale = 0;
        p->fresh_marks++;
        publish_marks(p, p->kind_fresh, p->conn, p->ts_arrival, ts_decoded);
    }
    last[e->instrument] = e->update_id;
    e->conn = (uint8_t)p->conn;
    e->ts_arrival = p->ts_arrival;
    e->ts_decoded = ts_decoded;
    int book = p->board != NULL && !(e->kind & p->kind_trade);
    int64_t idx = ring_try_claim(p->hdr);
    if (idx < 0) {
        p->ring_full++;
        if (book) {     /* the ring drops this record, the board keeps the newest state */
            char rec[512];
            write_record(p, rec, e, now_ns());
            board_put(p->board, e->instrument, rec);
            board_lost(p->board);
            p->conflated++;
        }
        return 0;
    }
    int64_t ts_published = now_ns();
    write_slot(p, idx, e, ts_published);
    if (book) board_put(p->board, e->instrument, slot_address(p, idx));
    ring_commit(p->hdr);
    p->published++;
    p->last_published_ns = ts_published;
    if (p->h_a2d != NULL) {
        hist_record(p->h_a2d, ts_decoded - e->ts_arrival);
        hist_record(p->h_d2p, ts_published - ts_decoded);
        hist_record(p->h_a2p, ts_published - e->ts_arrival);
    }
    return 1;
}

static PyTypeObject PublisherType;

static void *address_arg(PyObject *o, const char *what) {
    void *p = PyLong_AsVoidPtr(o);
    if (p == NULL && !PyErr_Occurred())
        PyErr_Format(PyExc_ValueError, "Publisher: %s address is 0", what);
    return p;
}

/* Publisher(hdr, layout, n_instruments, venue, kinds, hists)
 *   hdr      address of the md ring's header (the process is its producer)
 *   layout   {field name: (offset, size)} of the record dtype
 *   kinds    (MD_TRADE, MD_STALE, MD_FRESH) flag values
 *   hists    (arrival_to_decoded, decoded_to_published, arrival_to_published) addresses, or None
 */
static int pub_init(Publisher *p, PyObject *args, PyObject *kw) {
    PyObject *hdr, *layout, *hists;
    Py_ssize_t n;
    int venue, kt, ks, kf;
    static char *names[] = {"hdr", "layout", "n_instruments", "venue", "kinds", "hists", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OO!ni(iii)O", names, &hdr, &PyDict_Type, &layout,
                                     &n, &venue, &kt, &ks, &kf, &hists))
        return -1;
    if (load_native() < 0) return -1;
    if (p->last_book != NULL) {
        PyErr_SetString(PyExc_RuntimeError, "Publisher: already initialised");
        return -1;
    }
    if (n < 1 || n > UINT32_MAX) {
        PyErr_Format(PyExc_ValueError, "Publisher: n_instruments must be 1..2^32-1, got %zd", n);
        return -1;
    }
    if (venue < 0 || venue > 255) {
        PyErr_Format(PyExc_ValueError, "Publisher: venue must be 0..255, got %d", venue);
        return -1;
    }
    char *h = address_arg(hdr, "ring header");
    if (h == NULL) return -1;
    int64_t size = *(uint32_t *)(h + MM_OFF_RECORD_SIZE);
    for (int f = 0; f < F_COUNT; f++) {
        PyObject *v = PyDict_GetItemString(layout, field_names[f]);
        long off, sz;
        if (v == NULL || !PyArg_ParseTuple(v, "ll", &off, &sz)) {
            PyErr_Clear();
            PyErr_Format(PyExc_ValueError, "Publisher: the md record has no field %s as "
                         "(offset, size)", field_names[f]);
            return -1;
        }
        if (sz != field_sizes[f] || off < 8 || off + sz > size) {
            PyErr_Format(PyExc_ValueError, "Publisher: md field %s is %ld bytes at offset %ld "
                         "of a %lld-byte slot; the feed writes %d bytes after the seq word",
                         field_names[f], sz, off, (long long)size, field_sizes[f]);
            return -1;
        }
        p->off[f] = (int32_t)off;
    }
    int64_t *hs[3] = {NULL, NULL, NULL};
    if (hists != Py_None) {
        if (!PyTuple_Check(hists) || PyTuple_GET_SIZE(hists) != 3) {
            PyErr_SetString(PyExc_TypeError, "Publisher: hists must be 3 addresses or None");
            return -1;
        }
        for (int i = 0; i < 3; i++)
            if ((hs[i] = address_arg(PyTuple_GET_ITEM(hists, i), "histogram")) == NULL) return -1;
    }
    p->last_book = PyMem_Malloc((size_t)n * sizeof(int64_t));
    p->last_trade = PyMem_Malloc((size_t)n * sizeof(int64_t));
    if (p->last_book == NULL || p->last_trade == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t i = 0; i < n; i++) p->last_book[i] = p->last_trade[i] = NO_ID;
    p->hdr = h;
    p->record_size = size;
    p->n = n;
    p->venue = venue;
    p->kind_trade = kt;
    p->kind_stale = ks;
    p->kind_fresh = kf;
    p->h_a2d = hs[0];
    p->h_d2p = hs[1];
    p->h_a2p = hs[2];
    return 0;
}

static void pub_dealloc(Publisher *p) {
    PyMem_Free(p->last_book);
    PyMem_Free(p->last_trade);
    Py_TYPE(p)->tp_free((PyObject *)p);
}

static int pub_ready(Publisher *p) {
    if (p->hdr != NULL) return 1;
    PyErr_SetString(PyExc_RuntimeError, "Publisher: not initialised or detached");
    return 0;
}

/* emit(instrument, kind, update_id, bid_px, bid_qty, ask_px, ask_qty, trade_px, trade_qty,
 *      trade_side, ts_venue) -> None: the MdSink interface for the Python decoders. */
static PyObject *pub_emit(Publisher *p, PyObject *const *a, Py_ssize_t nargs) {
    if (nargs != 11) {
        PyErr_Format(PyExc_TypeError, "emit expects 11 arguments, got %zd", nargs);
        return NULL;
    }
    if (!pub_ready(p)) return NULL;
    long long v[11];
    for (int i = 0; i < 11; i++) {
        v[i] = PyLong_AsLongLong(a[i]);
        if (v[i] == -1 && PyErr_Occurred()) return NULL;
    }
    if (v[0] < 0 || v[0] >= p->n) {
        PyErr_Format(PyExc_IndexError, "emit: instrument %lld outside 0..%zd", v[0], p->n - 1);
        return NULL;
    }
    if (v[1] < 0 || v[1] > 0xFFFF || v[9] < 0 || v[9] > 0xFF) {
        PyErr_Format(PyExc_ValueError, "emit: kind %lld or trade_side %lld out of range",
                     v[1], v[9]);
        return NULL;
    }
    md_event e = {.instrument = (uint32_t)v[0], .kind = (uint16_t)v[1], .update_id = v[2],
                  .bid_px = v[3], .bid_qty = v[4], .ask_px = v[5], .ask_qty = v[6],
                  .trade_px = v[7], .trade_qty = v[8], .trade_side = (uint8_t)v[9],
                  .ts_venue = v[10]};
    publish_event(p, &e);
    Py_RETURN_NONE;
}

static PyObject *pub_mark_stale(Publisher *p, PyObject *unused) {
    if (!pub_ready(p)) return NULL;
    if (!p->stale) {
        p->stale = 1;
        p->stale_marks++;
        int64_t now = p->stale_since_ns = now_ns();
        publish_marks(p, p->kind_stale, 0, now, now);
    }
    Py_RETURN_NONE;
}

static PyObject *pub_forget_ids(Publisher *p, PyObject *unused) {
    if (!pub_ready(p)) return NULL;
    for (Py_ssize_t i = 0; i < p->n; i++) p->last_book[i] = p->last_trade[i] = NO_ID;
    p->id_resets++;
    Py_RETURN_NONE;
}

/* set_board(addr): write every book event to this board too (0: none). */
static PyObject *pub_set_board(Publisher *p, PyObject *arg) {
    void *b = PyLong_AsVoidPtr(arg);
    if (b == NULL && PyErr_Occurred()) return NULL;
    if (b != NULL && p->record_size > 128) {    /* MM_BOARD_SLOT - 128 */
        PyErr_SetString(PyExc_ValueError, "set_board: records longer than 128 bytes");
        return NULL;
    }
    p->board = b;
    Py_RETURN_NONE;
}

/* detach(): stop writing (the ring is about to be unmapped); later calls raise. */
static PyObject *pub_detach(Publisher *p, PyObject *unused) {
    p->hdr = NULL;
    p->board = NULL;
    p->h_a2d = p->h_d2p = p->h_a2p = NULL;
    Py_RETURN_NONE;
}

static PyObject *pub_get_conn(Publisher *p, void *c) { return PyLong_FromLong(p->conn); }

static int pub_set_conn(Publisher *p, PyObject *v, void *c) {
    long x = v ? PyLong_AsLong(v) : -1;
    if (x == -1 && PyErr_Occurred()) return -1;
    if (x < 0 || x > 255) {
        PyErr_Format(PyExc_ValueError, "conn must be 0..255, got %ld", x);
        return -1;
    }
    p->conn = (int)x;
    return 0;
}

static PyMethodDef pub_methods[] = {
    {"emit", (PyCFunction)(void (*)(void))pub_emit, METH_FASTCALL,
     "emit(instrument, kind, update_id, bid_px, bid_qty, ask_px, ask_qty, trade_px, trade_qty, "
     "trade_side, ts_venue): publish one event unless a copy of it was published already."},
    {"mark_stale", (PyCFunction)pub_mark_stale, METH_NOARGS,
     "Publish a stale mark for every instrument (once until the next event)."},
    {"forget_ids", (PyCFunction)pub_forget_ids, METH_NOARGS,
     "Forget the last published ids: the next event of each instrument is published."},
    {"set_board", (PyCFunction)pub_set_board, METH_O,
     "set_board(addr): also write every book event to this book board (0: none)."},
    {"detach", (PyCFunction)pub_detach, METH_NOARGS,
     "Stop writing: the ring is about to be unmapped (later calls raise RuntimeError)."},
    {NULL}};

#define RO(name, type) {#name, type, offsetof(Publisher, name), READONLY, NULL}
static PyMemberDef pub_members[] = {
    {"ts_arrival", T_LONGLONG, offsetof(Publisher, ts_arrival), 0,
     "arrival stamp of the frame being decoded (set by the connection)"},
    RO(stale, T_BOOL), RO(published, T_LONGLONG), RO(dupes, T_LONGLONG),
    RO(ring_full, T_LONGLONG), RO(stale_marks, T_LONGLONG), RO(fresh_marks, T_LONGLONG),
    RO(id_resets, T_LONGLONG), RO(conflated, T_LONGLONG), RO(last_published_ns, T_LONGLONG),
    RO(stale_since_ns, T_LONGLONG),
    RO(n, T_PYSSIZET), RO(venue, T_INT),
    {NULL}};

static PyGetSetDef pub_getset[] = {
    {"conn", (getter)pub_get_conn, (setter)pub_set_conn,
     "redundant connection delivering the frame being decoded (set by the connection)", NULL},
    {NULL}};

static PyTypeObject PublisherType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "engine._feed.Publisher",
    .tp_basicsize = sizeof(Publisher),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    .tp_doc = "The md ring's producer: dedupe, stamp, write, commit (engine/feed/publish.py).",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)pub_init,
    .tp_dealloc = (destructor)pub_dealloc,
    .tp_methods = pub_methods,
    .tp_members = pub_members,
    .tp_getset = pub_getset,
};

/* ================================================================ exact decimal parsing */

static const int64_t POW10[19] = {
    1LL, 10LL, 100LL, 1000LL, 10000LL, 100000LL, 1000000LL, 10000000LL, 100000000LL,
    1000000000LL, 10000000000LL, 100000000000LL, 1000000000000LL, 10000000000000LL,
    100000000000000LL, 1000000000000000LL, 10000000000000000LL, 100000000000000000LL,
    1000000000000000000LL};

static inline int is_digit(char c) { return c >= '0' && c <= '9'; }

/* m * 10^shift into *out, exactly; 0 when that is not an int64 in 0..INT64_MAX. */
static inline int scale(int64_t m, int shift, int64_t *out) {
    if (m < 0 || shift > 18 || shift < -18) return 0;
    if (shift >= 0) {
        if (m > INT64_MAX / POW10[shift]) return 0;
        *out = m * POW10[shift];
        return 1;
    }
    int64_t d = POW10[-shift];
    if (m % d) return 0;
    *out = m / d;
    return 1;
}

/* The unsigned decimal string s[0..n) (`digits` or `digits.digits`) as the mantissa at 10^exp,
 * exactly as engine.feed.fixed.parse_fixed computes it. 0 for anything parse_fixed would refuse
 * and for what this cannot do exactly (the caller then takes the Python path). */
static int parse_decimal(const char *s, Py_ssize_t n, int exp, int64_t *out) {
    Py_ssize_t dot = -1;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (!is_digit(s[i])) {
            if (s[i] != '.' || dot >= 0) return 0;
            dot = i;
        }
    }
    if (n == 0 || dot == 0 || dot == n - 1) return 0;
    Py_ssize_t nfrac = dot < 0 ? 0 : n - dot - 1;
    if (nfrac > 40) return 0;
    int shift = (int)(-nfrac - exp); /* value = digits * 10^-nfrac = mantissa * 10^exp */
    Py_ssize_t end = n;
    while (shift < 0 && end > 0) { /* digits below 10^exp must be zeros: drop them */
        if (s[end - 1] == '.') {
            end--;
            continue;
        }
        if (s[end - 1] != '0') return 0;
        end--;
        shift++;
    }
    if (shift < 0) shift = 0; /* every digit was dropped: the value is 0 */
    uint64_t m = 0;
    for (Py_ssize_t i = 0; i < end; i++) {
        if (s[i] == '.') continue;
        m = m * 10 + (uint64_t)(s[i] - '0');
        if (m > (uint64_t)INT64_MAX) return 0;
    }
    return scale((int64_t)m, shift, out);
}

/* A JSON integer 0..INT64_MAX (no sign, no leading zero, no fraction or exponent). */
static const char *parse_json_uint(const char *s, const char *end, int64_t *out) {
    if (s >= end || !is_digit(*s)) return NULL;
    if (*s == '0' && s + 1 < end && is_digit(s[1])) return NULL;
    uint64_t v = 0;
    const char *p = s;
    for (; p < end && is_digit(*p); p++) {
        if (p - s >= 19) return NULL;
        v = v * 10 + (uint64_t)(*p - '0');
    }
    if (v > (uint64_t)INT64_MAX) return NULL;
    if (p < end && (*p == '.' || *p == 'e' || *p == 'E')) return NULL;
    *out = (int64_t)v;
    return p;
}

/* A JSON string's body of plain printable ASCII (no escape, no control, no quote): the end
 * quote's position, or NULL (the Python path decides what else means). */
static const char *plain_string(const char *s, const char *end) {
    for (; s < end; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"') return s;
        if (c < 0x20 || c > 0x7e || c == '\\') return NULL;
    }
    return NULL;
}

static inline const char *expect(const char *s, const char *end, const char *lit, size_t n) {
    return (s && (size_t)(end - s) >= n && memcmp(s, lit, n) == 0) ? s + n : NULL;
}
#define EXPECT(s, lit) ((s) = expect((s), end, (lit), sizeof(lit) - 1))

/* ================================================================ BookDecoder */

typedef struct {
    char *key;          /* the symbol as the venue spells it */
    Py_ssize_t len;
    uint32_t index;
    int pexp, qexp;
} symbol_entry;

enum { FMT_BINANCE_JSON = 1, FMT_SBE_BEST_BID_ASK = 2 };
enum { SBE_TS, SBE_U, SBE_PE, SBE_QE, SBE_BP, SBE_BQ, SBE_AP, SBE_AQ, SBE_SYM, SBE_FIELDS };

typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    int format;
    int kind_bbo;
    Py_ssize_t n;
    symbol_entry *syms;
    int32_t *table;             /* open addressing: entry index + 1, 0 = empty */
    uint32_t mask;
    PyObject *ids_obj;          /* array('q'): last book update id per instrument (shared with
                                   the adapter's Python paths) */
    Py_buffer ids;
    PyObject *fallback;         /* the adapter's Python decode(payload, binary, sink) */
    PyObject *emit_name;
    uint64_t sbe_header;
    int32_t sbe_off[SBE_FIELDS];
    long long data;             /* frames published by the fast path since take_data() */
    long long fast, slow;       /* frames taken by each path (diagnostics, benchmarks) */
} BookDecoder;

static uint32_t fnv1a(const char *s, Py_ssize_t n) {
    uint32_t h = 2166136261u;
    for (Py_ssize_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 16777619u;
    return h;
}

static const symbol_entry *find_symbol(const BookDecoder *d, const char *s, Py_ssize_t n) {
    for (uint32_t h = fnv1a(s, n) & d->mask;; h = (h + 1) & d->mask) {
        int32_t k = d->table[h];
        if (k == 0) return NULL;
        const symbol_entry *e = &d->syms[k - 1];
        if (e->len == n && memcmp(e->key, s, (size_t)n) == 0) return e;
    }
}

/* Hand one book event to the sink: straight into the ring for a Publisher, else sink.emit. */
static int emit_book(BookDecoder *d, PyObject *sink, uint32_t i, int64_t u, int64_t bp,
                     int64_t bq, int64_t ap, int64_t aq, int64_t ts_venue) {
    if (Py_IS_TYPE(sink, &PublisherType) || PyObject_TypeCheck(sink, &PublisherType)) {
        Publisher *p = (Publisher *)sink;
        if (!pub_ready(p)) return -1;
        if (i >= p->n) {
            PyErr_Format(PyExc_IndexError, "instrument %u outside the sink's %zd", i, p->n);
            return -1;
        }
        md_event e = {.instrument = i, .kind = (uint16_t)d->kind_bbo, .update_id = u,
                      .bid_px = bp, .bid_qty = bq, .ask_px = ap, .ask_qty = aq,
                      .ts_venue = ts_venue};
        publish_event(p, &e);
        return 0;
    }
    long long v[11] = {i, d->kind_bbo, u, bp, bq, ap, aq, 0, 0, 0, ts_venue};
    PyObject *slots[13], **args = slots + 1; /* slots[0]: scratch the callee may use */
    args[0] = sink;
    int k = 0;
    for (; k < 11; k++)
        if ((args[k + 1] = PyLong_FromLongLong(v[k])) == NULL) break;
    PyObject *r = k == 11 ? PyObject_VectorcallMethod(d->emit_name, args,
                                                      12 | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL)
                          : NULL;
    for (int j = 0; j < k; j++) Py_DECREF(args[j + 1]);
    if (r == NULL) return -1;
    Py_DECREF(r);
    return 0;
}

/* A checked book event: not older than the last one of this connection, not crossed. Mirrors
 * the adapters' Python checks; a refusal goes to the Python path, which counts it. */
static int book_ok(BookDecoder *d, const symbol_entry *e, int64_t u, int64_t bp, int64_t bq,
                   int64_t ap, int64_t aq) {
    int64_t *ids = (int64_t *)d->ids.buf;
    if (u < ids[e->index]) return 0;
    if (bp >= ap && bq && aq) return 0;
    return 1;
}

/* {"stream":"<name>","data":{"u":<id>,"s":"<SYM>","b":"<px>","B":"<qty>","a":"<px>","A":"<qty>"}}
 * byte for byte (Binance spot's combined-stream bookTicker, no whitespace): 1 published,
 * 0 not this shape or not clean (Python decides), -1 error. */
static int fast_book_ticker(BookDecoder *d, const char *buf, Py_ssize_t len, PyObject *sink) {
    const char *s = buf, *end = buf + len, *q;
    int64_t u, bp, bq, ap, aq;
    const symbol_entry *e;
    if (!EXPECT(s, "{\"stream\":\"") || !(s = plain_string(s, end))) return 0;
    if (!EXPECT(s, "\",\"data\":{\"u\":") || !(s = parse_json_uint(s, end, &u))) return 0;
    if (!EXPECT(s, ",\"s\":\"") || !(q = plain_string(s, end))) return 0;
    if (!(e = find_symbol(d, s, q - s))) return 0;
    s = q;
    if (!EXPECT(s, "\",\"b\":\"") || !(q = plain_string(s, end)) ||
        !parse_decimal(s, q - s, e->pexp, &bp))
        return 0;
    s = q;
    if (!EXPECT(s, "\",\"B\":\"") || !(q = plain_string(s, end)) ||
        !parse_decimal(s, q - s, e->qexp, &bq))
        return 0;
    s = q;
    if (!EXPECT(s, "\",\"a\":\"") || !(q = plain_string(s, end)) ||
        !parse_decimal(s, q - s, e->pexp, &ap))
        return 0;
    s = q;
    if (!EXPECT(s, "\",\"A\":\"") || !(q = plain_string(s, end)) ||
        !parse_decimal(s, q - s, e->qexp, &aq))
        return 0;
    s = q;
    if (!EXPECT(s, "\"}}") || s != end) return 0;
    if (!book_ok(d, e, u, bp, bq, ap, aq)) return 0;
    ((int64_t *)d->ids.buf)[e->index] = u;
    return emit_book(d, sink, e->index, u, bp, bq, ap, aq, 0) < 0 ? -1 : 1;
}

static inline int64_t rd64(const char *p) {
    int64_t v;
    memcpy(&v, p, 8);
    return v;
}

/* SBE BestBidAskStreamEvent with the declared block length and header, symbol varString8 last:
 * 1 published, 0 anything else (Python decides), -1 error. */
static int fast_best_bid_ask(BookDecoder *d, const char *buf, Py_ssize_t len, PyObject *sink) {
    const int32_t *o = d->sbe_off;
    Py_ssize_t sym = o[SBE_SYM];
    if (len < sym + 2 || len > sym + 256) return 0;
    uint64_t header;
    memcpy(&header, buf, 8);
    if (header != d->sbe_header || (unsigned char)buf[sym] != len - sym - 1) return 0;
    const symbol_entry *e = find_symbol(d, buf + sym + 1, len - sym - 1);
    if (e == NULL) return 0;
    int64_t ts = rd64(buf + o[SBE_TS]), u = rd64(buf + o[SBE_U]);
    int pe = (signed char)buf[o[SBE_PE]], qe = (signed char)buf[o[SBE_QE]];
    int64_t bp, bq, ap, aq;
    if (u < 0 || !scale(rd64(buf + o[SBE_BP]), pe - e->pexp, &bp) ||
        !scale(rd64(buf + o[SBE_BQ]), qe - e->qexp, &bq) ||
        !scale(rd64(buf + o[SBE_AP]), pe - e->pexp, &ap) ||
        !scale(rd64(buf + o[SBE_AQ]), qe - e->qexp, &aq))
        return 0;
    if (!book_ok(d, e, u, bp, bq, ap, aq)) return 0;
    ((int64_t *)d->ids.buf)[e->index] = u;
    int64_t ts_venue = ts >= 0 && ts <= INT64_MAX / 1000 ? ts * 1000 : 0; /* us -> ns */
    return emit_book(d, sink, e->index, u, bp, bq, ap, aq, ts_venue) < 0 ? -1 : 1;
}

/* decoder(payload, binary, sink) -> events emitted: the fast path, else the Python decoder. */
static PyObject *dec_vectorcall(PyObject *self, PyObject *const *a, size_t nargsf,
                                PyObject *kwnames) {
    BookDecoder *d = (BookDecoder *)self;
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    if (nargs != 3 || kwnames != NULL) {
        PyErr_SetString(PyExc_TypeError, "decode(payload, binary, sink) takes 3 positional "
                        "arguments");
        return NULL;
    }
    if (d->fallback == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "BookDecoder: not initialised");
        return NULL;
    }
    PyObject *payload = a[0], *sink = a[2];
    int binary = a[1] == Py_True ? 1 : a[1] == Py_False ? 0 : PyObject_IsTrue(a[1]);
    if (binary < 0) return NULL;
    const char *buf = NULL;
    Py_ssize_t len = 0;
    if (PyMemoryView_Check(payload)) {
        Py_buffer *v = PyMemoryView_GET_BUFFER(payload);
        if (PyBuffer_IsContiguous(v, 'C')) {
            buf = v->buf;
            len = v->len;
        }
    } else if (PyBytes_Check(payload)) {
        buf = PyBytes_AS_STRING(payload);
        len = PyBytes_GET_SIZE(payload);
    }
    if (buf != NULL && binary == (d->format == FMT_SBE_BEST_BID_ASK)) {
        int r = d->format == FMT_SBE_BEST_BID_ASK ? fast_best_bid_ask(d, buf, len, sink)
                                                  : fast_book_ticker(d, buf, len, sink);
        if (r < 0) return NULL;
        if (r > 0) {
            d->fast++;
            d->data++;
            return PyLong_FromLong(1);
        }
    }
    d->slow++;
    return PyObject_Vectorcall(d->fallback, a, 3, NULL);
}

static void dec_clear_symbols(BookDecoder *d) {
    if (d->syms != NULL)
        for (Py_ssize_t i = 0; i < d->n; i++) PyMem_Free(d->syms[i].key);
    PyMem_Free(d->syms);
    PyMem_Free(d->table);
    d->syms = NULL;
    d->table = NULL;
}

/* BookDecoder(format, symbols, last_ids, fallback, kind_bbo, sbe=None)
 *   format    "binance-json" | "sbe-best-bid-ask"
 *   symbols   [(key bytes, instrument index, price exp, qty exp)]
 *   last_ids  array('q') of the connection's last book update id per instrument
 *   fallback  decode(payload, binary, sink) for every frame the fast path does not take
 *   sbe       (header u64, offsets of eventTime, bookUpdateId, priceExponent, qtyExponent,
 *              bidPrice, bidQty, askPrice, askQty, symbol) for "sbe-best-bid-ask"
 */
static int dec_init(BookDecoder *d, PyObject *args, PyObject *kw) {
    const char *fmt;
    PyObject *symbols, *ids, *fallback, *sbe = Py_None;
    int kind_bbo;
    static char *names[] = {"format", "symbols", "last_ids", "fallback", "kind_bbo", "sbe", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kw, "sO!OOi|O", names, &fmt, &PyList_Type, &symbols,
                                     &ids, &fallback, &kind_bbo, &sbe))
        return -1;
    if (d->syms != NULL) {
        PyErr_SetString(PyExc_RuntimeError, "BookDecoder: already initialised");
        return -1;
    }
    if (strcmp(fmt, "binance-json") == 0) {
        d->format = FMT_BINANCE_JSON;
    } else if (strcmp(fmt, "sbe-best-bid-ask") == 0) {
        d->format = FMT_SBE_BEST_BID_ASK;
        unsigned long long hv;
        int32_t *o = d->sbe_off;
        if (!PyArg_ParseTuple(sbe, "K(iiiiiiiii)", &hv, &o[0], &o[1], &o[2], &o[3], &o[4], &o[5],
                              &o[6], &o[7], &o[8]))
            return -1;
        d->sbe_header = hv;
    } else {
        PyErr_Format(PyExc_ValueError, "BookDecoder: format must be binance-json or "
                     "sbe-best-bid-ask, got %s", fmt);
        return -1;
    }
    if (!PyCallable_Check(fallback)) {
        PyErr_SetString(PyExc_TypeError, "BookDecoder: fallback must be callable");
        return -1;
    }
    Py_ssize_t n = PyList_GET_SIZE(symbols);
    if (PyObject_GetBuffer(ids, &d->ids, PyBUF_FORMAT | PyBUF_C_CONTIGUOUS | PyBUF_WRITABLE) < 0)
        return -1;
    d->ids_obj = Py_NewRef(ids);
    if (d->ids.itemsize != 8 || d->ids.format == NULL || strcmp(d->ids.format, "q") != 0 ||
        d->ids.len != n * 8) {
        PyErr_Format(PyExc_ValueError, "BookDecoder: last_ids must be an array('q') of %zd ids",
                     n);
        return -1;
    }
    uint32_t size = 8;
    while (size < 2 * (uint32_t)n) size <<= 1;
    d->syms = PyMem_Calloc((size_t)n ? (size_t)n : 1, sizeof(symbol_entry));
    d->table = PyMem_Calloc(size, sizeof(int32_t));
    if (d->syms == NULL || d->table == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    d->n = n;
    d->mask = size - 1;
    for (Py_ssize_t i = 0; i < n; i++) {
        char *key;
        Py_ssize_t klen;
        unsigned int index;
        int pe, qe;
        if (!PyArg_ParseTuple(PyList_GET_ITEM(symbols, i), "y#Iii", &key, &klen, &index, &pe, &qe))
            return -1;
        if (index >= (unsigned)n || find_symbol(d, key, klen) != NULL) {
            PyErr_Format(PyExc_ValueError, "BookDecoder: symbol %zd (%.40s): index %u outside "
                         "0..%zd or listed twice", i, key, index, n - 1);
            return -1;
        }
        symbol_entry *e = &d->syms[i];
        if ((e->key = PyMem_Malloc((size_t)klen ? (size_t)klen : 1)) == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        memcpy(e->key, key, (size_t)klen);
        e->len = klen;
        e->index = index;
        e->pexp = pe;
        e->qexp = qe;
        uint32_t h = fnv1a(key, klen) & d->mask;
        while (d->table[h]) h = (h + 1) & d->mask;
        d->table[h] = (int32_t)(i + 1);
    }
    d->fallback = Py_NewRef(fallback);
    d->emit_name = PyUnicode_InternFromString("emit");
    d->kind_bbo = kind_bbo;
    d->vectorcall = dec_vectorcall;
    return d->emit_name ? 0 : -1;
}

static int dec_traverse(BookDecoder *d, visitproc visit, void *arg) {
    Py_VISIT(d->fallback);
    Py_VISIT(d->ids_obj);
    return 0;
}

static int dec_clear(BookDecoder *d) {
    Py_CLEAR(d->fallback);
    if (d->ids_obj != NULL) {
        PyBuffer_Release(&d->ids);
        Py_CLEAR(d->ids_obj);
    }
    return 0;
}

static void dec_dealloc(BookDecoder *d) {
    PyObject_GC_UnTrack(d);
    dec_clear(d);
    dec_clear_symbols(d);
    Py_XDECREF(d->emit_name);
    Py_TYPE(d)->tp_free((PyObject *)d);
}

static PyObject *dec_take_data(BookDecoder *d, PyObject *unused) {
    long long n = d->data;
    d->data = 0;
    return PyLong_FromLongLong(n);
}

static PyMethodDef dec_methods[] = {
    {"take_data", (PyCFunction)dec_take_data, METH_NOARGS,
     "Frames the fast path published since the last call (the adapter folds them into its "
     "'data' count)."},
    {NULL}};

static PyMemberDef dec_members[] = {
    {"data", T_LONGLONG, offsetof(BookDecoder, data), READONLY, "see take_data"},
    {"fast", T_LONGLONG, offsetof(BookDecoder, fast), READONLY, "frames the C path published"},
    {"slow", T_LONGLONG, offsetof(BookDecoder, slow), READONLY, "frames handed to Python"},
    {"__vectorcalloffset__", T_PYSSIZET, offsetof(BookDecoder, vectorcall), READONLY, NULL},
    {NULL}};

static PyTypeObject BookDecoderType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "engine._feed.BookDecoder",
    .tp_basicsize = sizeof(BookDecoder),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_doc = "decode(payload, binary, sink) with a C fast path for one book frame shape.",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)dec_init,
    .tp_dealloc = (destructor)dec_dealloc,
    .tp_traverse = (traverseproc)dec_traverse,
    .tp_clear = (inquiry)dec_clear,
    .tp_call = PyVectorcall_Call,
    .tp_vectorcall_offset = offsetof(BookDecoder, vectorcall),
    .tp_methods = dec_methods,
    .tp_members = dec_members,
};

/* ================================================================ StampedReader */

/* Installed as the event loop's reader callback for a feed socket, in place of the transport's
 * own `_read_ready`. Frames the transport delivers during one call (one pick-up) are stamped
 * with the kernel's SO_TIMESTAMPNS receive time of the newest data read with them, so the time
 * they waited in the socket while the feed was busy counts, and no stamp precedes the send of
 * any frame it is given to (engine/feed/stamps.py states the contract). Two ways, one result:
 *
 *  - read: for a transport that reads a plain socket into a buffered protocol (aiofastnet's
 *    SelectorSocketTransport under picows), the reader does that read itself with recvmsg,
 *    which hands back the stamp of the last buffer it consumed, then passes the bytes on
 *    (protocol.buffer_updated) exactly as the transport would. EOF and errors are left to the
 *    transport: its own `_read_ready` runs and finds them. No system call is added. One read
 *    per pick-up (the transport loops while its buffer fills; here the loop calls again).
 *  - peek: for any other transport (TLS, which decrypts from its own reads of the socket), a
 *    recvmsg with MSG_PEEK | MSG_TRUNC walks every queued buffer without copying or consuming
 *    and returns the newest stamp; then the transport reads. One system call more per pick-up,
 *    and a frame landing between the peek and the transport's read (a microsecond or so) gets
 *    the peeked stamp, a little before its own arrival.
 *
 * The kernel stamps in CLOCK_REALTIME, the engine in CLOCK_MONOTONIC. Both are read right after
 * the stamp is fetched and the wait carried over: arrival = mono_now - (real_now - kernel). The
 * offset between the clocks is thus measured afresh at every pick-up; its error is the gap
 * between the two clock reads (~25 ns). NTP slews both clocks alike (only CLOCK_MONOTONIC_RAW
 * is unslewed); a step of the wall clock while data waits shifts that one stamp by the step,
 * and a negative wait (a step back) is clamped to 0, so a stamp is never after its pick-up.
 * Data that comes without a stamp (stamps off, EOF) is stamped at pick-up time. */
typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    int fd;
    PyObject *read_ready;       /* the transport's own reader */
    PyObject *get_buffer;       /* read mode: the protocol's get_buffer / buffer_updated */
    PyObject *buffer_updated;
    PyObject *minus_one;
    int64_t ts;                 /* arrival of the data being delivered; 0 outside a pick-up */
    long long pickups, stamped;
} StampedReader;

/* recvmsg with room for the stamp: bytes, and the stamp converted to CLOCK_MONOTONIC in *ts
 * (0 when the kernel gave none). */
static ssize_t recv_stamped(int fd, void *buf, size_t len, int flags, int64_t *ts) {
    union {
        char buf[CMSG_SPACE(sizeof(struct timespec)) * 2];
        struct cmsghdr align;
    } ctl;
    struct iovec iov = {buf, len};
    struct msghdr m;
    memset(&m, 0, sizeof m);
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    m.msg_control = ctl.buf;
    m.msg_controllen = sizeof ctl.buf;
    ssize_t n = recvmsg(fd, &m, flags | MSG_DONTWAIT);
    *ts = 0;
    if (n <= 0) return n;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c != NULL; c = CMSG_NXTHDR(&m, c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPNS) {
            struct timespec k;
            memcpy(&k, CMSG_DATA(c), sizeof k);
            int64_t real = clock_ns(CLOCK_REALTIME), mono = clock_ns(CLOCK_MONOTONIC);
            int64_t waited = real - ((int64_t)k.tv_sec * NS + k.tv_nsec);
            *ts = mono - (waited > 0 ? waited : 0);
            break;
        }
    }
    return n;
}

/* Read mode: one read into the protocol's buffer, as the transport's own read would do it.
 * More data than the buffer holds stays queued: the loop (level-triggered) calls again. */
static PyObject *read_pickup(StampedReader *r) {
    PyObject *buf = PyObject_CallOneArg(r->get_buffer, r->minus_one);
    if (buf == NULL) return NULL;
    Py_buffer view;
    if (PyObject_GetBuffer(buf, &view, PyBUF_WRITABLE) < 0) {
        Py_DECREF(buf);
        return NULL;
    }
    int64_t ts;
    ssize_t n;
    do {
        n = recv_stamped(r->fd, view.buf, (size_t)view.len, 0, &ts);
    } while (n < 0 && errno == EINTR);
    int again = n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
    PyBuffer_Release(&view);
    Py_DECREF(buf);
    if (again) Py_RETURN_NONE;
    if (n <= 0) /* EOF or an error: the transport's own read meets it and handles it */
        return PyObject_CallNoArgs(r->read_ready);
    r->ts = ts;
    r->stamped += ts != 0;
    PyObject *n_obj = PyLong_FromSsize_t(n);
    if (n_obj == NULL) return NULL;
    PyObject *res = PyObject_CallOneArg(r->buffer_updated, n_obj);
    Py_DECREF(n_obj);
    return res;
}

static PyObject *reader_vectorcall(PyObject *self, PyObject *const *a, size_t nargsf,
                                   PyObject *kwnames) {
    StampedReader *r = (StampedReader *)self;
    if (r->read_ready == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "StampedReader: not initialised");
        return NULL;
    }
    r->pickups++;
    PyObject *res;
    if (r->get_buffer != NULL) {
        res = read_pickup(r);
    } else {
        /* Peek mode: walk the whole queue (MSG_TRUNC: count, do not copy) for the newest
         * stamp. */
        int64_t ts;
        recv_stamped(r->fd, NULL, (size_t)1 << 30, MSG_PEEK | MSG_TRUNC, &ts);
        r->ts = ts;
        r->stamped += ts != 0;
        res = PyObject_CallNoArgs(r->read_ready);
    }
    r->ts = 0;
    return res;
}

/* StampedReader(fd, read_ready, protocol=None): turns on SO_TIMESTAMPNS on fd (OSError if
 * refused). With `protocol` (the buffered protocol the transport feeds) the reader reads the
 * socket itself; without, it peeks and lets read_ready read. */
static int reader_init(StampedReader *r, PyObject *args, PyObject *kw) {
    int fd;
    PyObject *read_ready, *protocol = Py_None;
    static char *names[] = {"fd", "read_ready", "protocol", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kw, "iO|O", names, &fd, &read_ready, &protocol))
        return -1;
    if (!PyCallable_Check(read_ready)) {
        PyErr_SetString(PyExc_TypeError, "StampedReader: read_ready must be callable");
        return -1;
    }
    PyObject *get_buffer = NULL, *buffer_updated = NULL;
    if (protocol != Py_None) {
        get_buffer = PyObject_GetAttrString(protocol, "get_buffer");
        buffer_updated = get_buffer ? PyObject_GetAttrString(protocol, "buffer_updated") : NULL;
        if (buffer_updated == NULL) {
            Py_XDECREF(get_buffer);
            PyErr_SetString(PyExc_TypeError, "StampedReader: protocol must be buffered "
                            "(get_buffer, buffer_updated)");
            return -1;
        }
    }
    int one = 1;
    if (setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof one) != 0) {
        Py_XDECREF(get_buffer);
        Py_XDECREF(buffer_updated);
        PyErr_SetFromErrno(PyExc_OSError);
        return -1;
    }
    r->fd = fd;
    Py_XSETREF(r->read_ready, Py_NewRef(read_ready));
    Py_XSETREF(r->get_buffer, get_buffer);
    Py_XSETREF(r->buffer_updated, buffer_updated);
    Py_XSETREF(r->minus_one, PyLong_FromLong(-1));
    r->vectorcall = reader_vectorcall;
    return r->minus_one ? 0 : -1;
}

/* arrival() -> the stamp of the frame being delivered: its data's kernel stamp, or now. */
static PyObject *reader_arrival(StampedReader *r, PyObject *unused) {
    return PyLong_FromLongLong(r->ts ? r->ts : now_ns());
}

static int reader_traverse(StampedReader *r, visitproc visit, void *arg) {
    Py_VISIT(r->read_ready);
    Py_VISIT(r->get_buffer);
    Py_VISIT(r->buffer_updated);
    return 0;
}

static int reader_clear(StampedReader *r) {
    Py_CLEAR(r->read_ready);
    Py_CLEAR(r->get_buffer);
    Py_CLEAR(r->buffer_updated);
    return 0;
}

static void reader_dealloc(StampedReader *r) {
    PyObject_GC_UnTrack(r);
    reader_clear(r);
    Py_XDECREF(r->minus_one);
    Py_TYPE(r)->tp_free((PyObject *)r);
}

static PyObject *reader_reads_itself(StampedReader *r, void *c) {
    return PyBool_FromLong(r->get_buffer != NULL);
}

static PyMethodDef reader_methods[] = {
    {"arrival", (PyCFunction)reader_arrival, METH_NOARGS,
     "Arrival stamp (perf_counter_ns clock) of the frame being delivered: the kernel's receive "
     "stamp of the newest data read with it, else now."},
    {NULL}};

static PyGetSetDef reader_getset[] = {
    {"reads_itself", (getter)reader_reads_itself, NULL,
     "True: read mode (the reader reads the socket); False: peek mode", NULL},
    {NULL}};

static PyMemberDef reader_members[] = {
    {"fd", T_INT, offsetof(StampedReader, fd), READONLY, "the socket"},
    {"pickups", T_LONGLONG, offsetof(StampedReader, pickups), READONLY,
     "times the loop handed the socket over (one readiness event each)"},
    {"stamped", T_LONGLONG, offsetof(StampedReader, stamped), READONLY,
     "pick-ups whose data came with a kernel receive stamp"},
    {"__vectorcalloffset__", T_PYSSIZET, offsetof(StampedReader, vectorcall), READONLY, NULL},
    {NULL}};

static PyTypeObject StampedReaderType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "engine._feed.StampedReader",
    .tp_basicsize = sizeof(StampedReader),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_doc = "Event-loop reader callback stamping frames with the kernel receive time.",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)reader_init,
    .tp_dealloc = (destructor)reader_dealloc,
    .tp_traverse = (traverseproc)reader_traverse,
    .tp_clear = (inquiry)reader_clear,
    .tp_call = PyVectorcall_Call,
    .tp_vectorcall_offset = offsetof(StampedReader, vectorcall),
    .tp_methods = reader_methods,
    .tp_members = reader_members,
    .tp_getset = reader_getset,
};

/* ================================================================ count_allocations */

static PyMemAllocatorEx saved_mem, saved_obj;
static long long allocations;

static void *count_malloc(void *ctx, size_t n) {
    allocations++;
    PyMemAllocatorEx *a = ctx;
    return a->malloc(a->ctx, n);
}
static void *count_calloc(void *ctx, size_t k, size_t n) {
    allocations++;
    PyMemAllocatorEx *a = ctx;
    return a->calloc(a->ctx, k, n);
}
static void *count_realloc(void *ctx, void *p, size_t n) {
    allocations++;
    PyMemAllocatorEx *a = ctx;
    return a->realloc(a->ctx, p, n);
}
static void count_free(void *ctx, void *p) {
    PyMemAllocatorEx *a = ctx;
    a->free(a->ctx, p);
}

/* count_allocations(fn, *args) -> (allocations, fn's result): allocator calls (malloc, calloc,
 * realloc) of the Python object and memory domains while fn(*args) runs. */
static PyObject *py_count_allocations(PyObject *m, PyObject *const *a, Py_ssize_t nargs) {
    if (nargs < 1) {
        PyErr_SetString(PyExc_TypeError, "count_allocations(fn, *args)");
        return NULL;
    }
    PyMem_GetAllocator(PYMEM_DOMAIN_MEM, &saved_mem);
    PyMem_GetAllocator(PYMEM_DOMAIN_OBJ, &saved_obj);
    PyMemAllocatorEx mem = {&saved_mem, count_malloc, count_calloc, count_realloc, count_free};
    PyMemAllocatorEx obj = {&saved_obj, count_malloc, count_calloc, count_realloc, count_free};
    allocations = 0;
    PyMem_SetAllocator(PYMEM_DOMAIN_MEM, &mem);
    PyMem_SetAllocator(PYMEM_DOMAIN_OBJ, &obj);
    PyObject *res = PyObject_Vectorcall(a[0], a + 1, nargs - 1, NULL);
    PyMem_SetAllocator(PYMEM_DOMAIN_MEM, &saved_mem);
    PyMem_SetAllocator(PYMEM_DOMAIN_OBJ, &saved_obj);
    long long n = allocations;
    if (res == NULL) return NULL;
    PyObject *out = Py_BuildValue("(LN)", n, res);
    return out;
}

/* ================================================================ module */

static PyMethodDef module_methods[] = {
    {"count_allocations", (PyCFunction)(void (*)(void))py_count_allocations, METH_FASTCALL,
     "count_allocations(fn, *args) -> (allocator calls during fn(*args), its result)"},
    {NULL}};

static struct PyModuleDef moduledef = {
    PyModuleDef_HEAD_INIT, "engine._feed",
    "The feed's per-frame work in C: publisher, book fast paths, kernel stamps (mm_feed.c)", -1,
    module_methods, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__feed(void) {
    if (PyType_Ready(&PublisherType) < 0 || PyType_Ready(&BookDecoderType) < 0 ||
        PyType_Ready(&StampedReaderType) < 0)
        return NULL;
    PyObject *mod = PyModule_Create(&moduledef);
    if (mod == NULL) return NULL;
    if (PyModule_AddObjectRef(mod, "Publisher", (PyObject *)&PublisherType) < 0 ||
        PyModule_AddObjectRef(mod, "BookDecoder", (PyObject *)&BookDecoderType) < 0 ||
        PyModule_AddObjectRef(mod, "StampedReader", (PyObject *)&StampedReaderType) < 0) {
        Py_DECREF(mod);
        return NULL;
    }
    return mod;
}
