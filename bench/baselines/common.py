"""What the baseline clients share: their command line, the ready line the bench waits for,
the stop signals, and the venue conventions every contender follows.

Conventions (so the venue's wire clock and the bench treat every contender alike):
  - client order ids are `<tag>-<book update id>-<n>`: the simulator matches the first order
    carrying an update id to the moment it wrote that book frame (engine/sim/latency.py);
  - one quote per side, LIMIT_MAKER (post-only), at most one request in flight per side, as
    the engine's quoter does (a slot waits for its ack before it is replaced);
  - HMAC-SHA256 signed requests with the demo key pair (the simulator on loopback only);
  - stop on SIGTERM/SIGINT or after --duration seconds; the bench cancels what is left resting.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys

from engine import demo_keys

API_KEY, API_SECRET = demo_keys.DEMO_API_KEY, demo_keys.DEMO_API_SECRET
ORDER_QTY = "0.00200"          # the engine's default order size (quoter.order_size)
MAX_IN_FLIGHT_PER_SIDE = 1


def parse_args(prog: str, argv: list[str] | None, **extra) -> argparse.Namespace:
    """--md-url (base ws://host:port), --api-url (WS API URL), --symbol, --tag, --duration;
    `extra` adds options as name=(type, default, help)."""
    p = argparse.ArgumentParser(prog=prog)
    p.add_argument("--md-url", required=True, help="market data base URL, e.g. ws://127.0.0.1:9000")
    p.add_argument("--api-url", required=True, help="WebSocket API URL (.../ws-api/v3)")
    p.add_argument("--symbol", default="BTCUSDT")
    p.add_argument("--tag", required=True, help="client order id prefix (1-8 of [A-Za-z0-9_])")
    p.add_argument("--duration", type=float, default=600.0,
                   help="stop after this many seconds at the latest (a backstop)")
    for name, (typ, default, help_) in extra.items():
        p.add_argument(f"--{name.replace('_', '-')}", type=typ, default=default, help=help_)
    a = p.parse_args(argv)
    if not (0 < len(a.tag) <= 8 and a.tag.replace("_", "").isalnum()):
        p.error(f"--tag: expected 1-8 of [A-Za-z0-9_], got {a.tag!r}")
    return a


def book_ticker_url(md_url: str, symbol: str) -> str:
    """The raw bookTicker stream of one symbol (Binance: lower-case symbol in the path)."""
    return f"{md_url.rstrip('/')}/ws/{symbol.lower()}@bookTicker"


def quiet_api_url(api_url: str) -> str:
    """The WS API URL without rate-limit blocks in every response."""
    return api_url + ("&" if "?" in api_url else "?") + "returnRateLimits=false"


def announce_ready() -> None:
    """Tell the bench (reading our stdout) that we are connected and trading."""
    sys.stdout.write(json.dumps({"ready": True, "pid": os.getpid()}) + "\n")
    sys.stdout.flush()


def stop_future(loop: asyncio.AbstractEventLoop, duration_s: float) -> asyncio.Future:
    """A future done at SIGTERM/SIGINT or after `duration_s`, whichever comes first."""
    done = loop.create_future()

    def finish() -> None:
        if not done.done():
            done.set_result(None)
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, finish)
    loop.call_later(duration_s, finish)
    return done
