"""OKX v5 public decoding: bbo-tbt and trades against hand-read values and a Decimal oracle, and
classification of every other corpus message."""
from __future__ import annotations

import json

import pytest
from decode_support import (Event, ListSink, cryptofeed_frames, decode_all, fixed, instruments,
                            jsonl_frames)

from engine.feed.venues import make_adapter
from engine.instruments import Instrument
from engine.records import MD_BBO, MD_TRADE, SIDE_BUY, SIDE_SELL, VENUE_OKX


def adapter(ins, streams=("bbo-tbt", "trades")):
    return make_adapter("okx", ins, streams, log_skipped=False)


def test_golden_nautilus_bbo_tbt(corpus):
    # asks [["8476.98","415","0","13"]], bids [["8476.97","256","0","12"]],
    # ts "1597026383085", seqId 123456
    frame = (corpus / "okx/nautilus/ws_bbo_tbt.json").read_bytes()
    ins = [Instrument(symbol="BTC-USDT", tick_size="0.01", lot_size="1")]
    sink = decode_all(adapter(ins), [frame])
    assert sink.events == [Event(0, MD_BBO, 123456, 847697, 256, 847698, 415, 0, 0, 0,
                                 1597026383085000000)]


def test_golden_tardis_bbo_without_seq_id_and_trades(corpus):
    lines = jsonl_frames(corpus / "okx/tardis_mappers_test_okx_v5_messages.jsonl")
    swap = Instrument(symbol="BTC-USDT-SWAP", tick_size="0.1", lot_size="1")
    crv = Instrument(symbol="CRV-USDT", tick_size="0.001", lot_size="0.000001")
    a = adapter([swap, crv])
    sink = decode_all(a, [lines[28], lines[29], lines[1]])
    # Lines 29 and 30 are the same push (no seqId: the update id is ts); an equal id is emitted.
    # Line 2: {"instId":"CRV-USDT","tradeId":"21300150","px":"3.973","sz":"13.491146","side":"buy",
    #          "ts":"1639999319938"}
    bbo = Event(0, MD_BBO, 1651761120004, 386323, 990, 386324, 727, 0, 0, 0, 1651761120004000000)
    assert sink.events == [bbo, bbo, Event(1, MD_TRADE, 21300150, 0, 0, 0, 0, 3973, 13491146,
                                            SIDE_BUY, 1639999319938000000)]


def test_cryptofeed_trades_match_oracle_and_the_rest_is_classified(corpus):
    frames = cryptofeed_frames(corpus / "okx/cryptofeed_OKX.ws.1.0.txt")
    symbols = ["BTC-USD-220527", "UNI-USD-SWAP", "BTC-USDT"]
    ins = instruments(*symbols, exp=-8)
    a = adapter(ins)
    sink = decode_all(a, frames)
    expected, last = [], {}
    for f in frames:
        m = json.loads(f)
        if m.get("arg", {}).get("channel") != "trades" or "data" not in m:
            continue
        for t in m["data"]:
            i = symbols.index(t["instId"])
            if int(t["tradeId"]) <= last.get(i, -1):
                continue
            last[i] = int(t["tradeId"])
            expected.append(Event(i, MD_TRADE, int(t["tradeId"]), 0, 0, 0, 0, fixed(t["px"], -8),
                                  fixed(t["sz"], -8), SIDE_BUY if t["side"] == "buy" else SIDE_SELL,
                                  int(t["ts"]) * 1_000_000))
    assert sink.events == expected and len(expected) >= 74
    assert a.counts["control"] == 18          # subscribe acks, duplicates included
    assert a.counts["unknown"] == 3 + 287 + 28     # books snapshots and updates, tickers
    assert a.counts["malformed"] == 0 and sum(a.counts.values()) == len(frames)


def test_every_corpus_file_is_classified(corpus):
    lines = jsonl_frames(corpus / "okx/tardis_mappers_test_okx_v5_messages.jsonl")
    files = sorted((corpus / "okx/nautilus").glob("*.json"))
    ids = {json.loads(f).get("arg", {}).get("instId") for f in lines} - {None}
    a = adapter(instruments(*sorted(ids | {"BTC-USDT", "BTC-USD"}), exp=-9))
    sink = ListSink()
    for f in lines + [p.read_bytes() for p in files]:
        a.decode(memoryview(f), False, sink)
    # common_optional_string_to_u64.json is a bare JSON array of test values, not an OKX frame.
    assert a.counts["malformed"] == 1 and sum(a.counts.values()) == len(lines) + len(files)
    assert a.counts["control"] == 3 and a.counts["data"] >= 4    # 2 acks, 1 REST code "0"
    assert a.counts["error"] == 0


@pytest.mark.parametrize("frame,kind", [
    (b"pong", "control"),
    (b'{"event":"error","code":"60012","msg":"Invalid request"}', "error"),
    (b'{"event":"notice","code":"64008","msg":"The connection will soon be closed"}', "shutdown"),
    (b'{"event":"login","code":"0","msg":""}', "control"),
    (b'{"code":"1","msg":"x","data":[]}', "error"),
    (b'{"arg":{"channel":"bbo-tbt","instId":"ETH-USDT"},"data":[{"asks":[],"bids":[],"ts":"1"}]}',
     "unknown_symbol"),
    (b'{"arg":{"channel":"bbo-tbt","instId":"BTC-USDT"},"data":[{"asks":[["2","1","0","1"]],'
     b'"bids":[["2","1","0","1"]],"ts":"1"}]}', "crossed"),
    (b'{"arg":{"channel":"bbo-tbt","instId":"BTC-USDT"},"data":[{"asks":[["2.001","1"]],'
     b'"bids":[],"ts":"1"}]}', "precision"),
    (b'{"arg":{"channel":"bbo-tbt","instId":"BTC-USDT"},"data":[{"asks":[["2"]],"bids":[],"ts":"1"}]}',
     "malformed"),
    (b'{"arg":{"channel":"bbo-tbt","instId":"BTC-USDT"},"data":[{"asks":[],"bids":[],"ts":"x"}]}',
     "malformed"),
    (b'{"arg":{"channel":"trades","instId":"BTC-USDT"},"data":[{"instId":"BTC-USDT","tradeId":"1",'
     b'"px":"1","sz":"1","side":"hold","ts":"1"}]}', "malformed"),
    (b'{"arg":{"channel":"books","instId":"BTC-USDT"},"action":"snapshot","data":[]}', "unknown"),
    (b"ping", "malformed"), (b"{}", "unknown"),
])
def test_frame_kinds(frame, kind):
    a = adapter([Instrument(symbol="BTC-USDT", tick_size="0.01", lot_size="1")])
    assert a.decode(memoryview(frame), False, ListSink()) == 0
    assert {k: v for k, v in a.counts.items() if v} == {kind: 1}


def test_backwards_sequence_ids():
    a = adapter([Instrument(symbol="BTC-USDT", tick_size="0.01", lot_size="1")])
    f = (b'{"arg":{"channel":"bbo-tbt","instId":"BTC-USDT"},"data":[{"asks":[["2","1","0","1"]],'
         b'"bids":[["1","1","0","1"]],"ts":"5","seqId":%d}]}')
    sink = decode_all(a, [f % 7, f % 6, f % 8])
    assert [e.update_id for e in sink.events] == [7, 8] and a.counts["backwards"] == 1


def test_connection_facts():
    a = adapter([Instrument(symbol="BTC-USDT")])
    assert json.loads(a.subscribe_frames()[0]) == {"op": "subscribe", "args": [
        {"channel": "bbo-tbt", "instId": "BTC-USDT"}, {"channel": "trades", "instId": "BTC-USDT"}]}
    assert a.ping_frame() == b"ping" and 0 < a.ping_interval_s < 30 and a.venue == VENUE_OKX
    assert a.stream_url("wss://ws.okx.com:8443") == "wss://ws.okx.com:8443/ws/v5/public"
