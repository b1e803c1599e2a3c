"""The book board: the latest top of book per instrument, beside the md ring.

A book record is the whole state of an instrument, so losing one is harmless as long as the
newest is kept. The md ring drops the newest record when it is full; the board never does:
the feed writes every book update to the board too (a seqlock slot per instrument, one writer)
and counts in `lost` the ring records it could not publish; the quoter, seeing `lost` move,
reads the board and acts on the freshest book (counted as conflated). The layout is in
native/mm_ring.h (MM_BOARD_*); the numba face reads slots with engine.native.nb_board_get.

The same layout, named "depth", holds each instrument's L2 book (records.DEPTH_DTYPE), written
by the feed on every diff it applies: the quoter reads it when an MD_DEPTH_BOOK record says an
instrument's depth changed. Its slots are larger (the slot size is a header word).
"""
from __future__ import annotations

import numpy as np

from engine import _native as C
from engine.ring.segment import Segment, SegmentError, segment_name


def slot_size(dtype: np.dtype) -> int:
    """Bytes per instrument: the seqlock word's own 128-byte pair, then the record rounded up to
    128 (256 for an MD record, as MM_BOARD_SLOT)."""
    return 128 + -(-dtype.itemsize // 128) * 128


class Board:
    """A mapped board segment for `count` instruments of `dtype` records."""

    def __init__(self, seg: Segment, dtype: np.dtype):
        w = seg.words
        if int(w[C.MM_BOARD_OFF_MAGIC // 8]) != np.uint64(C.BOARD_MAGIC).view(np.int64):
            raise SegmentError(f"{seg.shm_name} is not a book board")
        if int(w[C.MM_BOARD_OFF_RECORD // 8]) != dtype.itemsize:
            raise SegmentError(f"{seg.shm_name}: record size {int(w[2])}, expected "
                               f"{dtype.itemsize}")
        self.seg = seg
        self.addr = seg.addr
        self.count = int(w[C.MM_BOARD_OFF_COUNT // 8])
        self.slot = int(w[C.MM_BOARD_OFF_SLOT // 8])
        self.dtype = dtype
        self._scratch = np.zeros(1, dtype)

    @classmethod
    def open(cls, instance: str, count: int, dtype: np.dtype, name: str = "board") -> "Board":
        """Attach, or create (mode 0600) when absent: any of the instance's processes may come
        first. `name`: "board" (the top of book, MD records) or "depth" (DEPTH records)."""
        name = segment_name(instance, name)
        try:
            return cls(Segment.attach(name), dtype)
        except SegmentError as e:
            if "does not exist" not in str(e):
                raise
        slot = slot_size(dtype)
        try:
            seg = Segment.create(name, C.MM_BOARD_HEADER + count * slot)
        except SegmentError:                       # lost a creation race
            return cls(Segment.attach(name, wait_s=1.0), dtype)
        w = seg.words
        w[C.MM_BOARD_OFF_COUNT // 8] = count
        w[C.MM_BOARD_OFF_RECORD // 8] = dtype.itemsize
        w[C.MM_BOARD_OFF_SLOT // 8] = slot
        C.store_release(seg.addr + C.MM_BOARD_OFF_MAGIC,
                        int(np.uint64(C.BOARD_MAGIC).view(np.int64)))
        return cls(seg, dtype)

    @property
    def lost(self) -> int:
        """Ring records the feed could not publish (their state is here)."""
        return C.load_acquire(self.addr + C.MM_BOARD_OFF_LOST)

    def put(self, i: int, record: np.ndarray) -> None:
        """Writer (the feed): instrument i's newest record."""
        C.board_put(self.addr, i, record.ctypes.data)

    def get(self, i: int) -> np.ndarray | None:
        """Reader: instrument i's newest record (a copy), or None if never written."""
        if not 0 <= i < self.count:
            raise IndexError(i)
        if C.board_get(self.addr, i, self._scratch.ctypes.data) == 0:
            return None
        return self._scratch.copy()

    def close(self) -> None:
        self.seg.close()
