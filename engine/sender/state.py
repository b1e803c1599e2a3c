"""Order state per client order id, driven by venue responses and user-data events.

    PENDING_NEW --ack/NEW--> OPEN --TRADE--> PARTIALLY_FILLED --TRADE--> FILLED
         |                    |                   |
         +--reject--> REJECTED +--cancel sent--> CANCEL_PENDING --canceled--> CANCELED

Every transition that the quoter must know about emits one fill-ring record (see fills.py).
Nothing is dropped silently: an event for an order in a state that does not expect it is applied
if it carries information (a fill before the ack implies the ack; a cancel racing a fill keeps
the fill), otherwise counted; events for unknown client ids are counted and raise
`needs_reconcile`, which the sender answers with openOrders.status. Fills are applied by
cumulative quantity, so a repeated or stale report (cum_qty not above what we know) is counted
as a duplicate and never double-counts inventory.
"""
from __future__ import annotations

import time

from engine.records import FILL_ACK, FILL_CANCELED, FILL_REJECT, FILL_TRADE

PENDING_NEW, OPEN, PARTIALLY_FILLED, FILLED, CANCEL_PENDING, CANCELED, REJECTED = range(1, 8)
STATE_NAMES = {PENDING_NEW: "pending-new", OPEN: "open", PARTIALLY_FILLED: "partially-filled",
               FILLED: "filled", CANCEL_PENDING: "cancel-pending", CANCELED: "canceled",
               REJECTED: "rejected"}
TERMINAL = (FILLED, CANCELED, REJECTED)
LIVE = (PENDING_NEW, OPEN, PARTIALLY_FILLED, CANCEL_PENDING)

# counters the book keeps (the process copies them into the control segment)
COUNTS = ("acks", "fills", "rejects", "canceled", "duplicates", "out_of_order", "unknown_events",
          "fill_gaps", "cancel_failures")
DONE_KEPT = 4096       # finished orders remembered to tell duplicates from unknown ids


class Order:
    __slots__ = ("order_id", "cid", "instrument", "side", "price", "qty", "cum_qty", "state",
                 "acked", "venue_id", "ts_sent")

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
        self.acked = False
        self.venue_id = 0
        self.ts_sent = ts_sent

    def __repr__(self) -> str:
        return (f"Order({self.cid.decode()} {STATE_NAMES[self.state]} px={self.price} "
                f"qty={self.qty} cum={self.cum_qty})")


class OrderBook:
    """Live orders by engine order id, plus the final state of recently finished ones."""

    def __init__(self, sink, tag: str):
        self.sink = sink                   # .emit(kind, order_id, instrument, ...) -> bool
        self.tag = tag
        self._prefix = tag + "-"
        self.live: dict[int, Order] = {}
        self.done: dict[int, int] = {}     # order_id -> terminal state
        self.counts = dict.fromkeys(COUNTS, 0)
        self.needs_reconcile = False

    # ---------------------------------------------------------------- identity
    def order_id_of(self, cid: str) -> int | None:
        """n of `<tag>-<u>-<n>`, or None when the id is not one of ours."""
        if not cid.startswith(self._prefix):
            return None
        _, _, n = cid.rpartition("-")
        return int(n) if n.isdigit() else None

    def get(self, order_id: int) -> Order | None:
        return self.live.get(order_id)

    # ---------------------------------------------------------------- requests we sent
    def new(self, order_id: int, cid: bytes, instrument: int, side: int, price: int,
            qty: int) -> Order:
        o = Order(order_id, cid, instrument, side, price, qty, time.perf_counter_ns())
        self.live[order_id] = o
        return o

    def cancel_sent(self, order_id: int) -> None:
        o = self.live.get(order_id)
        if o is not None:
            o.state = CANCEL_PENDING

    # ---------------------------------------------------------------- venue events
    def accepted(self, order_id: int, venue_id: int = 0, ts_venue: int = 0) -> None:
        """Venue accepted the order (order.place ack or executionReport NEW)."""
        o = self.live.get(order_id)
        if o is None:
            self._unknown(order_id)
            return
        if venue_id:
            o.venue_id = venue_id
        if o.acked:
            self.counts["duplicates"] += 1
            return
        o.acked = True
        if o.state == PENDING_NEW:
            o.state = OPEN
        self.counts["acks"] += 1
        self.sink.emit(FILL_ACK, o.order_id, o.instrument, o.side, o.price, o.qty, o.cum_qty,
                       o.qty - o.cum_qty, 0, ts_venue)

    def traded(self, order_id: int, last_px: int, cum_qty: int, ts_venue: int = 0) -> None:
        """A fill: applied by cumulative quantity (the emitted qty is the increase)."""
        o = self.live.get(order_id)
        if o is None:
            self._unknown(order_id)
            return
        if cum_qty <= o.cum_qty:
            self.counts["duplicates"] += 1
            return
        if not o.acked:                     # the fill overtook the ack: it implies it
            self.counts["out_of_order"] += 1
            self.accepted(order_id, 0, ts_venue)
        qty = cum_qty - o.cum_qty
        o.cum_qty = cum_qty
        self.counts["fills"] += 1
        leaves = max(o.qty - cum_qty, 0)
        self.sink.emit(FILL_TRADE, o.order_id, o.instrument, o.side, last_px, qty, cum_qty,
                       leaves, 0, ts_venue)
        if leaves == 0:
            self._finish(o, FILLED)
        elif o.state != CANCEL_PENDING:
            o.state = PARTIALLY_FILLED

    def canceled(self, order_id: int, ts_venue: int = 0) -> None:
        """The order is gone (canceled or expired) with no further fills."""
        o = self.live.get(order_id)
        if o is None:
            self._unknown(order_id)
            return
        self.counts["canceled"] += 1
        self.sink.emit(FILL_CANCELED, o.order_id, o.instrument, o.side, o.price, 0, o.cum_qty,
                       0, 0, ts_venue)
        self._finish(o, CANCELED)

    def rejected(self, order_id: int, code: int, ts_venue: int = 0) -> None:
        """The venue refused the order (or we refused to send it: LOCAL_* codes)."""
        o = self.live.get(order_id)
        if o is None:
            self._unknown(order_id)
            return
        if o.acked or o.cum_qty:
            # a resting order cannot be rejected: this is a stale or misrouted report
            self.counts["out_of_order"] += 1
            self.needs_reconcile = True
            return
        self.counts["rejects"] += 1
        self.sink.emit(FILL_REJECT, o.order_id, o.instrument, o.side, o.price, o.qty, 0, 0,
                       code, ts_venue)
        self._finish(o, REJECTED)

    def cancel_failed(self, order_id: int, code: int) -> None:
        """A cancel was refused (usually -2011: the order filled or was already gone). The
        truth arrives as an executionReport or from reconciliation; note it and move on."""
        self.counts["cancel_failures"] += 1
        o = self.live.get(order_id)
        if o is not None and o.state == CANCEL_PENDING:
            o.state = PARTIALLY_FILLED if o.cum_qty else (OPEN if o.acked else PENDING_NEW)
        self.needs_reconcile = True

    # ---------------------------------------------------------------- reconciliation
    def reconcile(self, venue_orders: list[tuple[int, int, int]], instruments: set[int],
                  grace_ns: int = 1_000_000_000) -> list[int]:
        """Align with the venue's open orders of `instruments`: (order_id, venue_id, cum_qty)
        for each venue order carrying our tag. Live orders the venue no longer has are
        reported CANCELED (missed fills show up in the FILL_POSITION that follows), except
        orders sent less than `grace_ns` ago whose answer may still be in flight. Returns the
        venue orders we do not know (the caller cancels them)."""
        now = time.perf_counter_ns()
        seen = set()
        strangers = []
        for order_id, venue_id, cum_qty in venue_orders:
            o = self.live.get(order_id)
            if o is None:
                strangers.append(order_id)
                continue
            seen.add(order_id)
            if not o.acked:
                self.accepted(order_id, venue_id)
            if cum_qty > o.cum_qty:
                self.traded(order_id, o.price, cum_qty)
        for o in list(self.live.values()):
            if o.instrument in instruments and o.order_id not in seen:
                if o.state == PENDING_NEW and now - o.ts_sent < grace_ns:
                    continue
                self.canceled(o.order_id)
        self.needs_reconcile = False
        return strangers

    def open_count(self) -> int:
        return len(self.live)

    # ---------------------------------------------------------------- internals
    def _finish(self, o: Order, state: int) -> None:
        o.state = state
        self.live.pop(o.order_id, None)
        self.done[o.order_id] = state
        if len(self.done) > DONE_KEPT:
            del self.done[next(iter(self.done))]

    def _unknown(self, order_id: int) -> None:
        if order_id in self.done:
            self.counts["duplicates"] += 1       # late report for a finished order
        else:
            self.counts["unknown_events"] += 1
            self.needs_reconcile = True
