"""One instrument's local L2 book, kept from a diff-depth stream and REST snapshots by Binance's
rules (../shared/PROTOCOLS.md section 1, "Local book rules"):

  unsynced   every diff event is buffered (the oldest dropped past `max_buffer`, counted);
  snapshot   lastUpdateId L: buffered events with u <= L are dropped; the first one left must
             straddle L + 1 (U <= L + 1 <= u), else the snapshot is older than the stream:
             TOO_OLD, fetch another. Then the buffered events apply in order, as below;
  synced     an event with u <= the book's id is a copy or older: dropped. An event that does
             not continue the book is a gap: spot checks U <= id + 1, USD-M futures checks
             pu == id (its U jumps); the book is unsynced, the event buffered, GAP returned
             (the caller marks the instrument stale and fetches a snapshot). Otherwise each
             level's quantity replaces the book's (0 deletes the level) and id = u.

Prices and quantities are int64 mantissas (engine/feed/fixed.py), levels [(px, qty), ...].
Each side keeps a dict price -> qty and a sorted list of its prices (bids negated, so both lists
read best first): the best N levels are a slice, a level change is a bisect and a memmove.
"""
from __future__ import annotations

from bisect import bisect_left
from typing import Sequence

# on_diff / on_snapshot results
APPLIED = 0       # the event changed the book
BUFFERED = 1      # unsynced: kept for the next snapshot
DROPPED = 2       # u <= the book's id (a copy, or older than the snapshot)
GAP = 3           # the event does not continue the book: unsynced, fetch a snapshot
SYNCED = 4        # the snapshot (and the buffered events after it) made the book
TOO_OLD = 5       # the snapshot is older than the first buffered event: fetch another

MAX_BUFFER = 10_000   # diff events kept while unsynced (a snapshot round trip at 100 ms: ~10)


class _Side:
    """One side: price -> qty, and the prices sorted best first (`sign` -1: bids)."""
    __slots__ = ("qty", "keys", "sign")

    def __init__(self, sign: int):
        self.qty: dict[int, int] = {}
        self.keys: list[int] = []
        self.sign = sign

    def set(self, levels) -> None:
        self.qty = {px: q for px, q in levels if q > 0}
        s = self.sign
        self.keys = sorted(s * px for px in self.qty)

    def update(self, px: int, q: int) -> None:
        book = self.qty
        k = self.sign * px
        if q > 0:
            if px not in book:
                keys = self.keys
                keys.insert(bisect_left(keys, k), k)
            book[px] = q
        elif px in book:
            del book[px]
            keys = self.keys
            del keys[bisect_left(keys, k)]

    def top(self, n: int) -> list[tuple[int, int]]:
        s, book = self.sign, self.qty
        return [(s * k, book[s * k]) for k in self.keys[:n]]


class DepthBook:
    """The L2 book of one instrument (see the module docstring for the rules). Events that
    carry a `pu` (USD-M futures, prev_id >= 0) chain by it instead of by U."""

    def __init__(self, max_buffer: int = MAX_BUFFER):
        self.max_buffer = max_buffer
        self.bids = _Side(-1)
        self.asks = _Side(1)
        self.synced = False
        self.update_id = -1           # the book's id: the u of the last event applied
        self._fresh = False           # no event applied since the snapshot (pu cannot chain yet)
        self._buffer: list[tuple] = []
        self._ever_synced = False
        # counters
        self.gaps = self.resyncs = self.snapshots = self.too_old = 0
        self.buffered = self.dropped = self.applied = self.buffer_overflows = 0

    # ------------------------------------------------------------------ the stream
    def on_diff(self, first_id: int, last_id: int, prev_id: int,
                bids: Sequence[tuple[int, int]], asks: Sequence[tuple[int, int]]) -> int:
        """One diff event: U = first_id, u = last_id, pu = prev_id (-1: none). Returns
        APPLIED, BUFFERED, DROPPED or GAP."""
        if not self.synced:
            self._keep((first_id, last_id, prev_id, bids, asks))
            return BUFFERED
        r = self._apply(first_id, last_id, prev_id, bids, asks)
        if r == GAP:
            self.gaps += 1
            self.synced = False
            self._buffer = []
            self._keep((first_id, last_id, prev_id, bids, asks))
        return r

    def _keep(self, event: tuple) -> None:
        buf = self._buffer
        if len(buf) >= self.max_buffer:
            del buf[0]
            self.buffer_overflows += 1
        buf.append(event)
        self.buffered += 1

    def _apply(self, first_id, last_id, prev_id, bids, asks) -> int:
        book_id = self.update_id
        if last_id <= book_id:
            self.dropped += 1
            return DROPPED
        if prev_id >= 0 and prev_id == book_id:
            pass                                     # USD-M: chained by pu
        elif prev_id >= 0 and not self._fresh:
            return GAP
        elif first_id > book_id + 1:                 # spot, or the straddle after a snapshot
            return GAP
        side = self.bids
        for px, q in bids:
            side.update(px, q)
        side = self.asks
        for px, q in asks:
            side.update(px, q)
        self.update_id = last_id
        self._fresh = False
        self.applied += 1
        return APPLIED

    # ------------------------------------------------------------------ the snapshot
    def first_buffered(self) -> int:
        """U of the first buffered event (-1: none): a snapshot must reach it."""
        return self._buffer[0][0] if self._buffer else -1

    def on_snapshot(self, last_update_id: int, bids: Sequence[tuple[int, int]],
                    asks: Sequence[tuple[int, int]]) -> int:
        """A REST snapshot. Returns SYNCED, TOO_OLD (keep buffering, fetch another) or GAP (the
        buffered events themselves have a hole after the snapshot: fetch another)."""
        self.snapshots += 1
        buf = [e for e in self._buffer if e[1] > last_update_id]
        self.dropped += len(self._buffer) - len(buf)
        if buf and buf[0][0] > last_update_id + 1:
            self.too_old += 1
            self._buffer = buf
            return TOO_OLD
        self.bids.set(bids)
        self.asks.set(asks)
        self.update_id = last_update_id
        self._fresh = True
        self.synced = True
        self._buffer = []
        for k, e in enumerate(buf):
            if self._apply(*e) == GAP:
                self.gaps += 1
                self.synced = False
                self._buffer = buf[k:]
                return GAP
        if self._ever_synced:
            self.resyncs += 1            # the first sync at start is not a resync
        self._ever_synced = True
        return SYNCED

    # ------------------------------------------------------------------ reading
    def top(self, n: int) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        """The best n levels of each side, best first: ([(px, qty)...], [(px, qty)...])."""
        return self.bids.top(n), self.asks.top(n)

    def levels(self) -> tuple[dict[int, int], dict[int, int]]:
        """Every level: (bids, asks) as price -> qty (copies)."""
        return dict(self.bids.qty), dict(self.asks.qty)

    def counters(self) -> dict[str, int]:
        return {"depth_gaps": self.gaps, "depth_resyncs": self.resyncs,
                "depth_snapshots": self.snapshots, "depth_snapshots_too_old": self.too_old,
                "depth_buffered": self.buffered, "depth_dropped": self.dropped,
                "depth_applied": self.applied, "depth_buffer_overflows": self.buffer_overflows}
