"""Fuzzing the frame handlers: arbitrary bytes and mutated real frames never raise, every frame
lands in exactly one kind, and none needs the last-resort exception handler (`unexpected`)."""
from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from decode_support import (ListSink, cryptofeed_frames, hftbacktest_frames,
                            jsonl_frames, sbe_best_bid_ask, sbe_depth, sbe_trades)

from engine.feed.venues import make_adapter
from engine.instruments import Instrument

VENUES = {
    "binance": (["BTCUSDT", "ETHUSDT", "NKNUSDT", "BNBBTC"], ["bookTicker", "trade", "depth5@100ms"]),
    "binance-sbe": (["BTCUSDT", "ETHUSDT"], ["bestBidAsk", "trade", "depth20"]),
    "bybit": (["BTCUSDT", "XRPUSDT"], ["orderbook.1", "publicTrade"]),
    "okx": (["BTC-USDT", "BTC-USDT-SWAP", "CRV-USDT"], ["bbo-tbt", "trades"]),
}
SETTINGS = settings(max_examples=300, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow])


def make(venue: str):
    symbols, streams = VENUES[venue]
    # Coarse exponents so precision and crossed checks get exercised too.
    ins = [Instrument(symbol=s, tick_size="0.01", lot_size="0.001") for s in symbols]
    return make_adapter(venue, ins, streams, log_skipped=False)


def seeds(corpus, venue: str) -> list[bytes]:
    if venue == "binance":
        return (hftbacktest_frames(corpus / "binance/hftbacktest_spot_btcusdt_20240808.head.txt")[:40]
                + cryptofeed_frames(corpus / "binance/cryptofeed_BINANCE.ws.1.0.txt")[:20]
                + jsonl_frames(corpus / "binance/tardis_mappers_test_binance_messages.jsonl"))
    if venue == "bybit":
        return (jsonl_frames(corpus / "bybit/tardis_mappers_test_bybit_v5_messages.jsonl")
                + hftbacktest_frames(corpus / "bybit/hftbacktest_bybit_docstring_lines.txt"))
    if venue == "okx":
        return (jsonl_frames(corpus / "okx/tardis_mappers_test_okx_v5_messages.jsonl")
                + cryptofeed_frames(corpus / "okx/cryptofeed_OKX.ws.1.0.txt")[:40]
                + [(corpus / "okx/nautilus/ws_bbo_tbt.json").read_bytes()])
    frames = [sbe_best_bid_ask(b"BTCUSDT", 1, 5, -2, -3, 100, 2, 101, 3),
              sbe_trades(b"ETHUSDT", 1, 1, -2, -3, [(1, 100, 1, True), (2, 101, 2, False)]),
              sbe_depth(b"BTCUSDT", 10002, 1, (9,), -2, -3, [(100, 1)], [(101, 1)]),
              sbe_depth(b"BTCUSDT", 10003, 1, (9, 10), -2, -3, [(100, 1)], [(101, 1)])]
    return frames + [p.read_bytes() for p in
                     sorted((corpus / "binance/sbe/nautilus_user_data_mainnet").glob("*.sbe"))]


def feed(adapter, frame: bytes, binary: bool) -> None:
    before, unexpected = sum(adapter.counts.values()), adapter.unexpected
    n = adapter.decode(memoryview(frame), binary, ListSink())
    assert isinstance(n, int) and n >= 0
    assert sum(adapter.counts.values()) == before + 1      # exactly one kind per frame
    assert adapter.unexpected == unexpected, frame[:300]


@pytest.mark.parametrize("venue", sorted(VENUES))
@SETTINGS
@given(frame=st.binary(max_size=300), binary=st.booleans())
def test_arbitrary_bytes(venue, frame, binary):
    feed(make(venue), frame, binary)


@st.composite
def mutated(draw, frames: list[bytes]):
    data = bytearray(draw(st.sampled_from(frames)))
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "set", "cut", "insert", "delete", "digit", "token"]))
        at = draw(st.integers(0, max(0, len(data) - 1)))
        if op == "flip" and data:
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif op == "set" and data:
            data[at] = draw(st.integers(0, 255))
        elif op == "cut":
            del data[at:]
        elif op == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif op == "delete":
            del data[at:at + draw(st.integers(1, 8))]
        elif op == "digit" and data:      # keep JSON valid-looking: change numbers and ids
            data[at] = draw(st.sampled_from(b"0123456789.-e"))
        elif op == "token":
            tok = draw(st.sampled_from([b"null", b"[]", b"{}", b'""', b"-1", b"1e400", b"true",
                                        b'"0"', b"18446744073709551616", b'"\\u0000"']))
            data[at:at] = tok
    return bytes(data)


@pytest.mark.parametrize("venue", sorted(VENUES))
def test_mutated_real_frames(corpus, venue):
    frames = seeds(corpus, venue)
    binary = venue == "binance-sbe"
    adapter = make(venue)          # one adapter across examples: state carries over, like a stream

    @SETTINGS
    @given(frame=mutated(frames))
    def run(frame):
        feed(adapter, frame, binary)
    run()
    # The unmutated seeds still decode afterwards (the adapter kept working).
    fresh = make(venue)
    for f in frames:
        feed(fresh, f, binary)
    assert fresh.counts["data"] > 0
