"""Markouts: the book mid after each fill, from the book board (engine/ring/board.py), stored
with the fill (the mids themselves, in the quote asset). A fill's markout at horizon h is
side * (mid(t + h) - price) / price, in basis points (side +1 buy, -1 sell;
queries.markout_bps): negative means the market moved against the fill (adverse selection)."""
from __future__ import annotations

import collections

HORIZONS = (("mid_100ms", 100_000_000), ("mid_1s", 1_000_000_000),
            ("mid_5s", 5_000_000_000), ("mid_30s", 30_000_000_000))
PENDING_MAX = 100_000        # fills waiting for their horizons (older ones are given up)


class Markouts:
    """Fills waiting for their horizons; `due(now_ns)` yields the updates to write."""

    def __init__(self, board, instruments):
        self.board = board
        self.scale = [10.0 ** i.pexp for i in instruments]
        self.pending: collections.deque = collections.deque(maxlen=PENDING_MAX)

    def mid(self, inst: int) -> float | None:
        """The board's newest mid of `inst` in the quote asset (None: no two-sided book)."""
        if self.board is None or inst >= self.board.count:
            return None
        rec = self.board.get(inst)
        if rec is None:
            return None
        bid, ask = int(rec["bid_px"][0]), int(rec["ask_px"][0])
        if bid <= 0 or ask <= 0:
            return None
        return (bid + ask) / 2 * self.scale[inst]

    def add(self, key: tuple, inst: int, t_fill_ns: int) -> None:
        """A fill seen at perf_counter_ns `t_fill_ns`: its horizons are watched from now."""
        self.pending.append([key, inst, t_fill_ns, 0])

    def due(self, now_ns: int) -> list[tuple[str, float, tuple]]:
        """(column, mid, fill key) for every horizon reached since the last call."""
        out = []
        keep = collections.deque(maxlen=PENDING_MAX)
        for item in self.pending:
            key, inst, t0, k = item
            while k < len(HORIZONS) and now_ns >= t0 + HORIZONS[k][1]:
                m = self.mid(inst)
                if m is not None:
                    out.append((HORIZONS[k][0], m, key))
                k += 1
            item[3] = k
            if k < len(HORIZONS):
                keep.append(item)
        self.pending = keep
        return out
