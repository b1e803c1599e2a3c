"""Binance Spot JSON decoding: hand-checked golden values, every corpus market-data message
against an exact Decimal oracle, and classification of everything else."""
from __future__ import annotations

import json
from collections import Counter

import pytest
from decode_support import (Event, ListSink, cryptofeed_frames, decode_all, doc_blocks, fixed,
                            hftbacktest_frames, instruments, jsonl_frames)

from engine.feed.adapter import FRAME_KINDS
from engine.feed.venues import ADAPTERS, make_adapter
from engine.feed.venues.binance import BinanceJsonAdapter
from engine.instruments import DEFAULT_INSTRUMENTS, Instrument
from engine.records import MD_BBO, MD_SNAPSHOT, MD_TRADE, SIDE_BUY, SIDE_SELL, VENUE_BINANCE

ALL = ["bookTicker", "trade", "depth5@100ms"]


def adapter(ins, streams=ALL):
    return make_adapter("binance", ins, streams, log_skipped=False)


# ---------------------------------------------------------------- golden values (read by hand)
def test_golden_book_ticker_and_trade_from_the_hftbacktest_spot_capture(corpus):
    # BTCUSDT filters: tick 0.01 (price_exp -2), lot 0.00001 (qty_exp -5).
    frames = hftbacktest_frames(corpus / "binance/hftbacktest_spot_btcusdt_20240808.head.txt")
    a = adapter(DEFAULT_INSTRUMENTS)
    sink = decode_all(a, frames[:4])
    # line 3: {"u":50093239212,"s":"BTCUSDT","b":"61837.63000000","B":"3.78826000",
    #          "a":"61837.64000000","A":"1.54698000"}
    # line 4: {"e":"trade","E":1723161255343,"t":3735683259,"p":"61837.63000000",
    #          "q":"0.02000000","T":1723161255342,"m":true}: the buyer made, so the taker sold
    assert sink.events == [
        Event(0, MD_BBO, 50093239212, 6183763, 378826, 6183764, 154698, 0, 0, 0, 0),
        Event(0, MD_TRADE, 3735683259, 0, 0, 0, 0, 6183763, 2000, SIDE_SELL, 1723161255342000000),
    ]
    assert a.counts["unknown"] == 2   # the two diff-depth frames before them
    assert a.counts["data"] == 2


def test_golden_small_prices_are_exact(corpus):
    # cryptofeed spot: {"stream":"lrcbtc@bookTicker","data":{"u":...,"s":"LRCBTC",
    # "b":"0.00000787",...}}: 8 decimals at exponent -8 are the digits themselves.
    frames = [f for f in cryptofeed_frames(corpus / "binance/cryptofeed_BINANCE.ws.1.0.txt")
              if b'"lrcbtc@bookTicker"' in f]
    first = json.loads(frames[0])["data"]
    sink = decode_all(adapter(instruments("LRCBTC")), frames[:1])
    (e,) = sink.events
    assert e.bid_px == int(first["b"].replace(".", "")) and e.bid_px < 10_000   # sub-satoshi-scale
    assert e.update_id == first["u"]


def test_golden_tardis_trade_taker_buy(corpus):
    # {"e":"trade","E":1554076800945,"s":"BNBBTC","t":40756030,"p":"0.00426990",
    #  "q":"33.82000000","T":1554076800940,"m":false}: buyer is the taker
    frames = jsonl_frames(corpus / "binance/tardis_mappers_test_binance_messages.jsonl")
    sink = decode_all(adapter([Instrument(symbol="BNBBTC", tick_size="0.00000001", lot_size="0.01")]),
                      frames[:1])
    assert sink.events == [Event(0, MD_TRADE, 40756030, 0, 0, 0, 0, 426990, 3382, SIDE_BUY,
                                 1554076800940000000)]


def test_golden_futures_book_ticker_raw_frame_carries_event_time(corpus):
    # {"e":"bookTicker","u":400900217,"E":1568014460893,"T":..,"s":"BNBUSDT","b":"25.35190000",
    #  "B":"31.21000000","a":"25.36520000","A":"40.66000000","st":1,"ps":"BNBUSDT"} (raw /ws/ frame)
    frame = (corpus / "binance/nautilus/ws_futures_book_ticker.json").read_bytes()
    sink = decode_all(adapter(instruments("BNBUSDT", exp=-4)), [frame])
    assert sink.events == [Event(0, MD_BBO, 400900217, 253519, 312100, 253652, 406600, 0, 0, 0,
                                 1568014460893000000)]


def test_partial_depth_top_level_combined_and_raw():
    ins = [Instrument(symbol="BNBBTC", tick_size="0.0001", lot_size="1")]
    body = b'{"lastUpdateId":160,"bids":[["0.0024","10"],["0.0023","5"]],"asks":[["0.0026","100"]]}'
    combined = b'{"stream":"bnbbtc@depth5@100ms","data":' + body + b"}"
    sink = decode_all(adapter(ins), [combined])
    assert sink.events == [Event(0, MD_BBO | MD_SNAPSHOT, 160, 24, 10, 26, 100, 0, 0, 0, 0)]
    # A raw partial-depth frame names no symbol: fine with one instrument ...
    sink = decode_all(adapter(ins), [body])
    assert sink.events == [Event(0, MD_BBO | MD_SNAPSHOT, 160, 24, 10, 26, 100, 0, 0, 0, 0)]
    # ... ambiguous with two.
    a = adapter(ins + instruments("ETHUSDT"))
    assert decode_all(a, [body]).events == [] and a.counts["unknown_symbol"] == 1
    # An empty side is published as zeros (no crossed check with one side missing).
    empty = b'{"stream":"bnbbtc@depth5","data":{"lastUpdateId":161,"bids":[],"asks":[["0.0026","1"]]}}'
    assert decode_all(adapter(ins, ["depth5"]), [empty]).events == [
        Event(0, MD_BBO | MD_SNAPSHOT, 161, 0, 0, 26, 1, 0, 0, 0, 0)]


# ---------------------------------------------------------------- every corpus message, oracle
def oracle(frames, ins: list[Instrument]):
    """Expected events and frame kinds, computed with json + Decimal and a running max of ids."""
    by_symbol = {x.symbol: i for i, x in enumerate(ins)}
    last_book: dict[int, int] = {}
    last_trade: dict[int, int] = {}
    events, kinds = [], Counter()
    for f in frames:
        msg = json.loads(f)
        stream = msg.get("stream", "")
        data = msg.get("data", msg)
        kind = stream.partition("@")[2] if stream else ("trade" if data.get("e") == "trade" else
                                                        "bookTicker" if "u" in data and "b" in data
                                                        and isinstance(data["b"], str) else "?")
        if kind not in ("bookTicker", "trade"):
            kinds["unknown"] += 1
            continue
        i = by_symbol[data["s"]]
        p, q = ins[i].pexp, ins[i].qexp
        if kind == "bookTicker":
            if data["u"] < last_book.get(i, -1):
                kinds["backwards"] += 1
                continue
            last_book[i] = data["u"]
            events.append(Event(i, MD_BBO, data["u"], fixed(data["b"], p), fixed(data["B"], q),
                                fixed(data["a"], p), fixed(data["A"], q), 0, 0, 0,
                                data.get("E", 0) * 1_000_000))
        else:
            if data["t"] <= last_trade.get(i, -1):
                kinds["backwards"] += 1
                continue
            last_trade[i] = data["t"]
            events.append(Event(i, MD_TRADE, data["t"], 0, 0, 0, 0, fixed(data["p"], p),
                                fixed(data["q"], q), SIDE_SELL if data["m"] else SIDE_BUY,
                                data["T"] * 1_000_000))
        kinds["data"] += 1
    return events, kinds


def check_against_oracle(frames, ins):
    a = adapter(ins, ["bookTicker", "trade"])
    sink = decode_all(a, frames)
    events, kinds = oracle(frames, ins)
    assert sink.events == events
    assert {k: v for k, v in a.counts.items() if v} == dict(kinds)
    assert sum(a.counts.values()) == len(frames)
    return sink, a


def test_hftbacktest_spot_capture_matches_oracle(corpus):
    frames = [f for f in hftbacktest_frames(corpus / "binance/hftbacktest_spot_btcusdt_20240808.head.txt")
              if not f.startswith(b'{"lastUpdateId"')]   # the REST snapshot is covered below
    sink, a = check_against_oracle(frames, instruments("BTCUSDT"))
    assert a.counts["data"] == 716 + 144           # SOURCES.md: bookTicker 716, trade 144


def test_hftbacktest_rest_snapshot_is_a_stale_partial_book(corpus):
    frames = hftbacktest_frames(corpus / "binance/hftbacktest_spot_btcusdt_20240808.head.txt")
    a = adapter(instruments("BTCUSDT"))
    decode_all(a, frames)
    # The REST snapshot (lastUpdateId 50093239218) arrives after bookTicker u 50093239219.
    assert a.counts["backwards"] == 1 and a.counts["malformed"] == 0


def test_cryptofeed_spot_capture_matches_oracle(corpus):
    frames = cryptofeed_frames(corpus / "binance/cryptofeed_BINANCE.ws.1.0.txt")
    sink, a = check_against_oracle(frames, instruments("NKNUSDT", "BLZETH", "LRCBTC", "RUNEEUR"))
    assert a.counts["data"] == 84 and a.counts["unknown"] == 177 + 2 + 2   # depth, aggTrade, kline


def test_futures_captures_match_oracle(corpus):
    frames = cryptofeed_frames(corpus / "binance/cryptofeed_BINANCE_FUTURES.ws.1.0.txt")
    symbols = sorted({json.loads(f)["data"]["s"] for f in frames})
    sink, a = check_against_oracle(frames, instruments(*symbols))
    assert a.counts["data"] + a.counts["backwards"] == 613
    frames = hftbacktest_frames(corpus / "binance/hftbacktest_usdm_btcusdt_20240808.head.txt")
    frames = [f for f in frames if not f.startswith(b'{"lastUpdateId"')]
    sink, a = check_against_oracle(frames, instruments("BTCUSDT"))
    assert a.counts["data"] + a.counts["backwards"] == 668 + 136


def test_tardis_messages_match_oracle(corpus):
    frames = jsonl_frames(corpus / "binance/tardis_mappers_test_binance_messages.jsonl")
    symbols = sorted({json.loads(f)["data"].get("s") for f in frames} - {None})
    sink, a = check_against_oracle(frames, instruments(*symbols))
    assert a.counts["data"] >= 5


# ---------------------------------------------------------------- non-data frames
def test_docs_examples_are_classified(corpus):
    blocks = doc_blocks(corpus / "binance/docs_examples_ws_streams.json")
    a = adapter(DEFAULT_INSTRUMENTS)
    for valid, text in blocks:
        before = dict(a.counts)
        assert a.decode(memoryview(text), False, ListSink()) == 0
        changed = [k for k in FRAME_KINDS if a.counts[k] != before[k]]
        assert len(changed) == 1
        if not valid:
            assert changed == ["malformed"]
        elif b'"result"' in text:
            assert changed == ["control"]
        else:   # requests a client sends (method/params): not something a stream delivers
            assert changed == ["unknown"]
    assert sum(a.counts.values()) == len(blocks)


def test_ws_api_docs_and_nautilus_fixtures_never_crash(corpus):
    a = adapter(instruments("ETHUSDT", "BNBUSDT", "BTCUSDT"))
    blocks = doc_blocks(corpus / "binance/docs_examples_ws_api.json")
    files = sorted((corpus / "binance/nautilus").glob("*.json"))
    sink = ListSink()
    for _, text in blocks:
        a.decode(memoryview(text), False, sink)
    for p in files:
        a.decode(memoryview(p.read_bytes()), False, sink)
    assert sum(a.counts.values()) == len(blocks) + len(files)
    # ws_spot_ticker_book (bookTicker with E), ws_spot_trade, ws_futures_book_ticker.
    assert a.counts["data"] == 3 and a.counts["error"] >= 3
    kinds = Counter(e.kind for e in sink.events)
    assert kinds == {MD_BBO: 2, MD_TRADE: 1}


@pytest.mark.parametrize("frame,kind", [
    (b'{"result":null,"id":1}', "control"),
    (b'{"result":["btcusdt@aggTrade"],"id":3}', "control"),
    (b'{"code": 0, "msg": "Unknown property","id": 7}', "error"),
    (b'{"id":"x","status":400,"error":{"code":-1121,"msg":"Invalid symbol."}}', "error"),
    (b'{"e":"serverShutdown","E":1770123456789}', "shutdown"),
    (b'{"stream":"!serverShutdown","data":{"e":"serverShutdown","E":1770123456789}}', "shutdown"),
    (b'{"stream":"btcusdt@kline_1m","data":{"e":"kline"}}', "unknown"),
    (b'{"stream":"xyzusdt@bookTicker","data":{"u":1,"s":"XYZUSDT","b":"1","B":"1","a":"2","A":"1"}}',
     "unknown_symbol"),
    (b'{"u":1,"s":"XYZUSDT","b":"1","B":"1","a":"2","A":"1"}', "unknown_symbol"),
    (b'{"stream":"btcusdt@bookTicker","data":{"u":1,"s":"BTCUSDT","b":"1","B":"1","a":"2"}}',
     "malformed"),                                       # A missing
    (b'{"stream":"btcusdt@bookTicker","data":{"u":1,"s":"BTCUSDT","b":1.5,"B":"1","a":"2","A":"1"}}',
     "malformed"),                                       # a JSON number, not a string
    (b'{"stream":"btcusdt@bookTicker","data":{"u":1,"s":"BTCUSDT","b":"1e3","B":"1","a":"2","A":"1"}}',
     "malformed"),                                       # scientific notation
    (b'{"stream":"btcusdt@bookTicker","data":{"u":1,"s":"BTCUSDT","b":"-1","B":"1","a":"2","A":"1"}}',
     "malformed"),                                       # a sign
    (b'{"stream":"btcusdt@bookTicker","data":{"u":-5,"s":"BTCUSDT","b":"1","B":"1","a":"2","A":"1"}}',
     "malformed"),                                       # negative update id
    (b'{"stream":"btcusdt@bookTicker","data":{"u":1,"s":"BTCUSDT","b":"1.001","B":"1","a":"2","A":"1"}}',
     "precision"),                                       # below the 0.01 tick
    (b'{"stream":"btcusdt@bookTicker","data":{"u":1,"s":"BTCUSDT","b":"2","B":"1","a":"2","A":"1"}}',
     "crossed"),
    (b'{"stream":"btcusdt@bookTicker","data":{"u":1,"s":"BTCUSDT","b":"1","B":"1","a":"2","A":"1"}',
     "malformed"),                                       # truncated
    (b'', "malformed"), (b'pong', "malformed"), (b'[1,2]', "malformed"), (b'{}', "unknown"),
    (b'{"subscriptionId":0,"event":{"e":"balanceUpdate"}}', "unknown"),
])
def test_frame_kinds(frame, kind):
    a = adapter(DEFAULT_INSTRUMENTS)
    assert a.decode(memoryview(frame), False, ListSink()) == 0
    assert {k: v for k, v in a.counts.items() if v} == {kind: 1}


def test_crossed_allows_one_sided_book_and_binary_frames_are_unknown():
    a = adapter(DEFAULT_INSTRUMENTS)
    one_sided = b'{"stream":"btcusdt@bookTicker","data":{"u":1,"s":"BTCUSDT","b":"5","B":"1","a":"0","A":"0"}}'
    assert decode_all(a, [one_sided]).events[0][3:7] == (500, 100000, 0, 0)
    assert a.decode(memoryview(b"\x01\x02\x03"), True, ListSink()) == 0
    assert a.counts["unknown"] == 1


def test_backwards_and_equal_update_ids():
    a = adapter(DEFAULT_INSTRUMENTS)
    f = b'{"stream":"btcusdt@bookTicker","data":{"u":%d,"s":"BTCUSDT","b":"1","B":"1","a":"2","A":"1"}}'
    sink = decode_all(a, [f % 10, f % 10, f % 9, f % 11])
    assert [e.update_id for e in sink.events] == [10, 10, 11]   # an equal id is the same book
    assert a.counts["backwards"] == 1
    b = adapter(DEFAULT_INSTRUMENTS)       # another connection: its own memory
    assert len(decode_all(b, [f % 9]).events) == 1


def test_stream_url_registry_and_interface():
    a = make_adapter("binance", DEFAULT_INSTRUMENTS, ["bookTicker", "trade"])
    assert isinstance(a, BinanceJsonAdapter) and ADAPTERS["binance"] is BinanceJsonAdapter
    assert a.stream_url("wss://stream.binance.com:9443/") == (
        "wss://stream.binance.com:9443/stream?streams="
        "btcusdt@bookTicker/btcusdt@trade/ethusdt@bookTicker/ethusdt@trade")
    assert a.subscribe_frames() == [] and a.ping_frame() is None
    assert a.venue == VENUE_BINANCE and a.max_connection_age_s == 24 * 3600
    assert set(a.counts) == set(FRAME_KINDS)
    assert make_adapter("binance", DEFAULT_INSTRUMENTS).streams == ("bookTicker",)
    with pytest.raises(ValueError, match="feed.venue"):
        make_adapter("kraken", DEFAULT_INSTRUMENTS)
    with pytest.raises(ValueError, match="feed.streams"):
        make_adapter("binance", DEFAULT_INSTRUMENTS, ["orderbook.1"])
    with pytest.raises(ValueError, match="twice"):
        make_adapter("binance", DEFAULT_INSTRUMENTS * 2)


def test_skipped_frames_are_logged_at_most_once_a_second(caplog):
    a = make_adapter("binance", DEFAULT_INSTRUMENTS)     # logging on (the default)
    with caplog.at_level("WARNING", logger="engine.feed.venues"):
        for _ in range(50):
            a.decode(memoryview(b"not json"), False, ListSink())
    assert a.counts["malformed"] == 50
    lines = [r for r in caplog.records if "malformed" in r.getMessage()]
    assert len(lines) == 1 and "not json" in lines[0].getMessage()
