"""Order state machine: every transition the quoter must know about emits exactly one record;
out-of-order and repeated events are applied or counted, never dropped silently."""
from engine.records import FILL_ACK, FILL_CANCELED, FILL_REJECT, FILL_TRADE, SIDE_BUY
from engine.sender import state as S


class ListSink:
    """A fill sink that keeps the records (what FillWriter would write to the ring)."""

    def __init__(self):
        self.records = []

    def emit(self, kind, order_id, instrument, side=0, price=0, qty=0, cum_qty=0,
             leaves_qty=0, error_code=0, ts_venue=0):
        self.records.append((kind, order_id, qty, cum_qty, leaves_qty, error_code))
        return True


def book_with(order_id=7, qty=100):
    sink = ListSink()
    book = S.OrderBook(sink, "mm")
    book.new(order_id, b"mm-5-%d" % order_id, 0, SIDE_BUY, 1000, qty)
    return book, sink


def test_happy_path_ack_partial_fill_then_filled():
    book, sink = book_with()
    assert book.get(7).state == S.PENDING_NEW
    book.accepted(7, venue_id=99)
    assert book.get(7).state == S.OPEN
    book.traded(7, last_px=1000, cum_qty=30)
    assert book.get(7).state == S.PARTIALLY_FILLED
    book.traded(7, last_px=999, cum_qty=100)
    assert book.get(7) is None and book.done[7] == S.FILLED
    assert sink.records == [(FILL_ACK, 7, 100, 0, 100, 0), (FILL_TRADE, 7, 30, 30, 70, 0),
                            (FILL_TRADE, 7, 70, 100, 0, 0)]


def test_fill_before_ack_implies_the_ack_once():
    book, sink = book_with()
    book.traded(7, 1000, 40)
    book.accepted(7)                      # the late ack is a duplicate
    assert [r[0] for r in sink.records] == [FILL_ACK, FILL_TRADE]
    assert book.counts["out_of_order"] == 1 and book.counts["duplicates"] == 1
    assert book.get(7).state == S.PARTIALLY_FILLED


def test_repeated_and_stale_fills_do_not_double_count():
    book, sink = book_with()
    book.accepted(7)
    book.traded(7, 1000, 50)
    book.traded(7, 1000, 50)              # the same report again
    book.traded(7, 1000, 20)              # an older one
    assert sum(r[2] for r in sink.records if r[0] == FILL_TRADE) == 50
    assert book.counts["duplicates"] == 2


def test_missed_fill_is_folded_into_the_next_by_cumulative_qty():
    book, sink = book_with()
    book.accepted(7)
    book.traded(7, 1000, 20)
    book.traded(7, 1000, 90)              # a 30 and a 40 fill; the 30 report was lost
    assert [r[2] for r in sink.records if r[0] == FILL_TRADE] == [20, 70]


def test_cancel_pending_then_canceled_and_late_reports():
    book, sink = book_with()
    book.accepted(7)
    book.cancel_sent(7)
    assert book.get(7).state == S.CANCEL_PENDING
    book.traded(7, 1000, 10)              # a fill racing the cancel is kept
    assert book.get(7).state == S.CANCEL_PENDING
    book.canceled(7)
    book.canceled(7)                      # the executionReport after the response
    assert [r[0] for r in sink.records] == [FILL_ACK, FILL_TRADE, FILL_CANCELED]
    assert sink.records[-1][3] == 10      # cum_qty carried on the cancel
    assert book.counts["duplicates"] == 1 and book.done[7] == S.CANCELED


def test_reject_only_before_acceptance():
    book, sink = book_with()
    book.rejected(7, -2010)
    assert sink.records == [(FILL_REJECT, 7, 100, 0, 0, -2010)]
    assert book.done[7] == S.REJECTED
    book2, sink2 = book_with()
    book2.accepted(7)
    book2.rejected(7, -2010)              # a resting order cannot be rejected: stale report
    assert [r[0] for r in sink2.records] == [FILL_ACK]
    assert book2.needs_reconcile and book2.counts["out_of_order"] == 1


def test_failed_cancel_restores_state_and_asks_for_reconcile():
    book, _ = book_with()
    book.accepted(7)
    book.cancel_sent(7)
    book.cancel_failed(7, -2011)
    assert book.get(7).state == S.OPEN and book.needs_reconcile


def test_unknown_ids_are_counted_and_trigger_reconcile():
    book, sink = book_with()
    book.traded(12345, 1, 1)
    assert sink.records == [] and book.counts["unknown_events"] == 1 and book.needs_reconcile
    assert book.order_id_of("mm-77-12") == 12
    assert book.order_id_of("other-77-12") is None
    assert book.order_id_of("mm-77-x") is None


def test_reconcile_cancels_vanished_applies_missed_fills_returns_strangers():
    sink = ListSink()
    book = S.OrderBook(sink, "mm")
    for n in (1, 2, 3):
        book.new(n, b"mm-0-%d" % n, 0, SIDE_BUY, 1000, 100)
        book.accepted(n)
    book.new(4, b"mm-0-4", 0, SIDE_BUY, 1000, 100)        # just sent: within the grace
    book.new(5, b"mm-0-5", 1, SIDE_BUY, 1000, 100)        # other instrument: untouched
    sink.records.clear()
    strangers = book.reconcile([(1, 11, 0), (2, 12, 60), (9, 19, 0)], {0})
    assert strangers == [9]
    assert (FILL_TRADE, 2, 60, 60, 40, 0) in sink.records
    assert (FILL_CANCELED, 3, 0, 0, 0, 0) in sink.records
    assert set(book.live) == {1, 2, 4, 5}
    assert not book.needs_reconcile
