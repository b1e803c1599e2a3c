/* engine._feed.BookDecoder: the two latency-critical frame shapes (a Binance combined-stream
 * bookTicker in JSON, an SBE bestBidAsk) decoded and published in one call. It handles only the
 * clean, canonical case and hands every other frame, untouched, to the adapter's Python decoder
 * (msgspec / struct), which stays the reference for what a frame means: anything the fast path
 * accepts, the Python path would have decoded to the same event (tests/feed check it frame by
 * frame on the corpus and on generated frames).
 */
#include "mm_feed.h"

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
        if (m > (uint64_t)INT64_MAX / 10) return 0; /* m * 10 could wrap past 2**64 */
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

/* `lit`, then a plain string holding a decimal at `exp` into *out: the string's end quote, or
 * NULL. */
static inline const char *decimal_after(const char *s, const char *end, const char *lit,
                                        size_t n, int exp, int64_t *out) {
    const char *q;
    if (!(s = expect(s, end, lit, n)) || !(q = plain_string(s, end)) ||
        !parse_decimal(s, q - s, exp, out))
        return NULL;
    return q;
}
#define DECIMAL_AFTER(s, lit, exp, out) \
    ((s) = decimal_after((s), end, (lit), sizeof(lit) - 1, (exp), (out)))

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
    if (!DECIMAL_AFTER(s, "\",\"b\":\"", e->pexp, &bp) ||
        !DECIMAL_AFTER(s, "\",\"B\":\"", e->qexp, &bq) ||
        !DECIMAL_AFTER(s, "\",\"a\":\"", e->pexp, &ap) ||
        !DECIMAL_AFTER(s, "\",\"A\":\"", e->qexp, &aq) ||
        !EXPECT(s, "\"}}") || s != end)
        return 0;
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

PyTypeObject BookDecoderType = {
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

