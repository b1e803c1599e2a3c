"""One instrument's local L2 book, kept from a diff-depth stream by a venue's sequence rules.

Where the snapshot comes from and how one event continues the book are the venue's: a rules
object (BINANCE, BYBIT, OKX below; the adapter names its own as DEPTH_RULES) answers
`follows(book_id, first_id, last_id, prev_id, fresh)` with APPLIED (apply it), DROPPED (a copy
or older) or GAP, says whether snapshots come in the stream (`in_stream`), and verifies a
venue's checksum after each change. Everything else (the levels, buffering, counters) is one
mechanism for every venue.

Binance (../shared/PROTOCOLS.md section 1, "Local book rules"; snapshots over REST):

  unsynced   every diff event is buffered (the oldest dropped past `max_buffer`, counted);
  snapshot   lastUpdateId L: buffered events with u <= L are dropped; the first one left must
             straddle L + 1 (U <= L + 1 <= u), else the snapshot is older than the stream:
             TOO_OLD, fetch another. Then the buffered events apply in order, as below;
  synced     an event with u <= the book's id is a copy or older: dropped. An event that does
             not continue the book is a gap: spot checks U <= id + 1, USD-M futures checks
             pu == id (its U jumps); the book is unsynced, the event buffered, GAP returned
             (the caller marks the instrument stale and fetches a snapshot). Otherwise each
             level's quantity replaces the book's (0 deletes the level) and id = u.

Bybit and OKX (snapshots in the stream, `on_stream_snapshot`): a snapshot resets the book
(unless it is no newer than the book: another connection's copy); while unsynced the deltas
are buffered and, after the snapshot, those that continue it apply (sorted by id: redundant
connections interleave); a gap unsyncs, and the caller asks the venue for a new snapshot by
re-subscribing. Bybit: u goes up by exactly 1 per message; a snapshot with u == 1 is a
service restart and overwrites. OKX: prevSeqId must equal the book's seqId (an idle repeat has
seqId == prevSeqId: nothing to apply); each message's CRC32 checksum of the best 25 levels must
match the book, else it is a gap too. A synced book that drops REWIND_DROPS events in a row
over REWIND_NS while applying none is a gap as well (the venue's ids went back, e.g. OKX
maintenance; a slower connection's backlog of copies is dropped in milliseconds).

Prices and quantities are int64 mantissas (engine/feed/fixed.py), levels [(px, qty), ...].
Each side keeps a dict price -> qty and a sorted list of its prices (bids negated, so both lists
read best first): the best N levels are a slice, a level change is a bisect and a memmove.
"""
from __future__ import annotations

import zlib
from bisect import bisect_left
from operator import itemgetter
from time import perf_counter_ns
from typing import Sequence

# on_diff / on_snapshot results
APPLIED = 0       # the event changed the book
BUFFERED = 1      # unsynced: kept for the next snapshot
DROPPED = 2       # u <= the book's id (a copy, or older than the snapshot)
GAP = 3           # the event does not continue the book (or its checksum fails): unsynced
SYNCED = 4        # the snapshot (and the buffered events after it) made the book
TOO_OLD = 5       # the snapshot is older than the first buffered event: fetch another

MAX_BUFFER = 10_000   # diff events kept while unsynced (a snapshot round trip at 100 ms: ~10)
REWIND_DROPS = 64     # in-stream venues: this many drops in a row, nothing applied, ...
REWIND_NS = 1_000_000_000   # ... over at least this long: the venue's ids went back (a slow
                            # connection's backlog of copies drains in far less)


class BinanceRules:
    """Diff events `U`..`u` (USD-M also `pu`), snapshots over REST (module docstring)."""
    name = "binance"
    in_stream = False             # snapshots: GET over REST (engine/feed/depth_feed.py)
    keeps_text = False            # no checksum
    rewind_drops = 0              # off: Binance's rules as they were

    @staticmethod
    def follows(book_id: int, first_id: int, last_id: int, prev_id: int, fresh: bool) -> int:
        if last_id <= book_id:
            return DROPPED
        if prev_id >= 0 and prev_id == book_id:
            return APPLIED                           # USD-M: chained by pu
        if prev_id >= 0 and not fresh:
            return GAP
        if first_id > book_id + 1:                   # spot, or the straddle after a snapshot
            return GAP
        return APPLIED

    @staticmethod
    def restart(last_id: int) -> bool:
        return False


class BybitRules(BinanceRules):
    """`orderbook.{depth}`: one id `u` per message, +1 each; a snapshot with u == 1 is a
    service restart (it overwrites whatever the book holds)."""
    name = "bybit"
    in_stream = True
    rewind_drops = REWIND_DROPS

    @staticmethod
    def follows(book_id: int, first_id: int, last_id: int, prev_id: int, fresh: bool) -> int:
        if last_id <= book_id:
            return DROPPED
        return APPLIED if last_id == book_id + 1 else GAP

    @staticmethod
    def restart(last_id: int) -> bool:
        return last_id == 1


class OkxRules(BinanceRules):
    """`books` / `books-l2-tbt` / `books50-l2-tbt`: `prevSeqId` must be the book's `seqId`
    (maintenance may set seqId lower: the chain still holds); each message's CRC32 `checksum`
    of the best 25 levels must match. A message without seqId (the API before 2022: prev_id
    -1, ts as its id) is ordered by ts; the checksum alone finds its gaps."""
    name = "okx"
    in_stream = True
    keeps_text = True              # the checksum is over the venue's own strings
    rewind_drops = REWIND_DROPS
    CHECKSUM_LEVELS = 25

    @staticmethod
    def follows(book_id: int, first_id: int, last_id: int, prev_id: int, fresh: bool) -> int:
        if prev_id < 0:
            return DROPPED if last_id < book_id else APPLIED
        if prev_id == book_id:
            return APPLIED         # an idle repeat (seqId == prevSeqId) applies nothing
        return DROPPED if last_id <= book_id else GAP

    @classmethod
    def checksum(cls, book: "DepthBook") -> int:
        """OKX's checksum of the book: CRC32 of `bid:size:ask:size:...` over the best 25
        levels of each side alternating (a side that runs out leaves the other's alone), as a
        signed 32-bit int."""
        n = cls.CHECKSUM_LEVELS
        bk, ak = book.bids.keys[:n], book.asks.keys[:n]
        bt, at = book.bids.text, book.asks.text
        nb, na = len(bk), len(ak)
        if nb == na:
            parts = [t for k in range(nb) for t in (bt[-bk[k]], at[ak[k]])]
        else:
            parts = []
            for k in range(max(nb, na)):
                if k < nb:
                    parts.append(bt[-bk[k]])
                if k < na:
                    parts.append(at[ak[k]])
        c = zlib.crc32(":".join(parts).encode())
        return c - 0x1_0000_0000 if c & 0x8000_0000 else c


BINANCE, BYBIT, OKX = BinanceRules(), BybitRules(), OkxRules()


class _Side:
    """One side: price -> qty, and the prices sorted best first (`sign` -1: bids). With
    `keeps_text`, also price -> the venue's "price:size" text (for a checksum)."""
    __slots__ = ("qty", "keys", "sign", "text")

    def __init__(self, sign: int, keeps_text: bool = False):
        self.qty: dict[int, int] = {}
        self.keys: list[int] = []
        self.sign = sign
        self.text: dict[int, str] | None = {} if keeps_text else None

    def set(self, levels) -> None:
        self.qty = {lv[0]: lv[1] for lv in levels if lv[1] > 0}
        if self.text is not None:
            self.text = {lv[0]: lv[2] for lv in levels if lv[1] > 0}
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

    def update_text(self, px: int, q: int, text: str) -> None:
        self.update(px, q)
        if q > 0:
            self.text[px] = text
        else:
            self.text.pop(px, None)

    def top(self, n: int) -> list[tuple[int, int]]:
        s, book = self.sign, self.qty
        return [(s * k, book[s * k]) for k in self.keys[:n]]


_by_last_id = itemgetter(1)


class DepthBook:
    """The L2 book of one instrument (see the module docstring for the rules), by `rules`
    (BINANCE, BYBIT or OKX). Binance events that carry a `pu` (USD-M futures, prev_id >= 0)
    chain by it instead of by U. Levels are (px, qty) mantissas; with a checksum
    (rules.keeps_text) (px, qty, "price:size") as the venue wrote them."""

    def __init__(self, max_buffer: int = MAX_BUFFER, rules=BINANCE):
        self.max_buffer = max_buffer
        self.rules = rules
        self._follows = rules.follows
        self._checksum = rules.checksum if rules.keeps_text else None
        self._rewind_drops = rules.rewind_drops
        self.bids = _Side(-1, rules.keeps_text)
        self.asks = _Side(1, rules.keeps_text)
        self.synced = False
        self.update_id = -1           # the book's id: the u of the last event applied
        self._fresh = False           # no event applied since the snapshot (pu cannot chain yet)
        self._buffer: list[tuple] = []
        self._ever_synced = False
        self._drops_in_a_row = 0
        self._drops_since_ns = 0       # when the current run of drops began
        self.rewind_ns = REWIND_NS
        # counters
        self.gaps = self.resyncs = self.snapshots = self.too_old = 0
        self.buffered = self.dropped = self.applied = self.buffer_overflows = 0
        self.checksum_failures = self.rewinds = 0

    # ------------------------------------------------------------------ the stream
    def on_diff(self, first_id: int, last_id: int, prev_id: int,
                bids: Sequence[tuple], asks: Sequence[tuple], checksum: int | None = None) -> int:
        """One diff event: U = first_id, u = last_id, pu = prev_id (-1: none), the venue's
        checksum of the book after it (None: none). Returns APPLIED, BUFFERED, DROPPED or
        GAP."""
        if not self.synced:
            self._keep((first_id, last_id, prev_id, bids, asks, checksum))
            return BUFFERED
        r = self._apply(first_id, last_id, prev_id, bids, asks, checksum)
        if r == DROPPED and self._rewind_drops:
            n = self._drops_in_a_row = self._drops_in_a_row + 1
            if n == 1:
                self._drops_since_ns = perf_counter_ns()
            elif n >= self._rewind_drops \
                    and perf_counter_ns() - self._drops_since_ns >= self.rewind_ns:
                self.rewinds += 1       # the venue's ids went back: only a snapshot helps
                r = GAP
        if r == GAP:
            self.gaps += 1
            self.synced = False
            self._buffer = []
            self._keep((first_id, last_id, prev_id, bids, asks, checksum))
        return r

    def _keep(self, event: tuple) -> None:
        buf = self._buffer
        if len(buf) >= self.max_buffer:
            del buf[0]
            self.buffer_overflows += 1
        buf.append(event)
        self.buffered += 1

    def _apply(self, first_id, last_id, prev_id, bids, asks, checksum=None) -> int:
        r = self._follows(self.update_id, first_id, last_id, prev_id, self._fresh)
        if r != APPLIED:
            if r == DROPPED:
                self.dropped += 1
            return r
        if self._checksum is None:
            side = self.bids
            for px, q in bids:
                side.update(px, q)
            side = self.asks
            for px, q in asks:
                side.update(px, q)
        else:
            side = self.bids
            for px, q, t in bids:
                side.update_text(px, q, t)
            side = self.asks
            for px, q, t in asks:
                side.update_text(px, q, t)
        self.update_id = last_id
        self._fresh = False
        self._drops_in_a_row = 0
        if checksum is not None and self._bad_checksum(checksum):
            return GAP
        self.applied += 1
        return APPLIED

    # ------------------------------------------------------------------ the snapshot
    def first_buffered(self) -> int:
        """U of the first buffered event (-1: none): a snapshot must reach it."""
        return self._buffer[0][0] if self._buffer else -1

    def on_snapshot(self, last_update_id: int, bids: Sequence[tuple[int, int]],
                    asks: Sequence[tuple[int, int]]) -> int:
        """A REST snapshot (Binance). Returns SYNCED, TOO_OLD (keep buffering, fetch another) or
        GAP (the buffered events themselves have a hole after the snapshot: fetch another)."""
        self.snapshots += 1
        buf = [e for e in self._buffer if e[1] > last_update_id]
        self.dropped += len(self._buffer) - len(buf)
        if buf and buf[0][0] > last_update_id + 1:
            self.too_old += 1
            self._buffer = buf
            return TOO_OLD
        self._reset(last_update_id, bids, asks)
        for k, e in enumerate(buf):
            if self._apply(*e) == GAP:
                self.gaps += 1
                self.synced = False
                self._buffer = buf[k:]
                return GAP
        return self._became_synced()

    def on_stream_snapshot(self, last_id: int, bids: Sequence[tuple], asks: Sequence[tuple],
                           checksum: int | None = None) -> int:
        """A snapshot that came in the stream (Bybit, OKX). Returns DROPPED (the book is synced
        and at least as new: another connection's copy), GAP (its checksum fails: ask again),
        SYNCED (the book was unsynced: the snapshot and the buffered events that continue it
        make it) or APPLIED (a synced book overwritten by a newer snapshot)."""
        if self.synced and last_id <= self.update_id and not self.rules.restart(last_id):
            self.dropped += 1
            return DROPPED
        self.snapshots += 1
        was_synced = self.synced
        buf = self._buffer
        self._reset(last_id, bids, asks)
        if checksum is not None and self._bad_checksum(checksum):
            self.gaps += 1
            self.synced = False
            return GAP
        if buf:      # the deltas that came first (a faster connection): those continuing it
            buf.sort(key=_by_last_id)
            failures = self.checksum_failures
            for k, e in enumerate(buf):
                if self._apply(*e) == GAP:
                    if self.checksum_failures != failures:   # the book took a bad event
                        self.gaps += 1
                        self.synced = False
                        return GAP
                    self.dropped += len(buf) - k   # a hole: the snapshot's own stream has them
                    break
        if was_synced:
            return APPLIED
        return self._became_synced()

    def _bad_checksum(self, checksum: int) -> bool:
        """The venue's checksum of the book does not match ours (counted); False for rules
        without one."""
        if self._checksum is None or self._checksum(self) == checksum:
            return False
        self.checksum_failures += 1
        return True

    def _reset(self, last_id: int, bids, asks) -> None:
        self.bids.set(bids)
        self.asks.set(asks)
        self.update_id = last_id
        self._fresh = True
        self.synced = True
        self._drops_in_a_row = 0
        self._buffer = []

    def _became_synced(self) -> int:
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
                "depth_applied": self.applied, "depth_buffer_overflows": self.buffer_overflows,
                "depth_checksum_failures": self.checksum_failures,
                "depth_rewinds": self.rewinds}
