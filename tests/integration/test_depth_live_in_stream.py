"""Depth with the snapshot in the stream, live: the feed process (`mm feed`, venue bybit, stream
orderbook.50) against the small local venue of tests/feed/book_server.py (the simulator speaks
no Bybit market data), in a thread of this test. The process syncs its book from the
subscription's snapshot, a change lost by the venue is a gap: the md ring (the quoter's view)
shows the instrument stale (MD_DEPTH_BOOK|MD_STALE), the process re-subscribes the topic on
both connections by itself, and the venue's new snapshot makes it fresh (MD_DEPTH_BOOK|
MD_FRESH); the depth board then holds the venue's book."""
from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import time

import msgspec
import numpy as np
import pytest

from engine.config import EngineConfig, dump_json
from engine.control import Control
from engine.records import DEPTH_DTYPE, DEPTH_LEVELS, MD_DEPTH_BOOK, MD_DTYPE, MD_FRESH, MD_STALE
from engine.ring import Ring
from engine.ring.board import Board
from tests.feed.book_server import BookServer
from tests.feed.test_depth_bybit import BybitDialect
from tests.support.feed_process import read_until, stop_feed

pytestmark = pytest.mark.slow

START_TIMEOUT_S = 60
GAP_TIMEOUT_S = 10


class ServerThread:
    """BookServer on its own loop in a daemon thread; `call(fn)` runs fn there and waits."""

    def __init__(self, server: BookServer):
        self.server = server
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def __enter__(self) -> "ServerThread":
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self.server.__aenter__(), self.loop).result(10)
        return self

    def __exit__(self, *exc) -> None:
        try:
            asyncio.run_coroutine_threadsafe(self.server.__aexit__(), self.loop).result(10)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)
            self.loop.close()

    def call(self, fn, *args):
        async def run():
            return fn(*args)
        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(10)


def _depth0(recs: np.ndarray) -> np.ndarray:
    return recs[(recs["instrument"] == 0) & ((recs["kind"] & MD_DEPTH_BOOK) != 0)]


def test_the_feed_process_heals_a_bybit_gap_by_re_subscribing(tmp_path, instance):
    venue = BookServer(BybitDialect())
    with ServerThread(venue) as st:
        cfg = EngineConfig(instance=instance)
        cfg = msgspec.structs.replace(cfg, feed=msgspec.structs.replace(
            cfg.feed, venue="bybit", url=f"ws://127.0.0.1:{venue.port}/v5/public/linear",
            streams=("orderbook.50",), stale_after_ms=60_000))
        path = tmp_path / "cfg.json"
        path.write_bytes(dump_json(cfg))
        ring = Ring.open(instance, "md", MD_DTYPE, cfg.rings.md.capacity, cfg.rings.md.policy,
                         role="consumer")
        ctl = Control.open(instance)
        feed = subprocess.Popen([sys.executable, "-m", "engine.cli", "feed", "--config",
                                 str(path)], stderr=subprocess.PIPE, text=True)
        board = None
        got: list = []
        try:
            read_until(ring, feed, lambda r: len(_depth0(r)) >= 1 and
                        st.call(venue.subscribed) == 2, START_TIMEOUT_S, got)
            for k in range(3):
                st.call(venue.change, k)
            seq = st.call(lambda: venue.seq)
            read_until(ring, feed, lambda r: _depth0(r)["update_id"].max() == seq,
                        GAP_TIMEOUT_S, got)
            st.call(venue.lose_next)
            st.call(venue.change, 3)
            st.call(venue.change, 4)          # does not continue the book: a gap
            recs = read_until(ring, feed, lambda r: np.any(_depth0(r)["kind"] & MD_FRESH),
                               GAP_TIMEOUT_S, got)
            d = _depth0(recs)
            stale = np.flatnonzero(d["kind"] & MD_STALE)
            fresh = np.flatnonzero(d["kind"] & MD_FRESH)
            assert len(stale) == 1 and len(fresh) == 1 and fresh[0] == stale[0] + 1
            resync_ns = int(d["ts_published"][fresh[0]] - d["ts_published"][stale[0]])
            time.sleep(0.3)                   # the feed copies its counters every 100 ms
            c = ctl.counter_values("feed")
            assert c["depth_gaps"] == 1 and c["depth_resyncs"] == 1
            assert c["depth_resubscribes"] == 1 and c["depth_fetch_errors"] == 0
            assert c["depth_unsynced"] == 1   # ETHUSDT: the venue serves BTCUSDT alone
            assert st.call(lambda: venue.snapshots_sent) == 4   # 2 at start, 2 re-subscribed
            # the board holds the venue's book
            board = Board.open(instance, len(cfg.instruments), DEPTH_DTYPE, "depth")
            r = board.get(0)[0]
            assert r["synced"] == 1 and int(r["update_id"]) == st.call(lambda: venue.seq)
            bids = sorted(st.call(lambda: dict(venue.bids)).items(), reverse=True)[:DEPTH_LEVELS]
            asks = sorted(st.call(lambda: dict(venue.asks)).items())[:DEPTH_LEVELS]
            assert list(r["bid_px"][:r["n_bids"]]) == [p * 10 for p, _ in bids]
            assert list(r["bid_qty"][:r["n_bids"]]) == [q * 10 ** 5 for _, q in bids]
            assert list(r["ask_px"][:r["n_asks"]]) == [p * 10 for p, _ in asks]
            print(f"bybit via mm feed: {resync_ns / 1e6:.2f} ms from the stale mark to the "
                  f"fresh one (re-subscribed, loopback)")
        finally:
            stop_feed(feed, board, ring, ctl)
