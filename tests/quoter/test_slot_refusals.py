"""Issue 18 item 2: a slot never freezes holding a resting order with no cancel in flight. The
compiled quoter (with its Python reference) is wired to the real Binance gateway (no socket:
frames are kept, answers and reports are fed as the venue would send them), through the two
paths the issue traced: a partial fill of an UNKNOWN order, and a cancel refused for an order
not acked yet. After the sender settles the order as resting, the slot must name it again
(REPLACE or CANCEL) once the market moves and back-offs end."""
from __future__ import annotations

import json

import numpy as np
from quoter_harness import Harness

from engine.config import EngineConfig
from engine.quoter.arrays import BID, Q_CANCELING, Q_LIVE, Q_UNKNOWN
from engine.quoter.config import QuoterConfig
from engine.records import (ACTION_CANCEL, ACTION_NEW, ACTION_REPLACE, FILL_CANCEL_REJECT,
                            FILL_POSITION, FILL_REJECT, FILL_RESUME, FILL_UNKNOWN, MD_BBO,
                            MD_DTYPE, SIDE_BUY)
from engine.sender import keys
from engine.sender import order_state as S
from engine.sender.venues.binance.gateway import REQ_CANCEL, REQ_PLACE, BinanceGateway
from engine.sender.config import SenderConfig
from engine.strategies.fixed_spread.config import FixedSpreadConfig

BTC = 0
NOW = 5_000_000_000
MS = 1_000_000
Q = QuoterConfig(strategy="fixed_spread", levels=1, requote_ticks=10, max_position="1",
                 max_notional="1000000", fixed_spread=FixedSpreadConfig(half_spread_ticks=5))


class QuoterSink:
    """The fill ring: every record the gateway emits reaches the quoter at once, in order."""

    def __init__(self):
        self.h: Harness | None = None
        self.records: list[tuple] = []

    def emit(self, kind, order_id, instrument, side=0, price=0, qty=0, cum_qty=0,
             leaves_qty=0, error_code=0, ts_venue=0):
        self.records.append((kind, order_id))
        self.h.fill(instrument, kind, order_id, side, price, qty, leaves_qty, error_code)
        return True


class Wired:
    """One quoter, one Binance gateway, the rings between them."""

    def __init__(self):
        cfg = EngineConfig(tag="mm", sender=SenderConfig(url="ws://127.0.0.1:1/ws-api/v3",
                                                         auth="hmac"))
        self.sink = QuoterSink()
        self.gw = BinanceGateway(cfg, keys.load(cfg.sender, cfg.sender.url, env={}), self.sink)
        self.gw.ready = True
        self.frames: list[bytes] = []
        self.gw._tr_write = self.frames.append       # the socket: frames are kept
        self.gw._tr_buffered = lambda: 0
        self.h = Harness(Q, cfg.instruments, with_reference=True)
        self.sink.h = self.h
        for i in range(len(cfg.instruments)):
            self.h.fill(i, FILL_POSITION, qty=0)
        self.h.fill(0, FILL_RESUME)
        self.intents: list[tuple] = []

    def tick(self, bid_px: int, now: int) -> list[tuple]:
        """A book update around bid_px, then the requote pass; its intents go to the sender."""
        r = np.zeros(1, MD_DTYPE)[0]
        r["instrument"], r["kind"], r["update_id"] = BTC, MD_BBO, 1
        r["bid_px"], r["ask_px"], r["bid_qty"], r["ask_qty"] = bid_px, bid_px + 2, 10**6, 10**6
        self.h.md(r, now)
        return self.requote(now)

    def requote(self, now: int) -> list[tuple]:
        self.h.timers(now)
        out = self.h.end_batch(now)
        for it in out:
            self.gw.on_intent((0, *it, 0), now)
        self.intents += out
        return out

    def rid(self, kind: int, order_id: int) -> int:
        return next(r for r, req in self.gw._inflight.items() if req[:2] == (kind, order_id))

    def answer(self, rid: int, **kw) -> None:
        self.gw.on_frame(json.dumps(dict(id=rid, **kw)).encode())

    def slot(self):
        return self.h.st.quotes[BTC, BID, 0]


def _placed(w: Wired, order_id: int) -> dict:
    return dict(status=200, result={"symbol": "BTCUSDT", "orderId": order_id,
                                    "clientOrderId": "x", "transactTime": 1700000000000})


def _report(w: Wired, order_id: int, x: str, status: str, cum: str) -> None:
    cid = w.gw.orders.find(order_id).cid.decode()
    w.gw.on_frame(json.dumps(dict(subscriptionId=0, event={
        "e": "executionReport", "E": 1, "s": "BTCUSDT", "c": cid, "S": "BUY", "o": "LIMIT_MAKER",
        "f": "GTC", "q": "0.00200000", "p": "50000.00000000", "C": "", "x": x, "X": status,
        "r": "NONE", "i": 11, "l": "0", "z": cum, "L": "50000.00000000",
        "T": 1700000000000})).encode())


def _named_within(w: Wired, order_id: int, start: int, bid_px: int) -> bool:
    """The slot names `order_id` (REPLACE or CANCEL) within 10 s of passes, the market away
    from the order and every back-off given time to end."""
    for k in range(1, 101):
        out = w.tick(bid_px + (k % 2) * 50, start + k * 100 * MS)
        if any(it[1] == order_id and it[3] in (ACTION_REPLACE, ACTION_CANCEL) for it in out):
            return True
    return False


def test_a_partial_fill_of_an_unknown_order_keeps_the_slot_waiting_then_it_is_replaced():
    w = Wired()
    bid = [it for it in w.tick(6_000_000, NOW) if it[3] == ACTION_NEW and it[4] == SIDE_BUY][0]
    oid = bid[0]
    w.gw.expire_requests(NOW + w.gw.order_timeout_ns + 1)     # its place went unanswered
    assert w.slot()["state"] == Q_UNKNOWN
    _report(w, oid, "TRADE", "PARTIALLY_FILLED", "0.00100000")  # a fill: it was placed
    assert w.gw.orders.get(oid).state == S.UNKNOWN            # the sender still asks ...
    assert w.slot()["state"] == Q_UNKNOWN                     # ... and the slot waits with it
    moved = w.tick(6_000_200, NOW + 10 * MS)                  # no REPLACE the sender must refuse
    assert not [it for it in moved if it[1] == oid]
    w.gw.orders.venue_status(w.gw.orders.get(oid), S.OPEN, 100)   # it rests
    assert w.slot()["state"] == Q_LIVE
    assert _named_within(w, oid, NOW + 20 * MS, 6_000_200)


def test_a_replace_refused_busy_says_what_the_old_order_is_first():
    """Whatever brought the slot to REPLACE an order the sender cannot touch yet (not acked,
    UNKNOWN), the refusal tells the quoter the old order's truth before the new one's REJECT,
    so the slot never keeps it as canceling with no cancel in flight."""
    w = Wired()
    oid = [it for it in w.tick(6_000_000, NOW) if it[4] == SIDE_BUY][0][0]
    o = w.gw.orders.get(oid)
    for state, first in ((S.PENDING_NEW, FILL_CANCEL_REJECT), (S.UNKNOWN, FILL_UNKNOWN)):
        o.state = state
        w.sink.records.clear()
        assert w.gw.replaceable(oid, 999, b"mm-1-999", BTC, SIDE_BUY, 5_999_000, 200) is None
        assert w.sink.records == [(first, oid), (FILL_REJECT, 999)]
    o.state = S.CANCELING                   # a cancel is in flight: its answer tells the slot
    w.sink.records.clear()
    w.gw.replaceable(oid, 998, b"mm-1-998", BTC, SIDE_BUY, 5_999_000, 200)
    assert w.sink.records == [(FILL_REJECT, 998)]
    assert w.gw.orders.done[998].state == S.REJECTED


def test_a_cancel_refused_before_the_ack_then_a_busy_replace_does_not_freeze_the_slot():
    w = Wired()
    oid = [it for it in w.tick(6_000_000, NOW) if it[4] == SIDE_BUY][0][0]
    place = w.rid(REQ_PLACE, oid)
    crossed = np.zeros(1, MD_DTYPE)[0]                          # a crossed book: pull quotes
    crossed["instrument"], crossed["kind"] = BTC, MD_BBO
    crossed["bid_px"], crossed["ask_px"], crossed["bid_qty"], crossed["ask_qty"] = (
        6_000_010, 6_000_000, 1, 1)
    w.h.md(crossed, NOW + MS)
    assert any(it[1] == oid and it[3] == ACTION_CANCEL for it in w.requote(NOW + MS))
    w.answer(w.rid(REQ_CANCEL, oid), status=400,
             error={"code": -1021, "msg": "outside recvWindow"})   # the cancel is refused
    assert w.gw.orders.get(oid).state == S.PENDING_NEW and w.slot()["state"] == Q_LIVE
    # the back-off ends, the market moved: the slot REPLACEs an order not acked yet (busy)
    out = w.tick(6_000_200, NOW + 3000 * MS)
    new = [it[0] for it in out if it[1] == oid and it[3] == ACTION_REPLACE]
    assert len(new) == 1
    assert (FILL_CANCEL_REJECT, oid) in w.sink.records
    assert w.sink.records.index((FILL_CANCEL_REJECT, oid)) < w.sink.records.index(
        (FILL_REJECT, new[0]))
    assert w.gw.orders.done[new[0]].state == S.REJECTED
    assert w.slot()["state"] == Q_LIVE and w.slot()["order_id"] == oid
    w.answer(place, **_placed(w, oid))                          # now it is acked
    assert w.slot()["state"] != Q_CANCELING
    assert _named_within(w, oid, NOW + 3010 * MS, 6_000_200)


def test_a_replaced_order_rejected_before_its_ack_does_not_come_back_as_canceling():
    """The slot REPLACEs an order not acked yet (a refused cancel made it live); the venue
    then rejects that order's place, and the sender, which no longer knows it, refuses the
    replace (LOCAL_UNKNOWN_ORDER). The REJECT of the replaced order must clear it: else the
    REJECT of the new one hands the slot back an order that never rested, as canceling, and
    the slot waits for it forever."""
    from engine.records import FILL_CANCEL_REJECT, FILL_REJECT
    w = Wired()
    h = w.h
    oid = [it for it in w.tick(6_000_000, NOW) if it[4] == SIDE_BUY][0][0]
    h.fill(BTC, FILL_CANCEL_REJECT, oid, SIDE_BUY, 0, 0, 200, -1021)   # (after a pull)
    h.md(_bbo(6_000_200), NOW + 3000 * MS)
    moved = h.end_batch(NOW + 3000 * MS)
    new = [it[0] for it in moved if it[1] == oid and it[3] == ACTION_REPLACE]
    assert len(new) == 1 and w.slot()["prev_id"] == oid
    h.fill(BTC, FILL_REJECT, oid, SIDE_BUY, 0, 200, 0, -2010)          # its place was refused
    h.fill(BTC, FILL_REJECT, new[0], SIDE_BUY, 0, 200, 0, -90004)     # the replace, unsent
    assert w.slot()["state"] != Q_CANCELING and w.slot()["order_id"] != oid


def _bbo(bid_px: int):
    r = np.zeros(1, MD_DTYPE)[0]
    r["instrument"], r["kind"], r["update_id"] = BTC, MD_BBO, 1
    r["bid_px"], r["ask_px"], r["bid_qty"], r["ask_qty"] = bid_px, bid_px + 2, 10**6, 10**6
    return r
