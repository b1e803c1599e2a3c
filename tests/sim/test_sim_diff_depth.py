"""The simulator's diff depth (engine/sim/diff_depth.py): `@depth@100ms` and `@depth` events chain
by U/u, the REST snapshot (`GET /api/v3/depth`, same port) is consistent with them (a client
that applies the events after it holds the simulator's book), and `drop_depth_events` makes a
gap on demand. The client side here is the feed's own http_get and DepthBook."""
from __future__ import annotations

import asyncio
import json
from decimal import Decimal

import websockets

from engine.feed.depth_book import APPLIED, BUFFERED, DROPPED, GAP, SYNCED, DepthBook
from engine.feed.http_get import http_get
from tests.support.sim_thread import SimThread


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 30))


def levels(side) -> list[tuple[int, int]]:
    return [(int(Decimal(p) * 100), int(Decimal(q) * 100_000)) for p, q in side]


async def snapshot(sim, symbol="BTCUSDT", limit=1000) -> dict:
    status, body = await http_get(f"{sim.rest_url}/api/v3/depth?symbol={symbol}&limit={limit}", 5)
    assert status == 200, body
    return json.loads(body)


def test_events_chain_and_the_snapshot_is_consistent_with_them():
    async def go(sim):
        url = sim.md_url + "/stream?streams=btcusdt@depth@100ms/btcusdt@depth"
        book = DepthBook()
        results = {"btcusdt@depth@100ms": [], "btcusdt@depth": []}
        slow: list[tuple[int, int]] = []
        async with websockets.connect(url) as ws:
            async with asyncio.timeout(10):
                while len(results["btcusdt@depth@100ms"]) < 25 or len(slow) < 2:
                    m = json.loads(await ws.recv())
                    d = m["data"]
                    assert d["e"] == "depthUpdate" and d["s"] == "BTCUSDT"
                    assert set(d) == {"e", "E", "s", "U", "u", "b", "a"}
                    if m["stream"] == "btcusdt@depth":
                        slow.append((d["U"], d["u"]))
                        continue
                    r = book.on_diff(d["U"], d["u"], -1, levels(d["b"]), levels(d["a"]))
                    results[m["stream"]].append(r)
                    if len(results["btcusdt@depth@100ms"]) == 3:
                        snap = await snapshot(sim)
                        assert book.on_snapshot(snap["lastUpdateId"], levels(snap["bids"]),
                                                levels(snap["asks"])) == SYNCED
                mine = book.levels()
                theirs = await snapshot(sim)
        fast = results["btcusdt@depth@100ms"]
        assert fast[:3] == [BUFFERED] * 3
        assert set(fast[3:]) <= {APPLIED, DROPPED} and fast.count(APPLIED) >= 15
        assert book.gaps == 0
        # the 1 s stream merges the 100 ms events: consecutive, non-overlapping ranges
        assert all(b[0] == a[1] + 1 for a, b in zip(slow, slow[1:]))
        # the snapshot is the stream's state: taken after the last event read, it is our book
        # (or newer by the events in flight: then its id is higher)
        if theirs["lastUpdateId"] == book.update_id:
            assert mine == (dict(levels(theirs["bids"])), dict(levels(theirs["asks"])))
        else:
            assert theirs["lastUpdateId"] > book.update_id
        best_bid, best_ask = max(mine[0]), min(mine[1])
        assert best_bid < best_ask
    with SimThread(event_rate=300, seed=11) as sim:
        run(go(sim))


def test_dropped_events_are_a_gap_and_a_new_snapshot_resyncs():
    async def go(sim):
        url = sim.md_url + "/ws/btcusdt@depth@100ms"
        book = DepthBook()
        out = []
        async with websockets.connect(url) as ws:
            async with asyncio.timeout(10):
                while len(out) < 30:
                    d = json.loads(await ws.recv())
                    r = book.on_diff(d["U"], d["u"], -1, levels(d["b"]), levels(d["a"]))
                    out.append(r)
                    if r in (BUFFERED, GAP) and not book.synced:
                        if len(out) == 10:
                            sim.drop_depth_events(2)
                        snap = await snapshot(sim)
                        book.on_snapshot(snap["lastUpdateId"], levels(snap["bids"]),
                                         levels(snap["asks"]))
                    elif len(out) == 10:
                        sim.drop_depth_events(2)
        assert out.count(GAP) == 1 and book.gaps == 1 and book.resyncs == 1 and book.synced
        assert sim.stats()["depth_events_dropped"] == 2
    with SimThread(event_rate=300, seed=12) as sim:
        run(go(sim))


def test_rest_depth_refuses_what_binance_refuses():
    async def go(sim):
        for query, code in (("symbol=NOPE", -1121), ("symbol=BTCUSDT&limit=0", -1100),
                            ("symbol=BTCUSDT&limit=x", -1100)):
            status, body = await http_get(f"{sim.rest_url}/api/v3/depth?{query}", 5)
            assert status == 400 and json.loads(body)["code"] == code
        status, _ = await http_get(f"{sim.rest_url}/api/v3/nothing", 5)
        assert status == 404
        snap = await snapshot(sim, limit=3)
        assert len(snap["bids"]) == len(snap["asks"]) == 3
    with SimThread(event_rate=100, seed=13) as sim:
        run(go(sim))
