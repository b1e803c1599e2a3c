"""Order-rate windows the quoter checks before it asks for an order (compiled, hot path).

A window is one int64 array: a header, then B bucket counts, then the B bucket numbers they
hold. Time is wall-clock nanoseconds (the loop adds G_WALL_OFFSET to perf_counter_ns), so a
window kept in a file survives a restart of the engine: the venue's counters do not reset when
we restart, so ours must not either.

  take(w, t)    one order at time t: refused (False, nothing changed) when the orders of the
                last B buckets (the current one included) would exceed the limit
  refund(w, t)  give back an order taken at time t that was never sent (the sender refused it
                locally): only requests actually sent are charged
With B = window / width + 1 buckets, every sliding window of the configured length lies inside
the B buckets counted, so no such window ever holds more than `limit` orders.
"""
from __future__ import annotations

import numpy as np
from numba import njit

W_LIMIT, W_WIDTH, W_HEAD, W_TOTAL, W_BUCKETS = 0, 1, 2, 3, 4   # header words
W_HEADER = 8

_jit = njit(cache=True, nogil=True, fastmath=False, _nrt=False)


def bucket_count(window_ns: int, width_ns: int) -> int:
    """Buckets of `width_ns` that hold every sliding window of `window_ns`."""
    return -(-window_ns // width_ns) + 1


def window_words(window_ns: int, width_ns: int) -> int:
    return W_HEADER + 2 * bucket_count(window_ns, width_ns)


def new_window(limit: int, window_ns: int, width_ns: int) -> np.ndarray:
    """An empty window of `limit` orders per `window_ns`, counted in `width_ns` buckets."""
    w = np.zeros(window_words(window_ns, width_ns), np.int64)
    init_window(w, limit, width_ns, bucket_count(window_ns, width_ns))
    return w


def init_window(w: np.ndarray, limit: int, width_ns: int, buckets: int) -> None:
    """(Re)initialise `w` in place: no order counted."""
    w[:] = 0
    w[W_LIMIT] = limit
    w[W_WIDTH] = width_ns
    w[W_BUCKETS] = buckets
    w[W_HEAD] = -1
    w[W_HEADER + buckets:] = -1


def matches(w: np.ndarray, limit: int, width_ns: int, buckets: int) -> bool:
    return (int(w[W_LIMIT]) == limit and int(w[W_WIDTH]) == width_ns
            and int(w[W_BUCKETS]) == buckets)


@_jit
def _advance(w, bucket):
    """Move the window's head to `bucket`, emptying every bucket that fell out of it."""
    head = w[W_HEAD]
    if bucket <= head:
        return
    b = w[W_BUCKETS]
    start = head + 1
    if bucket - head > b:
        start = bucket - b + 1
    for k in range(start, bucket + 1):
        slot = k % b
        w[W_TOTAL] -= w[W_HEADER + slot]
        w[W_HEADER + slot] = 0
        w[W_HEADER + b + slot] = k
    w[W_HEAD] = bucket


@_jit
def take(w, t):
    """Count one order at wall time t, or refuse (False) with nothing changed."""
    bucket = t // w[W_WIDTH]
    _advance(w, bucket)
    if bucket < w[W_HEAD]:                 # the clock went back: count it in the head bucket
        bucket = w[W_HEAD]
    if w[W_TOTAL] + 1 > w[W_LIMIT]:
        return False
    w[W_HEADER + bucket % w[W_BUCKETS]] += 1
    w[W_TOTAL] += 1
    return True


@_jit
def refund(w, t):
    """Un-count an order taken at wall time t that was never sent (no-op once it left)."""
    b = w[W_BUCKETS]
    bucket = t // w[W_WIDTH]
    if bucket > w[W_HEAD]:
        bucket = w[W_HEAD]
    slot = bucket % b
    if w[W_HEADER + b + slot] == bucket and w[W_HEADER + slot] > 0:
        w[W_HEADER + slot] -= 1
        w[W_TOTAL] -= 1
        return True
    return False


@_jit
def count(w, t):
    """Orders counted in the window that ends at wall time t."""
    _advance(w, t // w[W_WIDTH])
    return w[W_TOTAL]
