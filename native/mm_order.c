/* engine._order: an order request rendered, signed and framed in C, with no Python object per
 * order but the ones the caller passes in.
 *
 * One order = one call: render(template, out, offset, request id, client id, original client id,
 * price mantissa, quantity mantissa, timestamp, venue order id) appends to `out` (a bytearray
 * the sender reuses) a complete masked WebSocket text frame holding the venue's JSON request,
 * and returns the new end offset. The sender calls it for every intent of a ring batch, then
 * writes the whole batch with one syscall.
 *
 *  - Templates (engine/sender/binance.py builds them once per request kind, instrument, side
 *    and post-only flag) are two lists of pieces: the variable tail of the signed payload
 *    (parameters sorted by name, `name=value&...`) and the JSON frame; a piece is a literal or
 *    a slot (client id, prices as exact decimals from integer mantissas, timestamps, ...).
 *  - HMAC-SHA256 with the key and the constant head of the payload absorbed once (midstates):
 *    per order only the tail is hashed, plus one block for the outer hash. SHA-256 runs on the
 *    CPU's SHA extensions when it has them (checked at import), else in portable C. Tested
 *    against hashlib/hmac on random inputs (tests/sender/test_order_native.py).
 *  - The WebSocket mask (RFC 6455: clients mask every frame) comes from a xorshift generator
 *    seeded from getrandom(2); masking XORs 8 bytes at a time.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

/* ---------------------------------------------------------------- SHA-256 */

static const uint32_t K256[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

static const uint32_t IV256[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                  0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};

#define ROR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))

static void sha256_blocks_c(uint32_t st[8], const uint8_t *p, size_t blocks) {
    while (blocks--) {
        uint32_t w[64];
        for (int i = 0; i < 16; i++)
            w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
                   (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
        for (int i = 16; i < 64; i++) {
            uint32_t s0 = ROR(w[i - 15], 7) ^ ROR(w[i - 15], 18) ^ (w[i - 15] >> 3);
            uint32_t s1 = ROR(w[i - 2], 17) ^ ROR(w[i - 2], 19) ^ (w[i - 2] >> 10);
            w[i] = w[i - 16] + s0 + w[i - 7] + s1;
        }
        uint32_t a = st[0], b = st[1], c = st[2], d = st[3], e = st[4], f = st[5], g = st[6],
                 h = st[7];
        for (int i = 0; i < 64; i++) {
            uint32_t t1 = h + (ROR(e, 6) ^ ROR(e, 11) ^ ROR(e, 25)) + ((e & f) ^ (~e & g)) +
                          K256[i] + w[i];
            uint32_t t2 = (ROR(a, 2) ^ ROR(a, 13) ^ ROR(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
            h = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2;
        }
        st[0] += a; st[1] += b; st[2] += c; st[3] += d;
        st[4] += e; st[5] += f; st[6] += g; st[7] += h;
        p += 64;
    }
}

#if defined(__x86_64__)
/* The SHA extensions keep the state as ABEF/CDGH halves and run two rounds per instruction;
 * the message schedule is msg1 (sigma0 part), plus W[t-7], then msg2 (sigma1 part). */
__attribute__((target("sha,sse4.1,ssse3")))
static void sha256_blocks_ni(uint32_t st[8], const uint8_t *p, size_t blocks) {
    const __m128i bswap = _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);
    __m128i tmp = _mm_loadu_si128((const __m128i *)&st[0]);
    __m128i s1 = _mm_loadu_si128((const __m128i *)&st[4]);
    tmp = _mm_shuffle_epi32(tmp, 0xB1);          /* CDAB */
    s1 = _mm_shuffle_epi32(s1, 0x1B);            /* EFGH */
    __m128i s0 = _mm_alignr_epi8(tmp, s1, 8);    /* ABEF */
    s1 = _mm_blend_epi16(s1, tmp, 0xF0);         /* CDGH */
    while (blocks--) {
        __m128i abef = s0, cdgh = s1, w[4];
        for (int g = 0; g < 16; g++) {
            __m128i m;
            if (g < 4) {
                m = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(p + 16 * g)), bswap);
            } else {
                __m128i t = _mm_sha256msg1_epu32(w[g & 3], w[(g + 1) & 3]);
                t = _mm_add_epi32(t, _mm_alignr_epi8(w[(g + 3) & 3], w[(g + 2) & 3], 4));
                m = _mm_sha256msg2_epu32(t, w[(g + 3) & 3]);
            }
            w[g & 3] = m;
            __m128i x = _mm_add_epi32(m, _mm_loadu_si128((const __m128i *)&K256[4 * g]));
            s1 = _mm_sha256rnds2_epu32(s1, s0, x);
            x = _mm_shuffle_epi32(x, 0x0E);
            s0 = _mm_sha256rnds2_epu32(s0, s1, x);
        }
        s0 = _mm_add_epi32(s0, abef);
        s1 = _mm_add_epi32(s1, cdgh);
        p += 64;
    }
    tmp = _mm_shuffle_epi32(s0, 0x1B);           /* FEBA */
    s1 = _mm_shuffle_epi32(s1, 0xB1);            /* DCHG */
    s0 = _mm_blend_epi16(tmp, s1, 0xF0);         /* DCBA */
    s1 = _mm_alignr_epi8(s1, tmp, 8);            /* HGFE */
    _mm_storeu_si128((__m128i *)&st[0], s0);
    _mm_storeu_si128((__m128i *)&st[4], s1);
}
#endif

static void (*sha256_blocks)(uint32_t st[8], const uint8_t *p, size_t blocks) = sha256_blocks_c;

/* Finish a hash whose first `done` bytes are in `st` (whole blocks) and whose last `n` bytes
 * (< any length) are at `p`; writes the 32-byte digest. */
static void sha256_finish(const uint32_t st_in[8], uint64_t done, const uint8_t *p, size_t n,
                          uint8_t out[32]) {
    uint32_t st[8];
    memcpy(st, st_in, sizeof st);
    size_t whole = n & ~(size_t)63;
    if (whole) sha256_blocks(st, p, whole / 64);
    uint8_t last[128];
    size_t rem = n - whole;
    memcpy(last, p + whole, rem);
    last[rem] = 0x80;
    size_t pad = (rem < 56) ? 64 : 128;
    memset(last + rem + 1, 0, pad - rem - 1 - 8);
    uint64_t bits = (done + n) * 8;
    for (int i = 0; i < 8; i++) last[pad - 1 - i] = (uint8_t)(bits >> (8 * i));
    sha256_blocks(st, last, pad / 64);
    for (int i = 0; i < 8; i++) {
        out[4 * i] = (uint8_t)(st[i] >> 24); out[4 * i + 1] = (uint8_t)(st[i] >> 16);
        out[4 * i + 2] = (uint8_t)(st[i] >> 8); out[4 * i + 3] = (uint8_t)st[i];
    }
}

/* ---------------------------------------------------------------- pieces and slots */

enum { P_LIT = 0, P_CID, P_ORIG_CID, P_PRICE, P_QTY, P_TS, P_RID, P_SIG, P_VID, P_KINDS };

typedef struct {
    int kind;
    const char *lit;         /* for P_LIT: points into the template's copy */
    Py_ssize_t len;
} Piece;

typedef struct {
    Piece *tail, *frame;
    Py_ssize_t ntail, nframe;
    char *lits;              /* every literal, concatenated */
    int pexp, qexp;          /* decimal exponents of price and quantity */
    int signed_;             /* 1: HMAC over head + tail */
    uint32_t inner[8];       /* key ^ ipad and the head's whole blocks absorbed */
    uint64_t inner_done;     /* bytes absorbed into `inner` */
    uint8_t head_rem[64];    /* the head's last partial block */
    size_t head_rem_len;
    uint32_t outer[8];       /* key ^ opad absorbed */
} Template;

static const char HEX[] = "0123456789abcdef";

static char *put_u64(char *o, uint64_t v) {
    char tmp[20];
    int n = 0;
    do { tmp[n++] = (char)('0' + v % 10); v /= 10; } while (v);
    while (n) *o++ = tmp[--n];
    return o;
}

static char *put_i64(char *o, int64_t v) {
    if (v < 0) { *o++ = '-'; return put_u64(o, (uint64_t)(-(v + 1)) + 1); }
    return put_u64(o, (uint64_t)v);
}

/* An exact decimal from mantissa m at exponent e: "123.45000" for (12345000, -5). */
static char *put_decimal(char *o, int64_t m, int e) {
    if (e >= 0) {
        o = put_i64(o, m);
        for (int i = 0; i < e; i++) *o++ = '0';
        return o;
    }
    if (m < 0) { *o++ = '-'; m = -m; }
    uint64_t scale = 1;
    for (int i = 0; i < -e; i++) scale *= 10;
    o = put_u64(o, (uint64_t)m / scale);
    *o++ = '.';
    uint64_t frac = (uint64_t)m % scale;
    for (int i = -e - 1; i >= 0; i--) { o[i] = (char)('0' + frac % 10); frac /= 10; }
    return o - e;
}

typedef struct {
    const char *cid, *orig;
    Py_ssize_t cid_len, orig_len;
    int64_t price, qty, ts, rid, vid;
    const char *sig;         /* 64 hex chars, or NULL */
} Values;

/* Render pieces into `o` (at most `room` bytes); returns the end or NULL if it would not fit. */
static char *render_pieces(const Template *t, const Piece *ps, Py_ssize_t n, const Values *v,
                           char *o, Py_ssize_t room) {
    char *end = o + room;
    for (Py_ssize_t i = 0; i < n; i++) {
        const Piece *p = &ps[i];
        if (end - o < p->len + 72) return NULL;   /* 72: the longest slot (signature, a bit more) */
        switch (p->kind) {
        case P_LIT: memcpy(o, p->lit, (size_t)p->len); o += p->len; break;
        case P_CID:
            if (end - o < v->cid_len + 1) return NULL;
            memcpy(o, v->cid, (size_t)v->cid_len); o += v->cid_len; break;
        case P_ORIG_CID:
            if (end - o < v->orig_len + 1) return NULL;
            memcpy(o, v->orig, (size_t)v->orig_len); o += v->orig_len; break;
        case P_PRICE: o = put_decimal(o, v->price, t->pexp); break;
        case P_QTY: o = put_decimal(o, v->qty, t->qexp); break;
        case P_TS: o = put_i64(o, v->ts); break;
        case P_RID: o = put_i64(o, v->rid); break;
        case P_VID: o = put_i64(o, v->vid); break;
        case P_SIG: memcpy(o, v->sig, 64); o += 64; break;
        }
    }
    return o;
}

/* ---------------------------------------------------------------- WebSocket framing */

static uint64_t rng_state = 0x9E3779B97F4A7C15ULL;

static uint32_t next_mask(void) {
    uint64_t x = rng_state;        /* xorshift64*: fast; the mask only has to be unpredictable to
                                      middleboxes, it protects nothing secret */
    x ^= x >> 12; x ^= x << 25; x ^= x >> 27;
    rng_state = x;
    return (uint32_t)((x * 0x2545F4914F6CDD1DULL) >> 32);
}

/* Write a masked client text frame of `payload` at `o`; returns the end. `o` must have
 * n + 14 bytes. */
static char *put_frame(char *o, const char *payload, Py_ssize_t n) {
    uint8_t *h = (uint8_t *)o;
    h[0] = 0x81;                                   /* FIN, text */
    size_t hl;
    if (n < 126) { h[1] = (uint8_t)(0x80 | n); hl = 2; }
    else if (n < 65536) { h[1] = 0x80 | 126; h[2] = (uint8_t)(n >> 8); h[3] = (uint8_t)n; hl = 4; }
    else {
        h[1] = 0x80 | 127;
        for (int i = 0; i < 8; i++) h[2 + i] = (uint8_t)((uint64_t)n >> (56 - 8 * i));
        hl = 10;
    }
    uint32_t mask = next_mask();
    memcpy(h + hl, &mask, 4);
    uint8_t *dst = h + hl + 4;
    uint64_t m8 = (uint64_t)mask | (uint64_t)mask << 32;
    Py_ssize_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t x;
        memcpy(&x, payload + i, 8);
        x ^= m8;
        memcpy(dst + i, &x, 8);
    }
    const uint8_t *mb = (const uint8_t *)&mask;
    for (; i < n; i++) dst[i] = (uint8_t)payload[i] ^ mb[i & 3];
    return (char *)dst + n;
}

/* ---------------------------------------------------------------- Python face */

static void template_free(PyObject *cap) {
    Template *t = PyCapsule_GetPointer(cap, "mm.order.Template");
    if (!t) return;
    PyMem_Free(t->tail);
    PyMem_Free(t->frame);
    PyMem_Free(t->lits);
    PyMem_Free(t);
}

static int parse_pieces(PyObject *seq, Piece **out, Py_ssize_t *n, char **lits, size_t *used,
                        size_t cap) {
    PyObject *fast = PySequence_Fast(seq, "pieces must be a sequence of (kind, bytes)");
    if (!fast) return -1;
    *n = PySequence_Fast_GET_SIZE(fast);
    *out = PyMem_Calloc((size_t)(*n ? *n : 1), sizeof(Piece));
    for (Py_ssize_t i = 0; i < *n; i++) {
        PyObject *item = PySequence_Fast_GET_ITEM(fast, i);
        int kind;
        const char *lit;
        Py_ssize_t len;
        if (!PyArg_ParseTuple(item, "iy#", &kind, &lit, &len)) { Py_DECREF(fast); return -1; }
        if (kind < 0 || kind >= P_KINDS || *used + (size_t)len > cap) {
            PyErr_SetString(PyExc_ValueError, "bad piece");
            Py_DECREF(fast);
            return -1;
        }
        memcpy(*lits + *used, lit, (size_t)len);
        (*out)[i].kind = kind;
        (*out)[i].lit = *lits + *used;   /* fixed up below: lits never moves */
        (*out)[i].len = len;
        *used += (size_t)len;
    }
    Py_DECREF(fast);
    return 0;
}

/* template(tail_pieces, frame_pieces, price_exp, qty_exp, key or None, head) */
static PyObject *py_template(PyObject *m, PyObject *args) {
    PyObject *tail, *frame, *key;
    int pexp, qexp;
    const char *head;
    Py_ssize_t head_len;
    if (!PyArg_ParseTuple(args, "OOiiOy#", &tail, &frame, &pexp, &qexp, &key, &head, &head_len))
        return NULL;
    if (pexp < -18 || pexp > 18 || qexp < -18 || qexp > 18) {
        PyErr_SetString(PyExc_ValueError, "exponent out of range");
        return NULL;
    }
    Template *t = PyMem_Calloc(1, sizeof(Template));
    t->pexp = pexp;
    t->qexp = qexp;
    size_t cap = 8192, used = 0;
    t->lits = PyMem_Malloc(cap);
    if (parse_pieces(tail, &t->tail, &t->ntail, &t->lits, &used, cap) < 0 ||
        parse_pieces(frame, &t->frame, &t->nframe, &t->lits, &used, cap) < 0) {
        PyMem_Free(t->tail); PyMem_Free(t->frame); PyMem_Free(t->lits); PyMem_Free(t);
        return NULL;
    }
    if (key != Py_None) {
        const char *k;
        Py_ssize_t klen;
        if (PyBytes_AsStringAndSize(key, (char **)&k, &klen) < 0) {
            PyMem_Free(t->tail); PyMem_Free(t->frame); PyMem_Free(t->lits); PyMem_Free(t);
            return NULL;
        }
        uint8_t kb[64] = {0}, ipad[64], opad[64];
        if (klen > 64) {
            sha256_finish(IV256, 0, (const uint8_t *)k, (size_t)klen, kb);
        } else {
            memcpy(kb, k, (size_t)klen);
        }
        for (int i = 0; i < 64; i++) { ipad[i] = kb[i] ^ 0x36; opad[i] = kb[i] ^ 0x5c; }
        memcpy(t->inner, IV256, sizeof IV256);
        sha256_blocks(t->inner, ipad, 1);
        memcpy(t->outer, IV256, sizeof IV256);
        sha256_blocks(t->outer, opad, 1);
        size_t whole = (size_t)head_len & ~(size_t)63;
        if (whole) sha256_blocks(t->inner, (const uint8_t *)head, whole / 64);
        t->inner_done = 64 + whole;
        t->head_rem_len = (size_t)head_len - whole;
        memcpy(t->head_rem, head + whole, t->head_rem_len);
        t->signed_ = 1;
        memset(kb, 0, sizeof kb); memset(ipad, 0, sizeof ipad); memset(opad, 0, sizeof opad);
    }
    return PyCapsule_New(t, "mm.order.Template", template_free);
}

static int ensure_room(PyObject *out, Py_ssize_t need) {
    Py_ssize_t size = PyByteArray_GET_SIZE(out);
    if (size >= need) return 0;
    Py_ssize_t grow = size * 2 > need ? size * 2 : need + 4096;
    return PyByteArray_Resize(out, grow);
}

/* render(tpl, out, offset, rid, cid, orig_cid, price, qty, ts, vid) -> new offset */
static PyObject *py_render(PyObject *m, PyObject *const *a, Py_ssize_t nargs) {
    if (nargs != 10) {
        PyErr_SetString(PyExc_TypeError, "render takes 10 arguments");
        return NULL;
    }
    Template *t = PyCapsule_GetPointer(a[0], "mm.order.Template");
    if (!t) return NULL;
    PyObject *out = a[1];
    if (!PyByteArray_Check(out)) {
        PyErr_SetString(PyExc_TypeError, "out must be a bytearray");
        return NULL;
    }
    Py_ssize_t off = PyLong_AsSsize_t(a[2]);
    Values v = {0};
    v.rid = PyLong_AsLongLong(a[3]);
    if (PyBytes_AsStringAndSize(a[4], (char **)&v.cid, &v.cid_len) < 0) return NULL;
    if (a[5] != Py_None && PyBytes_AsStringAndSize(a[5], (char **)&v.orig, &v.orig_len) < 0)
        return NULL;
    v.price = PyLong_AsLongLong(a[6]);
    v.qty = PyLong_AsLongLong(a[7]);
    v.ts = PyLong_AsLongLong(a[8]);
    v.vid = PyLong_AsLongLong(a[9]);
    if (PyErr_Occurred()) return NULL;
    char sig[64];
    if (t->signed_) {
        uint8_t buf[1024 + 64];
        memcpy(buf, t->head_rem, t->head_rem_len);
        char *e = render_pieces(t, t->tail, t->ntail, &v, (char *)buf + t->head_rem_len, 1024);
        if (!e) { PyErr_SetString(PyExc_ValueError, "signed payload too long"); return NULL; }
        uint8_t inner[32], digest[32];
        sha256_finish(t->inner, t->inner_done, buf, (size_t)(e - (char *)buf), inner);
        sha256_finish(t->outer, 64, inner, 32, digest);
        for (int i = 0; i < 32; i++) { sig[2 * i] = HEX[digest[i] >> 4]; sig[2 * i + 1] = HEX[digest[i] & 15]; }
        v.sig = sig;
    }
    char payload[2048];
    char *pe = render_pieces(t, t->frame, t->nframe, &v, payload, sizeof payload);
    if (!pe) { PyErr_SetString(PyExc_ValueError, "request too long"); return NULL; }
    Py_ssize_t n = pe - payload;
    if (off < 0 || off > PyByteArray_GET_SIZE(out) || ensure_room(out, off + n + 14) < 0) {
        if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "bad offset");
        return NULL;
    }
    char *end = put_frame(PyByteArray_AS_STRING(out) + off, payload, n);
    return PyLong_FromSsize_t(end - PyByteArray_AS_STRING(out));
}

/* frame(out, offset, payload) -> new offset: a masked text frame of an already built request */
static PyObject *py_frame(PyObject *m, PyObject *const *a, Py_ssize_t nargs) {
    if (nargs != 3 || !PyByteArray_Check(a[0])) {
        PyErr_SetString(PyExc_TypeError, "frame(out: bytearray, offset, payload)");
        return NULL;
    }
    Py_ssize_t off = PyLong_AsSsize_t(a[1]);
    Py_buffer b;
    if (PyObject_GetBuffer(a[2], &b, PyBUF_SIMPLE) < 0) return NULL;
    if (off < 0 || off > PyByteArray_GET_SIZE(a[0]) || ensure_room(a[0], off + b.len + 14) < 0) {
        PyBuffer_Release(&b);
        if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "bad offset");
        return NULL;
    }
    char *base = PyByteArray_AS_STRING(a[0]);
    char *end = put_frame(base + off, b.buf, b.len);
    PyBuffer_Release(&b);
    return PyLong_FromSsize_t(end - base);
}

/* sha256(data) -> digest: the same code the signer runs (tests compare it with hashlib) */
static PyObject *py_sha256(PyObject *m, PyObject *arg) {
    Py_buffer b;
    if (PyObject_GetBuffer(arg, &b, PyBUF_SIMPLE) < 0) return NULL;
    uint8_t d[32];
    sha256_finish(IV256, 0, b.buf, (size_t)b.len, d);
    PyBuffer_Release(&b);
    return PyBytes_FromStringAndSize((const char *)d, 32);
}

static PyObject *py_payload(PyObject *m, PyObject *const *a, Py_ssize_t nargs) {
    /* payload(tpl, rid, cid, orig_cid, price, qty, ts, vid, frame: bool) -> the rendered tail
     * (frame=False, unsigned) or the JSON request (frame=True): for tests */
    if (nargs != 9) { PyErr_SetString(PyExc_TypeError, "payload takes 9 arguments"); return NULL; }
    Template *t = PyCapsule_GetPointer(a[0], "mm.order.Template");
    if (!t) return NULL;
    Values v = {0};
    v.rid = PyLong_AsLongLong(a[1]);
    if (PyBytes_AsStringAndSize(a[2], (char **)&v.cid, &v.cid_len) < 0) return NULL;
    if (a[3] != Py_None && PyBytes_AsStringAndSize(a[3], (char **)&v.orig, &v.orig_len) < 0)
        return NULL;
    v.price = PyLong_AsLongLong(a[4]);
    v.qty = PyLong_AsLongLong(a[5]);
    v.ts = PyLong_AsLongLong(a[6]);
    v.vid = PyLong_AsLongLong(a[7]);
    int frame = PyObject_IsTrue(a[8]);
    if (PyErr_Occurred()) return NULL;
    char sig[64];
    memset(sig, '0', 64);
    v.sig = sig;
    char buf[2048];
    char *e = frame ? render_pieces(t, t->frame, t->nframe, &v, buf, sizeof buf)
                    : render_pieces(t, t->tail, t->ntail, &v, buf, sizeof buf);
    if (!e) { PyErr_SetString(PyExc_ValueError, "too long"); return NULL; }
    return PyBytes_FromStringAndSize(buf, e - buf);
}

static PyObject *py_accelerated(PyObject *m, PyObject *noargs) {
    return PyBool_FromLong(sha256_blocks != sha256_blocks_c);
}

static PyMethodDef methods[] = {
    {"template", py_template, METH_VARARGS, "compile a request template"},
    {"render", (PyCFunction)(void (*)(void))py_render, METH_FASTCALL, "append one order frame"},
    {"frame", (PyCFunction)(void (*)(void))py_frame, METH_FASTCALL, "append one text frame"},
    {"payload", (PyCFunction)(void (*)(void))py_payload, METH_FASTCALL, "render (tests)"},
    {"sha256", py_sha256, METH_O, "SHA-256 digest (tests)"},
    {"accelerated", py_accelerated, METH_NOARGS, "True when SHA-256 runs on the SHA extensions"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef moduledef = {PyModuleDef_HEAD_INIT, "engine._order",
                                       "Order requests rendered, signed and framed in C", -1,
                                       methods};

PyMODINIT_FUNC PyInit__order(void) {
    PyObject *mod = PyModule_Create(&moduledef);
    if (!mod) return NULL;
#if defined(__x86_64__)
    {   /* CPUID leaf 7: EBX bit 29 = SHA extensions; leaf 1: ECX bit 19 = SSE4.1 */
        unsigned int a, b, c, d;
        __asm__ volatile("cpuid" : "=a"(a), "=b"(b), "=c"(c), "=d"(d) : "a"(7), "c"(0));
        unsigned int sha = (b >> 29) & 1;
        __asm__ volatile("cpuid" : "=a"(a), "=b"(b), "=c"(c), "=d"(d) : "a"(1), "c"(0));
        if (sha && ((c >> 19) & 1) && !getenv("MM_NO_SHA_NI")) sha256_blocks = sha256_blocks_ni;
    }
#endif
    uint64_t seed;
    if (getrandom(&seed, sizeof seed, 0) == sizeof seed && seed) rng_state = seed;
    PyModule_AddIntConstant(mod, "P_LIT", P_LIT);
    PyModule_AddIntConstant(mod, "P_CID", P_CID);
    PyModule_AddIntConstant(mod, "P_ORIG_CID", P_ORIG_CID);
    PyModule_AddIntConstant(mod, "P_PRICE", P_PRICE);
    PyModule_AddIntConstant(mod, "P_QTY", P_QTY);
    PyModule_AddIntConstant(mod, "P_TS", P_TS);
    PyModule_AddIntConstant(mod, "P_RID", P_RID);
    PyModule_AddIntConstant(mod, "P_SIG", P_SIG);
    PyModule_AddIntConstant(mod, "P_VID", P_VID);
    return mod;
}
