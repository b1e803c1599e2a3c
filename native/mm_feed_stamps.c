/* engine._feed.StampedReader: the arrival stamp of a frame from the kernel's receive timestamp
 * (SO_TIMESTAMPNS) of the newest data read with it, so time a frame waits in the socket while
 * the feed is busy counts (engine/feed/stamps.py is its Python face).
 */
#include "mm_feed.h"

#include <errno.h>
#include <sys/socket.h>

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

PyTypeObject StampedReaderType = {
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

