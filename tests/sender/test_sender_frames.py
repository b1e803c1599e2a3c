"""The Binance gateway's handling of venue frames (documented response and event shapes),
without a connection: responses to in-flight requests, executionReports, errors, rate limits."""
import json

import pytest

from engine.config import EngineConfig
from engine.records import FILL_ACK, FILL_CANCELED, FILL_REJECT, FILL_TRADE, SIDE_BUY
from engine.sender import keys
from engine.sender.binance_gateway import REQ_PLACE, REQ_REPLACE, BinanceGateway
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
    cfg = EngineConfig(sender=SenderConfig(url="ws://127.0.0.1:1/ws-api/v3", auth="hmac"))
    creds = keys.load(cfg.sender, cfg.sender.url, env={})
    g = BinanceGateway(cfg, creds, ListSink())
    g.book.sink = g.fills
    return g


def frame(**kw) -> bytes:
    return json.dumps(kw).encode()


def exec_report(c, x, X, z="0.00000000", last_px="0.00000000", C="", i=11):
    return frame(subscriptionId=0, event={
        "e": "executionReport", "E": 1, "s": "BTCUSDT", "c": c, "S": "BUY", "o": "LIMIT_MAKER",
        "f": "GTC", "q": "0.00100000", "p": "50000.00000000", "C": C, "x": x, "X": X,
        "r": "NONE", "i": i, "l": "0", "z": z, "L": last_px, "T": 1700000000000})


def test_ack_then_trades_from_execution_reports(gw):
    gw.book.new(1, b"mm-9-1", 0, SIDE_BUY, 5_000_000, 100)
    gw._inflight[5] = (REQ_PLACE, 1, 0)
    gw.on_frame(frame(id=5, status=200, result={"symbol": "BTCUSDT", "orderId": 11,
                                                 "orderListId": -1, "clientOrderId": "mm-9-1",
                                                 "transactTime": 1700000000000}))
    gw.on_frame(exec_report("mm-9-1", "NEW", "NEW"))                     # duplicate ack
    gw.on_frame(exec_report("mm-9-1", "TRADE", "PARTIALLY_FILLED", "0.00040000", "49999.99000000"))
    gw.on_frame(exec_report("mm-9-1", "TRADE", "FILLED", "0.00100000", "50000.00000000"))
    assert gw.fills.records == [(FILL_ACK, 1, 5_000_000, 100, 0, 100, 0),
                                (FILL_TRADE, 1, 4_999_999, 40, 40, 60, 0),
                                (FILL_TRADE, 1, 5_000_000, 60, 100, 0, 0)]
    assert gw.book.counts["duplicates"] == 1


def test_canceled_report_uses_the_original_client_id(gw):
    gw.book.new(1, b"mm-9-1", 0, SIDE_BUY, 5_000_000, 100)
    gw.book.accepted(1)
    gw.on_frame(exec_report("web_cancel_42", "CANCELED", "CANCELED", C="mm-9-1"))
    assert gw.fills.records[-1][:2] == (FILL_CANCELED, 1)


def test_unknown_and_foreign_ids_are_counted(gw):
    gw.on_frame(exec_report("mm-9-77", "NEW", "NEW"))
    gw.on_frame(exec_report("someone-else", "NEW", "NEW"))
    gw.on_frame(b'{"id": 3, "status": 200, "result": ')
    gw.on_frame(frame(id=12345, status=200, result={}))
    assert gw.book.counts["unknown_events"] == 1 and gw.book.needs_reconcile
    assert gw.counts["foreign_events"] == 1 and gw.counts["malformed"] == 1
    assert gw.counts["unknown_responses"] == 1
    assert gw.fills.records == []


def test_429_rejects_the_order_and_backs_off(gw):
    gw.book.new(1, b"mm-9-1", 0, SIDE_BUY, 5_000_000, 100)
    gw._inflight[6] = (REQ_PLACE, 1, 0)
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
    limits = [{"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10,
               "limit": 50, "count": 41},
              {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1,
               "limit": 6000, "count": 5999}]
    gw.on_frame(frame(id=None, status=200, result={}, rateLimits=limits))
    assert gw.pace_ns == 10_000 * 1_000_000 // 50          # 10 s window / 50 orders
    limits[0]["count"] = 3
    gw.on_frame(frame(id=None, status=200, result={}, rateLimits=limits))
    assert gw.pace_ns == 0


def test_cancel_replace_failure_keeps_the_old_order_and_rejects_the_new(gw):
    gw.book.new(1, b"mm-9-1", 0, SIDE_BUY, 5_000_000, 100)
    gw.book.accepted(1)
    gw.book.cancel_sent(1)
    gw.book.new(2, b"mm-10-2", 0, SIDE_BUY, 5_000_100, 100)
    gw._inflight[7] = (REQ_REPLACE, 2, 1)
    gw.on_frame(frame(id=7, status=400, error={
        "code": -2022, "msg": "Order cancel-replace failed.",
        "data": {"cancelResult": "FAILURE", "newOrderResult": "NOT_ATTEMPTED",
                 "cancelResponse": {"code": -2011, "msg": "Unknown order sent."},
                 "newOrderResponse": None}}))
    assert gw.fills.records[-1] == (FILL_REJECT, 2, 5_000_100, 100, 0, 0, -2022)
    assert gw.book.get(1) is not None and gw.book.needs_reconcile
    assert gw.book.counts["cancel_failures"] == 1
