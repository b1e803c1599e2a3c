"""A small WS API client for the simulator tests (websockets library), signing like a venue
client does: HMAC-SHA256 over the sorted params, or Ed25519 for session.logon."""
from __future__ import annotations

import asyncio
import itertools
import json
import time

import websockets

from engine.demo_keys import DEMO_API_KEY, DEMO_API_SECRET
from engine.sim import auth

TIMEOUT = 5.0


def signed(params: dict, *, secret: str = DEMO_API_SECRET, api_key: str = DEMO_API_KEY,
           timestamp: int | None = None) -> dict:
    """params + apiKey + timestamp + HMAC signature."""
    out = dict(params, apiKey=api_key,
               timestamp=int(time.time() * 1000) if timestamp is None else timestamp)
    out["signature"] = auth.hmac_hex(secret, auth.signature_payload(out))
    return out


class ApiClient:
    """Requests and their responses; anything else (user-data events) lands in `events`."""

    def __init__(self, ws):
        self.ws = ws
        self.events: list[dict] = []
        self._ids = itertools.count(1)

    @classmethod
    async def connect(cls, url: str) -> "ApiClient":
        return cls(await websockets.connect(url, open_timeout=TIMEOUT))

    async def close(self) -> None:
        await self.ws.close()

    async def request(self, method: str, params: dict | None = None, *, sign: bool = True,
                      timeout: float = TIMEOUT) -> dict:
        req_id = next(self._ids)
        body = {"id": req_id, "method": method}
        if params is not None or sign:
            body["params"] = signed(params or {}) if sign else params
        await self.ws.send(json.dumps(body))
        return await self.response(req_id, timeout)

    async def response(self, req_id, timeout: float = TIMEOUT) -> dict:
        async with asyncio.timeout(timeout):
            while True:
                msg = json.loads(await self.ws.recv())
                if "subscriptionId" in msg and "event" in msg:
                    self.events.append(msg)
                elif msg.get("id") == req_id:
                    return msg

    async def event(self, pred, timeout: float = TIMEOUT) -> dict:
        """The first user-data event (unwrapped) satisfying pred, waiting if needed."""
        async with asyncio.timeout(timeout):
            while True:
                for i, msg in enumerate(self.events):
                    if pred(msg["event"]):
                        del self.events[i]
                        return msg["event"]
                msg = json.loads(await self.ws.recv())
                if "subscriptionId" in msg and "event" in msg:
                    self.events.append(msg)

    async def subscribe_user_data(self) -> int:
        r = await self.request("userDataStream.subscribe.signature", {})
        assert r["status"] == 200, r
        return r["result"]["subscriptionId"]


def order(symbol: str, side: str, price: str, qty: str, cid: str | None = None,
          type_: str = "LIMIT_MAKER", **extra) -> dict:
    p = {"symbol": symbol, "side": side, "type": type_, "price": price, "quantity": qty, **extra}
    if type_ == "LIMIT":
        p.setdefault("timeInForce", "GTC")
    if cid is not None:
        p["newClientOrderId"] = cid
    return p
