"""Bybit v5 public decoding: orderbook.1 snapshot/delta semantics, publicTrade, and classification
of every corpus message."""
from __future__ import annotations

import json

import pytest
from decode_support import (Event, ListSink, decode_all, doc_blocks, hftbacktest_frames,
                            instruments, jsonl_frames)

from engine.feed.venues import make_adapter
from engine.instruments import Instrument
from engine.records import MD_BBO, MD_SNAPSHOT, MD_TRADE, SIDE_BUY, SIDE_SELL, VENUE_BYBIT

# BTCUSDT linear: tick 0.10, lot 0.001.
LINEAR = [Instrument(symbol="BTCUSDT", tick_size="0.10", lot_size="0.001")]
SNAP = MD_BBO | MD_SNAPSHOT


def adapter(ins=LINEAR, streams=("orderbook.1", "publicTrade")):
    return make_adapter("bybit", ins, streams, log_skipped=False)


def test_golden_hftbacktest_lines(corpus):
    # {"topic":"orderbook.1.BTCUSDT","type":"snapshot","ts":1758841134603,"data":{"s":"BTCUSDT",
    #  "b":[["109378.80","1.273"]],"a":[["109378.90","6.278"]],"u":14869255,...}}
    # {"topic":"publicTrade.BTCUSDT",..,"data":[{"T":1758841135823,"S":"Buy","v":"0.020",
    #  "p":"109378.90","i":"2a74ac78-...","seq":457514743450}]}  (update id: seq, i is a UUID)
    # then an orderbook.50 delta: not a stream this adapter keeps a book for.
    a = adapter()
    sink = decode_all(a, hftbacktest_frames(corpus / "bybit/hftbacktest_bybit_docstring_lines.txt"))
    assert sink.events == [
        Event(0, SNAP, 14869255, 1093788, 1273, 1093789, 6278, 0, 0, 0, 1758841134603000000),
        Event(0, MD_TRADE, 457514743450, 0, 0, 0, 0, 1093789, 20, SIDE_BUY, 1758841135823000000),
    ]
    assert a.counts["unknown"] == 1 and a.counts["data"] == 2


def test_tardis_snapshot_then_delta_keeps_the_untouched_side(corpus):
    lines = jsonl_frames(corpus / "bybit/tardis_mappers_test_bybit_v5_messages.jsonl")
    # line 3: snapshot b 28552.00/0.047 a 28552.10/25.433 u 7003305; line 4: delta b 28552.00/0.012, a []
    sink = decode_all(adapter(), lines[2:4])
    assert sink.events == [
        Event(0, SNAP, 7003305, 285520, 47, 285521, 25433, 0, 0, 0, 1680673820717000000),
        Event(0, MD_BBO, 7003306, 285520, 12, 285521, 25433, 0, 0, 0, 1680673821137000000),
    ]
    # Spot (lines 18-19), 6-decimal sizes: b 28165.07/0.175231 a 28165.08/0.996816 then b size 0.166754.
    spot = [Instrument(symbol="BTCUSDT", tick_size="0.01", lot_size="0.000001")]
    sink = decode_all(adapter(spot), lines[17:19])
    assert [e[3:7] for e in sink.events] == [(2816507, 175231, 2816508, 996816),
                                             (2816507, 166754, 2816508, 996816)]


def test_delta_removes_and_replaces_best_levels(corpus):
    lines = jsonl_frames(corpus / "bybit/tardis_mappers_test_bybit_v5_messages.jsonl")
    # line 14 (a delta cut from its stream): b [27994.60 -> 0, 27991.70 0.777],
    # a [27994.40 0.058, 27994.80 -> 0]. Give it the snapshot it implies first.
    snap = (b'{"topic":"orderbook.1.BTCUSDT","type":"snapshot","ts":1682092584400,"data":{"s":"BTCUSDT",'
            b'"b":[["27994.60","1.000"]],"a":[["27994.80","2.000"]],"u":1188471}}')
    a = adapter()
    assert decode_all(a, [lines[13]]).events == [] and a.counts["unknown"] == 1   # no snapshot yet
    sink = decode_all(a, [snap, lines[13]])
    assert sink.events[1] == Event(0, MD_BBO, 1188472, 279917, 777, 279944, 58, 0, 0, 0,
                                   1682092584425000000)
    # Insert-then-delete order works too, and deleting a price that is not the best is a no-op.
    d = (b'{"topic":"orderbook.1.BTCUSDT","type":"delta","ts":1,"data":{"s":"BTCUSDT",'
         b'"b":[["27991.80","0.5"],["27991.70","0"]],"a":[["27999.00","0"]],"u":1188473}}')
    assert decode_all(a, [d]).events[0][3:7] == (279918, 500, 279944, 58)


def test_update_id_rules():
    def snap(u, bid="1.0"):
        return (b'{"topic":"orderbook.1.BTCUSDT","type":"snapshot","ts":1,"data":{"s":"BTCUSDT",'
                b'"b":[["%s","1"]],"a":[["2.0","1"]],"u":%d}}' % (bid.encode(), u))

    def delta(u):
        return (b'{"topic":"orderbook.1.BTCUSDT","type":"delta","ts":1,"data":{"s":"BTCUSDT",'
                b'"b":[["1.5","1"]],"a":[],"u":%d}}' % u)
    a = adapter()
    sink = decode_all(a, [snap(10), snap(10), delta(10), delta(11), snap(9), snap(1), delta(2)])
    # same-u snapshot re-sent: emitted; delta with u <= last: backwards; lower snapshot: backwards;
    # u=1 snapshot: the venue restarted, ids start again.
    assert [(e.update_id, e.kind) for e in sink.events] == [(10, SNAP), (10, SNAP), (11, MD_BBO),
                                                             (1, SNAP), (2, MD_BBO)]
    assert a.counts["backwards"] == 2


def test_crossed_delta_is_kept_but_not_emitted():
    a = adapter()
    snap = (b'{"topic":"orderbook.1.BTCUSDT","type":"snapshot","ts":1,"data":{"s":"BTCUSDT",'
            b'"b":[["1.0","1"]],"a":[["2.0","1"]],"u":1}}')
    cross = (b'{"topic":"orderbook.1.BTCUSDT","type":"delta","ts":1,"data":{"s":"BTCUSDT",'
             b'"b":[["2.5","1"]],"a":[],"u":2}}')
    fix = (b'{"topic":"orderbook.1.BTCUSDT","type":"delta","ts":1,"data":{"s":"BTCUSDT",'
           b'"b":[],"a":[["2.0","0"],["3.0","4"]],"u":3}}')
    sink = decode_all(a, [snap, cross, fix])
    assert [e[3:7] for e in sink.events] == [(10, 1000, 20, 1000), (25, 1000, 30, 4000)]
    assert a.counts["crossed"] == 1


def test_nautilus_fixtures_and_docs_are_classified(corpus):
    a = adapter()
    sink = ListSink()
    files = sorted((corpus / "bybit/nautilus").glob("*.json"), key=lambda p: "snapshot" not in p.name)
    for p in files:
        a.decode(memoryview(p.read_bytes()), False, sink)
    # orderbook snapshot (two levels per side: the first is the best) and its delta (ask deleted).
    assert sink.events == [
        Event(0, SNAP, 123456789, 274500, 500, 274510, 750, 0, 0, 0, 1709891679000000000),
        Event(0, MD_BBO, 123456790, 274500, 400, 0, 0, 0, 0, 0, 1709891679500000000),
    ]
    assert a.counts["malformed"] == 0 and a.counts["error"] == 2      # subscription + auth failure
    assert sum(a.counts.values()) == len(files)
    blocks = doc_blocks(corpus / "bybit/docs_examples_v5_ws.json")
    b = adapter()
    decode_all(b, [t for _, t in blocks])
    assert b.counts["malformed"] == sum(1 for v, _ in blocks if not v)
    assert b.counts["control"] >= 8 and sum(b.counts.values()) == len(blocks)


def test_tardis_and_orderbook500_files_never_crash(corpus):
    lines = jsonl_frames(corpus / "bybit/tardis_mappers_test_bybit_v5_messages.jsonl")
    symbols = sorted({json.loads(f)["topic"].rpartition(".")[2] for f in lines})
    a = adapter(instruments(*symbols))
    sink = decode_all(a, lines)
    trades = [e for e in sink.events if e.kind == MD_TRADE]
    # Spot BTCUSDT trades (line 16) carry numeric ids; the first is 2290000000050703789 at 28165.38.
    assert any(e.update_id == 2290000000050703789 and e.trade_px == 2816538000000
               and e.trade_side == SIDE_SELL for e in trades)
    assert a.counts["malformed"] == 0 and sum(a.counts.values()) == len(lines)
    big = jsonl_frames(corpus / "bybit/nautilus_2024-12-01_XRPUSDT_ob500.data.jsonl")
    b = adapter(instruments("XRPUSDT"))
    decode_all(b, big)
    assert b.counts["unknown"] == len(big) == 50


@pytest.mark.parametrize("frame,kind", [
    (b'{"success":true,"ret_msg":"pong","conn_id":"x","op":"ping"}', "control"),
    (b'{"success":false,"ret_msg":"Invalid topic: x","op":"subscribe"}', "error"),
    (b'{"retCode":10001,"retMsg":"bad","op":"order.create"}', "error"),
    (b'{"op":"pong","args":["1672916271846"]}', "control"),
    (b'{"topic":"orderbook.1.ETHUSDT","type":"snapshot","ts":1,"data":{"s":"ETHUSDT","b":[],"a":[],"u":1}}',
     "unknown_symbol"),
    (b'{"topic":"orderbook.1.BTCUSDT","type":"snapshot","ts":1,"data":{"s":"BTCUSDT","b":[["1.05","1"]],'
     b'"a":[],"u":1}}', "precision"),
    (b'{"topic":"orderbook.1.BTCUSDT","type":"snapshot","ts":1,"data":{"s":"BTCUSDT","b":[["x","1"]],'
     b'"a":[],"u":1}}', "malformed"),
    (b'{"topic":"orderbook.1.BTCUSDT","type":"weird","ts":1,"data":{"s":"BTCUSDT","b":[],"a":[],"u":1}}',
     "unknown"),
    (b'{"topic":"orderbook.1.BTCUSDT","type":"snapshot","ts":1,"data":{"s":"BTCUSDT"}}', "malformed"),
    (b'{"topic":"publicTrade.BTCUSDT","ts":1,"data":[{"T":1,"s":"BTCUSDT","S":"Hold","v":"1","p":"1"}]}',
     "malformed"),
    (b'{"topic":"publicTrade.BTCUSDT","ts":1,"data":{}}', "malformed"),
    (b"ping", "malformed"), (b"{}", "unknown"),
])
def test_frame_kinds(frame, kind):
    a = adapter()
    assert a.decode(memoryview(frame), False, ListSink()) == 0
    assert {k: v for k, v in a.counts.items() if v} == {kind: 1}


def test_connection_facts():
    ins = instruments(*[f"S{k}USDT" for k in range(6)])
    a = adapter(ins)
    frames = a.subscribe_frames()
    topics = [t for f in frames for t in json.loads(f)["args"]]
    assert len(frames) == 2 and all(len(json.loads(f)["args"]) <= 10 for f in frames)
    assert topics == [f"{s}.S{k}USDT" for k in range(6) for s in ("orderbook.1", "publicTrade")]
    assert a.ping_frame() == b'{"op":"ping"}' and a.ping_interval_s == 20 and a.venue == VENUE_BYBIT
    assert a.stream_url("wss://stream.bybit.com") == "wss://stream.bybit.com/v5/public/spot"
    assert a.stream_url("wss://stream.bybit.com/v5/public/linear") == \
        "wss://stream.bybit.com/v5/public/linear"
    # Binance's stream names (the feed config's defaults) mean the venue's own.
    assert make_adapter("bybit", LINEAR, ["bookTicker", "trade"]).streams == ("orderbook.1", "publicTrade")
    assert make_adapter("okx", LINEAR, ["bookTicker"]).streams == ("bbo-tbt",)
    with pytest.raises(ValueError, match="feed.streams"):
        adapter(streams=("depth5",))
