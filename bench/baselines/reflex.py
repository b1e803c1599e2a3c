"""The reflex client: one picows process that answers each book event with a pre-built signed
order and does nothing else. No decoding beyond finding the update id, no model, no state but
the id of its one resting order: the floor of Python on this box.

    python -m bench.baselines.reflex --md-url ws://127.0.0.1:PORT \
        --api-url ws://127.0.0.1:PORT/ws-api/v3 --tag rfx

The order is the engine's own byte template (engine.sender.venues.binance, HMAC signed): a post-only
bid far below the market, moved by order.cancelReplace on every event (a new client id
`<tag>-<u>-<n>` each time, so the venue's wire clock times it). Like the engine, it keeps at
most one request in flight per side it quotes (one side here): events that arrive while the
previous request is unanswered are not answered.
"""
from __future__ import annotations

import asyncio
import sys
import time

from picows import WSListener, WSMsgType, ws_connect

from bench.baselines.common import (API_KEY, API_SECRET, MAX_IN_FLIGHT_PER_SIDE, ORDER_QTY,
                                    announce_ready, book_ticker_url, parse_args, quiet_api_url,
                                    stop_future)
from engine.instruments import DEFAULT_INSTRUMENTS
from engine.records import SIDE_BUY
from engine.sender.venues.binance import encoding as bn
from engine.sender.signing import HmacSigner

_TEXT = WSMsgType.TEXT
_U = b'"u":'
FAR_BELOW = 0.9               # the bid rests at 90% of the first best bid: it never fills


class Reflex:
    def __init__(self, symbol: str, tag: str):
        inst = next((i for i in DEFAULT_INSTRUMENTS if i.symbol == symbol), None)
        if inst is None:
            raise SystemExit(f"reflex: --symbol {symbol} is not in the instrument table")
        self.inst = inst
        self.enc = bn.BinanceEncoder((inst,), API_KEY, bn.AUTH_HMAC,
                                     HmacSigner(API_SECRET.encode()))
        self.qty = int(float(ORDER_QTY) / float(inst.lot_size) + 0.5) * inst.lot
        self.cid = tag.encode() + b"-%d-%d"
        self.api = None
        self.price = 0
        self.resting = b""           # client id of our order (b"": none yet, or refused)
        self.in_flight = 0
        self.n = 0

    def on_book(self, payload: bytes) -> None:
        i = payload.find(_U)
        if i < 0 or self.in_flight >= MAX_IN_FLIGHT_PER_SIDE or self.api is None:
            return
        u = int(payload[i + 4: payload.index(b",", i)])
        if not self.price:
            self.price = self._far_bid(payload)
        n = self.n = self.n + 1
        cid = self.cid % (u, n)
        ts = time.time_ns() // 1_000_000
        if self.resting:
            frame = self.enc.replace(n, 0, SIDE_BUY, 1, self.resting, cid, self.price, self.qty, ts)
        else:
            frame = self.enc.place(n, 0, SIDE_BUY, 1, cid, self.price, self.qty, ts)
        self.api.send(_TEXT, frame)
        self.resting = cid
        self.in_flight += 1

    def on_response(self, payload: bytes) -> None:
        self.in_flight -= 1
        if b'"status":200' not in payload:
            self.resting = b""       # refused, or the old order was gone: place anew

    def _far_bid(self, payload: bytes) -> int:
        i = payload.index(b'"b":"') + 5
        bid = float(payload[i: payload.index(b'"', i)])
        tick = float(self.inst.tick_size)
        return int(bid * FAR_BELOW / tick) * self.inst.tick


class _Listener(WSListener):
    """Hands each text frame's payload to `on_text`."""

    def __init__(self, on_text):
        super().__init__()
        self.on_text = on_text

    def on_ws_frame(self, transport, frame) -> None:
        if frame.msg_type is _TEXT:
            self.on_text(frame.get_payload_as_bytes())


async def main(argv=None) -> int:
    a = parse_args("python -m bench.baselines.reflex", argv)
    bot = Reflex(a.symbol, a.tag)
    stop = stop_future(asyncio.get_running_loop(), a.duration)
    api, _ = await ws_connect(lambda: _Listener(bot.on_response), quiet_api_url(a.api_url),
                            enable_auto_pong=True)
    md, _ = await ws_connect(lambda: _Listener(bot.on_book), book_ticker_url(a.md_url, a.symbol),
                             enable_auto_pong=True)
    bot.api = api
    announce_ready()
    await asyncio.wait([stop, asyncio.ensure_future(md.wait_disconnected()),
                        asyncio.ensure_future(api.wait_disconnected())],
                       return_when=asyncio.FIRST_COMPLETED)
    gone = md.is_disconnected or api.is_disconnected
    md.disconnect()
    api.disconnect()
    if gone and not stop.done():
        print("reflex: the venue closed a connection", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    import uvloop

    sys.exit(uvloop.run(main()))
