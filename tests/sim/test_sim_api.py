"""The WS API over a real WebSocket (websockets library): orders, replace, cancel, user data,
and every documented error code."""
from __future__ import annotations

import asyncio
import json
import time
from decimal import Decimal

import pytest
import websockets
from picows import WSListener, WSMsgType, ws_connect
from tests.support.sim_client import ApiClient, order, signed

from engine.sim import auth
from tests.support.sim_thread import SimThread


@pytest.fixture
def sim():
    with SimThread(event_rate=100, seed=3) as s:
        s.pause_market()              # a still book: prices below are deterministic
        yield s


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 30))


def ticks_below(price: str, n: int) -> str:
    return str(Decimal(price) - Decimal("0.01") * n)


def test_place_cancel_replace_with_execution_reports(sim):
    async def go():
        c = await ApiClient.connect(sim.api_url)
        await c.subscribe_user_data()
        bid = sim.book("BTCUSDT")["bid"]
        px = ticks_below(bid, 100)
        r = await c.request("order.place", order("BTCUSDT", "BUY", px, "0.01000", "mm-1-1"))
        assert r["status"] == 200
        assert set(r["result"]) == {"symbol", "orderId", "orderListId", "clientOrderId",
                                    "transactTime"}                      # ACK by default
        assert [x["rateLimitType"] for x in r["rateLimits"]] == ["ORDERS", "ORDERS",
                                                                  "REQUEST_WEIGHT"]
        oid = r["result"]["orderId"]
        new = await c.event(lambda e: e["e"] == "executionReport")
        assert (new["x"], new["X"], new["c"], new["i"]) == ("NEW", "NEW", "mm-1-1", oid)
        assert Decimal(new["p"]) == Decimal(px) and new["q"] == "0.01000000"
        pos = await c.event(lambda e: e["e"] == "outboundAccountPosition")
        assert {b["a"] for b in pos["B"]} == {"BTC", "USDT"}

        px2 = ticks_below(bid, 50)
        r = await c.request("order.cancelReplace", order(
            "BTCUSDT", "BUY", px2, "0.02000", "mm-2-2", cancelReplaceMode="STOP_ON_FAILURE",
            cancelOrigClientOrderId="mm-1-1", newOrderRespType="RESULT"))
        assert r["status"] == 200, r
        res = r["result"]
        assert (res["cancelResult"], res["newOrderResult"]) == ("SUCCESS", "SUCCESS")
        assert res["cancelResponse"]["status"] == "CANCELED"
        assert res["cancelResponse"]["origClientOrderId"] == "mm-1-1"
        assert res["newOrderResponse"]["status"] == "NEW"
        assert res["newOrderResponse"]["origQty"] == "0.02000000"
        canceled = await c.event(lambda e: e["e"] == "executionReport" and e["x"] == "CANCELED")
        assert canceled["C"] == "mm-1-1" and canceled["i"] == oid

        r = await c.request("openOrders.status", {"symbol": "BTCUSDT"})
        assert [o["clientOrderId"] for o in r["result"]] == ["mm-2-2"]
        assert sim.open_orders("BTCUSDT")[0]["clientOrderId"] == "mm-2-2"
        locked = sim.balances()["USDT"]["locked"]
        assert Decimal(locked) == Decimal(px2) * Decimal("0.02")

        r = await c.request("order.cancel", {"symbol": "BTCUSDT",
                                             "origClientOrderId": "mm-2-2"})
        assert r["status"] == 200 and r["result"]["status"] == "CANCELED"
        assert sim.open_orders() == []
        assert Decimal(sim.balances()["USDT"]["locked"]) == 0
        assert Decimal(sim.balances()["USDT"]["free"]) == Decimal("1000000")

        for i in range(3):
            await c.request("order.place", order("ETHUSDT", "SELL", "3500.00", "0.0100",
                                                 f"mm-9-{i}"))
        r = await c.request("openOrders.cancelAll", {"symbol": "ETHUSDT"})
        assert r["status"] == 200 and [o["status"] for o in r["result"]] == ["CANCELED"] * 3
        r = await c.request("account.status", {})
        bal = {b["asset"]: b for b in r["result"]["balances"]}
        assert Decimal(bal["ETH"]["free"]) == 10 and Decimal(bal["ETH"]["locked"]) == 0
        await c.close()
    run(go())


def expect_error(r: dict, status: int, code: int, msg: str | None = None) -> None:
    assert r["status"] == status, r
    assert r["error"]["code"] == code, r
    if msg is not None:
        assert r["error"]["msg"] == msg, r


def test_documented_errors(sim):
    async def go():
        c = await ApiClient.connect(sim.api_url)
        b = sim.book("BTCUSDT")
        far = ticks_below(b["bid"], 1000)

        # -1022 bad signature
        p = signed(order("BTCUSDT", "BUY", far, "0.01000"))
        p["signature"] = p["signature"][::-1]
        r = await c.request("order.place", p, sign=False)
        expect_error(r, 400, -1022, "Signature for this request is not valid.")
        p = signed(order("BTCUSDT", "BUY", far, "0.01000"))
        p["quantity"] = "0.02000"                                # tampered after signing
        expect_error(await c.request("order.place", p, sign=False), 400, -1022)

        # -1021 outside recvWindow / ahead of server time
        old = signed(order("BTCUSDT", "BUY", far, "0.01000"),
                     timestamp=int(time.time() * 1000) - 10_000)
        expect_error(await c.request("order.place", old, sign=False), 400, -1021,
                     "Timestamp for this request is outside of the recvWindow.")
        ahead = signed(order("BTCUSDT", "BUY", far, "0.01000"),
                       timestamp=int(time.time() * 1000) + 5_000)
        expect_error(await c.request("order.place", ahead, sign=False), 400, -1021,
                     "Timestamp for this request was 1000ms ahead of the server's time.")
        # a wider recvWindow accepts the old timestamp
        wide = signed(order("BTCUSDT", "BUY", far, "0.01000", recvWindow=60000),
                      timestamp=int(time.time() * 1000) - 10_000)
        assert (await c.request("order.place", wide, sign=False))["status"] == 200

        # -2011 unknown order
        expect_error(await c.request("order.cancel", {"symbol": "BTCUSDT", "orderId": 999999}),
                     400, -2011, "Unknown order sent.")
        expect_error(await c.request("order.cancel", {"symbol": "BTCUSDT",
                                                      "origClientOrderId": "nope"}), 400, -2011)
        # -2010 insufficient balance (1000000 USDT cannot buy 100 BTC at 60000)
        expect_error(await c.request("order.place", order("BTCUSDT", "BUY", far, "100.00000")),
                     400, -2010, "Account has insufficient balance for requested action.")
        expect_error(await c.request("order.place", order("ETHUSDT", "SELL", "9000.00",
                                                          "11.0000")), 400, -2010)
        # -2010 post-only that would take
        expect_error(await c.request("order.place", order("BTCUSDT", "BUY", b["ask"], "0.01000")),
                     400, -2010, "Order would immediately match and take.")
        expect_error(await c.request("order.place", order("BTCUSDT", "SELL", b["bid"],
                                                          "0.01000")), 400, -2010)
        # -2010 duplicate client order id among open orders
        assert (await c.request("order.place", order("BTCUSDT", "BUY", far, "0.01000",
                                                     "dup-1-1")))["status"] == 200
        expect_error(await c.request("order.place", order("BTCUSDT", "BUY", far, "0.01000",
                                                          "dup-1-1")), 400, -2010,
                     "Duplicate order sent.")
        # -1013 filters
        expect_error(await c.request("order.place", order("BTCUSDT", "BUY", far + "1",
                                                          "0.01000")),
                     400, -1013, "Filter failure: PRICE_FILTER")
        expect_error(await c.request("order.place", order("BTCUSDT", "BUY", far, "0.010001")),
                     400, -1013, "Filter failure: LOT_SIZE")
        expect_error(await c.request("order.place", order("BTCUSDT", "BUY", far, "0.00001")),
                     400, -1013, "Filter failure: NOTIONAL")
        # trailing zeros beyond the tick are fine (Binance prints 8 decimals)
        r = await c.request("order.place", order("BTCUSDT", "BUY", far + "000000", "0.01000000"))
        assert r["status"] == 200, r
        # -1100 client order id outside ^[a-zA-Z0-9-_]{1,36}$ and bad decimals
        expect_error(await c.request("order.place", order("BTCUSDT", "BUY", far, "0.01000",
                                                          "bad id!")), 400, -1100)
        expect_error(await c.request("order.place", order("BTCUSDT", "BUY", far, "0.01000",
                                                          "x" * 37)), 400, -1100)
        expect_error(await c.request("order.place", order("BTCUSDT", "BUY", "1e5", "0.01000")),
                     400, -1100)
        # -1102 mandatory parameter
        expect_error(await c.request("order.place", {"symbol": "BTCUSDT", "side": "BUY",
                                                     "type": "LIMIT_MAKER", "price": far}),
                     400, -1102)
        p = signed(order("BTCUSDT", "BUY", far, "0.01000"))
        del p["timestamp"]
        expect_error(await c.request("order.place", p, sign=False), 400, -1102)
        # -1121 unknown symbol, -2015 unknown key
        expect_error(await c.request("order.place", order("XRPUSDT", "BUY", "1.00", "10")),
                     400, -1121)
        p = signed(order("BTCUSDT", "BUY", far, "0.01000"), api_key="someone-else")
        expect_error(await c.request("order.place", p, sign=False), 401, -2015)
        # malformed request frame
        await c.ws.send(b"{not json")
        r = json.loads(await c.ws.recv())
        assert r["status"] == 400 and r["id"] is None
        await c.close()
    run(go())


def test_cancel_replace_failures(sim):
    async def go():
        c = await ApiClient.connect(sim.api_url)
        b = sim.book("BTCUSDT")
        far = ticks_below(b["bid"], 1000)
        # cancel fails, STOP_ON_FAILURE: -2022, new order not attempted
        r = await c.request("order.cancelReplace", order(
            "BTCUSDT", "BUY", far, "0.01000", "r-1-1", cancelReplaceMode="STOP_ON_FAILURE",
            cancelOrigClientOrderId="missing"))
        expect_error(r, 400, -2022, "Order cancel-replace failed.")
        d = r["error"]["data"]
        assert d["cancelResult"] == "FAILURE" and d["newOrderResult"] == "NOT_ATTEMPTED"
        assert d["cancelResponse"] == {"code": -2011, "msg": "Unknown order sent."}
        assert d["newOrderResponse"] is None
        # cancel fails, ALLOW_FAILURE: -2021 (409) and the new order is placed
        r = await c.request("order.cancelReplace", order(
            "BTCUSDT", "BUY", far, "0.01000", "r-1-2", cancelReplaceMode="ALLOW_FAILURE",
            cancelOrigClientOrderId="missing"))
        expect_error(r, 409, -2021, "Order cancel-replace partially failed.")
        assert r["error"]["data"]["newOrderResult"] == "SUCCESS"
        # cancel succeeds, new order would take: -2021 with the new order's error
        r = await c.request("order.cancelReplace", order(
            "BTCUSDT", "BUY", b["ask"], "0.01000", "r-1-3", cancelReplaceMode="STOP_ON_FAILURE",
            cancelOrigClientOrderId="r-1-2"))
        expect_error(r, 409, -2021)
        d = r["error"]["data"]
        assert d["cancelResult"] == "SUCCESS" and d["cancelResponse"]["status"] == "CANCELED"
        assert d["newOrderResponse"] == {"code": -2010,
                                         "msg": "Order would immediately match and take."}
        assert sim.open_orders() == []
        # nothing to cancel
        expect_error(await c.request("openOrders.cancelAll", {"symbol": "BTCUSDT"}), 400, -2011)
        await c.close()
    run(go())


def test_rate_limits_orders_and_weight():
    async def go(sim):
        c = await ApiClient.connect(sim.api_url)
        far = ticks_below(sim.book("BTCUSDT")["bid"], 1000)
        sim.throttle(3)
        statuses = []
        for i in range(5):
            r = await c.request("order.place", order("BTCUSDT", "BUY", far, "0.01000",
                                                     f"t-1-{i}"))
            statuses.append(r["status"])
        # the 10 s window may roll over once during the loop; never more than 3 per window
        assert statuses.count(429) >= 1 and statuses.count(200) <= 6
        r429 = r if r["status"] == 429 else None
        if r429 is None:
            r429 = await c.request("order.place", order("BTCUSDT", "BUY", far, "0.01000"))
        expect_error(r429, 429, -1015)
        assert "current limit is 3 orders per 10 SECOND" in r429["error"]["msg"]
        assert "retryAfter" in r429["error"]["data"]
        orders_10s = r429["rateLimits"][0]
        assert orders_10s["rateLimitType"] == "ORDERS" and orders_10s["limit"] == 3
        # weight: account.status weighs 20, the limit here is 50 per minute
        statuses = [(await c.request("account.status", {}))["status"] for _ in range(4)]
        assert 429 in statuses
        r = await c.request("time", None, sign=False)
        expect_error(r, 429, -1003)
        # returnRateLimits=false drops the rateLimits array
        r = await c.request("ping", {"returnRateLimits": False}, sign=False)
        assert "rateLimits" not in r
        await c.close()
    with SimThread(weight_per_minute=50) as sim:
        sim.pause_market()
        run(go(sim))


def test_ed25519_logon_then_unsigned_requests(sim):
    key = auth.demo_ed25519_private_key()

    async def go():
        c = await ApiClient.connect(sim.api_url)
        # not logged on: userDataStream.subscribe is refused
        r = await c.request("userDataStream.subscribe", None, sign=False)
        assert r["status"] == 401
        # bad Ed25519 signature refused
        params = {"apiKey": auth.demo_keys.DEMO_API_KEY, "timestamp": int(time.time() * 1000)}
        bad = dict(params, signature=auth.sign_ed25519(key, b"something else"))
        expect_error(await c.request("session.logon", bad, sign=False), 400, -1022)
        # an HMAC signature is not accepted for logon (Ed25519 only)
        hm = dict(params, signature=auth.hmac_hex(auth.demo_keys.DEMO_API_SECRET,
                                                  auth.signature_payload(params)))
        expect_error(await c.request("session.logon", hm, sign=False), 400, -1022)
        good = dict(params, signature=auth.sign_ed25519(key, auth.signature_payload(params)))
        r = await c.request("session.logon", good, sign=False)
        assert r["status"] == 200 and r["result"]["apiKey"] == params["apiKey"]
        assert r["result"]["authorizedSince"] > 0
        r = await c.request("userDataStream.subscribe", None, sign=False)
        assert r["status"] == 200 and r["result"]["subscriptionId"] == 0
        # after logon: no apiKey/signature, timestamp still required
        far = ticks_below(sim.book("ETHUSDT")["bid"], 100)
        p = dict(order("ETHUSDT", "BUY", far, "0.0100", "ed-1-1"),
                 timestamp=int(time.time() * 1000))
        r = await c.request("order.place", p, sign=False)
        assert r["status"] == 200, r
        ev = await c.event(lambda e: e["e"] == "executionReport")
        assert ev["c"] == "ed-1-1"
        r = await c.request("order.cancel", {"symbol": "ETHUSDT", "origClientOrderId": "ed-1-1"},
                            sign=False)
        expect_error(r, 400, -1102)                      # timestamp missing
        # other connections are not logged on
        c2 = await ApiClient.connect(sim.api_url)
        r = await c2.request("order.cancel", {"symbol": "ETHUSDT", "origClientOrderId": "ed-1-1",
                                              "timestamp": int(time.time() * 1000)}, sign=False)
        expect_error(r, 400, -1102)                      # apiKey missing
        await c2.close()
        await c.close()
    run(go())


def test_fault_switches_on_the_order_side(sim):
    async def go():
        c = await ApiClient.connect(sim.api_url)
        far = ticks_below(sim.book("BTCUSDT")["bid"], 1000)
        sim.reject_orders(2, code=-2010, msg="Test reject.")
        for i in range(2):
            expect_error(await c.request("order.place", order("BTCUSDT", "BUY", far, "0.01000")),
                         400, -2010, "Test reject.")
        assert (await c.request("order.place", order("BTCUSDT", "BUY", far,
                                                     "0.01000")))["status"] == 200
        assert sim.stats()["rejects"] == 2

        sim.delay_responses(200)
        t0 = time.monotonic()
        assert (await c.request("ping", None, sign=False))["status"] == 200
        assert time.monotonic() - t0 >= 0.2            # cannot arrive before the delay
        sim.delay_responses(0)

        assert sim.drop_connections("api") == 1
        with pytest.raises(websockets.ConnectionClosed):
            async with asyncio.timeout(5):
                await c.ws.recv()
        # a new connection works
        c = await ApiClient.connect(sim.api_url)
        assert (await c.request("time", None, sign=False))["status"] == 200
        await c.close()
    run(go())


def test_unknown_path_is_404(sim):
    async def go():
        with pytest.raises(websockets.InvalidStatus) as e:
            await websockets.connect(sim.md_url + "/nope", open_timeout=5)
        assert e.value.response.status_code == 404
    run(go())


class _PicowsApi(WSListener):
    """picows client collecting every text frame as JSON."""

    def __init__(self):
        self.msgs: asyncio.Queue = asyncio.Queue()

    def on_ws_frame(self, transport, frame):
        if frame.msg_type == WSMsgType.TEXT:
            self.msgs.put_nowait(json.loads(frame.get_payload_as_bytes()))


def test_picows_client_places_replaces_cancels(sim):
    async def go():
        transport, client = await ws_connect(_PicowsApi, sim.api_url)

        async def call(req_id, method, params):
            transport.send(WSMsgType.TEXT, json.dumps(
                {"id": req_id, "method": method, "params": signed(params)}).encode())
            seen = []
            async with asyncio.timeout(5):
                while True:
                    m = await client.msgs.get()
                    if m.get("id") == req_id:
                        return m, seen
                    seen.append(m)

        r, _ = await call(1, "userDataStream.subscribe.signature", {})
        sub = r["result"]["subscriptionId"]
        far = ticks_below(sim.book("ETHUSDT")["bid"], 20)
        r, _ = await call(2, "order.place", order("ETHUSDT", "SELL", "4000.00", "0.0500", "p-1-1"))
        assert r["status"] == 200
        r, ev = await call(3, "order.cancelReplace", order(
            "ETHUSDT", "BUY", far, "0.0500", "p-1-2", cancelReplaceMode="STOP_ON_FAILURE",
            cancelOrigClientOrderId="p-1-1"))
        assert r["status"] == 200 and r["result"]["newOrderResult"] == "SUCCESS"
        r, ev2 = await call(4, "order.cancel", {"symbol": "ETHUSDT", "origClientOrderId": "p-1-2"})
        assert r["result"]["status"] == "CANCELED"
        await asyncio.sleep(0.05)
        while not client.msgs.empty():
            ev2.append(client.msgs.get_nowait())
        reports = [(m["event"]["c"], m["event"]["x"]) for m in ev + ev2
                   if m.get("subscriptionId") == sub and m["event"]["e"] == "executionReport"]
        # NEW of p-1-1 (seen before call 3's reply), then CANCELED, NEW, CANCELED
        assert ("p-1-2", "NEW") in reports
        assert [x for _, x in reports].count("CANCELED") == 2
        transport.disconnect()
        await transport.wait_disconnected()
    run(go())


def test_toml_config_errors_name_the_sim_field(tmp_path):
    from engine.config import ConfigError, load
    bad = tmp_path / "bad.toml"
    bad.write_text("[sim]\nevent_rate = 0\n")
    with pytest.raises(ConfigError, match="sim.event_rate"):
        load(bad, env={})
    good = tmp_path / "good.toml"
    good.write_text('[sim]\nevent_rate = 50\n[sim.balances]\nUSDT = "5000"\n')
    cfg = load(good, env={})
    assert cfg.sim.event_rate == 50 and cfg.sim.balances == {"USDT": "5000"}
