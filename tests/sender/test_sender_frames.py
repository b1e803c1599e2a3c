"""The Binance gateway's handling of venue frames (documented response and event shapes),
without a connection: answers to requests in flight, executionReports, errors, rate limits,
and what each refusal means for the order (PROTOCOLS.md section 3)."""
import json

import pytest

from engine.config import EngineConfig
from engine.records import (FILL_ACK, FILL_CANCEL_REJECT, FILL_CANCELED, FILL_REJECT,
                            FILL_TRADE, FILL_UNKNOWN, SIDE_BUY)
from engine.sender import keys
from engine.sender import order_state as S
from engine.sender.venues.binance.gateway import REQ_CANCEL, REQ_PLACE, REQ_REPLACE, BinanceGateway
from engine.sender.config import SenderConfig


class ListSink:
    def __init__(self):
        self.records = []

    def emit(self, kind, order_id, instrument, side=0, price=0, qty=0, cum_qty=0,
             leaves_qty=0, error_code=0, ts_venue=0):
        self.records.append((kind, order_id, price, qty, cum_qty, leaves_qty, error_code))
        return True


@pytest.fixture
def gw():
    cfg = EngineConfig(tag="mm", sender=SenderConfig(url="ws://127.0.0.1:1/ws-api/v3", auth="hmac"))
    creds = keys.load(cfg.sender, cfg.sender.url, env={})
    g = BinanceGateway(cfg, creds, ListSink())
    return g


def placed(gw, n=1, rid=5, acked=False):
    o = gw.orders.new(n, b"mm-9-%d" % n, 0, SIDE_BUY, 5_000_000, 100)
    if acked:
        gw.orders.accepted(o)
    gw.track(rid, REQ_PLACE, n, 0, 0)
    return o


def frame(**kw) -> bytes:
    return json.dumps(kw).encode()


def exec_report(c, x, X, z="0.00000000", last_px="0.00000000", C="", i=11):
    return frame(subscriptionId=0, event={
        "e": "executionReport", "E": 1, "s": "BTCUSDT", "c": c, "S": "BUY", "o": "LIMIT_MAKER",
        "f": "GTC", "q": "0.00100000", "p": "50000.00000000", "C": C, "x": x, "X": X,
        "r": "NONE", "i": i, "l": "0", "z": z, "L": last_px, "T": 1700000000000})


def test_ack_then_trades_from_execution_reports(gw):
    placed(gw)
    gw.on_frame(frame(id=5, status=200, result={"symbol": "BTCUSDT", "orderId": 11,
                                                 "orderListId": -1, "clientOrderId": "mm-9-1",
                                                 "transactTime": 1700000000000}))
    gw.on_frame(exec_report("mm-9-1", "NEW", "NEW"))                     # duplicate ack
    gw.on_frame(exec_report("mm-9-1", "TRADE", "PARTIALLY_FILLED", "0.00040000", "49999.99000000"))
    gw.on_frame(exec_report("mm-9-1", "TRADE", "FILLED", "0.00100000", "50000.00000000"))
    assert gw.fills.records == [(FILL_ACK, 1, 5_000_000, 100, 0, 100, 0),
                                (FILL_TRADE, 1, 4_999_999, 40, 40, 60, 0),
                                (FILL_TRADE, 1, 5_000_000, 60, 100, 0, 0)]
    assert gw.orders.counts["duplicates"] == 1


def test_canceled_report_uses_the_original_client_id(gw):
    placed(gw, acked=True)
    gw.on_frame(exec_report("web_cancel_42", "CANCELED", "CANCELED", C="mm-9-1"))
    assert gw.fills.records[-1][:2] == (FILL_CANCELED, 1)


def test_unknown_and_foreign_ids_are_counted(gw):
    gw.on_frame(exec_report("mm-9-77", "NEW", "NEW"))
    gw.on_frame(exec_report("someone-else", "NEW", "NEW"))
    gw.on_frame(b'{"id": 3, "status": 200, "result": ')
    gw.on_frame(frame(id=12345, status=200, result={}))
    assert gw.orders.counts["unknown_events"] == 1
    assert gw.counts["foreign_events"] == 1 and gw.counts["malformed"] == 1
    assert gw.counts["unknown_responses"] == 1
    assert gw.fills.records == []


def test_429_rejects_the_order_and_backs_off(gw):
    placed(gw, rid=6)
    now = gw.now_ms()
    gw.on_frame(frame(id=6, status=429, error={
        "code": -1015, "msg": "Too many new orders; current limit is 50 orders per 10 SECOND.",
        "data": {"serverTime": now, "retryAfter": now + 5000}}))
    assert gw.fills.records == [(FILL_REJECT, 1, 5_000_000, 100, 0, 0, -1015)]
    assert gw.blocked() and not gw.banned
    gw.on_frame(frame(id=None, status=418, error={"code": -1003, "msg": "banned",
                                                  "data": {"retryAfter": now + 60000}}))
    assert gw.banned


def test_rate_limits_in_responses_pace_order_sends(gw):
    """Binance reports the 10 s and the day ORDERS windows in one array: the day entry (far
    below its limit) must not undo the pacing the 10 s entry asks for."""
    limits = [{"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10,
               "limit": 50, "count": 41},
              {"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 1,
               "limit": 160000, "count": 41},
              {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1,
               "limit": 6000, "count": 5999}]
    gw.on_frame(frame(id=None, status=200, result={}, rateLimits=limits))
    assert gw.pace_ns == 10_000 * 1_000_000 // 50          # 10 s window / 50 orders
    limits[1]["count"] = 150000                             # the day window nearly spent too
    gw.on_frame(frame(id=None, status=200, result={}, rateLimits=limits))
    assert gw.pace_ns == 86_400_000 * 1_000_000 // 160000   # the wider spacing wins
    limits[0]["count"] = 30                                 # one window below half, not both
    gw.on_frame(frame(id=None, status=200, result={}, rateLimits=limits))
    assert gw.pace_ns > 0
    limits[0]["count"], limits[1]["count"] = 3, 3
    gw.on_frame(frame(id=None, status=200, result={}, rateLimits=limits))
    assert gw.pace_ns == 0


def _replace_in_flight(gw):
    old = gw.orders.new(1, b"mm-9-1", 0, SIDE_BUY, 5_000_000, 100)
    gw.orders.accepted(old)
    gw.orders.cancel_sent(old)
    new = gw.orders.new(2, b"mm-10-2", 0, SIDE_BUY, 5_000_100, 100)
    gw.track(7, REQ_REPLACE, 2, 1, 0)
    gw.fills.records.clear()
    return old, new


def replace_failed(cancel_code, new_result="NOT_ATTEMPTED"):
    return frame(id=7, status=400, error={
        "code": -2022, "msg": "Order cancel-replace failed.",
        "data": {"cancelResult": "FAILURE", "newOrderResult": new_result,
                 "cancelResponse": {"code": cancel_code, "msg": "..."},
                 "newOrderResponse": None}})


def test_refused_cancel_leg_keeps_the_old_order_then_rejects_the_new(gw):
    old, new = _replace_in_flight(gw)
    gw.on_frame(replace_failed(-1021))
    assert gw.fills.records == [(FILL_CANCEL_REJECT, 1, 5_000_000, 0, 0, 100, -1021),
                                (FILL_REJECT, 2, 5_000_100, 100, 0, 0, -2022)]
    assert old.state == S.OPEN and gw.orders.get(2) is None


def test_unknown_order_to_a_cancel_leg_is_asked_about_not_believed(gw):
    old, new = _replace_in_flight(gw)
    gw.on_frame(replace_failed(-2011))
    assert [r[:2] for r in gw.fills.records] == [(FILL_UNKNOWN, 1), (FILL_REJECT, 2)]
    assert old.state == S.UNKNOWN and gw.orders.due_queries(10**18, 5) == [old]


def test_server_error_and_silence_leave_both_orders_unknown(gw):
    old, new = _replace_in_flight(gw)
    gw.on_frame(frame(id=7, status=503, error={"code": -1008, "msg": "busy"}))
    assert [r[:2] for r in gw.fills.records] == [(FILL_UNKNOWN, 1), (FILL_UNKNOWN, 2)]
    # a place nobody answered: its deadline passes, then its late answer still counts
    o = placed(gw, n=3, rid=8)
    gw.expire_requests(gw.order_timeout_ns + 1)
    assert o.state == S.UNKNOWN and gw.counts["timeouts"] == 1
    gw.on_frame(frame(id=8, status=200, result={"symbol": "BTCUSDT", "orderId": 12,
                                                 "transactTime": 1700000000000}))
    # only its creation was in doubt and the venue accepted it: it rests (ACK again)
    assert o.state == S.OPEN and gw.counts["late_answers"] == 1
    assert gw.fills.records[-1][:2] == (FILL_ACK, 3)
    assert old.state == S.UNKNOWN        # its cancel was asked: only the venue's status decides


def test_cancel_answers(gw):
    o = placed(gw, acked=True)
    gw.orders.cancel_sent(o)
    gw.track(9, REQ_CANCEL, 1, 0, 0)
    gw.on_frame(frame(id=9, status=400, error={"code": -1021, "msg": "outside recvWindow"}))
    assert gw.fills.records[-1][:2] == (FILL_CANCEL_REJECT, 1) and o.state == S.OPEN
    gw.orders.cancel_sent(o)
    gw.track(10, REQ_CANCEL, 1, 0, 0)
    gw.on_frame(frame(id=10, status=200, result={
        "symbol": "BTCUSDT", "origClientOrderId": "mm-9-1", "orderId": 11, "status": "CANCELED",
        "executedQty": "0.00030000", "clientOrderId": "x"}))
    assert [r[:2] for r in gw.fills.records[-2:]] == [(FILL_TRADE, 1), (FILL_CANCELED, 1)]
    assert gw.fills.records[-2][3] == 30              # a fill the reports had not told yet


def test_bad_key_stops_the_engine_with_what_to_fix(gw):
    placed(gw)
    gw.on_frame(frame(id=5, status=401, error={"code": -2015, "msg": "Invalid API-key"}))
    assert "MM_API_KEY" in gw.refusal


def test_a_filter_failure_on_every_order_stops_the_engine(gw):
    for n in range(1, 6):
        placed(gw, n=n, rid=20 + n)
        assert not gw.refusal
        gw.on_frame(frame(id=20 + n, status=400, error={"code": -1013,
                                                        "msg": "Filter failure: LOT_SIZE"}))
    assert "BTCUSDT" in gw.refusal and "lot_size" in gw.refusal
