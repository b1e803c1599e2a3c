"""The light venue's order API answers in the shapes the engine's own decoders read
(engine/sender/venues/binance/wire.py), with Binance's codes for what goes wrong; no sockets."""
from __future__ import annotations

import json

import pytest

from bench.light_api import LightApi, Session
from bench.light_venue import exchange_info_entry, instruments_for
from engine.sender.venues.binance import wire as bn


@pytest.fixture
def api():
    seen = []
    a = LightApi([exchange_info_entry(i) for i in instruments_for(["BTCUSDT", "S001USDT"])],
                 {"USDT": "1000.00000000", "BTC": "10.00000000"},
                 lambda t, cid: seen.append((t, cid)))
    a.seen = seen
    return a


def _call(api, method, session=None, **params):
    out = api.handle(session or Session(), 123, json.dumps(
        {"id": 7, "method": method, "params": params}).encode())
    fr = bn.FRAME.decode(out)
    assert fr.id == 7
    return fr


ORDER = dict(symbol="BTCUSDT", side="BUY", type="LIMIT_MAKER", price="50000.00",
             quantity="0.00200", newOrderRespType="ACK")


def test_place_replace_cancel_in_the_engines_shapes(api):
    r = _call(api, "order.place", newClientOrderId="mm-100-1", **ORDER)
    ack = bn.ORDER_RESULT.decode(r.result)
    assert r.status == 200 and ack.clientOrderId == "mm-100-1" and ack.orderId > 0
    assert api.seen == [(123, "mm-100-1")]                   # the wire clock saw it
    r = _call(api, "order.cancelReplace", cancelReplaceMode="STOP_ON_FAILURE",
              cancelOrigClientOrderId="mm-100-1", newClientOrderId="mm-101-2", **ORDER)
    rep = bn.REPLACE_RESULT.decode(r.result)
    assert rep.cancelResult == rep.newOrderResult == "SUCCESS"
    assert rep.cancelResponse.status == "CANCELED" and rep.newOrderResponse.orderId > ack.orderId
    opened = bn.ORDER_RESULTS.decode(_call(api, "openOrders.status", symbol="BTCUSDT").result)
    assert [o.clientOrderId for o in opened] == ["mm-101-2"] and opened[0].status == "NEW"
    r = _call(api, "order.cancel", symbol="BTCUSDT", orderId=rep.newOrderResponse.orderId)
    assert bn.ORDER_RESULT.decode(r.result).status == "CANCELED"
    st = bn.ORDER_RESULT.decode(_call(api, "order.status", symbol="BTCUSDT",
                                      origClientOrderId="mm-101-2").result)
    assert st.status == "CANCELED" and st.executedQty == "0.00000000"
    assert bn.ORDER_RESULTS.decode(_call(api, "openOrders.status", symbol="BTCUSDT").result) == []


def test_failures_carry_binances_codes(api):
    r = _call(api, "order.cancelReplace", cancelReplaceMode="STOP_ON_FAILURE",
              cancelOrigClientOrderId="gone", newClientOrderId="mm-1-1", **ORDER)
    assert r.status == 400 and r.error.code == -2022
    assert r.error.data.cancelResult == "FAILURE" and r.error.data.newOrderResult == "NOT_ATTEMPTED"
    r = _call(api, "order.cancelReplace", cancelReplaceMode="ALLOW_FAILURE",
              cancelOrigClientOrderId="gone", newClientOrderId="mm-1-2", **ORDER)
    assert r.status == 409 and r.error.code == -2021 and r.error.data.newOrderResult == "SUCCESS"
    assert _call(api, "order.cancel", symbol="BTCUSDT", origClientOrderId="nope").error.code == -2011
    assert _call(api, "order.status", symbol="BTCUSDT", origClientOrderId="nope").error.code == -2013
    assert _call(api, "order.place", **{**ORDER, "symbol": "XYZ"}).error.code == -1121
    assert _call(api, "order.cancel", symbol="BTCUSDT", orderId={"odd": 1}).status in (400, 500)
    api.handle(Session(), 0, b"not json")                    # answered, never raised
    assert _call(api, "openOrders.cancelAll", symbol="S001USDT").error.code == -2011


def test_session_start_up_and_info(api):
    s = Session(return_rate_limits=False)
    assert _call(api, "time", s).result and _call(api, "ping", s).status == 200
    r = _call(api, "userDataStream.subscribe.signature", s, apiKey="k", timestamp=1,
              signature="x")
    assert json.loads(bytes(r.result)) == {"subscriptionId": 0} and r.rateLimits is None
    info = json.loads(bytes(_call(api, "exchangeInfo", symbols=["S001USDT"]).result))
    assert [x["symbol"] for x in info["symbols"]] == ["S001USDT"]
    assert info["symbols"][0]["baseAsset"] == "S001"
    assert _call(api, "exchangeInfo", symbols=["NOPE"]).error.code == -1121
    bal = bn.ACCOUNT.decode(_call(api, "account.status").result).balances
    assert {b.asset for b in bal} == {"USDT", "BTC"}
    assert _call(api, "session.logon", s, apiKey="k", signature="x", timestamp=1).status == 200


def test_a_subscribed_session_gets_the_reports_a_live_venue_sends(api):
    """NEW for a placed order, CANCELED and NEW for the legs of a cancelReplace, CANCELED for a
    cancel, in the engine's own shapes; an unsubscribed session gets none."""
    quiet = Session()
    _call(api, "order.place", quiet, newClientOrderId="mm-1-1", **ORDER)
    assert quiet.events == []
    s = Session()
    _call(api, "userDataStream.subscribe", s)
    _call(api, "order.place", s, newClientOrderId="mm-100-1", **ORDER)
    _call(api, "order.cancelReplace", s, cancelReplaceMode="STOP_ON_FAILURE",
          cancelOrigClientOrderId="mm-100-1", newClientOrderId="mm-101-2", **ORDER)
    _call(api, "order.cancel", s, symbol="BTCUSDT", origClientOrderId="mm-101-2",
          newClientOrderId="mm-x-3")
    reports = []
    for e in s.events:
        fr = bn.FRAME.decode(e)
        assert fr.id is None and bytes(fr.event)
        assert bn.EVENT_KIND.decode(fr.event).e == "executionReport"
        reports.append(bn.EXECUTION_REPORT.decode(fr.event))
    assert [(r.x, r.X, r.C) for r in reports] == [
        ("NEW", "NEW", ""), ("CANCELED", "CANCELED", "mm-100-1"), ("NEW", "NEW", ""),
        ("CANCELED", "CANCELED", "mm-101-2")]
    assert [reports[0].c, reports[2].c, reports[3].c] == ["mm-100-1", "mm-101-2", "mm-x-3"]
    assert reports[0].i != reports[2].i and reports[2].i == reports[3].i
    assert reports[0].p == "50000.00" and reports[0].S == "BUY"
