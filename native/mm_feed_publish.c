/* engine._feed.Publisher: the md ring's producer (engine/feed/publish.py's RingSink is its Python
 * face): drop copies of an update already published by another connection, stamp, write one
 * record into a claimed slot, commit, record the hop histograms; stale/fresh marks.
 *
 * The ring protocol and the histogram are not repeated here: the producer calls engine._native's
 * mm_ring_try_claim / mm_ring_commit / mm_hist_record through the addresses that module
 * publishes in `symbols`, so a change of the ring's protocol reaches the feed unchanged as long
 * as claim and commit keep their signatures. A slot's address is the ring's own
 * `mm_ring_slot(hdr, idx)`. The
 * record layout comes from the MD dtype (names, offsets, sizes passed in by publish.py), never
 * from constants written here.
 */
#include "mm_feed.h"
#include "mm_ring.h"

/* ================================================================ engine._native entry points */

typedef int64_t (*claim_fn)(void *hdr);
typedef int64_t (*commit_fn)(void *hdr);
typedef void *(*slot_fn)(void *hdr, int64_t idx);
typedef void (*hist_fn)(int64_t *h, int64_t v);

static claim_fn ring_try_claim;
static commit_fn ring_commit;
static slot_fn ring_slot;
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
    slot_fn sl = bl ? (slot_fn)native_symbol(syms, "mm_ring_slot") : NULL;
    Py_DECREF(syms);
    if (sl == NULL || PyErr_Occurred()) return -1;
    ring_slot = sl;
    board_put = bp;
    board_lost = bl;
    ring_commit = m;
    hist_record = h;
    ring_try_claim = c;
    return 0;
}

/* ================================================================ Publisher */

/* The record fields the feed writes, with the size each must have in the dtype. */
static const char *const field_names[F_COUNT] = {
    "update_id", "instrument", "kind", "venue", "conn", "bid_px", "bid_qty", "ask_px", "ask_qty",
    "trade_px", "trade_qty", "trade_side", "ts_venue", "ts_arrival", "ts_decoded", "ts_published"};
static const int field_sizes[F_COUNT] = {8, 4, 2, 1, 1, 8, 8, 8, 8, 8, 8, 1, 8, 8, 8, 8};

#define NO_ID INT64_MIN

static inline void put64(char *s, int32_t off, int64_t v) { memcpy(s + off, &v, 8); }

/* A claimed slot's address: the ring's own accessor (one definition of where slots live). */
static inline char *slot_address(Publisher *p, int64_t idx) {
    return (char *)ring_slot(p->hdr, idx);
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
 * compare). The caller checked `instrument < n`. What became of it shows in the counters
 * (published, dupes, ring_full); nothing is returned, so the last call stays a tail call, as
 * when this function was static in one file (GCC dropped the unused result then). */
void publish_event(Publisher *p, md_event *e) {
    int64_t ts_decoded = now_ns();
    int64_t *last = (e->kind & p->kind_trade) ? p->last_trade : p->last_book;
    if (e->update_id && e->update_id <= last[e->instrument]) {
        p->dupes++;
        return;
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
        return;
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
}

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

/* notify(instrument, kind, update_id, bid_px, bid_qty, ask_px, ask_qty, ts_venue) -> None: one
 * record that is not a book of the BBO's sequence (a depth change, a per-instrument stale or
 * fresh mark): no duplicate check, no board, the last published ids untouched. Stamped like an
 * event (ts_arrival: the connection's, set before the call); the stream's fresh marks go first
 * when it was stale, as for an event. */
static PyObject *pub_notify(Publisher *p, PyObject *const *a, Py_ssize_t nargs) {
    if (nargs != 8) {
        PyErr_Format(PyExc_TypeError, "notify expects 8 arguments, got %zd", nargs);
        return NULL;
    }
    if (!pub_ready(p)) return NULL;
    long long v[8];
    for (int i = 0; i < 8; i++) {
        v[i] = PyLong_AsLongLong(a[i]);
        if (v[i] == -1 && PyErr_Occurred()) return NULL;
    }
    if (v[0] < 0 || v[0] >= p->n || v[1] < 0 || v[1] > 0xFFFF) {
        PyErr_Format(PyExc_ValueError, "notify: instrument %lld or kind %lld out of range",
                     v[0], v[1]);
        return NULL;
    }
    md_event e = {.instrument = (uint32_t)v[0], .kind = (uint16_t)v[1], .update_id = v[2],
                  .bid_px = v[3], .bid_qty = v[4], .ask_px = v[5], .ask_qty = v[6],
                  .ts_venue = v[7], .conn = (uint8_t)p->conn, .ts_arrival = p->ts_arrival};
    e.ts_decoded = now_ns();
    if (p->stale) {
        p->stale = 0;
        p->fresh_marks++;
        publish_marks(p, p->kind_fresh, p->conn, p->ts_arrival, e.ts_decoded);
    }
    int64_t idx = ring_try_claim(p->hdr);
    if (idx < 0) {  /* the depth board holds the state (synced or not): make the quoter look */
        p->ring_full++;
        if (p->board != NULL) {
            board_lost(p->board);
            p->conflated++;
        }
        Py_RETURN_NONE;
    }
    int64_t ts_published = now_ns();
    write_slot(p, idx, &e, ts_published);
    ring_commit(p->hdr);
    p->published++;
    p->last_published_ns = ts_published;
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
    {"notify", (PyCFunction)(void (*)(void))pub_notify, METH_FASTCALL,
     "notify(instrument, kind, update_id, bid_px, bid_qty, ask_px, ask_qty, ts_venue): publish "
     "one record outside the book sequence (no duplicate check, no board)."},
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

PyTypeObject PublisherType = {
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
