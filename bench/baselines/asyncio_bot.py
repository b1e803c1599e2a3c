"""A market maker as tutorials write it: one asyncio process, the `websockets` client, `json`,
`hmac`, and an asyncio.Queue between a feed task, a strategy task and an execution task.

    python -m bench.baselines.asyncio_bot --md-url ws://127.0.0.1:PORT \
        --api-url ws://127.0.0.1:PORT/ws-api/v3 --tag aio

It quotes like the engine (bench/baselines/common.py): one post-only order per side at
mid -/+ a half spread, replaced (order.cancelReplace) whenever its price changes and its
previous request was answered. Deliberately plain: this is the code a first version looks like,
and the figure the engine has to beat.
"""
from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import math
import sys
import time

import websockets

from bench.baselines.common import (API_KEY, API_SECRET, ORDER_QTY, announce_ready,
                                    book_ticker_url, parse_args, quiet_api_url, stop_future)

TICK = 0.01                    # BTCUSDT price tick


def signed_request(request_id: int, method: str, params: dict, api_key: str = API_KEY,
                   secret: str = API_SECRET) -> str:
    """What a straightforward client sends: the params plus apiKey and timestamp, sorted into
    `k=v&...`, hmac.new over that, and json.dumps of the whole request."""
    params = dict(params, apiKey=api_key, timestamp=int(time.time() * 1000))
    query = "&".join(f"{k}={v}" for k, v in sorted(params.items()))
    params["signature"] = hmac.new(secret.encode(), query.encode(), hashlib.sha256).hexdigest()
    return json.dumps({"id": request_id, "method": method, "params": params})


class Bot:
    def __init__(self, symbol: str, tag: str, half_spread_ticks: int):
        self.symbol = symbol
        self.tag = tag
        self.half = half_spread_ticks * TICK
        self.market = asyncio.Queue()
        self.orders = asyncio.Queue()
        # side -> what we believe rests there, and whether a request for it is unanswered
        self.quotes = {"BUY": {"price": None, "cid": None, "pending": False},
                       "SELL": {"price": None, "cid": None, "pending": False}}
        self.requests = {}     # request id -> (side, client id, price)
        self.n = 0

    async def feed(self, url: str) -> None:
        async with websockets.connect(url) as ws:
            async for message in ws:
                await self.market.put(json.loads(message))

    async def strategy(self) -> None:
        while True:
            book = await self.market.get()
            best_bid, best_ask = float(book["b"]), float(book["a"])
            mid = (best_bid + best_ask) / 2
            bid = math.floor((mid - self.half) / TICK) * TICK
            ask = math.ceil((mid + self.half) / TICK) * TICK
            bid = min(bid, best_ask - TICK)        # post-only: never cross the spread
            ask = max(ask, best_bid + TICK)
            for side, price in (("BUY", round(bid, 2)), ("SELL", round(ask, 2))):
                q = self.quotes[side]
                if q["pending"] or q["price"] == price:
                    continue
                q["pending"] = True
                await self.orders.put((side, price, book["u"]))

    async def execution(self, ws) -> None:
        while True:
            side, price, update_id = await self.orders.get()
            self.n += 1
            cid = f"{self.tag}-{update_id}-{self.n}"
            params = {"symbol": self.symbol, "side": side, "type": "LIMIT_MAKER",
                      "price": f"{price:.2f}", "quantity": ORDER_QTY, "newClientOrderId": cid,
                      "newOrderRespType": "ACK", "recvWindow": 5000}
            q = self.quotes[side]
            method = "order.place"
            if q["cid"]:
                method = "order.cancelReplace"
                params.update(cancelReplaceMode="STOP_ON_FAILURE", cancelOrigClientOrderId=q["cid"])
            self.requests[self.n] = (side, cid, price)
            await ws.send(signed_request(self.n, method, params))

    async def responses(self, ws) -> None:
        async for message in ws:
            response = json.loads(message)
            side, cid, price = self.requests.pop(response["id"])
            q = self.quotes[side]
            q["pending"] = False
            if response["status"] == 200:
                q["cid"], q["price"] = cid, price
            else:                  # refused, or the old order was gone: place anew next time
                q["cid"], q["price"] = None, None


async def main(argv=None) -> int:
    a = parse_args("python -m bench.baselines.asyncio_bot", argv,
                   half_spread_ticks=(int, 10, "quote distance from the mid, ticks"))
    bot = Bot(a.symbol, a.tag, a.half_spread_ticks)
    stop = stop_future(asyncio.get_running_loop(), a.duration)
    async with websockets.connect(quiet_api_url(a.api_url)) as api:
        tasks = [asyncio.create_task(bot.feed(book_ticker_url(a.md_url, a.symbol))),
                 asyncio.create_task(bot.strategy()), asyncio.create_task(bot.execution(api)),
                 asyncio.create_task(bot.responses(api))]
        announce_ready()
        await asyncio.wait([stop, *tasks], return_when=asyncio.FIRST_COMPLETED)
        for t in tasks:
            t.cancel()
        failed = [t for t in tasks if t.done() and not t.cancelled() and t.exception()]
    if failed:
        print(f"asyncio_bot: {failed[0].exception()!r}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
