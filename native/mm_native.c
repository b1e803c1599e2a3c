/* engine._native: the few things Python and numba cannot express portably.
 *
 *  - the SPSC ring protocol (claim / commit / available / release / park / wake) over the layout
 *    in mm_ring.h, with acquire/release atomics and the full fences of the park handshake;
 *  - futex park/wake, the doorbell wake (a datagram to an abstract unix socket, for consumers
 *    that sleep in an event loop), a CPU-relax pause, a TSC read, CLOCK_MONOTONIC;
 *  - the log-linear latency histogram record.
 *
 * The parts, one file each, sharing mm_native_private.h: mm_atomics.c (primitives), mm_ring.c
 * (claim / commit / read / release), mm_park.c (futex, doorbell, park), mm_board.c (the book
 * board), mm_hist.c (the histogram); this file is the Python face and the symbol table.
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

#include "mm_native_private.h"

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
    ADD_INT(MM_BOARD_OFF_RECORD); ADD_INT(MM_BOARD_OFF_SLOT); ADD_INT(MM_BOARD_OFF_LOST);
    ADD_INT(MM_BOARD_HEADER);
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
