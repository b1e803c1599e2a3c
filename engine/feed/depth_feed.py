"""The feed's L2 books: one DepthBook per instrument (engine/feed/depth_book.py: the rules, the
venue's own as its adapter's DEPTH_RULES), fed by the venue adapter's diff events from every
redundant connection (the first copy of an event applies, later copies are dropped by id),
synced from snapshots, and published. Where snapshots come from is the rules' `in_stream`:

  - Binance: REST snapshots fetched on the feed's own loop (engine/feed/http_get.py: other
    instruments keep flowing meanwhile), at start and after a gap;
  - Bybit, OKX: the venue sends one in the stream when the book channel is subscribed (the
    adapter hands it to `on_snapshot`); after a gap the feed asks for a new one by
    re-subscribing the instrument's book channel on every open connection (`resubscribe`,
    set by the feed process: engine/feed/connection.py StreamGroup.resubscribe, which sends the
    adapter's `depth_resubscribe_frames(i)`: unsubscribe + subscribe), again after
    RESUBSCRIBE_WAIT_S while none came. A connection that reconnects subscribes anew anyway.

Publication:

  - each applied event or snapshot writes the instrument's best DEPTH_LEVELS levels to the
    depth board (engine/ring/board.py "depth", records.DEPTH_DTYPE; seqlocked, conflated)
    and one MD_DEPTH_BOOK record to the md ring (the quoter reads the board once per burst);
  - a gap writes the board unsynced and an MD_DEPTH_BOOK|MD_STALE record (the quoter pulls the
    instrument's quotes: never quoted through a gap), then asks for a snapshot at once; the
    resynced book goes out with MD_DEPTH_BOOK|MD_FRESH;
  - without a best bid/ask stream of its own, the book's top also goes out as MD_BBO.

A REST snapshot's URL and JSON are the venue's (the adapter's `depth_snapshot_url` and
`decode_depth_snapshot`). Nothing here runs per frame but `on_diff` and `on_snapshot`.
"""
from __future__ import annotations

import asyncio
from time import perf_counter_ns
from typing import Callable, Sequence

import numpy as np

from engine import _native as C
from engine.feed.depth_book import APPLIED, BINANCE, BUFFERED, GAP, SYNCED, DepthBook
from engine.feed.http_get import HttpError, http_get
from engine.records import (DEPTH_DTYPE, DEPTH_LEVELS, MD_BBO, MD_DEPTH_BOOK, MD_FRESH,
                            MD_STALE, packer)

# Counter names (the feed's control-segment counters; `mm status` shows them), summed over the
# instruments: DepthBook's, then the fetches' and the resync times.
DEPTH_COUNTERS = ("depth_gaps", "depth_resyncs", "depth_snapshots", "depth_snapshots_too_old",
                  "depth_buffered", "depth_dropped", "depth_applied", "depth_buffer_overflows",
                  "depth_fetch_errors", "depth_stale_marks", "depth_resync_us_last",
                  "depth_resync_us_max", "depth_unsynced", "depth_checksum_failures",
                  "depth_rewinds", "depth_resubscribes")
RETRY_S = (0.05, 0.1, 0.2, 0.5, 1.0, 2.0)   # between failed snapshot fetches (then stays at 2 s)
# In-stream venues: how long to wait for the snapshot a re-subscription asked for before asking
# again (then stays at 30 s: OKX allows 480 subscribe/unsubscribe per connection and hour).
RESUBSCRIBE_WAIT_S = (1.0, 2.0, 5.0, 10.0, 30.0)
FETCH_TIMEOUT_S = 5.0


_DEPTH_RECORD = packer(DEPTH_DTYPE, with_seq=True)   # the whole record, seq (0) first
_PAD = [0] * DEPTH_LEVELS


class DepthFeed:
    """The L2 books of the feed's instruments and their publication (module docstring).

    `venue` is an adapter instance (its DEPTH_RULES; for REST venues the snapshot URL and
    decoding), `board` the depth Board (None: books kept but not published, as in tests of the
    rules), `fetch(url, timeout_s) -> (status, body)` the HTTP GET (http_get). `emit_bbo`: also
    publish the book's top as MD_BBO (the feed has no best bid/ask stream). In-stream venues
    need `resubscribe(i) -> connections asked` set before a gap can heal (None: only a
    reconnect brings a snapshot)."""

    def __init__(self, instruments: Sequence, venue, rest_base: str, limit: int, sink,
                 board=None, emit_bbo: bool = False,
                 fetch: Callable = http_get, fetch_timeout_s: float = FETCH_TIMEOUT_S):
        self.instruments = tuple(instruments)
        self.venue = venue
        self.rules = getattr(venue, "DEPTH_RULES", BINANCE)
        self.urls = [] if self.rules.in_stream else \
            [venue.depth_snapshot_url(rest_base, ins, limit) for ins in self.instruments]
        self.books = [DepthBook(rules=self.rules) for _ in self.instruments]
        self.resubscribe: Callable[[int], int] | None = None
        self._synced_wait: dict[int, asyncio.Event] = {}
        self.sink = sink
        self.board = board
        self.emit_bbo = emit_bbo
        self.fetch = fetch
        self.fetch_timeout_s = fetch_timeout_s
        self._tasks: dict[int, asyncio.Task] = {}
        self._gap_ns = [0] * len(self.instruments)     # when the pending gap was seen
        self._marked_stale = [False] * len(self.instruments)
        self._buf = np.zeros(DEPTH_DTYPE.itemsize, np.uint8)
        self._buf_addr = self._buf.ctypes.data
        self._ts = [(0, 0)] * len(self.instruments)    # (ts_venue, ts_arrival) of the last diff
        # counters (the books keep theirs)
        self.fetch_errors = 0
        self.stale_marks = 0
        self.resubscribes = 0         # re-subscriptions sent (in-stream venues)
        self.resync_ns_last = 0       # the last gap -> resynced time
        self.resync_ns_max = 0
        self.closed = False

    # ------------------------------------------------------------------ per frame
    def on_diff(self, i: int, first_id: int, last_id: int, prev_id: int, bids, asks,
                ts_venue: int, checksum: int | None = None) -> int:
        """One decoded diff event of instrument i (levels as (px, qty) mantissas; with a
        checksum (px, qty, "price:size")). Returns 1 when it changed the published book,
        else 0."""
        book = self.books[i]
        r = book.on_diff(first_id, last_id, prev_id, bids, asks, checksum)
        if r == APPLIED:
            self._ts[i] = (ts_venue, self.sink.ts_arrival)
            self._publish(i, 0)
            return 1
        if r == GAP:
            self._gap_ns[i] = perf_counter_ns()
            self._mark_stale(i)
            self._resync(i)
        elif r == BUFFERED and not self.rules.in_stream:
            self._resync(i)           # start-up (or a fetch already running: no-op)
        return 0

    def on_snapshot(self, i: int, last_id: int, bids, asks, ts_venue: int,
                    checksum: int | None = None) -> int:
        """A snapshot of instrument i that came in the stream (Bybit, OKX). Returns 1 when it
        changed the published book, else 0."""
        r = self.books[i].on_stream_snapshot(last_id, bids, asks, checksum)
        if r == SYNCED:
            self._ts[i] = (ts_venue, self.sink.ts_arrival)
            self._synced(i)
            return 1
        if r == APPLIED:              # a newer snapshot over a synced book (a new subscription)
            self._ts[i] = (ts_venue, self.sink.ts_arrival)
            self._publish(i, 0)
            return 1
        if r == GAP:                  # its checksum failed: ask again
            if not self._gap_ns[i]:
                self._gap_ns[i] = perf_counter_ns()
            if not self._marked_stale[i]:
                self._mark_stale(i)
            self._resync(i)
        return 0

    # ------------------------------------------------------------------ publication
    def _publish(self, i: int, extra_kind: int) -> None:
        book = self.books[i]
        bids, asks = book.top(DEPTH_LEVELS)
        u = book.update_id
        ts_venue, ts_arrival = self._ts[i]
        if self.board is not None:
            nb, na = len(bids), len(asks)
            bp = [p for p, _ in bids] + _PAD[nb:]
            bq = [q for _, q in bids] + _PAD[nb:]
            ap = [p for p, _ in asks] + _PAD[na:]
            aq = [q for _, q in asks] + _PAD[na:]
            _DEPTH_RECORD.pack_into(self._buf, 0, 0, u, ts_venue, ts_arrival, perf_counter_ns(),
                                    i, 1 if book.synced else 0, nb, na, *bp, *bq, *ap, *aq)
            C.board_put(self.board.addr, i, self._buf_addr)
        b0 = bids[0] if bids else (0, 0)
        a0 = asks[0] if asks else (0, 0)
        sink = self.sink
        sink.notify(i, MD_DEPTH_BOOK | extra_kind, u, b0[0], b0[1], a0[0], a0[1], ts_venue)
        if self.emit_bbo and book.synced and not extra_kind & MD_STALE:
            sink.emit(i, MD_BBO, u, b0[0], b0[1], a0[0], a0[1], 0, 0, 0, ts_venue)

    def _mark_stale(self, i: int) -> None:
        self.stale_marks += 1
        self._marked_stale[i] = True
        self._publish(i, MD_STALE)

    # ------------------------------------------------------------------ snapshots
    def _resync(self, i: int) -> None:
        """Ask for a snapshot of instrument i (fetch it, or re-subscribe) unless that is on the
        way already."""
        if i in self._tasks or self.closed:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:          # no loop (a test driving the rules by hand)
            return
        work = self._resubscribe_until_synced if self.rules.in_stream \
            else self._snapshot_until_synced
        self._tasks[i] = loop.create_task(work(i))

    async def _resubscribe_until_synced(self, i: int) -> None:
        book = self.books[i]
        synced = self._synced_wait[i] = asyncio.Event()
        tries = 0
        try:
            while not book.synced and not self.closed:
                if self.resubscribe is not None and self.resubscribe(i):
                    self.resubscribes += 1
                try:
                    await asyncio.wait_for(
                        synced.wait(), RESUBSCRIBE_WAIT_S[min(tries, len(RESUBSCRIBE_WAIT_S) - 1)])
                except asyncio.TimeoutError:
                    if not book.synced:
                        self._log(f"depth of {self.instruments[i].symbol}: no snapshot after "
                                  f"re-subscribing; asking again")
                tries += 1
        finally:
            self._tasks.pop(i, None)
            self._synced_wait.pop(i, None)

    async def _snapshot_until_synced(self, i: int) -> None:
        book, url = self.books[i], self.urls[i]
        tries = 0
        try:
            while not book.synced and not self.closed:
                r = None
                try:
                    status, body = await self.fetch(url, self.fetch_timeout_s)
                    if status != 200:
                        raise HttpError(f"GET {url}: HTTP {status}: {body[:200]!r}")
                    last_id, bids, asks = self.venue.decode_depth_snapshot(body, i)
                except (HttpError, ValueError) as e:
                    self.fetch_errors += 1
                    self._log(f"depth snapshot of {self.instruments[i].symbol}: {e}")
                else:
                    r = book.on_snapshot(last_id, bids, asks)
                if r == SYNCED:
                    self._synced(i)
                    return
                # TOO_OLD or GAP: fetch again at once, the first time; errors back off
                if r is None or tries > 0:
                    await asyncio.sleep(RETRY_S[min(tries, len(RETRY_S) - 1)])
                tries += 1
        finally:
            self._tasks.pop(i, None)

    def _synced(self, i: int) -> None:
        if not self.rules.in_stream:
            self.sink.ts_arrival = perf_counter_ns()    # the record's arrival: the snapshot's
            self._ts[i] = (self._ts[i][0], self.sink.ts_arrival)
        fresh = self._marked_stale[i]
        self._marked_stale[i] = False
        self._publish(i, MD_FRESH if fresh else 0)
        waiting = self._synced_wait.get(i)
        if waiting is not None:
            waiting.set()
        if self._gap_ns[i]:
            took = perf_counter_ns() - self._gap_ns[i]
            self._gap_ns[i] = 0
            self.resync_ns_last = took
            self.resync_ns_max = max(self.resync_ns_max, took)

    async def close(self) -> None:
        """Cancel the snapshot fetches on the way."""
        self.closed = True
        tasks = list(self._tasks.values())
        for t in tasks:
            t.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    @staticmethod
    def _log(msg: str) -> None:
        from engine import proc

        proc.log("feed", msg)

    # ------------------------------------------------------------------ reporting
    def counters(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for b in self.books:
            for k, v in b.counters().items():
                out[k] = out.get(k, 0) + v
        out["depth_fetch_errors"] = self.fetch_errors
        out["depth_stale_marks"] = self.stale_marks
        out["depth_resubscribes"] = self.resubscribes
        out["depth_resync_us_last"] = self.resync_ns_last // 1000
        out["depth_resync_us_max"] = self.resync_ns_max // 1000
        out["depth_unsynced"] = sum(not b.synced for b in self.books)
        return out
