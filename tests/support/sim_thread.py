"""Run the simulator in a background thread, for tests:

    with SimThread(event_rate=50, seed=7) as sim:
        connect(sim.md_url + "/ws/btcusdt@bookTicker") ...
        connect(sim.api_url) ...
        sim.trade_at("BTCUSDT", "60000.00", "0.01000", "SELL")

Every method is thread-safe: it runs on the simulator's loop and waits (bounded) for it.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from typing import Sequence

from engine.instruments import Instrument
from engine.sim.config import SimConfig
from engine.sim.server import SimServer

_CALL_TIMEOUT_S = 10.0


class SimThread:
    """The simulator on 127.0.0.1 (port 0 unless given) in a daemon thread with its own loop."""

    def __init__(self, instruments: Sequence[Instrument] | None = None, **overrides):
        overrides.setdefault("host", "127.0.0.1")
        overrides.setdefault("port", 0)
        self.config = SimConfig(**overrides)
        self.config.validate()
        self._instruments = instruments
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: SimServer | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._stop: asyncio.Future | None = None
        self._error: BaseException | None = None
        self.md_url = ""
        self.api_url = ""
        self.rest_url = ""
        self.port = 0

    # -- lifecycle --
    def start(self) -> "SimThread":
        """Start the thread and wait until the server listens (raises what start raised)."""
        self._thread = threading.Thread(target=self._run, name="mm-sim", daemon=True)
        self._thread.start()
        if not self._ready.wait(_CALL_TIMEOUT_S):
            raise TimeoutError("simulator did not start within 10 s")
        if self._error is not None:
            raise self._error
        return self

    def _run(self) -> None:
        try:
            import uvloop
            loop = uvloop.new_event_loop()
        except ImportError:
            loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._main())
        except BaseException as e:          # surfaced to start() / stop()
            self._error = e
            self._ready.set()
        finally:
            loop.close()

    async def _main(self) -> None:
        self._server = SimServer(self.config, self._instruments)
        await self._server.start()
        self.port = self._server.port
        self.md_url = self._server.md_url
        self.api_url = self._server.api_url
        self.rest_url = self._server.rest_url
        self._stop = asyncio.get_running_loop().create_future()
        self._ready.set()
        try:
            await self._stop
        finally:
            await self._server.stop()

    def stop(self, timeout: float = 5.0) -> None:
        """Close every connection, stop the loop and join the thread (bounded by `timeout`)."""
        if self._thread is None:
            return
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(lambda: stop.done() or stop.set_result(None))
            except RuntimeError:
                pass                # loop already closed
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise TimeoutError(f"simulator thread did not stop within {timeout} s")
        self._thread = None

    def __enter__(self) -> "SimThread":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _call(self, fn, *args):
        """Run fn(*args) on the loop and return its result (exceptions re-raised here)."""
        fut: concurrent.futures.Future = concurrent.futures.Future()

        def run():
            try:
                fut.set_result(fn(*args))
            except BaseException as e:
                fut.set_exception(e)
        self._loop.call_soon_threadsafe(run)
        return fut.result(_CALL_TIMEOUT_S)

    @property
    def server(self) -> SimServer:
        """The SimServer (touch it only through _call or from its loop)."""
        return self._server

    # -- inspection --
    def open_orders(self, symbol: str | None = None) -> list[dict]:
        """Open orders in Binance's order format (openOrders.status), oldest first."""
        def get():
            ex = self._server.exchange
            books = [ex.by_symbol[symbol]] if symbol else ex.books
            return [o.as_status() for b in books
                    for o in sorted(ex.open[b.symbol].values(), key=lambda o: o.order_id)]
        return self._call(get)

    def balances(self) -> dict[str, dict[str, str]]:
        """asset -> {"free": str, "locked": str}."""
        return self._call(self._server.exchange.balance_strings)

    def latency_samples(self, start: int = 0) -> list[int]:
        """Wire-to-wire samples (ns): frame written -> first order for that update id read;
        those from index `start` on (a bench taking them in phases copies only the new ones)."""
        return self._call(lambda: self._server.clock.samples[start:].tolist())

    def latency_report(self) -> dict:
        """count, p50, p90, p99, p999, max of the samples, in ns."""
        return self._call(self._server.clock.report)

    def stats(self) -> dict:
        """Counters: frames_sent, book_events, orders_received, fills, rejects, errors, ..."""
        return self._call(self._server.all_stats)

    def update_id(self, symbol: str) -> int:
        """The last update id the book of `symbol` produced."""
        return self._call(lambda: self._server.by_symbol[symbol].update_id)

    def book(self, symbol: str) -> dict:
        """Current synthetic top of book as wire strings: bid, bid_qty, ask, ask_qty, u."""
        def get():
            b = self._server.by_symbol[symbol]
            from engine.sim.market import wire_decimal
            return {"u": b.update_id, "bid": wire_decimal(b.bid, b.pexp),
                    "bid_qty": wire_decimal(b.bid_qty, b.qexp),
                    "ask": wire_decimal(b.ask, b.pexp), "ask_qty": wire_decimal(b.ask_qty, b.qexp)}
        return self._call(get)

    # -- fault switches --
    def drop_connections(self, kind: str = "all") -> int:
        """Abort md | api | all connections without a close frame; returns how many."""
        return self._call(self._server.drop_connections, kind)

    def stall_streams(self, stalled: bool) -> None:
        """Stop (True) or restart (False) writing market frames; the book keeps moving."""
        self._call(setattr, self._server, "stalled", bool(stalled))

    def delay_responses(self, ms: float) -> None:
        """Delay every API response and user-data event by `ms` milliseconds (0 = off)."""
        if ms < 0:
            raise ValueError(f"delay: expected >= 0 ms, got {ms}")
        self._call(setattr, self._server, "response_delay_s", ms / 1000.0)

    def drop_depth_events(self, count: int = 1, symbol: str = "") -> None:
        """Compute the next `count` diff-depth events (of `symbol`, "" = any) but send none: a
        gap for every client."""
        self._call(self._server.drop_depth_events, int(count), symbol)

    def refuse_depth_snapshots(self, on: bool) -> None:
        """While on, REST depth snapshots answer 503 (the gap stays open)."""
        self._call(self._server.refuse_depth_snapshots, on)

    def send_malformed(self, count: int = 1) -> None:
        """Truncate the next `count` market frames (invalid JSON)."""
        self._call(setattr, self._server, "malformed_left", int(count))

    def reject_orders(self, count: int, code: int = -2010,
                      msg: str = "Order rejected by the simulator (fault injection).") -> None:
        """Refuse the next `count` new orders with status 400 and this error."""
        def set_():
            f = self._server.api.faults
            f.reject_count, f.reject_code, f.reject_msg = int(count), int(code), msg
        self._call(set_)

    def throttle(self, orders_per_10s: int) -> None:
        """Set the ORDERS per 10 s limit (over it: status 429, -1015)."""
        if orders_per_10s < 1:
            raise ValueError(f"orders_per_10s: expected >= 1, got {orders_per_10s}")
        self._call(setattr, self._server.api.orders_10s, "limit", int(orders_per_10s))

    def set_chaos(self, **rates: float) -> None:
        """Change chaos probabilities by kind (engine/sim/chaos.py), e.g. lost_answer=0.02."""
        self._call(self._server.chaos.set_rates, rates)

    def silence_api(self) -> int:
        """Every order API connection goes silent without closing (chaos silent_api)."""
        return self._call(self._server.silence_api)

    def silenced_at(self) -> list[int]:
        """perf_counter_ns of every silent_api injection (the test's clock: same box)."""
        return self._call(lambda: list(self._server.silenced))

    def api_connected_at(self) -> list[int]:
        """perf_counter_ns at which each order API connection opened, oldest first."""
        return self._call(lambda: list(self._server.api_opened))

    def late_executions(self) -> list[tuple[int, str]]:
        """(perf_counter_ns, client order id) of every late execution carried out."""
        return self._call(lambda: list(self._server.api.late_log))

    def mute_user_streams(self) -> int:
        """End every user-data subscription silently (reports stop, answers flow)."""
        return self._call(self._server.mute_user_streams)

    def announce_shutdown(self) -> int:
        """serverShutdown on every order API connection (they stay open)."""
        return self._call(self._server.announce_shutdown)

    def cancel_log(self) -> list[tuple[int, str]]:
        """(API connection number, client id) of every order canceled by a request."""
        return self._call(lambda: list(self._server.exchange.cancel_log))

    def order_requests(self) -> list[tuple[str, dict, str | None, int]]:
        """Every order request received, oldest first: (method, its order fields, the client
        id of the order it cancels or replaces, arrival perf_counter_ns)."""
        return self._call(lambda: list(self._server.api.order_requests))

    def start_replay(self) -> None:
        """Begin a held replay (replay_hold=True)."""
        self._call(self._server.start_replay)

    def place_log(self) -> list[tuple[int, str]]:
        """(API connection number, client id) of every order placed."""
        return self._call(lambda: list(self._server.exchange.place_log))

    def order_status(self, symbol: str, client_id: str) -> dict | None:
        """The venue's record of an order by client id (open or finished), or None."""
        def get():
            ex = self._server.exchange
            o = ex.by_client.get((symbol, client_id))
            return o.as_status() if o is not None else None
        return self._call(get)

    def my_trades(self, symbol: str | None = None) -> list[dict]:
        """The account's trades (myTrades entries), per symbol oldest first."""
        def get():
            ex = self._server.exchange
            return [dict(t) for b in ex.books if symbol in (None, b.symbol)
                    for t in ex.trades[b.symbol]]
        return self._call(get)

    def trade_at(self, symbol: str, price: str, qty: str, taker_side: str) -> None:
        """Print a market trade now; resting orders at/through `price` fill."""
        self._call(self._server.trade_at, symbol, price, qty, taker_side)

    def set_event_rate(self, per_s: float) -> None:
        self._call(self._server.set_event_rate, per_s)

    def pause_market(self) -> None:
        """Freeze the synthetic book (no frames, no trades) until resume_market()."""
        self._call(self._server.pause_market)

    def resume_market(self) -> None:
        self._call(self._server.resume_market)
