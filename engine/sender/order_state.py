"""Order truth, venue-neutral: one record per order the engine sent, driven only by what the
venue says (request answers, executionReports, order.status and openOrders answers), and the
fill-ring records that keep the quoter's slots equal to it.

States of an order (the quoter's slot mirrors them through the records in brackets):

  PENDING_NEW  sent (order.place, or the new leg of a cancelReplace); no answer yet
  OPEN         resting at the venue: acknowledged, or proved by a fill          [ACK]
  CANCELING    a cancel (order.cancel, or the cancel leg of a cancelReplace) is in flight
  UNKNOWN      what became of a request touching the order is not known: its answer timed out,
               the venue said 5xx or -1007 "execution status unknown", the connection dropped
               with it in flight, or the venue said "unknown order" (-2011) to a cancel, which
               under load can be false. The venue is asked (order.status by client id) before
               the slot is used again                                            [UNKNOWN]
  FILLED, CANCELED, REJECTED  terminal; kept (with the filled quantity) so a late report still
               moves inventory exactly once                       [TRADE / CANCELED / REJECT]

Transitions (answer or report -> state):
  PENDING_NEW --accepted--> OPEN          --refused--> REJECTED     --fill--> OPEN | FILLED
  OPEN        --cancel sent--> CANCELING  --fill--> OPEN | FILLED   --canceled--> CANCELED
  CANCELING   --canceled--> CANCELED      --fill--> CANCELING | FILLED
              --cancel refused (-1021, rate limit, 4xx)--> OPEN                 [CANCEL_REJECT]
  any live    --outcome unknown--> UNKNOWN
  UNKNOWN     --order.status: resting--> OPEN                    [ACK, or CANCEL_REJECT when a
                                                                  cancel had been asked for]
              --order.status / report: filled, canceled, expired--> terminal
              --"does not exist", twice, not_found_confirm_ns apart, no request for it in
                flight, and not before its last request's send time + gone_after_ns
                (recvWindow + the venue's backend timeout: until then it may still appear)
                                                                 --> REJECTED (never acked)
                                                                  or CANCELED (acked once)
              --acceptance (late answer, NEW report) with no cancel asked--> OPEN  [ACK]
  concluded gone, then shown live by the venue (an answer, a report, a status or openOrders
              entry) --> OPEN again as an orphan (no slot holds it): queued in `to_cancel`,
              canceled at once and again until the venue confirms it is gone
Facts are never deferred: a fill is a TRADE record the moment its report (or a status answer)
shows more filled quantity, whatever the state; a terminal report ends UNKNOWN too.

Idempotence: fills are applied by cumulative filled quantity (a report that does not raise it
is a duplicate); ACK is emitted once per order; every other record once per transition.

Ordering contract for a cancelReplace (old -> new): the old order's outcome is emitted before
the new order's (CANCELED or CANCEL_REJECT or UNKNOWN, then ACK or REJECT or UNKNOWN), so the
quoter knows whether the old order still rests when it learns the new one does not.
"""
from __future__ import annotations

import time

from engine.records import (FILL_ACK, FILL_CANCEL_REJECT, FILL_CANCELED, FILL_REJECT, FILL_TRADE,
                            FILL_UNKNOWN, SIDE_BUY)

PENDING_NEW, OPEN, CANCELING, UNKNOWN, FILLED, CANCELED, REJECTED = range(1, 8)
STATE_NAMES = {PENDING_NEW: "pending-new", OPEN: "open", CANCELING: "canceling",
               UNKNOWN: "unknown", FILLED: "filled", CANCELED: "canceled",
               REJECTED: "rejected"}
TERMINAL = (FILLED, CANCELED, REJECTED)

# What the venue's record of an order says it is, in these states (`venue_status`): OPEN
# (resting), CANCELED (canceled or expired), FILLED, REJECTED; each venue package maps its own
# status words to them at the edge, and a word that says none of these maps to NO_STATUS.
NO_STATUS = 0

COUNTS = ("acks", "fills", "rejects", "canceled", "duplicates", "out_of_order", "late_fills",
          "unknown_events", "cancel_refused", "unknowns", "resolved", "not_found",
          "queries_sent", "revived")
DONE_KEPT = 1 << 16      # finished orders remembered (late reports, duplicates, id lookups)


class Order:
    """One order as the venue last told us. Prices and quantities are instrument mantissas."""
    __slots__ = ("order_id", "cid", "instrument", "side", "price", "qty", "cum_qty", "state",
                 "acked", "venue_id", "ts_sent", "cancel_asked", "ack_emitted",
                 "query_due_ns", "not_found_ns", "querying", "last_sent_ns", "concluded",
                 "orphan", "reported")

    def __init__(self, order_id: int, cid: bytes, instrument: int, side: int, price: int,
                 qty: int, ts_sent: int):
        self.order_id = order_id
        self.cid = cid
        self.instrument = instrument
        self.side = side
        self.price = price
        self.qty = qty
        self.cum_qty = 0
        self.state = PENDING_NEW
        self.acked = False           # the venue confirmed it existed
        self.venue_id = 0
        self.ts_sent = ts_sent
        self.cancel_asked = False    # a cancel was sent and its outcome is not known yet
        self.ack_emitted = False
        self.query_due_ns = 0        # UNKNOWN: when to ask the venue (next)
        self.not_found_ns = None     # UNKNOWN: time of the first "does not exist" answer
        self.querying = False        # an order.status request for it is in flight
        self.last_sent_ns = ts_sent  # the latest request touching it left (place, cancel)
        self.concluded = False       # finished by our conclusion from absence, not the venue's
        self.orphan = False          # shown live after that conclusion: no slot holds it
        self.reported = False        # an order report (user-data stream) about it came

    @property
    def live(self) -> bool:
        return self.state not in TERMINAL

    @property
    def leaves(self) -> int:
        return max(self.qty - self.cum_qty, 0)

    def __repr__(self) -> str:
        return (f"Order({self.cid.decode()} {STATE_NAMES[self.state]} px={self.price} "
                f"qty={self.qty} cum={self.cum_qty})")


class OrderTable:
    """Every order this sender process sent, by engine order id (the n of <tag>-<u>-<n>), and
    the fill-ring records its transitions emit (`sink.emit(kind, order_id, instrument, side,
    price, qty, cum_qty, leaves_qty, error_code, ts_venue)`)."""

    def __init__(self, sink, tag: str, query_delay_ns: int = 0,
                 not_found_confirm_ns: int = 1_000_000_000, gone_after_ns: int = 0,
                 clock=time.perf_counter_ns):
        self.sink = sink
        # the clock of every order-truth time (send stamps, query due times, 'surely gone'):
        # perf_counter_ns; the callers' now_ns is read from it too (a model test drives its own)
        self.clock = clock
        self.tag = tag
        self._prefix = tag + "-"
        self.live: dict[int, Order] = {}
        self.done: dict[int, Order] = {}
        self.counts = dict.fromkeys(COUNTS, 0)
        self.query_delay_ns = query_delay_ns
        self.not_found_confirm_ns = not_found_confirm_ns
        self.gone_after_ns = gone_after_ns  # recvWindow + backend timeout (see not_found)
        self.to_cancel: list[Order] = []    # revived orphans the gateway cancels at once
        # base position per instrument as the fills we applied say (None until a snapshot)
        self.position: dict[int, int] = {}

    # ---------------------------------------------------------------- identity
    def order_id_of(self, cid: str) -> int | None:
        """n of `<tag>-<u>-<n>`, or None when the id is not one of ours."""
        if not cid.startswith(self._prefix):
            return None
        _, _, n = cid.rpartition("-")
        return int(n) if n.isdigit() else None

    def get(self, order_id: int) -> Order | None:
        """The live order with this id, or None."""
        return self.live.get(order_id)

    def find(self, order_id: int) -> Order | None:
        """The order with this id, live or recently finished."""
        return self.live.get(order_id) or self.done.get(order_id)

    def unknown(self) -> list[Order]:
        return [o for o in self.live.values() if o.state == UNKNOWN]

    def open_count(self) -> int:
        return len(self.live)

    # ---------------------------------------------------------------- requests we sent
    def new(self, order_id: int, cid: bytes, instrument: int, side: int, price: int,
            qty: int) -> Order:
        o = Order(order_id, cid, instrument, side, price, qty, self.clock())
        self.live[order_id] = o
        return o

    def cancel_sent(self, o: Order) -> None:
        """A cancel (or a replace's cancel leg) for `o` is on the wire."""
        if o.live:
            o.cancel_asked = True
            o.last_sent_ns = self.clock()
            if o.state in (PENDING_NEW, OPEN):
                o.state = CANCELING

    # ---------------------------------------------------------------- venue answers and reports
    def accepted(self, o: Order, venue_id: int = 0, ts_venue: int = 0) -> None:
        """The venue accepted the order (order.place answer or a NEW report)."""
        if venue_id:
            o.venue_id = venue_id
        if not o.live:
            if o.concluded:                  # we called it gone; the venue says otherwise
                self._revive(o)
            else:
                self.counts["duplicates"] += 1
            return
        if o.acked:
            self.counts["duplicates"] += 1
        o.acked = True
        if o.state == PENDING_NEW:
            o.state = OPEN
        elif o.state == UNKNOWN and not o.cancel_asked:
            # only its creation was in doubt, and the venue has now accepted it: it rests
            # (a fill or an end would come as its own report)
            self.counts["resolved"] += 1
            o.state = OPEN
            self._ack(o, ts_venue, again=True)
            return
        if o.state != UNKNOWN:
            self._ack(o, ts_venue)

    def traded(self, o: Order, last_px: int, cum_qty: int, ts_venue: int = 0) -> None:
        """A fill, applied by cumulative quantity: the record carries the increase."""
        if cum_qty <= o.cum_qty:
            self.counts["duplicates"] += 1
            return
        qty = cum_qty - o.cum_qty
        o.cum_qty = cum_qty
        self.counts["fills"] += 1
        signed = qty if o.side == SIDE_BUY else -qty
        if o.instrument in self.position:
            self.position[o.instrument] += signed
        if not o.live:                       # a report later than the order's end: still a fill
            self.counts["late_fills"] += 1
            self.sink.emit(FILL_TRADE, o.order_id, o.instrument, o.side, last_px, qty, cum_qty,
                           0, 0, ts_venue)
            if o.concluded and cum_qty < o.qty:   # it rests after all: cancel it
                self._revive(o)
            return
        o.acked = True
        if o.state == PENDING_NEW:
            o.state = OPEN
        if not o.ack_emitted and o.state != UNKNOWN:
            self.counts["out_of_order"] += 1      # the fill overtook the ack: it implies it
            self._ack(o, ts_venue)
        leaves = o.leaves
        self.sink.emit(FILL_TRADE, o.order_id, o.instrument, o.side, last_px, qty, cum_qty,
                       leaves, 0, ts_venue)
        if leaves == 0:
            self._finish(o, FILLED)

    def canceled(self, o: Order, ts_venue: int = 0) -> None:
        """The order is gone (canceled or expired) with no further fills."""
        if not o.live:
            self.counts["duplicates"] += 1
            return
        self.counts["canceled"] += 1
        self.sink.emit(FILL_CANCELED, o.order_id, o.instrument, o.side, o.price, 0, o.cum_qty,
                       0, 0, ts_venue)
        self._finish(o, CANCELED)

    def rejected(self, o: Order, code: int, ts_venue: int = 0) -> None:
        """The venue refused the new order (or the sender did not send it: LOCAL_* codes)."""
        if not o.live:
            self.counts["duplicates"] += 1
            return
        if o.acked or o.cum_qty:
            # an order that rested cannot be rejected: a stale or misrouted answer; ask
            self.counts["out_of_order"] += 1
            self.outcome_unknown(o)
            return
        self.counts["rejects"] += 1
        self.sink.emit(FILL_REJECT, o.order_id, o.instrument, o.side, o.price, o.qty, 0, 0,
                       code, ts_venue)
        self._finish(o, REJECTED)

    def cancel_refused(self, o: Order, code: int) -> None:
        """The venue definitely did not cancel (recvWindow, rate limit, ...): it still rests."""
        self.counts["cancel_refused"] += 1
        if not o.live:
            return
        o.cancel_asked = False
        if o.state == CANCELING:
            o.state = OPEN if o.acked else PENDING_NEW
        if o.state != UNKNOWN:               # (else the status answer decides)
            self._cancel_reject(o, code)

    def outcome_unknown(self, o: Order, now_ns: int | None = None) -> None:
        """What became of a request touching `o` is not known: ask the venue before anything."""
        if not o.live or o.state == UNKNOWN:
            return
        self.counts["unknowns"] += 1
        o.state = UNKNOWN
        o.not_found_ns = None
        o.query_due_ns = (now_ns or self.clock()) + self.query_delay_ns
        self.sink.emit(FILL_UNKNOWN, o.order_id, o.instrument, o.side, o.price, 0, o.cum_qty,
                       o.leaves, 0, 0)

    # ---------------------------------------------------------------- the venue's answer to "what became of it"
    def venue_status(self, o: Order, status: int, executed: int, venue_id: int = 0) -> None:
        """Apply the venue's record of the order (order.status or openOrders.status entry):
        its status as one of our states (OPEN, CANCELED, FILLED, REJECTED, or NO_STATUS) and
        its cumulative filled quantity. Ends UNKNOWN."""
        o.querying = False
        if venue_id:
            o.venue_id = venue_id
        if executed > o.cum_qty:
            self.traded(o, o.price, executed)     # post-only orders fill at their own price
        if not o.live:
            if o.concluded and status == OPEN:
                self._revive(o)
            return
        o.not_found_ns = None
        if status == OPEN:
            o.acked = True
            was_unknown = o.state == UNKNOWN
            if was_unknown:
                self.counts["resolved"] += 1
                o.state = OPEN
                if o.cancel_asked:           # the cancel did not happen: say so (back-off)
                    o.cancel_asked = False
                    self._cancel_reject(o, 0)
                else:
                    self._ack(o, 0, again=True)
            elif o.state == PENDING_NEW:
                o.state = OPEN
                self._ack(o, 0)
        elif status in TERMINAL:
            if o.state == UNKNOWN:
                self.counts["resolved"] += 1
            if status == REJECTED and not o.acked and not o.cum_qty:
                self.rejected(o, -2010)
            elif status == FILLED:
                self.traded(o, o.price, o.qty)    # filled per its status: all of it
            else:
                self.canceled(o)

    def not_found(self, o: Order, now_ns: int, busy: bool = False) -> bool:
        """The venue says the order does not exist (-2013). Under load that answer can be false
        for an order that rests, and a request can still reach the matching engine until its
        timestamp passes recvWindow and the engine's own timeout: it counts only when a second
        one comes at least not_found_confirm_ns after the first, no request for the order is in
        flight (`busy`) and its last request left more than gone_after_ns ago. Until then the
        venue is asked again every not_found_confirm_ns. Returns True when that settled it."""
        o.querying = False
        self.counts["not_found"] += 1
        if not o.live:
            return True
        if o.not_found_ns is None:
            o.not_found_ns = now_ns
        confirmed = now_ns - o.not_found_ns >= self.not_found_confirm_ns
        if busy or not confirmed or now_ns < o.last_sent_ns + self.gone_after_ns:
            o.query_due_ns = now_ns + self.not_found_confirm_ns
            if not confirmed:
                o.query_due_ns = o.not_found_ns + self.not_found_confirm_ns
            return False
        self.counts["resolved"] += 1
        o.concluded = True
        if o.acked or o.cum_qty:
            self.canceled(o)
        else:
            self.rejected(o, -2013)
        return True

    def due_queries(self, now_ns: int, limit: int) -> list[Order]:
        """UNKNOWN orders whose next order.status question is due (oldest first)."""
        out = []
        for o in self.live.values():
            if o.state == UNKNOWN and not o.querying and o.query_due_ns <= now_ns:
                out.append(o)
                if len(out) >= limit:
                    break
        return out

    # ---------------------------------------------------------------- events for ids we do not hold
    def report_for_unknown_id(self, order_id: int) -> None:
        """A report for an id of ours that this table never saw (a previous process's order)."""
        self.counts["unknown_events"] += 1

    # ---------------------------------------------------------------- internals
    def _revive(self, o: Order) -> None:
        """An order we concluded gone rests after all: live again, as an orphan to cancel."""
        self.counts["revived"] += 1
        self.done.pop(o.order_id, None)
        o.state = OPEN
        o.acked = o.ack_emitted = True
        o.concluded = False
        o.orphan = True
        o.cancel_asked = False
        o.not_found_ns = None
        self.live[o.order_id] = o
        self.to_cancel.append(o)

    def _ack(self, o: Order, ts_venue: int, again: bool = False) -> None:
        if o.ack_emitted and not again:
            return
        o.ack_emitted = True
        self.counts["acks"] += 1
        self.sink.emit(FILL_ACK, o.order_id, o.instrument, o.side, o.price, o.qty, o.cum_qty,
                       o.leaves, 0, ts_venue)

    def _cancel_reject(self, o: Order, code: int) -> None:
        self.sink.emit(FILL_CANCEL_REJECT, o.order_id, o.instrument, o.side, o.price, 0,
                       o.cum_qty, o.leaves, code, 0)

    def _finish(self, o: Order, state: int) -> None:
        o.state = state
        o.cancel_asked = False
        self.live.pop(o.order_id, None)
        self.done[o.order_id] = o
        if len(self.done) > DONE_KEPT:
            del self.done[next(iter(self.done))]
