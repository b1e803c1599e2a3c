/* engine._feed: the feed's per-frame work in C, so a frame costs no Python objects. This file
 * is the module (its types and functions); the parts live in their own files and share
 * mm_feed.h:
 *
 *  mm_feed_publish.c       Publisher: the md ring's producer (dedupe, stamp, write, commit,
 *                          hop histograms, stale/fresh marks); engine/feed/publish.py's face
 *  mm_feed_decode.c        BookDecoder: a Binance combined-stream bookTicker (JSON) or an SBE
 *                          bestBidAsk decoded and published in one call, every other frame
 *                          handed to the adapter's Python decoder
 *  mm_feed_stamps.c        StampedReader: a frame's arrival from the kernel's receive stamp
 *                          (SO_TIMESTAMPNS); engine/feed/stamps.py's face
 *  mm_feed_alloc_probe.c   count_allocations: heap allocations of a call (tests, benchmarks)
 */
#include "mm_feed.h"

static PyMethodDef module_methods[] = {
    {"count_allocations", (PyCFunction)(void (*)(void))py_count_allocations, METH_FASTCALL,
     "count_allocations(fn, *args) -> (allocator calls during fn(*args), its result)"},
    {NULL}};

static struct PyModuleDef moduledef = {
    PyModuleDef_HEAD_INIT, "engine._feed",
    "The feed's per-frame work in C: publisher, book fast paths, kernel stamps (mm_feed*.c)", -1,
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
