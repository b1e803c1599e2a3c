/* engine._feed.count_allocations: how many heap allocations a call makes. Tests and benchmarks
 * only (it swaps the interpreter's allocators while the call runs): never on the feed's path.
 */
#include "mm_feed.h"

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
PyObject *py_count_allocations(PyObject *m, PyObject *const *a, Py_ssize_t nargs) {
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

