"""The sender process with venue = bybit against a protocol fixture: a small loopback WebSocket
peer written here that speaks Bybit v5 /v5/trade as documented (PROTOCOLS.md section 5). It
verifies the `op: auth` signature, the X-BAPI header timestamps, reqId rules and orderLinkId
format, keeps the orders it accepted, and answers in the documented response shapes. It is a
stand-in for the venue, not for any of our code."""
from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import json
import re
import threading
import time

import pytest

from engine.control import KILL_VENUE_REFUSED, Control
from engine.exit_codes import EXIT_KILLED

from engine import demo_keys
from engine.config import EngineConfig
from engine.records import FILL_ACK, FILL_CANCELED, FILL_REJECT, FILL_RESUME, SIDE_BUY, SIDE_SELL
from tests.support.sender_process import QuoterEnd, SenderProcess

pytestmark = pytest.mark.timeout(60)
LINK_ID = re.compile(r"^[A-Za-z0-9_-]{1,36}$")


class BybitTradeFixture:
    """Bybit /v5/trade on 127.0.0.1 (websockets server in a thread)."""

    def __init__(self, api_key=demo_keys.DEMO_API_KEY, secret=demo_keys.DEMO_API_SECRET):
        self.api_key, self.secret = api_key, secret.encode()
        self.orders: dict[str, dict] = {}        # orderLinkId -> args of the live order
        self.requests: list[dict] = []
        self.errors: list[str] = []              # protocol violations seen
        self.reject_next = 0
        self._ids = itertools.count(1_726_025_498_520_715_008)
        self._ready = threading.Event()
        self.url = ""

    # -- protocol --
    def answer(self, msg: dict, state: dict) -> dict | None:
        op = msg.get("op")
        conn = {"connId": "fixture-1"}
        if op == "auth":
            key, expires, sig = msg["args"]
            want = hmac.new(self.secret, f"GET/realtime{expires}".encode(), hashlib.sha256).hexdigest()
            if key != self.api_key:
                return {"op": "auth", "retCode": 10003, "retMsg": "Invalid apikey", **conn}
            if sig != want or expires <= time.time() * 1000:
                return {"op": "auth", "retCode": 10004, "retMsg": "Invalid sign", **conn}
            state["authed"] = True
            return {"retCode": 0, "retMsg": "OK", "op": "auth", **conn}
        if op == "ping":
            return {"op": "pong", "args": [str(int(time.time() * 1000))], **conn}
        req_id = msg.get("reqId", "")
        base = {"reqId": req_id, "op": op, **conn}
        if not state.get("authed"):
            return {**base, "retCode": 10004, "retMsg": "not authed", "data": {}}
        if not (isinstance(req_id, str) and 0 < len(req_id) <= 36) or req_id in state["req_ids"]:
            self.errors.append(f"bad or repeated reqId {req_id!r}")
            return {**base, "retCode": 20006, "retMsg": "reqId is duplicated", "data": {}}
        state["req_ids"].add(req_id)
        hdr = msg.get("header", {})
        ts, window = int(hdr.get("X-BAPI-TIMESTAMP", 0)), int(hdr.get("X-BAPI-RECV-WINDOW", 5000))
        now = int(time.time() * 1000)
        if not (now - window <= ts < now + 1000):
            self.errors.append(f"timestamp {ts} outside the recv window at {now}")
            return {**base, "retCode": 10002, "retMsg": "invalid request, please check your "
                    "server timestamp or recv_window param", "data": {}}
        args = msg.get("args")
        if not isinstance(args, list) or len(args) != 1:
            return {**base, "retCode": 10001, "retMsg": "args must hold one order", "data": {}}
        a = args[0]
        link = a.get("orderLinkId", "")
        if not LINK_ID.match(link):
            self.errors.append(f"bad orderLinkId {link!r}")
        header = {"X-Bapi-Limit": "20", "X-Bapi-Limit-Status": "19",
                  "X-Bapi-Limit-Reset-Timestamp": str(now), "Traceid": "t", "Timenow": str(now)}
        ok = {**base, "retCode": 0, "retMsg": "OK", "retExtInfo": {}, "header": header}
        if op == "order.create":
            need = {"category", "symbol", "side", "orderType", "qty", "price", "timeInForce"}
            if need - a.keys() or a["side"] not in ("Buy", "Sell"):
                return {**base, "retCode": 10001, "retMsg": "params error", "data": {}}
            if self.reject_next:
                self.reject_next -= 1
                return {**base, "retCode": 170131, "retMsg": "Insufficient balance.", "data": {}}
            if link in self.orders:
                return {**base, "retCode": 170141, "retMsg": "Duplicate clientOrderId", "data": {}}
            self.orders[link] = dict(a, orderId=str(next(self._ids)))
            return {**ok, "data": {"orderId": self.orders[link]["orderId"], "orderLinkId": link}}
        if op in ("order.amend", "order.cancel"):
            o = self.orders.get(link)
            if o is None:
                return {**base, "retCode": 110001, "retMsg": "order not exists or too late to "
                        "cancel", "data": {}}
            if op == "order.amend":
                o.update({k: a[k] for k in ("price", "qty") if k in a})
            else:
                del self.orders[link]
            return {**ok, "data": {"orderId": o["orderId"], "orderLinkId": link}}
        return {**base, "retCode": 10001, "retMsg": f"unknown op {op}", "data": {}}

    # -- server --
    async def _handler(self, ws):
        state = {"authed": False, "req_ids": set()}
        async for text in ws:
            msg = json.loads(text)
            self.requests.append(msg)
            out = self.answer(msg, state)
            if out is not None:
                await ws.send(json.dumps(out))

    def __enter__(self):
        from websockets.asyncio.server import serve

        async def main():
            async with serve(self._handler, "127.0.0.1", 0) as server:
                port = server.sockets[0].getsockname()[1]
                self.url = f"ws://127.0.0.1:{port}/v5/trade"
                self._stop = asyncio.get_running_loop().create_future()
                self._ready.set()
                await self._stop

        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_until_complete, args=(main(),),
                                        daemon=True)
        self._thread.start()
        assert self._ready.wait(10)
        return self

    def __exit__(self, *exc):
        self._loop.call_soon_threadsafe(self._stop.set_result, None)
        self._thread.join(5)


def test_bybit_create_amend_cancel_reject_and_safety_net(instance):
    with BybitTradeFixture() as venue:
        cfg = EngineConfig(instance=instance, tag="mm", sender={"venue": "bybit", "url": venue.url,
                                                      "reconnect_base_s": 0.05})
        q = QuoterEnd(cfg)
        try:
            with SenderProcess(cfg) as sp:
                try:
                    q.wait_fill(lambda r: r["kind"] == FILL_RESUME, 20)
                except TimeoutError:
                    raise AssertionError(sp.log()) from None
                q.new(1, update_id=31, price=5_000_000, qty=100, side=SIDE_BUY)
                q.wait_fill(lambda r: r["kind"] == FILL_ACK and r["order_id"] == 1)
                assert venue.orders["mm-31-1"]["price"] == "50000.00"
                assert venue.orders["mm-31-1"]["qty"] == "0.00100"
                assert venue.orders["mm-31-1"]["timeInForce"] == "PostOnly"
                assert venue.orders["mm-31-1"]["category"] == "spot"

                q.replace(2, 1, update_id=32, price=5_000_100, qty=200, side=SIDE_BUY)
                q.wait_fill(lambda r: r["kind"] == FILL_ACK and r["order_id"] == 2)
                q.wait_fill(lambda r: r["kind"] == FILL_CANCELED and r["order_id"] == 1)
                assert venue.orders["mm-31-1"]["price"] == "50001.00"   # amended in place

                venue.reject_next = 1
                q.new(3, update_id=33, price=7_000_000, qty=100, side=SIDE_SELL, post_only=0)
                r = q.wait_fill(lambda r: r["order_id"] == 3)
                assert (r["kind"], r["error_code"]) == (FILL_REJECT, 170131)

                q.new(4, update_id=34, price=7_000_000, qty=100, side=SIDE_SELL, post_only=0)
                q.wait_fill(lambda r: r["kind"] == FILL_ACK and r["order_id"] == 4)
                assert venue.orders["mm-34-4"]["side"] == "Sell"
                assert venue.orders["mm-34-4"]["timeInForce"] == "GTC"
                q.cancel(4)
                q.wait_fill(lambda r: r["kind"] == FILL_CANCELED and r["order_id"] == 4)
                assert set(venue.orders) == {"mm-31-1"}

                sp.terminate()                           # safety net cancels order 2
                assert sp.wait(20) == 0, sp.log()
                log = sp.log()
            assert venue.orders == {}
            assert venue.errors == []
            assert demo_keys.DEMO_API_SECRET not in log and demo_keys.DEMO_API_KEY not in log
            auth = [m for m in venue.requests if m.get("op") == "auth"]
            assert len(auth) == 1 and auth[0]["args"][0] == demo_keys.DEMO_API_KEY
        finally:
            q.close()


def test_bybit_wrong_secret_stops_with_what_to_fix(instance):
    """A refused signature is not a retry loop: the sender says which setting to change, pulls
    the kill switch (latched: a person fixes the key, then `mm resume`) and exits 4; it never
    reached the venue, so nothing can rest."""
    with BybitTradeFixture(secret="not-the-demo-secret") as venue:
        cfg = EngineConfig(instance=instance, tag="mm", sender={"venue": "bybit", "url": venue.url,
                                                      "reconnect_base_s": 0.05,
                                                      "reconnect_cap_s": 0.2})
        q = QuoterEnd(cfg)
        try:
            with SenderProcess(cfg) as sp:
                assert sp.wait(20) == EXIT_KILLED
                log = sp.log()
            assert log.count("auth refused") == 1 and "retCode 10004" in log
            assert "MM_API_SECRET" in log and "never connected: nothing was sent" in log
            assert q.poll() == []
            ctl = Control.attach(instance)
            assert ctl.killed() == KILL_VENUE_REFUSED
            ctl.close()
        finally:
            q.close()
