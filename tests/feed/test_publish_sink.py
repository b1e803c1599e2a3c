"""RingSink: records land in real shared-memory ring slots with every field and stamp; copies of
an update from other connections are dropped; stale/fresh marks; a full ring never raises."""
from time import perf_counter_ns

import pytest

from engine.feed.publish import HISTOGRAMS, RingSink
from engine.latency.histogram import HistogramSet
from engine.records import MD_BBO, MD_DTYPE, MD_FRESH, MD_STALE, MD_TRADE, SIDE_BUY, VENUE_BINANCE
from engine.ring import Ring


@pytest.fixture
def rig(instance):
    """(sink over 2 instruments, consumer of its ring, its histograms)."""
    producer = Ring.create(instance, "md", MD_DTYPE, 64, "drop", role="producer")
    consumer = Ring.attach(instance, "md", MD_DTYPE, role="consumer")
    hists = HistogramSet.create(instance, "feed", list(HISTOGRAMS))
    yield RingSink(producer, hists, 2, VENUE_BINANCE), consumer, hists
    consumer.close()
    producer.close()
    hists.close()


def _frame(sink, conn):
    sink.conn = conn
    sink.ts_arrival = perf_counter_ns()


def _book(sink, instrument, update_id, bid=100, ask=101):
    sink.emit(instrument, MD_BBO, update_id, bid, 5, ask, 7, 0, 0, 0, 0)


def _drain(consumer):
    out = []
    while (r := consumer.pop()) is not None:
        out.append(r[0].copy())
    return out


def test_record_fields_and_stamps(rig):
    sink, consumer, hists = rig
    _frame(sink, 1)
    arrival = sink.ts_arrival
    sink.emit(1, MD_BBO, 42, 6000012, 30, 6000013, 40, 0, 0, 0, 1_700_000_000_000_000_000)
    sink.emit(1, MD_TRADE, 9001, 0, 0, 0, 0, 6000013, 25, SIDE_BUY, 1_700_000_000_000_000_001)
    recs = _drain(consumer)
    assert len(recs) == 2
    r = recs[0]
    assert (r["update_id"], r["instrument"], r["kind"], r["venue"], r["conn"]) == \
        (42, 1, MD_BBO, VENUE_BINANCE, 1)
    assert (r["bid_px"], r["bid_qty"], r["ask_px"], r["ask_qty"]) == (6000012, 30, 6000013, 40)
    assert r["ts_venue"] == 1_700_000_000_000_000_000
    assert r["ts_arrival"] == arrival <= r["ts_decoded"] <= r["ts_published"]
    t = recs[1]
    assert (t["kind"], t["update_id"], t["trade_px"], t["trade_qty"], t["trade_side"]) == \
        (MD_TRADE, 9001, 6000013, 25, SIDE_BUY)
    assert recs[1]["seq"] == recs[0]["seq"] + 1
    counts = {n: h.count for n, h in hists.snapshots().items()}
    assert counts == {"arrival_to_decoded": 2, "decoded_to_published": 2, "arrival_to_published": 2}


def test_first_copy_wins_later_copies_dropped(rig):
    sink, consumer, _ = rig
    # Connection 0 delivers 10, 11; connection 1 delivers 10, 11, 12 a little later; 0 then 12, 13.
    for conn, uid in ((0, 10), (0, 11), (1, 10), (1, 11), (1, 12), (0, 12), (0, 13)):
        _frame(sink, conn)
        _book(sink, 0, uid)
    recs = _drain(consumer)
    assert [(int(r["update_id"]), int(r["conn"])) for r in recs] == \
        [(10, 0), (11, 0), (12, 1), (13, 0)]
    assert sink.dupes == 3


def test_dedupe_is_per_instrument_and_per_id_class(rig):
    sink, consumer, _ = rig
    _frame(sink, 0)
    _book(sink, 0, 500)
    _book(sink, 1, 500)          # other instrument: same id is a different update
    sink.emit(0, MD_TRADE, 500, 0, 0, 0, 0, 100, 1, SIDE_BUY, 0)   # trade ids are their own space
    sink.emit(0, MD_TRADE, 499, 0, 0, 0, 0, 100, 1, SIDE_BUY, 0)   # older trade: dropped
    _book(sink, 0, 499)          # older book update: dropped
    recs = _drain(consumer)
    assert [(int(r["instrument"]), int(r["kind"]), int(r["update_id"])) for r in recs] == \
        [(0, MD_BBO, 500), (1, MD_BBO, 500), (0, MD_TRADE, 500)]
    assert sink.dupes == 2


def test_stale_then_fresh_marks(rig):
    sink, consumer, _ = rig
    _frame(sink, 0)
    _book(sink, 0, 77)
    sink.mark_stale()
    sink.mark_stale()            # already stale: no second mark
    assert sink.stale and sink.stale_marks == 1
    _frame(sink, 1)
    _book(sink, 0, 78)
    recs = _drain(consumer)
    assert [(int(r["kind"]), int(r["instrument"]), int(r["update_id"])) for r in recs] == [
        (MD_BBO, 0, 77),
        (MD_STALE, 0, 77), (MD_STALE, 1, 0),
        (MD_FRESH, 0, 77), (MD_FRESH, 1, 0),
        (MD_BBO, 0, 78)]
    assert all(r["bid_px"] == 0 and r["ask_px"] == 0 for r in recs[1:5])
    assert recs[3]["conn"] == 1 and not sink.stale and sink.fresh_marks == 1


def test_full_ring_drops_and_counts_without_raising(instance):
    producer = Ring.create(instance, "md", MD_DTYPE, 4, "drop", role="producer")
    consumer = Ring.attach(instance, "md", MD_DTYPE, role="consumer")
    try:
        sink = RingSink(producer, None, 1, VENUE_BINANCE)
        _frame(sink, 0)
        for uid in range(1, 11):
            _book(sink, 0, uid)
        assert sink.ring_full == 6 and sink.published == 4
        assert producer.stats()["dropped"] == 6
        recs = _drain(consumer)
        assert [int(r["update_id"]) for r in recs] == [1, 2, 3, 4]
        _book(sink, 0, 11)       # room again: the next record carries the sequence gap
        (r,) = _drain(consumer)
        assert int(r["update_id"]) == 11 and r["seq"] == recs[-1]["seq"] + 7
    finally:
        consumer.close()
        producer.close()


def test_duplicates_do_not_revive_a_stale_stream_forget_ids_does(rig):
    sink, consumer, _ = rig
    _frame(sink, 0)
    _book(sink, 0, 900)
    sink.mark_stale()
    _book(sink, 0, 900)          # a copy of what was published: still stale, nothing written
    _book(sink, 0, 15)           # rewound ids: dropped as duplicates too
    assert sink.stale and sink.dupes == 2
    sink.forget_ids()
    _book(sink, 0, 16)
    recs = _drain(consumer)
    assert [(int(r["kind"]), int(r["update_id"])) for r in recs if r["instrument"] == 0] == \
        [(MD_BBO, 900), (MD_STALE, 900), (MD_FRESH, 0), (MD_BBO, 16)]
    assert not sink.stale and sink.id_resets == 1


def test_a_closed_sink_refuses_to_write(instance):
    """close() detaches the C writer before unmapping the ring: a late emit raises, it never
    writes into freed memory."""
    producer = Ring.create(instance, "md", MD_DTYPE, 8, "drop", role="producer")
    sink = RingSink(producer, None, 1, VENUE_BINANCE)
    _frame(sink, 0)
    _book(sink, 0, 1)
    sink.close()
    with pytest.raises(RuntimeError, match="detached"):
        _book(sink, 0, 2)
    with pytest.raises(RuntimeError, match="detached"):
        sink.mark_stale()
    assert sink.published == 1


def test_emit_checks_its_arguments(rig):
    sink, consumer, _ = rig
    with pytest.raises(IndexError):
        _book(sink, 2, 1)                  # only instruments 0 and 1
    with pytest.raises(TypeError):
        sink.emit(0, MD_BBO, 1)
    with pytest.raises(ValueError):
        sink.emit(0, 1 << 16, 1, 0, 0, 0, 0, 0, 0, 0, 0)
    with pytest.raises(ValueError):
        sink.conn = 256
    assert sink.published == 0 and _drain(consumer) == []
