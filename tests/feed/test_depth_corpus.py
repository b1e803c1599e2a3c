"""Real Binance diff-depth frames (../shared/corpus, read at test time) decoded by the feed's
adapter into its DepthFeed and kept by the book rules: the hftbacktest captures carry the REST
snapshot in the stream (`{"lastUpdateId":..}`), so the book syncs, applies every event after it
without a gap, and agrees with the venue's own bookTicker whenever both name the same update;
cryptofeed's USD-M capture chains by `pu`, and a frame taken out of it is a gap."""
from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from engine.feed.depth_book import APPLIED, GAP, SYNCED, DepthBook
from engine.feed.depth_feed import DepthFeed
from engine.feed.venues import make_adapter
from engine.instruments import Instrument
from tests.feed.decode_support import NotifySink, cryptofeed_frames, hftbacktest_frames

STREAMS = ("bookTicker", "trade", "depth@100ms")


def depth_adapter(instruments, streams=STREAMS):
    sink = NotifySink()
    probe = make_adapter("binance", instruments, ("bookTicker",))
    feed = DepthFeed(instruments, probe, "http://127.0.0.1:1", 1000, sink)
    return make_adapter("binance", instruments, streams, depth=feed), feed, probe, sink


# (file, price exp, qty exp, events applied, bookTickers naming the book's very update id: spot's
# bookTicker and depth ids interleave without meeting in this excerpt, USD-M's meet 4 times)
CAPTURES = [("hftbacktest_spot_btcusdt_20240808.head.txt", -2, -5, 84, 0),
            ("hftbacktest_usdm_btcusdt_20240808.head.txt", -1, -3, 64, 4)]


@pytest.mark.parametrize("name,pexp,qexp,applied,agree", CAPTURES)
def test_hftbacktest_capture_syncs_and_follows_the_bookticker(corpus: Path, name, pexp, qexp,
                                                              applied, agree):
    ins = [Instrument(symbol="BTCUSDT", price_exp=pexp, qty_exp=qexp)]
    adapter, feed, probe, sink = depth_adapter(ins)
    book = feed.books[0]
    agreed = crossed = at_sync = 0
    for frame in hftbacktest_frames(corpus / "binance" / name):
        if frame.startswith(b'{"lastUpdateId"'):
            assert book.on_snapshot(*probe.decode_depth_snapshot(frame, 0)) == SYNCED
            at_sync = book.applied           # buffered events the snapshot let through
            continue
        adapter.decode(memoryview(frame), False, sink)
        if not book.synced:
            continue
        (bb, ba) = book.top(1)
        if bb and ba and bb[0][0] >= ba[0][0]:
            crossed += 1
        msg = json.loads(frame)
        if msg.get("stream", "").endswith("@bookTicker") and msg["data"]["u"] == book.update_id:
            d = msg["data"]
            assert bb[0] == (round(float(d["b"]) * 10 ** -pexp), round(float(d["B"]) * 10 ** -qexp))
            assert ba[0] == (round(float(d["a"]) * 10 ** -pexp), round(float(d["A"]) * 10 ** -qexp))
            agreed += 1
    assert book.synced and book.gaps == 0 and crossed == 0
    assert book.applied == applied              # every event after the snapshot
    assert adapter.counts["malformed"] == adapter.counts["unknown"] == 0
    # each event applied from the stream published the book (one MD_DEPTH_BOOK record)
    assert sink.notes[-1][2] == book.update_id and len(sink.notes) == applied - at_sync
    assert agreed == agree


def test_usdm_capture_chains_by_pu_and_a_missing_frame_is_a_gap(corpus: Path):
    frames = [f for f in cryptofeed_frames(corpus / "binance" / "cryptofeed_BINANCE_FUTURES.ws.1.0.txt")
              if b"@depth@100ms" in f]
    symbols = ("SUSHIUSDT", "AKROUSDT", "KEEPUSDT", "CTKUSDT")
    ins = [Instrument(symbol=s, price_exp=-8, qty_exp=-8) for s in symbols]
    adapter, feed, _, sink = depth_adapter(ins)
    # sync each book on its first event's id (an empty snapshot), then the rest must chain
    firsts = {}
    for f in frames:
        d = json.loads(f)["data"]
        firsts.setdefault(d["s"], d["u"])
    for i, s in enumerate(symbols):
        assert feed.books[i].on_snapshot(firsts[s], [], []) == SYNCED
    for f in frames:
        adapter.decode(memoryview(f), False, sink)
    books = feed.books
    assert sum(b.applied for b in books) == len(frames) - len(symbols)
    assert sum(b.gaps for b in books) == 0 and all(b.synced for b in books)
    deletes = sum(1 for f in frames for side in ("b", "a")
                  for _, q in json.loads(f)["data"][side] if float(q) == 0)
    assert deletes > 0
    # one frame of SUSHIUSDT taken out: its successor's pu no longer chains
    sushi = [f for f in frames if b'"s":"SUSHIUSDT"' in f]
    book = DepthBook()
    first = json.loads(sushi[0])["data"]
    book.on_snapshot(first["u"], [], [])
    results = []
    for f in sushi[1:10] + sushi[11:20]:
        d = json.loads(f)["data"]
        results.append(book.on_diff(d["U"], d["u"], d["pu"], [], []))
    assert results[:9] == [APPLIED] * 9 and results[9] == GAP and book.gaps == 1


def test_the_second_connections_copies_are_dropped_and_leave_the_book_alone(corpus: Path):
    """Both redundant connections deliver every event into the one book: replaying the frames
    a second time (the slower connection's copies) changes nothing and publishes nothing. Also
    prints what a dropped copy costs (decode + compare)."""
    ins = [Instrument(symbol="BTCUSDT", price_exp=-2, qty_exp=-5)]
    adapter, feed, probe, sink = depth_adapter(ins)
    frames = hftbacktest_frames(corpus / "binance" / CAPTURES[0][0])
    book = feed.books[0]
    for f in frames:
        if f.startswith(b'{"lastUpdateId"'):
            book.on_snapshot(*probe.decode_depth_snapshot(f, 0))
        else:
            adapter.decode(memoryview(f), False, sink)
    depth = [f for f in frames if b"@depth@100ms" in f]
    levels, update_id, notes, dropped = book.levels(), book.update_id, len(sink.notes), book.dropped
    t0 = time.perf_counter_ns()
    for f in depth:
        assert adapter.decode(memoryview(f), False, sink) == 1      # alive, though a copy
    per = (time.perf_counter_ns() - t0) / len(depth)
    assert book.levels() == levels and book.update_id == update_id and book.synced
    assert len(sink.notes) == notes and book.dropped == dropped + len(depth)
    print(f"dropped copy of a depth frame: {per / 1000:.1f} us ({len(depth)} frames)")
