"""Bybit's L2 book (`orderbook.{50|200|500|1000}.{symbol}`): BYBIT's sequence rules
(engine/feed/depth_book.py: the snapshot in the stream resets the book, `u` + 1 per delta, a
jump is a gap, u == 1 is a service restart), the real frames of ../shared/corpus/bybit (read at
test time) decoded by the adapter into the feed's DepthFeed, and the recovery without REST:
a gap marks the instrument stale and re-subscribes its topic; the new snapshot makes it fresh.

The simulator speaks no Bybit market data: the recovery is tested at the DepthFeed level with
the real adapter and a resubscribe hook, and end to end through a real StreamGroup against a
small WebSocket server on 127.0.0.1 in this test (tests/feed/book_server.py)."""
from __future__ import annotations

import asyncio
import json
import re
import time
from pathlib import Path

import pytest

from engine.feed.depth_book import APPLIED, BUFFERED, BYBIT, DROPPED, GAP, SYNCED, DepthBook
from engine.feed.depth_feed import DepthFeed
from engine.feed.venues import make_adapter
from engine.instruments import Instrument
from engine.records import MD_DEPTH_BOOK, MD_FRESH, MD_STALE
from tests.feed.book_server import Dialect, run_recovery_over_websocket
from tests.feed.decode_support import NotifySink, fixed

OB500 = "nautilus_2024-12-01_XRPUSDT_ob500.data.jsonl"
XRP = [Instrument(symbol="XRPUSDT", price_exp=-4, qty_exp=0)]


def book(u=100, bids=((99, 5), (98, 7)), asks=((101, 3), (103, 4))) -> DepthBook:
    b = DepthBook(rules=BYBIT)
    assert b.on_stream_snapshot(u, list(bids), list(asks)) == SYNCED
    return b


# ---------------------------------------------------------------- the rules
def test_a_snapshot_syncs_and_deltas_follow_by_u_plus_one():
    b = book(100)
    assert b.synced and b.update_id == 100 and b.snapshots == 1
    assert b.on_diff(101, 101, -1, [(99, 6), (97, 1)], [(101, 0)]) == APPLIED
    assert b.on_diff(101, 101, -1, [(99, 1)], []) == DROPPED          # another connection's copy
    assert b.on_diff(102, 102, -1, [], [(102, 2)]) == APPLIED
    assert b.top(5) == ([(99, 6), (98, 7), (97, 1)], [(102, 2), (103, 4)])
    assert (b.applied, b.dropped, b.gaps) == (2, 1, 0)


def test_a_jump_in_u_is_a_gap_and_only_a_new_snapshot_resyncs():
    b = book(100)
    assert b.on_diff(102, 102, -1, [(99, 1)], []) == GAP              # 101 lost
    assert not b.synced and b.gaps == 1
    assert b.top(1) == ([(99, 5)], [(101, 3)])                        # the gap changed nothing
    assert b.on_diff(103, 103, -1, [], []) == BUFFERED
    assert b.on_stream_snapshot(150, [(90, 1)], [(110, 1)]) == SYNCED  # older deltas dropped
    assert b.update_id == 150 and b.resyncs == 1
    assert b.on_diff(151, 151, -1, [(91, 2)], []) == APPLIED
    assert b.top(2) == ([(91, 2), (90, 1)], [(110, 1)])


def test_a_snapshot_no_newer_than_a_synced_book_is_a_copy_a_newer_one_overwrites():
    b = book(100)
    b.on_diff(101, 101, -1, [(99, 9)], [])
    assert b.on_stream_snapshot(100, [(1, 1)], [(200, 1)]) == DROPPED     # a slower connection's
    assert b.on_stream_snapshot(101, [(1, 1)], [(200, 1)]) == DROPPED
    assert b.top(1) == ([(99, 9)], [(101, 3)])
    assert b.on_stream_snapshot(120, [(50, 1)], [(60, 1)]) == APPLIED     # a new subscription's
    assert b.update_id == 120 and b.top(1) == ([(50, 1)], [(60, 1)]) and b.resyncs == 0


def test_u_1_is_a_service_restart_and_overwrites():
    b = book(5_000_000)
    assert b.on_stream_snapshot(1, [(10, 1)], [(11, 1)]) == APPLIED
    assert b.update_id == 1 and b.top(1) == ([(10, 1)], [(11, 1)])
    assert b.on_diff(2, 2, -1, [(10, 0)], []) == APPLIED
    assert b.levels() == ({}, {11: 1})


def test_deltas_of_a_faster_connection_before_the_snapshot_apply_after_it_in_u_order():
    b = DepthBook(rules=BYBIT)
    for u in (52, 51, 53, 52, 49):                   # two connections interleaved, one copy old
        assert b.on_diff(u, u, -1, [(90 + u - 50, u)], []) == BUFFERED
    assert b.on_stream_snapshot(50, [(80, 1)], [(120, 1)]) == SYNCED
    assert b.update_id == 53 and b.top(5)[0] == [(93, 53), (92, 52), (91, 51), (80, 1)]
    # a hole in what was buffered: the snapshot stands, the rest comes from its own stream
    b = DepthBook(rules=BYBIT)
    b.on_diff(12, 12, -1, [], [])
    assert b.on_stream_snapshot(10, [], []) == SYNCED and b.update_id == 10
    assert b.on_diff(11, 11, -1, [], []) == APPLIED


def test_a_synced_book_dropping_everything_saw_the_ids_go_back():
    b = book(1000)
    for k in range(3 * BYBIT.rewind_drops):          # a slow connection's backlog: drained fast
        assert b.on_diff(900 + k % 100, 900 + k % 100, -1, [], []) == DROPPED
    assert b.synced and b.rewinds == 0
    b = book(1000)
    b.rewind_ns = 0                                   # as if the drops had lasted a second
    for k in range(BYBIT.rewind_drops - 1):
        assert b.on_diff(10 + k, 10 + k, -1, [], []) == DROPPED
    assert b.on_diff(999, 999, -1, [], []) == GAP and b.rewinds == 1
    assert b.on_stream_snapshot(20, [], []) == SYNCED   # unsynced: any snapshot, however low


# ---------------------------------------------------------------- the corpus
def depth_feed(ins=XRP, streams=("orderbook.500",)):
    sink = NotifySink()
    probe = make_adapter("bybit", ins, streams)
    feed = DepthFeed(ins, probe, "", 0, sink)
    return make_adapter("bybit", ins, streams, depth=feed), feed, sink


def reference(messages, pexp, qexp) -> tuple[dict, dict]:
    """The book the messages make, by Decimal and dicts (the oracle)."""
    bids, asks = {}, {}
    for m in messages:
        if m["type"] == "snapshot":
            bids, asks = {}, {}
        for side, levels in ((bids, m["data"]["b"]), (asks, m["data"]["a"])):
            for p, q in levels:
                px, qty = fixed(p, pexp), fixed(q, qexp)
                if qty:
                    side[px] = qty
                else:
                    side.pop(px, None)
    return bids, asks


def test_the_ob500_capture_syncs_applies_every_delta_and_equals_the_oracle(corpus: Path):
    lines = (corpus / "bybit" / OB500).read_bytes().splitlines()
    assert len(lines) == 50
    adapter, feed, sink = depth_feed()
    b = feed.books[0]
    for f in lines:
        assert adapter.decode(memoryview(f), False, sink) == 1
    assert b.synced and b.gaps == 0 and b.snapshots == 1 and b.applied == 49
    assert adapter.counts["data"] == 50 and adapter.counts["malformed"] == 0
    msgs = [json.loads(f) for f in lines]
    assert b.update_id == msgs[-1]["data"]["u"]
    assert b.levels() == reference(msgs, -4, 0)
    (bb, ba) = b.top(1)
    assert bb[0][0] < ba[0][0]
    # each message published the book once; the first one (the snapshot) in sync, not fresh
    assert len(sink.notes) == 50 and all(n[1] == MD_DEPTH_BOOK for n in sink.notes)
    assert sink.notes[-1][2] == b.update_id
    # what applying a delta costs, decode included (a fresh feed, the snapshot first)
    adapter, feed, sink = depth_feed()
    adapter.decode(memoryview(lines[0]), False, sink)
    t0 = time.perf_counter_ns()
    for f in lines[1:]:
        adapter.decode(memoryview(f), False, sink)
    per = (time.perf_counter_ns() - t0) / 49
    assert feed.books[0].applied == 49
    print(f"bybit orderbook.500 delta decoded, applied and published: {per / 1000:.1f} us")


def test_a_delta_taken_out_of_the_capture_is_a_gap_marked_stale(corpus: Path):
    lines = (corpus / "bybit" / OB500).read_bytes().splitlines()
    adapter, feed, sink = depth_feed()
    asked = []
    feed.resubscribe = asked.append
    for f in lines[:20] + lines[21:]:
        adapter.decode(memoryview(f), False, sink)
    b = feed.books[0]
    assert b.gaps == 1 and not b.synced and b.applied == 19
    stale = [n for n in sink.notes if n[1] & MD_STALE]
    assert len(stale) == 1 and stale[0][2] == json.loads(lines[19])["data"]["u"]
    assert feed.counters()["depth_unsynced"] == 1 and feed.stale_marks == 1
    assert asked == []       # no event loop here: nothing sent (the loop test below sends)


def test_tardis_and_docs_book_messages_decode_and_chain(corpus: Path):
    msgs = [m for m in map(json.loads, (corpus / "bybit" / "tardis_mappers_test_bybit_v5_messages"
                                        ".jsonl").read_text().splitlines())
            if m.get("topic", "").startswith("orderbook.50.")]
    assert [m["type"] for m in msgs] == ["snapshot", "delta", "snapshot", "delta"]
    ins = [Instrument(symbol="BTCPERP", price_exp=-2, qty_exp=-6),
           Instrument(symbol="BTCUSDT", price_exp=-2, qty_exp=-6)]
    adapter, feed, sink = depth_feed(ins, ("orderbook.50",))
    for m in msgs:
        assert adapter.decode(memoryview(json.dumps(m).encode()), False, sink) == 1
    for i, b in enumerate(feed.books):
        assert b.synced and b.applied == 1 and b.gaps == 0
        mine = [m for m in msgs if m["data"]["s"] == ins[i].symbol]
        assert b.levels() == reference(mine, -2, -6)
    # the docs' snapshot (its elided levels, `...,`, taken out) and delta: a delta of another
    # day (u 177400507 after 18521288), so a gap, as it must be
    docs = json.loads((corpus / "bybit" / "docs_examples_v5_ws.json").read_text())
    books = [json.loads(re.sub(r",\s*\.\.\.,\s*\]", "]", blk["text"].replace("...,", "", 1)))
             for blk in docs["blocks"]
             if '"topic": "orderbook.50.' in blk["text"]]
    assert [m["type"] for m in books] == ["snapshot", "delta"]
    ins = [Instrument(symbol="BTCUSDT", price_exp=-2, qty_exp=-3)]
    adapter, feed, sink = depth_feed(ins, ("orderbook.50",))
    for m in books:
        assert adapter.decode(memoryview(json.dumps(m).encode()), False, sink) == 1
    b = feed.books[0]
    assert b.snapshots == 1 and b.gaps == 1 and not b.synced
    assert b.update_id == books[0]["data"]["u"] and b.levels() == reference(books[:1], -2, -3)


# ---------------------------------------------------------------- recovery (no REST)
def test_a_gap_re_subscribes_and_the_new_snapshot_makes_it_fresh(corpus: Path):
    lines = (corpus / "bybit" / OB500).read_bytes().splitlines()

    async def main():
        adapter, feed, sink = depth_feed()
        asked = []
        feed.resubscribe = lambda i: asked.append(i) or 2       # two connections asked
        for f in lines[:10] + lines[11:20]:
            adapter.decode(memoryview(f), False, sink)
        assert feed.books[0].gaps == 1
        await asyncio.sleep(0)                                  # the re-subscribing task runs
        assert asked == [0]                                     # asked once, not per delta
        # the venue's answer: the 49th message's state as a new snapshot
        msgs = [json.loads(f) for f in lines]
        bids, asks = reference(msgs, -4, 0)
        last = msgs[-1]
        snap = {"topic": last["topic"], "type": "snapshot", "ts": last["ts"],
                "data": {"s": "XRPUSDT", "u": last["data"]["u"],
                         "b": [[f"{p / 1e4:.4f}", str(q)] for p, q in sorted(bids.items())[::-1]],
                         "a": [[f"{p / 1e4:.4f}", str(q)] for p, q in sorted(asks.items())]}}
        adapter.decode(memoryview(json.dumps(snap).encode()), False, sink)
        b = feed.books[0]
        assert b.synced and b.resyncs == 1 and b.levels() == (bids, asks)
        kinds = [n[1] for n in sink.notes]
        assert kinds.count(MD_DEPTH_BOOK | MD_STALE) == 1
        assert kinds[-1] == MD_DEPTH_BOOK | MD_FRESH
        await asyncio.sleep(0.01)
        assert feed._tasks == {} and feed.resubscribes == 1
        c = feed.counters()
        assert c["depth_gaps"] == 1 and c["depth_resyncs"] == 1 and c["depth_unsynced"] == 0
        assert c["depth_resubscribes"] == 1 and c["depth_resync_us_last"] > 0
        await feed.close()

    asyncio.run(main())


def test_resubscribe_frames_unsubscribe_then_subscribe_the_instruments_book_topics():
    ins = [Instrument(symbol="BTCUSDT", price_exp=-2, qty_exp=-6),
           Instrument(symbol="ETHUSDT", price_exp=-2, qty_exp=-6)]
    a = make_adapter("bybit", ins, ("orderbook.1", "orderbook.200", "publicTrade"))
    unsub, sub = (json.loads(f) for f in a.depth_resubscribe_frames(1))
    assert unsub["op"] == "unsubscribe" and sub["op"] == "subscribe"
    assert unsub["args"] == sub["args"] == ["orderbook.200.ETHUSDT"]


@pytest.mark.parametrize("streams", [("orderbook.50",), ("orderbook.1", "orderbook.200")])
def test_a_bybit_depth_feed_needs_no_rest_url(streams):
    from engine.feed.config import FeedConfig

    fc = FeedConfig(venue="bybit", url="wss://stream.bybit.com", streams=streams)
    fc.validate(XRP)
    assert fc.keeps_depth() and fc.effective_rest_url() == ""


# ---------------------------------------------------------------- recovery over a WebSocket
class BybitDialect(Dialect):
    topic = "orderbook.50.BTCUSDT"

    def is_subscribe(self, msg) -> bool:
        return msg.get("op") == "subscribe" and self.topic in msg.get("args", ())

    def is_unsubscribe(self, msg) -> bool:
        return msg.get("op") == "unsubscribe" and self.topic in msg.get("args", ())

    def _frame(self, kind: str, server, bids, asks) -> bytes:
        return json.dumps({"topic": self.topic, "type": kind, "ts": 1733011200000,
                           "data": {"s": "BTCUSDT", "u": server.seq, "seq": 7 * server.seq,
                                    "b": [[f"{p / 10:.1f}", str(q)] for p, q in bids.items()],
                                    "a": [[f"{p / 10:.1f}", str(q)] for p, q in asks.items()]},
                           "cts": 1733011200000}).encode()

    def snapshot(self, server) -> bytes:
        return self._frame("snapshot", server, server.bids, server.asks)

    def delta(self, server, bids, asks) -> bytes:
        return self._frame("delta", server, bids, asks)


def test_over_a_websocket_a_gap_is_healed_by_re_subscribing_both_connections():
    ins = [Instrument(symbol="BTCUSDT", price_exp=-1, qty_exp=0)]
    took_ns, received = run_recovery_over_websocket("bybit", BybitDialect(), ins,
                                                    ("orderbook.50",))
    ops = [json.loads(f)["op"] for f in received if f.startswith(b"{")]
    assert ops.count("subscribe") == 4 and ops.count("unsubscribe") == 2
    print(f"bybit: gap -> re-subscribed -> fresh in {took_ns / 1e6:.2f} ms (loopback)")


def test_mm_backtest_refuses_a_bybit_book_stream_naming_the_field(tmp_path):
    import msgspec

    from engine.backtest.command import backtest
    from engine.config import EngineConfig

    cfg = EngineConfig()
    cfg = msgspec.structs.replace(cfg, feed=msgspec.structs.replace(
        cfg.feed, venue="bybit", streams=("orderbook.1", "orderbook.200")))
    with pytest.raises(ValueError, match=r"^feed\.streams: .*Binance diff-depth frames only"):
        backtest(cfg, [str(tmp_path / "none.mmcap")], plots=False, progress=False)
