"""The quoter's belief, published: its per-instrument state (inventory, cash, book) and its
quote slots (which order each slot holds and in what state) live in one shared-memory segment,
`/mm.<instance>.belief` (mode 0600). The arrays the numba hot path works on ARE this memory, so
publishing costs nothing; `mm status`, monitors and tests read it to compare what the engine
believes with what the venue's book says.

A reader sees each 8-byte field atomically but a slot's fields can be mid-update: compare in a
quiet moment, or tolerate a momentary mismatch.
"""
from __future__ import annotations

import numpy as np

from engine.quoter.arrays import (INST_DTYPE, QUOTE_DTYPE, Q_CANCELING, Q_LIVE, Q_NONE,
                                  Q_PENDING, Q_UNKNOWN)
from engine.ring.segment import Segment, SegmentError, segment_name, unlink

MAGIC = 0x464C454942524D4D        # "MMRBELIF"
HEADER = 64                       # magic, n_inst, levels, inst itemsize, quote itemsize
STATE_NAMES = {Q_NONE: "none", Q_PENDING: "pending", Q_LIVE: "live", Q_CANCELING: "canceling",
               Q_UNKNOWN: "unknown"}


class Belief:
    """The mapped segment and its two arrays (`inst`, `quotes`)."""

    def __init__(self, seg: Segment):
        self.seg = seg
        w = seg.words
        if int(w[0]) != MAGIC:
            raise SegmentError(f"{seg.shm_name} is not a quoter belief segment")
        n, levels = int(w[1]), int(w[2])
        if int(w[3]) != INST_DTYPE.itemsize or int(w[4]) != QUOTE_DTYPE.itemsize:
            raise SegmentError(f"{seg.shm_name}: record sizes differ from this build's")
        self.inst = np.frombuffer(seg.buf, INST_DTYPE, n, HEADER)
        self.quotes = np.frombuffer(seg.buf, QUOTE_DTYPE, n * 2 * levels,
                                    HEADER + n * INST_DTYPE.itemsize).reshape(n, 2, levels)

    @classmethod
    def create(cls, instance: str, n_inst: int, levels: int) -> "Belief":
        """Create (replacing a leftover of a previous quoter) the instance's belief segment."""
        name = segment_name(instance, "belief")
        size = HEADER + n_inst * INST_DTYPE.itemsize + n_inst * 2 * levels * QUOTE_DTYPE.itemsize
        unlink(name)                   # only the quoter writes it; a stale one is replaced
        seg = Segment.create(name, size)
        seg.words[1:5] = (n_inst, levels, INST_DTYPE.itemsize, QUOTE_DTYPE.itemsize)
        seg.words[0] = MAGIC
        return cls(seg)

    @classmethod
    def attach(cls, instance: str, wait_s: float = 0.0) -> "Belief":
        return cls(Segment.attach(segment_name(instance, "belief"), wait_s=wait_s))

    def orders(self) -> dict[int, tuple]:
        """Every order a slot holds: engine order id -> (instrument, side, level, state name,
        price, qty, "current" | "replaced")."""
        out = {}
        n, _, levels = self.quotes.shape
        for i in range(n):
            for side in range(2):
                for level in range(levels):
                    q = self.quotes[i, side, level]
                    if int(q["state"]) != Q_NONE and int(q["order_id"]):
                        out[int(q["order_id"])] = (i, side, level, STATE_NAMES[int(q["state"])],
                                                   int(q["price"]), int(q["qty"]), "current")
                    if int(q["prev_id"]):
                        out[int(q["prev_id"])] = (i, side, level,
                                                  STATE_NAMES[int(q["prev_state"])],
                                                  int(q["prev_price"]), int(q["prev_qty"]),
                                                  "replaced")
        return out

    def close(self) -> None:
        self.inst = self.quotes = None
        self.seg.close()

    def unlink(self) -> None:
        self.seg.unlink()
