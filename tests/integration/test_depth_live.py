"""Depth, live: the feed process (`mm feed`) with `depth@100ms` against the simulator keeps an L2
book per instrument on the depth board; a gap injected in the simulator's diff stream is
counted, the md ring (the quoter's view) shows the instrument stale (MD_DEPTH_BOOK|MD_STALE)
then fresh (MD_DEPTH_BOOK|MD_FRESH) after exactly one snapshot, and the book after the resync
is the simulator's book, asked over REST."""
from __future__ import annotations

import asyncio
import json
import time

import numpy as np
import pytest

from engine.feed.fixed import parse_fixed
from engine.feed.http_get import http_get
from engine.records import DEPTH_DTYPE, DEPTH_LEVELS, MD_BBO, MD_DEPTH_BOOK, MD_FRESH, MD_STALE
from engine.ring.board import Board
from tests.support.feed_process import read_until, start_feed, stop_feed
from tests.support.sim_thread import SimThread

pytestmark = pytest.mark.slow

START_TIMEOUT_S = 60
GAP_TIMEOUT_S = 10


def _depth(recs: np.ndarray, i: int) -> np.ndarray:
    return recs[(recs["instrument"] == i) & ((recs["kind"] & MD_DEPTH_BOOK) != 0)]


async def _snapshot(rest_url: str, symbol: str) -> tuple[dict, int]:
    t0 = time.perf_counter_ns()
    status, body = await http_get(f"{rest_url}/api/v3/depth?symbol={symbol}&limit=1000", 5)
    assert status == 200
    return json.loads(body), time.perf_counter_ns() - t0


def test_a_depth_gap_is_counted_marked_stale_and_resynced_from_one_snapshot(tmp_path, instance):
    with SimThread(event_rate=300, trade_rate=30, seed=23) as sim:
        cfg, ring, ctl, feed = start_feed(tmp_path, instance, sim.md_url,
                                          streams=("bookTicker", "depth@100ms"),
                                          stale_after_ms=5000)
        board = None
        try:
            n = len(cfg.instruments)
            # synced: every instrument's depth published, fresh from its first snapshot
            read_until(ring, feed, lambda r: all(len(_depth(r, i)) >= 3 for i in range(n)),
                        START_TIMEOUT_S)
            board = Board.open(instance, n, DEPTH_DTYPE, "depth")
            before = ctl.counter_values("feed")
            assert before["depth_gaps"] == 0 and before["depth_snapshots"] >= n
            sim.drop_depth_events(1)
            recs = read_until(ring, feed, lambda r: any(
                np.any(_depth(r, i)["kind"] & MD_FRESH) for i in range(n)), GAP_TIMEOUT_S)
            i = next(i for i in range(n) if np.any(_depth(recs, i)["kind"] & MD_FRESH))
            d = _depth(recs, i)
            stale = np.flatnonzero(d["kind"] & MD_STALE)
            fresh = np.flatnonzero(d["kind"] & MD_FRESH)
            assert len(stale) == 1 and len(fresh) == 1 and stale[0] < fresh[0]
            # between the marks: nothing but the marks for this instrument's depth
            assert fresh[0] == stale[0] + 1
            resync_ns = int(d["ts_published"][fresh[0]] - d["ts_published"][stale[0]])
            time.sleep(0.25)                     # the feed copies its counters every 100 ms
            after = ctl.counter_values("feed")
            assert after["depth_gaps"] - before["depth_gaps"] == 1
            assert after["depth_resyncs"] - before["depth_resyncs"] == 1
            # one snapshot round trip: one snapshot fetched for the gap, none refused as old
            assert after["depth_snapshots"] - before["depth_snapshots"] == 1
            assert after["depth_snapshots_too_old"] == before["depth_snapshots_too_old"]
            assert after["depth_fetch_errors"] == 0 and after["depth_unsynced"] == 0
            assert 0 < after["depth_resync_us_last"] * 1000 <= resync_ns + 1_000_000
            # the best bid/ask kept flowing from bookTicker meanwhile
            assert np.any(recs["kind"] & MD_BBO)

            # the book after the resync is the simulator's: freeze the market, let the last
            # events land, compare the board with a REST snapshot of the same id
            sim.pause_market()
            symbol = cfg.instruments[i].symbol
            deadline = time.monotonic() + GAP_TIMEOUT_S
            while True:
                snap, rtt_ns = asyncio.run(_snapshot(sim.rest_url, symbol))
                rec = board.get(i)
                if rec is not None and int(rec["update_id"][0]) == snap["lastUpdateId"]:
                    break
                assert time.monotonic() < deadline, "the board never reached the snapshot's id"
                time.sleep(0.05)
            r = rec[0]
            assert r["synced"] == 1 and r["instrument"] == i
            ins = cfg.instruments[i]
            px = [parse_fixed(p, ins.pexp) for p, _ in snap["bids"][:DEPTH_LEVELS]]
            qty = [parse_fixed(q, ins.qexp) for _, q in snap["bids"][:DEPTH_LEVELS]]
            assert list(r["bid_px"][:r["n_bids"]]) == px and list(r["bid_qty"][:r["n_bids"]]) == qty
            px = [parse_fixed(p, ins.pexp) for p, _ in snap["asks"][:DEPTH_LEVELS]]
            qty = [parse_fixed(q, ins.qexp) for _, q in snap["asks"][:DEPTH_LEVELS]]
            assert list(r["ask_px"][:r["n_asks"]]) == px and list(r["ask_qty"][:r["n_asks"]]) == qty
            print(f"resync: {resync_ns / 1e6:.2f} ms from the stale mark to the fresh one; a "
                  f"snapshot round trip from the test: {rtt_ns / 1e6:.2f} ms")
        finally:
            stop_feed(feed, board, ring, ctl)
