"""Build the native parts: engine._native (atomics, futex park/wake, ring protocol, histogram),
engine._feed (the feed's per-frame work: md publisher, book fast paths, kernel receive stamps)
and engine._order (order requests rendered, HMAC-signed and framed for the sender)."""
from setuptools import Extension, setup

CFLAGS = ["-O2", "-std=gnu11", "-Wall", "-Wextra", "-Wno-unused-parameter"]

setup(
    ext_modules=[
        # the module and its parts; mm_native_private.h is what they share
        Extension("engine._native",
                  sources=["native/mm_native.c", "native/mm_atomics.c", "native/mm_ring.c",
                           "native/mm_park.c", "native/mm_board.c", "native/mm_hist.c"],
                  depends=["native/mm_native_private.h", "native/mm_ring.h"],
                  include_dirs=["native"], extra_compile_args=CFLAGS),
        # the module and its parts; mm_feed.h is what they share (hot helpers static inline)
        Extension("engine._feed",
                  sources=["native/mm_feed.c", "native/mm_feed_publish.c",
                           "native/mm_feed_decode.c", "native/mm_feed_stamps.c",
                           "native/mm_feed_alloc_probe.c"],
                  depends=["native/mm_feed.h", "native/mm_ring.h"], include_dirs=["native"],
                  extra_compile_args=CFLAGS),
        Extension("engine._order", sources=["native/mm_order.c"], extra_compile_args=CFLAGS),
    ]
)
