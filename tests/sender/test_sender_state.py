"""Order truth (engine/sender/order_state.py): every transition the quoter must know about
emits exactly one record; late, duplicate and out-of-order reports are applied by cumulative
quantity and never double count; an unknown outcome is resolved only by the venue's answer."""
from engine.records import (FILL_ACK, FILL_CANCEL_REJECT, FILL_CANCELED, FILL_REJECT, FILL_TRADE,
                            FILL_UNKNOWN, SIDE_BUY, SIDE_SELL)
from engine.sender import order_state as S

SECOND = 1_000_000_000


class ListSink:
    """A fill sink that keeps the records (what FillWriter would write to the ring)."""

    def __init__(self):
        self.records = []

    def emit(self, kind, order_id, instrument, side=0, price=0, qty=0, cum_qty=0,
             leaves_qty=0, error_code=0, ts_venue=0):
        self.records.append((kind, order_id, qty, cum_qty, leaves_qty, error_code))
        return True

    def kinds(self):
        return [r[0] for r in self.records]


def table_with(order_id=7, qty=100, side=SIDE_BUY):
    sink = ListSink()
    t = S.OrderTable(sink, "mm", not_found_confirm_ns=SECOND)
    t.position[0] = 0
    o = t.new(order_id, b"mm-5-%d" % order_id, 0, side, 1000, qty)
    o.last_sent_ns = 0                    # these tests' clock starts at 0
    return t, o, sink


def test_happy_path_ack_partial_fill_then_filled():
    t, o, sink = table_with()
    assert o.state == S.PENDING_NEW
    t.accepted(o, venue_id=99)
    assert o.state == S.OPEN and o.venue_id == 99
    t.traded(o, last_px=1000, cum_qty=30)
    t.traded(o, last_px=999, cum_qty=100)
    assert t.get(7) is None and t.done[7].state == S.FILLED
    assert sink.records == [(FILL_ACK, 7, 100, 0, 100, 0), (FILL_TRADE, 7, 30, 30, 70, 0),
                            (FILL_TRADE, 7, 70, 100, 0, 0)]
    assert t.position[0] == 100


def test_fill_before_ack_implies_the_ack_once():
    t, o, sink = table_with()
    t.traded(o, 1000, 40)
    t.accepted(o)                         # the late ack: nothing more for the quoter
    assert sink.kinds() == [FILL_ACK, FILL_TRADE]
    assert t.counts["out_of_order"] == 1 and t.counts["duplicates"] == 1


def test_repeated_stale_and_missed_fills_count_by_cumulative_quantity():
    t, o, sink = table_with()
    t.accepted(o)
    t.traded(o, 1000, 50)
    t.traded(o, 1000, 50)                 # the same report again
    t.traded(o, 1000, 20)                 # an older one
    t.traded(o, 1000, 90)                 # a 20 and a 20; the first of them never came
    assert [r[2] for r in sink.records if r[0] == FILL_TRADE] == [50, 40]
    assert t.counts["duplicates"] == 2 and t.position[0] == 90


def test_a_fill_after_the_end_still_moves_inventory_once():
    """An executionReport that arrives after the order was concluded canceled (a late report
    after a reconcile looked) is a fill all the same; a repeat of it is not."""
    t, o, sink = table_with(side=SIDE_SELL)
    t.accepted(o)
    t.cancel_sent(o)
    t.canceled(o)
    t.traded(o, 1000, 30)
    t.traded(o, 1000, 30)
    trades = [r for r in sink.records if r[0] == FILL_TRADE]
    assert trades == [(FILL_TRADE, 7, 30, 30, 0, 0)]
    assert t.counts["late_fills"] == 1 and t.position[0] == -30


def test_refused_cancel_keeps_the_order_and_says_so():
    t, o, sink = table_with()
    t.accepted(o)
    t.cancel_sent(o)
    assert o.state == S.CANCELING
    t.cancel_refused(o, -1021)
    assert o.state == S.OPEN and not o.cancel_asked
    assert sink.records[-1] == (FILL_CANCEL_REJECT, 7, 0, 0, 100, -1021)


def test_unknown_outcome_waits_for_the_venue_and_reports_are_facts_meanwhile():
    t, o, sink = table_with()
    t.accepted(o)
    t.cancel_sent(o)
    t.outcome_unknown(o, now_ns=5)
    assert o.state == S.UNKNOWN and sink.records[-1][0] == FILL_UNKNOWN
    assert t.due_queries(5, 10) == [o]
    t.accepted(o)                          # a NEW report: no news about the cancel
    assert sink.records[-1][0] == FILL_UNKNOWN
    t.traded(o, 1000, 10)                  # a fill is a fact: reported at once
    assert sink.records[-1][:2] == (FILL_TRADE, 7) and o.state == S.UNKNOWN
    t.venue_status(o, S.OPEN, 10)          # the venue: it rests, the cancel did not happen
    assert o.state == S.OPEN and sink.records[-1] == (FILL_CANCEL_REJECT, 7, 0, 10, 90, 0)
    assert t.counts["resolved"] == 1


def test_unknown_place_resolved_by_status_answers():
    t, o, sink = table_with()
    t.outcome_unknown(o)
    t.venue_status(o, S.OPEN, 25)          # it was placed, and partly filled
    assert sink.kinds() == [FILL_UNKNOWN, FILL_TRADE, FILL_ACK]
    assert o.state == S.OPEN and o.cum_qty == 25
    t2, o2, sink2 = table_with()
    t2.outcome_unknown(o2)
    t2.venue_status(o2, S.CANCELED, 40)
    assert sink2.kinds() == [FILL_UNKNOWN, FILL_TRADE, FILL_CANCELED]
    assert t2.get(7) is None and t2.position[0] == 40


def test_does_not_exist_counts_only_when_said_twice_a_while_apart():
    t, o, sink = table_with()
    t.outcome_unknown(o, now_ns=0)
    assert not t.not_found(o, now_ns=10)                   # under load this can be false
    assert o.state == S.UNKNOWN and o.query_due_ns == 10 + SECOND
    assert not t.not_found(o, now_ns=10 + SECOND // 2)     # too soon to believe it
    assert t.not_found(o, now_ns=10 + SECOND)
    assert sink.records[-1] == (FILL_REJECT, 7, 100, 0, 0, -2013)     # never placed
    t2, o2, sink2 = table_with()
    t2.accepted(o2)                                        # it rested once: gone now
    t2.outcome_unknown(o2, now_ns=0)
    t2.not_found(o2, 0)
    t2.not_found(o2, SECOND)
    assert sink2.records[-1][0] == FILL_CANCELED
    t3, o3, sink3 = table_with()
    t3.outcome_unknown(o3, now_ns=0)
    t3.not_found(o3, 0)
    t3.venue_status(o3, S.OPEN, 0)         # the next answer finds it after all
    assert o3.state == S.OPEN and o3.not_found_ns is None and sink3.records[-1][0] == FILL_ACK


def test_reject_only_before_acceptance():
    t, o, sink = table_with()
    t.rejected(o, -2010)
    assert sink.records == [(FILL_REJECT, 7, 100, 0, 0, -2010)]
    assert t.done[7].state == S.REJECTED
    t2, o2, sink2 = table_with()
    t2.accepted(o2)
    t2.rejected(o2, -2010)                 # a resting order cannot be rejected: ask
    assert sink2.kinds() == [FILL_ACK, FILL_UNKNOWN] and o2.state == S.UNKNOWN


def test_ids_of_ours_and_others():
    t, _, _ = table_with()
    assert t.order_id_of("mm-77-12") == 12
    assert t.order_id_of("other-77-12") is None
    assert t.order_id_of("mmx-77-12") is None
    assert t.order_id_of("mm-77-x") is None
