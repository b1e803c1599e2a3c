"""Binance SBE market data: frames built from stream_1_0.xml (no real SBE market-data frames
exist in the corpus, SOURCES.md), the schema's own declarations, and the real schema-3 frames
in the corpus (user-data templates: must be classified, not decoded)."""
from __future__ import annotations

import struct
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from decode_support import (Event, ListSink, decode_all, sbe_best_bid_ask, sbe_depth, sbe_trades)

from engine.feed.venues import make_adapter
from engine.feed.venues import binance_sbe as sbe
from engine.instruments import DEFAULT_INSTRUMENTS, Instrument
from engine.records import MD_BBO, MD_SNAPSHOT, MD_TRADE, SIDE_BUY, SIDE_SELL

BTC = DEFAULT_INSTRUMENTS       # BTCUSDT price_exp -2, qty_exp -5; ETHUSDT -2, -4


def adapter(ins=BTC, streams=("bestBidAsk", "trade", "depth20")):
    return make_adapter("binance-sbe", ins, streams, log_skipped=False)


def test_dtypes_follow_the_schema(corpus):
    """Field names, order and primitive types of the adapter's dtypes = the XML's."""
    root = ET.parse(corpus / "binance/sbe/stream_1_0.xml").getroot()
    types = {t.get("name"): t.get("primitiveType") for t in root.iter("type") if t.get("primitiveType")}
    types.update({e.get("name"): e.get("encodingType") for e in root.iter("enum")})
    np_of = {"int64": "<i8", "int8": "|i1", "uint8": "|u1", "uint16": "<u2", "uint32": "<u4"}
    assert root.get("id") == str(sbe.SCHEMA_ID) and root.get("version") == str(sbe.SCHEMA_VERSION)
    assert root.get("byteOrder") == "littleEndian"
    msgs = {m.get("id"): m for m in root if m.tag.endswith("message")}
    bba = [(f.get("name"), np_of[types[f.get("type")]]) for f in msgs["10001"].findall("field")]
    head = [(n, np_of[types[n] if n in types else "uint16"]) for n in
            ("blockLength", "templateId", "schemaId", "version")]
    assert [(n, sbe.BEST_BID_ASK_DTYPE.fields[n][0].str) for n in sbe.BEST_BID_ASK_DTYPE.names] == \
        head + bba + [("symbolLength", "|u1")]
    assert sbe.BEST_BID_ASK_DTYPE.itemsize == 59 and sbe.BEST_BID_ASK_BLOCK == 50
    trade_fields = [(f.get("name"), np_of[types[f.get("type")]])
                    for f in msgs["10000"].find("group").findall("field") if f.get("presence") != "constant"]
    assert trade_fields == [(n, sbe.TRADE_ENTRY_DTYPE.fields[n][0].str)
                            for n in sbe.TRADE_ENTRY_DTYPE.names]
    assert sbe.TRADE_ENTRY_DTYPE.itemsize == 25


def test_golden_best_bid_ask_and_numpy_view():
    # bid 61837.63 (mantissa 6183763000000 at 1e-8), qty 3.78826 (378826000 at 1e-8); the
    # instrument wants 1e-2 / 1e-5: 6183763 and 378826.
    f = sbe_best_bid_ask(b"BTCUSDT", 1723161255343123, 50093239212, -8, -8,
                         6183763000000, 378826000, 6183764000000, 154698000)
    view = sbe.read_best_bid_ask(f)
    assert view["templateId"][0] == 10001 and view["bidPrice"][0] == 6183763000000
    assert view["symbolLength"][0] == 7 and np.shares_memory(view, np.frombuffer(f, np.uint8))
    sink = decode_all(adapter(), [f], binary=True)
    assert sink.events == [Event(0, MD_BBO, 50093239212, 6183763, 378826, 6183764, 154698, 0, 0, 0,
                                 1723161255343123000)]


def test_best_bid_ask_exponents_scale_up_down_and_refuse_lost_digits():
    a = adapter()
    # Same exponents as the instrument: no arithmetic.
    f1 = sbe_best_bid_ask(b"BTCUSDT", 1, 1, -2, -5, 100, 7, 101, 8)
    # Coarser than the instrument: multiply (price 1.2 at 1e-1 -> 120 at 1e-2; qty 3 at 1e0 -> 300000).
    f2 = sbe_best_bid_ask(b"BTCUSDT", 1, 2, -1, 0, 12, 3, 13, 4)
    # Finer with zeros: divide (99.990 at 1e-3 -> 9999).
    f3 = sbe_best_bid_ask(b"BTCUSDT", 1, 3, -3, -5, 99990, 1, 100000, 1)
    # Finer with a non-zero digit below the tick: precision.
    f4 = sbe_best_bid_ask(b"BTCUSDT", 1, 4, -3, -5, 99991, 1, 100000, 1)
    sink = decode_all(a, [f1, f2, f3, f4], binary=True)
    assert [e[3:7] for e in sink.events] == [(100, 7, 101, 8), (120, 300000, 130, 400000),
                                             (9999, 1, 10000, 1)]
    assert a.counts["precision"] == 1


@pytest.mark.parametrize("frame,kind", [
    (sbe_best_bid_ask(b"XYZUSDT", 1, 1, -2, -5, 1, 1, 2, 1), "unknown_symbol"),
    (sbe_best_bid_ask(b"BTCUSDT", 1, 1, -2, -5, 2, 1, 2, 1), "crossed"),
    (sbe_best_bid_ask(b"BTCUSDT", 1, 1, -2, -5, -(1 << 63), 1, 2, 1), "malformed"),  # null sentinel
    (sbe_best_bid_ask(b"BTCUSDT", 1, 1, 10, -5, 1 << 60, 1, 2, 1), "malformed"),     # overflows int64
    (sbe_best_bid_ask(b"BTCUSDT", 1, 1, -2, -5, 1, 1, 2, 1, schema=3, version=2), "unknown"),
    (sbe_best_bid_ask(b"BTCUSDT", 1, 1, -2, -5, 1, 1, 2, 1, version=1), "unknown"),
    (sbe_best_bid_ask(b"BTCUSDT", 1, 1, -2, -5, 1, 1, 2, 1)[:-1], "malformed"),      # cut short
    (sbe_best_bid_ask(b"BTCUSDT", 1, 1, -2, -5, 1, 1, 2, 1) + b"\0", "malformed"),   # trailing byte
    (sbe_depth(b"BTCUSDT", 10003, 1, (5, 6), -2, -5, [(1, 1)], [(2, 1)]), "unknown"),  # diff depth
    (struct.pack("<HHHH", 0, 9999, 1, 0), "unknown"),
    (b"\x01", "malformed"), (b"", "malformed"),
])
def test_binary_frame_kinds(frame, kind):
    a = adapter()
    assert a.decode(memoryview(frame), True, ListSink()) == 0
    assert {k: v for k, v in a.counts.items() if v} == {kind: 1}


def test_block_length_from_the_header_finds_the_symbol():
    # A root block longer than the schema's 50 bytes: the known fields come first, the symbol
    # follows the block wherever blockLength puts it.
    f = sbe_best_bid_ask(b"BTCUSDT", 7, 9, -2, -5, 1, 2, 3, 4)
    longer = struct.pack("<H", 58) + f[2:58] + b"\xee" * 8 + f[58:]
    a = adapter()
    sink = decode_all(a, [longer], binary=True)
    assert sink.events == [Event(0, MD_BBO, 9, 1, 2, 3, 4, 0, 0, 0, 7000)]
    # A block length pointing past the frame is malformed.
    beyond = struct.pack("<H", 200) + f[2:]
    assert a.decode(memoryview(beyond), True, ListSink()) == 0 and a.counts["malformed"] == 1


def test_trades_golden_and_backwards():
    f = sbe_trades(b"ETHUSDT", 1639351062244000, 1639351062243000, -8, -8,
                   [(705291099, 414974000000, 43870000, True), (705291100, 415000000000, 100000000, False)])
    again = sbe_trades(b"ETHUSDT", 1639351062245000, 1639351062245000, -8, -8,
                       [(705291100, 415000000000, 100000000, False), (705291101, 415000000000, 1000000, True)])
    a = adapter(streams=("trade",))
    sink = decode_all(a, [f, again], binary=True)
    # ETHUSDT: price_exp -2, qty_exp -4: 4149.74 -> 414974, 0.4387 -> 4387.
    assert sink.events == [
        Event(1, MD_TRADE, 705291099, 0, 0, 0, 0, 414974, 4387, SIDE_SELL, 1639351062244000000),
        Event(1, MD_TRADE, 705291100, 0, 0, 0, 0, 415000, 10000, SIDE_BUY, 1639351062244000000),
        Event(1, MD_TRADE, 705291101, 0, 0, 0, 0, 415000, 100, SIDE_SELL, 1639351062245000000),
    ]
    assert a.counts["data"] == 2      # a frame counts once: the repeated trade 705291100 is dropped
    only_repeat = sbe_trades(b"ETHUSDT", 1, 1, -8, -8, [(705291101, 1000000, 1000000, True)])
    assert decode_all(a, [only_repeat], binary=True).events == [] and a.counts["backwards"] == 1


def test_depth_snapshot_top_level():
    f = sbe_depth(b"BTCUSDT", 10002, 1700000000000000, (777,), -2, -5,
                  [(6183763, 378826), (6183762, 1)], [(6183764, 154698)])
    empty_asks = sbe_depth(b"BTCUSDT", 10002, 1700000000000001, (778,), -2, -5, [(6183763, 1)], [])
    sink = decode_all(adapter(), [f, empty_asks], binary=True)
    assert sink.events == [
        Event(0, MD_BBO | MD_SNAPSHOT, 777, 6183763, 378826, 6183764, 154698, 0, 0, 0, 1700000000000000000),
        Event(0, MD_BBO | MD_SNAPSHOT, 778, 6183763, 1, 0, 0, 0, 0, 0, 1700000000000001000),
    ]


def test_real_schema_3_frames_and_json_text_frames_are_classified(corpus):
    frames = sorted((corpus / "binance/sbe/nautilus_user_data_mainnet").glob("*.sbe"))
    assert len(frames) == 6
    a = adapter()
    sink = decode_all(a, [p.read_bytes() for p in frames], binary=True)
    assert sink.events == [] and a.counts["unknown"] == 6     # schema 3, not market data
    texts = [b'{"result":null,"id":1}', b'{"code":2,"msg":"Invalid request"}',
             b'{"stream":"!serverShutdown","data":{"e":"serverShutdown","E":1}}', b"{bad"]
    decode_all(a, texts)
    assert (a.counts["control"], a.counts["error"], a.counts["shutdown"], a.counts["malformed"]) == (1, 1, 1, 1)


def test_stream_url():
    a = adapter()
    assert a.stream_url("wss://stream-sbe.binance.com:9443") == (
        "wss://stream-sbe.binance.com:9443/stream?streams="
        "btcusdt@bestBidAsk/btcusdt@trade/btcusdt@depth20/ethusdt@bestBidAsk/ethusdt@trade/ethusdt@depth20")
    with pytest.raises(ValueError, match="feed.streams"):
        make_adapter("binance-sbe", [Instrument(symbol="BTCUSDT")], ["depth5"])


def test_sbe_connect_sends_the_api_key_header(monkeypatch):
    """Binance's SBE streams refuse a connection without X-MBX-APIKEY (no signature needed)."""
    from engine.feed.venues import make_adapter
    from engine.instruments import DEFAULT_INSTRUMENTS

    monkeypatch.setenv("MM_API_KEY", "k123")
    assert make_adapter("binance-sbe", DEFAULT_INSTRUMENTS).connect_headers() == {"X-MBX-APIKEY": "k123"}
    monkeypatch.delenv("MM_API_KEY")
    assert make_adapter("binance-sbe", DEFAULT_INSTRUMENTS).connect_headers() == {}
    assert make_adapter("binance", DEFAULT_INSTRUMENTS).connect_headers() == {}
