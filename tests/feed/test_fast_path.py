"""The C fast paths (engine._feed.BookDecoder: Binance combined bookTicker JSON, SBE bestBidAsk)
decode exactly what the Python decoders decode: same events, same frame counts, same state
carried from frame to frame, on the corpus and on generated frames (valid, borderline and
broken). They publish straight into the md ring without a single allocation per frame."""
from __future__ import annotations

import tracemalloc

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from decode_support import (cryptofeed_frames, decode_all, hftbacktest_frames,
                            jsonl_frames, sbe_best_bid_ask)

from engine import _feed
from engine.feed.publish import RingSink
from engine.feed.venues import make_adapter
from engine.instruments import Instrument
from engine.records import MD_DTYPE, VENUE_BINANCE
from engine.ring import Ring

SETTINGS = settings(max_examples=400, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])
SYMBOLS = ("BTCUSDT", "ETHUSDT")


def pair(venue: str, streams, instruments):
    """(adapter with the C fast path, adapter with the Python decoder alone)."""
    return tuple(make_adapter(venue, instruments, streams, log_skipped=False, fast_path=fp)
                 for fp in (True, False))


def assert_same(venue, streams, instruments, frames, binary):
    fast, slow = pair(venue, streams, instruments)
    a, b = decode_all(fast, frames, binary), decode_all(slow, frames, binary)
    assert a.events == b.events
    assert fast.counts == slow.counts
    assert list(fast._last_book_id) == list(slow._last_book_id)
    return fast


def test_corpus_binance_json_same_events(corpus):
    b = corpus / "binance"
    frames = (hftbacktest_frames(b / "hftbacktest_spot_btcusdt_20240808.head.txt")
              + hftbacktest_frames(b / "hftbacktest_usdm_btcusdt_20240808.head.txt")
              + cryptofeed_frames(b / "cryptofeed_BINANCE.ws.1.0.txt")
              + jsonl_frames(b / "tardis_mappers_test_binance_messages.jsonl"))
    for exp in (-8, -2, 0):   # exact, coarser, integers only (every price refused: precision)
        ins = [Instrument(symbol=s, price_exp=exp, qty_exp=min(exp, -5))
               for s in ("BTCUSDT", "ETHUSDT", "NKNUSDT", "BNBBTC")]
        fast = assert_same("binance", ["bookTicker", "trade", "depth5@100ms"], ins, frames, False)
        assert fast._fast_path.slow > 0 and (fast._fast_path.fast > 0) == (exp < 0)


# ---------------------------------------------------------------- generated bookTicker frames
# Mostly frames the fast path takes (so its arithmetic is compared with Python's), the rest
# borderline or broken in the ways that must send a frame to the Python path.
digits = st.text("0123456789", min_size=1, max_size=21)
odd_decimal = st.one_of(
    st.builds(lambda w, f: f"{w}.{f}", digits, digits),
    st.sampled_from(["", ".5", "1.", "1e3", "-1", "+1", "1.2.3", "٣", " 1", "0x1", "1_0",
                     "00000000000000000000000000000061837.630000000000000000000000000000"]))


def render(m: int, exp: int, zeros: int, finer: bool) -> str:
    """m * 10**exp as a decimal string with `zeros` extra trailing zeros (a digit below 10**exp
    when `finer`)."""
    if exp >= 0:
        s = str(m) + "0" * exp + ("." + "0" * zeros if zeros else "")
    else:
        s = f"{m // 10 ** -exp}.{m % 10 ** -exp:0{-exp}d}" + "0" * zeros
    return s + ("7" if "." in s else ".7") if finer else s


@st.composite
def decimal_at(draw, m: int, exp: int) -> str:
    kind = draw(st.sampled_from(["plain"] * 24 + ["finer", "odd"]))
    if kind == "odd":
        return draw(odd_decimal)
    return render(m, exp, draw(st.integers(0, 3)), kind == "finer")


@st.composite
def book_tickers(draw):
    """(price exp, qty exp, frames): a stream of bookTicker frames for SYMBOLS."""
    pexp, qexp = draw(st.integers(-10, 1)), draw(st.integers(-10, 1))
    frames, last = [], draw(st.integers(0, 2 ** 62))
    for _ in range(draw(st.integers(1, 6))):
        u = draw(st.one_of(*[st.integers(last, last + 3)] * 8, st.integers(0, 2 ** 63 - 1),
                           st.integers(2 ** 63 - 3, 2 ** 64)))     # mostly onwards
        last = min(u, 2 ** 62)
        u_text = draw(st.sampled_from(["{}"] * 8 + ["0{}", "-{}", "{}.0", "{}e0", '"{}"']))
        sym = draw(st.sampled_from(SYMBOLS * 8 + ("XRPUSDT", "btcusdt", "BTC\\u0055SDT", "BTCÉ")))
        bid = draw(st.integers(0, 10 ** 12))
        ask = max(0, bid + draw(st.integers(-2, 1000)))
        b, a = draw(decimal_at(bid, pexp)), draw(decimal_at(ask, pexp))
        bq, aq = (draw(decimal_at(draw(st.integers(0, 10 ** 9)), qexp)) for _ in range(2))
        stream = draw(st.sampled_from(["btcusdt@bookTicker"] * 4 + ["x", "", "\\n", "é"]))
        frame = ('{"stream":"%s","data":{"u":%s,"s":"%s","b":"%s","B":"%s","a":"%s","A":"%s"}}'
                 % (stream, u_text.format(u), sym, b, bq, a, aq)).encode()
        tweak = draw(st.sampled_from([""] * 12 + ["space", "E", "trail", "cut", "order"]))
        if tweak == "space":
            frame = frame.replace(b'"u":', b'"u": ')
        elif tweak == "E":
            frame = frame[:-2] + b',"E":1723161255343}}'
        elif tweak == "trail":
            frame += b" "
        elif tweak == "cut":
            frame = frame[:-1]
        elif tweak == "order":
            frame = frame.replace(b'"b":', b'"X":').replace(b'"a":', b'"b":').replace(b'"X":',
                                                                                       b'"a":')
        frames.append(frame)
    return pexp, qexp, frames


def assert_same_generated(venue: str, streams, binary: bool, case) -> None:
    pexp, qexp, frames = case
    ins = [Instrument(symbol=s, price_exp=pexp, qty_exp=qexp) for s in SYMBOLS]
    assert_same(venue, streams, ins, frames, binary)


@pytest.mark.slow
@SETTINGS
@given(case=book_tickers())
def test_generated_book_tickers_same_events(case):
    assert_same_generated("binance", ["bookTicker"], False, case)


def test_a_quantity_past_uint64_is_refused_not_wrapped():
    """20 digits pass 2**64 on the last multiply: the C path once wrapped them into a small
    quantity and published it; it must refuse the frame as the Python path does."""
    ins = [Instrument(symbol=s, price_exp=0, qty_exp=0) for s in SYMBOLS]
    f = (b'{"stream":"btcusdt@bookTicker","data":{"u":0,"s":"BTCUSDT","b":"0","B":"0",'
         b'"a":"0","A":"20000000000000000000.0"}}')
    fast = assert_same("binance", ["bookTicker"], ins, [f], False)
    assert fast._fast_path.fast == 0


def test_canonical_book_ticker_takes_the_fast_path():
    ins = [Instrument(symbol=s, price_exp=-2, qty_exp=-5) for s in SYMBOLS]
    f = (b'{"stream":"ethusdt@bookTicker","data":{"u":7,"s":"ETHUSDT","b":"2500.10","B":"1.5",'
         b'"a":"2500.20","A":"0.00001"}}')
    fast = assert_same("binance", ["bookTicker"], ins, [f], False)
    assert fast._fast_path.fast == 1 and fast._fast_path.slow == 0
    assert fast.counts["data"] == 1


# ---------------------------------------------------------------- generated SBE bestBidAsk frames
odd_i64 = st.one_of(st.sampled_from([-1, 10 ** 18, 2 ** 63 - 1, -(2 ** 63)]),
                    st.integers(-(2 ** 63), 2 ** 63 - 1))


@st.composite
def best_bid_asks(draw):
    """(price exp, qty exp, frames): a stream of bestBidAsk frames, exponents near the
    instrument's (scaled up, down, with and without lost digits)."""
    pexp, qexp = draw(st.integers(-10, 1)), draw(st.integers(-10, 1))
    frames, last = [], draw(st.integers(0, 2 ** 62))
    for _ in range(draw(st.integers(1, 6))):
        sym = draw(st.sampled_from([s.encode() for s in SYMBOLS] * 8 + [b"XRPUSDT", b"x" * 255]))
        u = draw(st.one_of(*[st.integers(last, last + 3)] * 8, odd_i64))   # mostly onwards
        last = min(max(u, 0), 2 ** 62)
        ts = draw(st.one_of(st.integers(0, 2 ** 62), st.integers(0, 2 ** 62), odd_i64))
        pe, qe = (e + draw(st.sampled_from([0, 0, 0, -3, -1, 1, 3])) for e in (pexp, qexp))
        bid = draw(st.integers(0, 10 ** 12))
        m = [bid, draw(st.integers(0, 10 ** 9)), max(0, bid + draw(st.integers(-2, 1000))),
             draw(st.integers(0, 10 ** 9))]
        for k in range(4):
            if draw(st.integers(0, 19)) == 0:
                m[k] = draw(odd_i64)
        f = sbe_best_bid_ask(sym, ts, u, pe, qe, *m,
                             **draw(st.sampled_from([{}] * 8 + [{"version": 1}, {"schema": 3}])))
        tweak = draw(st.sampled_from([""] * 10 + ["cut", "extra", "length"]))
        if tweak == "cut":
            f = f[:-1]
        elif tweak == "extra":
            f += b"\0"
        elif tweak == "length":
            f = f[:58] + bytes([f[58] ^ 1]) + f[59:]
        frames.append(f)
    return pexp, qexp, frames


@SETTINGS
@given(case=best_bid_asks())
def test_generated_best_bid_asks_same_events(case):
    assert_same_generated("binance-sbe", ["bestBidAsk"], True, case)


@SETTINGS
@given(u=st.lists(st.integers(0, 50), min_size=2, max_size=8),
       mantissas=st.tuples(st.integers(0, 10 ** 9), st.integers(0, 10 ** 9),
                           st.integers(0, 10 ** 9), st.integers(0, 10 ** 9)),
       pe=st.integers(-10, 0), qe=st.integers(-10, 0))
def test_sbe_clean_frames_same_events(u, mantissas, pe, qe):
    """Mostly clean frames (the fast path's own cases): ids up and down, exponents off the
    instrument's, crossed books."""
    bp, bq, ap, aq = mantissas
    frames = [sbe_best_bid_ask(b"BTCUSDT", 1, k, pe, qe, bp, bq, ap, aq) for k in u]
    ins = [Instrument(symbol=s, price_exp=-5, qty_exp=-5) for s in SYMBOLS]
    assert_same("binance-sbe", ["bestBidAsk"], ins, frames, True)


# ---------------------------------------------------------------- straight into the ring
@pytest.fixture
def ring(instance):
    producer = Ring.create(instance, "md", MD_DTYPE, 1 << 13, "drop", role="producer")
    consumer = Ring.attach(instance, "md", MD_DTYPE, role="consumer")
    yield producer, consumer
    consumer.close()
    producer.close()


def frames_for(venue: str, n: int) -> list[memoryview]:
    if venue == "binance":
        return [memoryview(b'{"stream":"btcusdt@bookTicker","data":{"u":%d,"s":"BTCUSDT",'
                           b'"b":"61837.63000000","B":"3.78826000","a":"61837.64000000",'
                           b'"A":"1.54698000"}}' % (50_000_000_000 + k)) for k in range(n)]
    return [memoryview(sbe_best_bid_ask(b"BTCUSDT", 1723161255343000 + k, 50_000_000_000 + k,
                                        -8, -8, 6183763000000, 378826000, 6183764000000,
                                        154698000)) for k in range(n)]


VENUE_CASES = [("binance", ["bookTicker"], False), ("binance-sbe", ["bestBidAsk"], True)]


@pytest.mark.parametrize("venue,streams,binary", VENUE_CASES)
def test_records_in_the_ring_match_the_python_path(ring, venue, streams, binary):
    producer, consumer = ring
    ins = [Instrument(symbol="BTCUSDT", price_exp=-2, qty_exp=-5)]
    frames = frames_for(venue, 50)
    got = []
    for adapter in pair(venue, streams, ins):
        sink = RingSink(producer, None, 1, VENUE_BINANCE)
        for f in frames:
            sink.conn, sink.ts_arrival = 1, 12345
            assert adapter.decode(f, binary, sink) == 1
        got.append(consumer.pop_many().copy())
        consumer.release()
    fast, slow = got
    assert len(fast) == len(slow) == 50
    for name in MD_DTYPE.names:
        if name not in ("seq", "ts_decoded", "ts_published"):
            assert (fast[name] == slow[name]).all(), name
    assert (fast["ts_arrival"] == 12345).all() and (fast["conn"] == 1).all()
    assert (fast["ts_decoded"] <= fast["ts_published"]).all()


@pytest.mark.parametrize("venue,streams,binary", VENUE_CASES)
def test_fast_path_allocates_nothing_per_frame(ring, venue, streams, binary):
    producer, consumer = ring
    ins = [Instrument(symbol="BTCUSDT", price_exp=-2, qty_exp=-5)]
    n = 4000
    frames = frames_for(venue, n)
    counts = {}
    for adapter in pair(venue, streams, ins):
        sink = RingSink(producer, None, 1, VENUE_BINANCE)
        decode = adapter.decode

        def run():
            for f in frames:
                decode(f, binary, sink)
        tracemalloc.start()
        try:
            allocs, _ = _feed.count_allocations(run)
            grown = tracemalloc.get_traced_memory()[0]
        finally:
            tracemalloc.stop()
        assert sink.published == n
        counts[adapter._fast_path is not None] = (allocs, grown)
        consumer.pop_many()
        consumer.release()
    (fast_allocs, fast_grown), (slow_allocs, _) = counts[True], counts[False]
    assert slow_allocs >= 5 * n            # the counter sees the Python path's objects...
    assert fast_allocs < 50                # ...and none per frame on the C path
    assert fast_grown < 4096               # nothing kept either


def test_publisher_refuses_a_layout_it_cannot_write(ring):
    producer, _ = ring
    from engine.feed.publish import MD_LAYOUT
    bad = dict(MD_LAYOUT)
    del bad["ts_arrival"]
    with pytest.raises(ValueError, match="no field ts_arrival"):
        _feed.Publisher(producer.hdr, bad, 1, 1, (2, 8, 16), None)
    bad = dict(MD_LAYOUT, kind=(MD_LAYOUT["kind"][0], 4))
    with pytest.raises(ValueError, match="md field kind is 4 bytes"):
        _feed.Publisher(producer.hdr, bad, 1, 1, (2, 8, 16), None)


def test_count_allocations_counts():
    n, result = _feed.count_allocations(lambda k: [object() for _ in range(k)], 100)
    assert len(result) == 100 and n >= 100
