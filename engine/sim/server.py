"""The simulator's WebSocket server: market streams and the order API on one port, routed by
path, on one asyncio loop (picows server). This module puts the parts together; each part is a
class of its own module, mixed into SimServer, sharing the state declared here and in their
_init_* methods:

  connections.py     listeners, routing by path, connection life, user-data events
  streams.py         the synthetic market's timers and frames, stream subscriptions
  diff_depth.py      diff-depth events and the REST depth snapshot consistent with them
  replay.py          a capture replayed instead of the synthetic market
  fault_switches.py  the switches tests throw, chaos on book events (dice: chaos.py)
  api.py             the order API itself (requests, answers); exchange.py the matching

All methods run on the server's loop; tests/support/sim_thread.SimThread calls them from other
threads through the loop.
"""
from __future__ import annotations

import asyncio
import random
from typing import Sequence

from picows import WSAutoPingStrategy, ws_create_server

from engine.instruments import DEFAULT_INSTRUMENTS, Instrument
from engine.sim import auth
from engine.sim.api import Api
from engine.sim.api_params import now_ms
from engine.sim.api_queries import instrument_info
from engine.sim.chaos import Chaos
from engine.sim.config import SimConfig
from engine.sim.connections import Connections
from engine.sim.diff_depth import DiffDepth
from engine.sim.exchange import Exchange
from engine.sim.fault_switches import FaultSwitches
from engine.sim.latency import WireClock
from engine.sim.market import Book
from engine.sim.replay import Replay
from engine.sim.streams import MarketStreams


class SimServer(Connections, MarketStreams, DiffDepth, Replay, FaultSwitches):
    """The exchange simulator: synthetic (or replayed) market, order API, fault switches."""

    def __init__(self, config: SimConfig | None = None,
                 instruments: Sequence[Instrument] | None = None,
                 credentials: auth.Credentials | None = None):
        self.cfg = cfg = config or SimConfig()
        cfg.validate()
        self.instruments = tuple(instruments or DEFAULT_INSTRUMENTS)
        rng = random.Random(cfg.seed)
        self.books: list[Book] = []
        for i, inst in enumerate(self.instruments):
            self.books.append(Book(
                inst, i, cfg.start_mid.get(inst.symbol, "100"), random.Random(rng.random()),
                event_rate=cfg.event_rate, volatility_bps=cfg.volatility_bps,
                trade_rate=cfg.trade_rate, spread_ticks_max=cfg.spread_ticks_max,
                top_size_notional=cfg.top_size_notional,
                trade_size_notional=cfg.trade_size_notional))
        self.by_symbol = {b.symbol: b for b in self.books}
        self._arrivals = random.Random(rng.random())     # event timing only
        self.event_rate = cfg.event_rate
        self.clock = WireClock([b.symbol for b in self.books])
        self._init_connections()
        self.exchange = Exchange(self.books, cfg.balances, self._user_events.append, now_ms)
        self.api = Api(self.exchange, credentials or auth.Credentials.from_env(),
                       recv_window_ms=cfg.recv_window_ms, orders_per_10s=cfg.orders_per_10s,
                       orders_per_day=cfg.orders_per_day,
                       weight_per_minute=cfg.weight_per_minute,
                       on_order_frame=self.clock.on_order,
                       instruments_info=lambda: [instrument_info(b) for b in self.books])
        self.chaos = self.api.chaos = Chaos(cfg.chaos, cfg.chaos_seed or cfg.seed * 7919 + 1)
        self.api.after_late = self._flush_user_events
        self.stats = {"frames_sent": 0, "book_events": 0, "trades_printed": 0,
                      "md_connections": 0, "api_connections": 0, "malformed_sent": 0,
                      "replay_frames": 0, "md_control_errors": 0, "slow_consumers_dropped": 0,
                      "silent_frames_dropped": 0}
        self._init_streams()
        self._init_diff_depth()
        self._init_replay()
        self._init_faults()
        self._server: asyncio.AbstractServer | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.port = 0

    # -- lifecycle --
    async def start(self) -> None:
        """Bind and start the market."""
        cfg = self.cfg
        self._loop = asyncio.get_running_loop()
        ping = cfg.ping_interval_s > 0
        self._server = await ws_create_server(
            self._route, cfg.host, cfg.port, enable_auto_ping=ping,
            auto_ping_idle_timeout=cfg.ping_interval_s if ping else 20,
            # picows waits for a pong at most one ping interval (Binance: 60 s for 20 s pings)
            auto_ping_reply_timeout=min(cfg.pong_timeout_s, cfg.ping_interval_s) if ping else 20,
            auto_ping_strategy=WSAutoPingStrategy.PING_PERIODICALLY,
            # pongs are sent by the listeners: a silent API connection must not answer pings
            enable_auto_pong=False, disconnect_on_exception=True)
        self.port = self._server.sockets[0].getsockname()[1]
        self.api.defer = self._loop.call_later
        if cfg.replay_file:
            self._arm_replay()
        else:
            self.resume_market()
        self._depth_timer = self._loop.call_later(0.1, self._depth_tick)

    async def stop(self) -> None:
        """Stop the market, close every connection and the listening socket."""
        self.pause_market()
        if self._depth_timer is not None:
            self._depth_timer.cancel()
        if self._replay_task is not None:
            self._replay_task.cancel()
        self._server.close()
        self._close_all()
        try:
            await asyncio.wait_for(self._server.wait_closed(), 2.0)
        except (asyncio.TimeoutError, asyncio.CancelledError):
            pass

    @property
    def md_url(self) -> str:
        return f"ws://{self.cfg.host}:{self.port}"

    @property
    def rest_url(self) -> str:
        """The REST base (GET /api/v3/depth), on the same port."""
        return f"http://{self.cfg.host}:{self.port}"

    @property
    def api_url(self) -> str:
        return f"ws://{self.cfg.host}:{self.port}/ws-api/v3"

    def all_stats(self) -> dict:
        out = dict(self.stats)
        out.update(self.api.stats)
        out.update(self.chaos.stats())
        out["client_ids_reused"] = self.exchange.client_ids_reused
        out["fills"] = self.exchange.fills
        out["open_orders"] = sum(len(o) for o in self.exchange.open.values())
        out["latency_samples"] = len(self.clock.samples)
        out["orders_with_update_id"] = self.clock.orders_seen
        out["md_open"] = len(self.md_conns)
        out["api_open"] = len(self.api_conns)
        out["api_silent"] = sum(c.silent for c in self.api_conns)
        out["late_executions"] = self.api.stats.get("late_executions", 0)
        return out
