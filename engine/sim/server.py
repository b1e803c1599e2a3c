"""The simulator's WebSocket server: market streams and the order API on one port, routed by
path, on one asyncio loop (picows server).

  /ws/<stream>[/<stream>...]     raw streams (frames as the venue sends them)
  /stream?streams=<a>/<b>        combined streams ({"stream": ..., "data": ...})
  /ws-api/v3                     the WebSocket API (engine.sim.api)

Streams: <symbol>@bookTicker, <symbol>@trade, <symbol>@depth<5|10|20>[@100ms] (lowercase
symbol). SUBSCRIBE / UNSUBSCRIBE / LIST_SUBSCRIPTIONS / SET_PROPERTY / GET_PROPERTY work on
any market connection. Server pings every `ping_interval_s`; connections older than
`max_connection_age_s` are closed.

Replay (SimConfig.replay_file): no synthetic market; from the first market connection on (with
replay_hold, from start_replay() on), every payload of the capture goes verbatim to every market
connection (subscriptions are ignored), at the recorded pace divided by replay_speed, never
closer than replay_min_gap_ms and, with replay_quiet_ms, each once the order API has been quiet
that long (lockstep with the engine: every answer, and what it caused, before the next frame). Replayed bookTicker and trade frames also move the book, so
resting orders still match.

A market client whose unsent backlog passes `max_send_buffer_mb` is disconnected.
Known simplifications: the 5 messages/s client limit of market connections is not enforced;
timeUnit=MICROSECOND is ignored.

All methods below run on the server's loop; tests/support/sim_thread.SimThread calls them from other
threads through the loop.
"""
from __future__ import annotations

import asyncio
import logging
import random
from time import perf_counter_ns
from typing import Sequence
from urllib.parse import parse_qs, urlsplit

import msgspec
from picows import (WSAutoPingStrategy, WSCloseCode, WSListener, WSMsgType, WSTransport,
                    WSUpgradeRequest, ws_create_server)

# The feed owns the capture format (MMCAP1); replay reads it with the feed's reader.
from engine.feed.capture import OPCODE_BINARY, read_capture
from engine.instruments import DEFAULT_INSTRUMENTS, Instrument
from engine.sim import auth
from engine.sim.api import Api, Session, instrument_info, now_ms
from engine.sim.chaos import Chaos
from engine.sim.config import SimConfig
from engine.sim.exchange import Exchange
from engine.sim.latency import WireClock
from engine.sim.market import Book, parse_decimal

log = logging.getLogger("mm.sim")
_TEXT = WSMsgType.TEXT
_decode = msgspec.json.Decoder().decode
_encode = msgspec.json.Encoder().encode
_MAX_BURST = 64               # book events per timer callback when the loop falls behind
_TIMER_SLACK_S = 0.001


class _MarketConn(WSListener):
    """One market-stream connection (raw or combined)."""

    def __init__(self, server: "SimServer", combined: bool, streams: list[str]):
        super().__init__()
        self.server, self.combined, self.initial = server, combined, streams
        self.streams: list[str] = []
        self.t: WSTransport | None = None
        self.age_timer = None

    def on_ws_connected(self, transport: WSTransport) -> None:
        self.t = transport
        self.server._md_connected(self)

    def on_ws_frame(self, transport: WSTransport, frame) -> None:
        kind = frame.msg_type
        if kind == _TEXT:
            self.server._md_control(self, frame.get_payload_as_bytes())
        elif kind == WSMsgType.PING:      # auto-pong is off (silent API connections)
            transport.send_pong(frame.get_payload_as_bytes())
        elif kind == WSMsgType.CLOSE:
            transport.send_close(frame.get_close_code())
            transport.disconnect()

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        self.server._md_gone(self)


class _ApiConn(WSListener):
    """One WebSocket API connection."""

    def __init__(self, server: "SimServer", return_rate_limits: bool):
        super().__init__()
        self.server = server
        self.t: WSTransport | None = None
        self.age_timer = None
        self.closed = False           # set when dropped: nothing more is written
        self.silent = False           # chaos silent_api: frames read and dropped, nothing sent
        server.api_conn_count += 1
        self.session = Session(self.send, return_rate_limits, server.api_conn_count)

    def on_ws_connected(self, transport: WSTransport) -> None:
        self.t = transport
        self.server._api_connected(self)

    def on_ws_frame(self, transport: WSTransport, frame) -> None:
        t_arrival = perf_counter_ns()     # first thing: the venue-side arrival stamp
        kind = frame.msg_type
        if self.silent:                   # a dead path: read, never answered
            self.server.stats["silent_frames_dropped"] += 1
            return
        if kind == _TEXT:
            server = self.server
            server.api_last_active = t_arrival
            server.api.handle(self.session, t_arrival, frame.get_payload_as_bytes())
            server._flush_user_events()
        elif kind == WSMsgType.CLOSE:
            transport.send_close(frame.get_close_code())
            transport.disconnect()
        elif kind == WSMsgType.BINARY:
            self.server.api.handle(self.session, t_arrival, b"")
        elif kind == WSMsgType.PING:
            transport.send_pong(frame.get_payload_as_bytes())

    def send(self, data: bytes) -> None:
        if self.silent:
            return
        delay = self.server.response_delay_s
        if delay > 0:
            # + slack: loop timers can fire up to ~1 ms early; a delay is a lower bound
            self.server.api_delayed += 1
            asyncio.get_running_loop().call_later(delay + _TIMER_SLACK_S, self._send_later, data)
        elif not self.closed:
            self.t.send(_TEXT, data)

    def _send_later(self, data: bytes) -> None:
        self.server.api_delayed -= 1
        self.server.api_last_active = perf_counter_ns()
        if not self.closed and not self.silent:
            self.t.send(_TEXT, data)

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        self.server._api_gone(self)


class SimServer:
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
        self._user_events: list[dict] = []
        self.exchange = Exchange(self.books, cfg.balances, self._user_events.append, now_ms)
        self.api = Api(self.exchange, credentials or auth.Credentials.from_env(),
                       recv_window_ms=cfg.recv_window_ms, orders_per_10s=cfg.orders_per_10s,
                       orders_per_day=cfg.orders_per_day,
                       weight_per_minute=cfg.weight_per_minute,
                       on_order_frame=self.clock.on_order,
                       instruments_info=lambda: [instrument_info(b) for b in self.books])
        self.chaos = self.api.chaos = Chaos(cfg.chaos, cfg.chaos_seed or cfg.seed * 7919 + 1)
        self.api.after_late = self._flush_user_events
        self.silenced: list[int] = []  # perf_counter_ns of every silent_api injection
        self.api_opened: list[int] = []  # perf_counter_ns of every API connection (bounded)
        self.api_conn_count = 0
        # stream name -> connections subscribed (insertion-ordered)
        self.subs: dict[str, dict[_MarketConn, None]] = {}
        self._wrap_prefix: dict[str, bytes] = {}
        self._bt = [f"{b.stream_symbol}@bookTicker" for b in self.books]
        self._tr = [f"{b.stream_symbol}@trade" for b in self.books]
        self.md_conns: dict[_MarketConn, None] = {}
        self.api_conns: dict[_ApiConn, None] = {}
        # fault switches
        self.stalled = False
        self.malformed_left = 0
        self.response_delay_s = 0.0
        self.api_delayed = 0          # answers and user events held by response_delay_s
        self.api_last_active = 0      # perf_counter_ns of the last API request or held send
        self.paused = False
        self.stats = {"frames_sent": 0, "book_events": 0, "trades_printed": 0,
                      "md_connections": 0, "api_connections": 0, "malformed_sent": 0,
                      "replay_frames": 0, "md_control_errors": 0, "slow_consumers_dropped": 0,
                      "silent_frames_dropped": 0}
        self._max_buffer = int(cfg.max_send_buffer_mb * 1024 * 1024)
        self._server: asyncio.AbstractServer | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer = None            # the market timer (None: paused)
        self._next_at = [0.0] * len(self.books)
        self._depth_timer = None
        self._depth_count = 0
        self._replay_task: asyncio.Task | None = None
        self._replay_go: asyncio.Event | None = None
        if cfg.replay_file:
            for b in self.books:
                b.replayed = True
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
            next(iter(read_capture(cfg.replay_file, strict=False)), None)  # bad magic: raise now
            self._replay_go = asyncio.Event()
            if not cfg.replay_hold:
                self._replay_go.set()
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
        # Binance announces a shutdown on market connections before closing them.
        event = _encode({"e": "serverShutdown", "E": now_ms()})
        for conn in self.md_conns:
            if conn.t is not None and not conn.t.is_disconnected:
                conn.t.send(_TEXT, b'{"stream":"!serverShutdown","data":' + event + b"}"
                            if conn.combined else event)
        for conn in list(self.md_conns) + list(self.api_conns):
            if conn.t is not None:
                conn.t.send_close(WSCloseCode.GOING_AWAY)
                conn.t.disconnect()
        try:
            await asyncio.wait_for(self._server.wait_closed(), 2.0)
        except (asyncio.TimeoutError, asyncio.CancelledError):
            pass

    @property
    def md_url(self) -> str:
        return f"ws://{self.cfg.host}:{self.port}"

    @property
    def api_url(self) -> str:
        return f"ws://{self.cfg.host}:{self.port}/ws-api/v3"

    # -- routing --
    def _route(self, request: WSUpgradeRequest):
        url = urlsplit(request.path.decode("latin-1"))
        path, query = url.path.rstrip("/") or "/", parse_qs(url.query)
        if path == "/ws-api/v3":
            rrl = query.get("returnRateLimits", ["true"])[0].lower() != "false"
            return _ApiConn(self, rrl)
        if path == "/ws" or path.startswith("/ws/"):
            return _MarketConn(self, False, [s for s in path[4:].split("/") if s])
        if path == "/stream":
            names = query.get("streams", [""])[0]
            return _MarketConn(self, True, [s for s in names.split("/") if s])
        return None                 # 404

    def _arm_age(self, conn) -> None:
        conn.age_timer = self._loop.call_later(self.cfg.max_connection_age_s, self._expire, conn)

    @staticmethod
    def _expire(conn) -> None:
        if conn.t is not None and not conn.t.is_disconnected:
            conn.t.send_close(WSCloseCode.OK, b"connection age limit")
            conn.t.disconnect()

    def _md_connected(self, conn: _MarketConn) -> None:
        self.md_conns[conn] = None
        self.stats["md_connections"] += 1
        for name in conn.initial:
            self._subscribe(conn, name)
        self._arm_age(conn)
        if self.cfg.replay_file and self._replay_task is None:
            self._replay_task = self._loop.create_task(self._replay())

    def _md_gone(self, conn: _MarketConn) -> None:
        self.md_conns.pop(conn, None)
        for name in conn.streams:
            subs = self.subs.get(name)
            if subs is not None:
                subs.pop(conn, None)
        conn.streams = []
        if conn.age_timer is not None:
            conn.age_timer.cancel()

    def _api_connected(self, conn: _ApiConn) -> None:
        self.api_conns[conn] = None
        self.stats["api_connections"] += 1
        if len(self.api_opened) < 10_000:
            self.api_opened.append(perf_counter_ns())
        self._arm_age(conn)

    def _api_gone(self, conn: _ApiConn) -> None:
        conn.closed = True
        self.api_conns.pop(conn, None)
        if conn.age_timer is not None:
            conn.age_timer.cancel()

    # -- stream subscriptions --
    @staticmethod
    def _canonical(name: str) -> str:
        sym, at, rest = name.partition("@")
        return f"{sym.lower()}{at}{rest}"

    def _subscribe(self, conn: _MarketConn, name: str) -> None:
        name = self._canonical(name)
        if name not in conn.streams:
            conn.streams.append(name)
            self.subs.setdefault(name, {})[conn] = None
            if name not in self._wrap_prefix:
                self._wrap_prefix[name] = f'{{"stream":"{name}","data":'.encode()

    def _unsubscribe(self, conn: _MarketConn, name: str) -> None:
        name = self._canonical(name)
        if name in conn.streams:
            conn.streams.remove(name)
            self.subs.get(name, {}).pop(conn, None)

    def _md_control(self, conn: _MarketConn, payload: bytes) -> None:
        """SUBSCRIBE / UNSUBSCRIBE / LIST_SUBSCRIPTIONS / SET_PROPERTY / GET_PROPERTY."""
        try:
            msg = _decode(payload)
        except msgspec.DecodeError as e:
            self._md_reply(conn, {"code": 3, "msg": f"Invalid JSON: {e}", "id": None})
            return
        if not isinstance(msg, dict):
            self._md_reply(conn, {"code": 3, "msg": "Invalid JSON: expected an object",
                                  "id": None})
            return
        req_id = msg.get("id")
        method = msg.get("method")
        params = msg.get("params", [])
        if req_id is not None and not (isinstance(req_id, int) or (
                isinstance(req_id, str) and req_id.isalnum() and len(req_id) <= 36)):
            self._md_reply(conn, {"code": 2, "msg": "Invalid request: request ID must be an "
                                  "unsigned integer or an alphanumeric string", "id": None})
            return
        if method in ("SUBSCRIBE", "UNSUBSCRIBE"):
            if not isinstance(params, list) or not all(isinstance(p, str) for p in params):
                self._md_reply(conn, {"code": 2, "msg": "Invalid request: params must be a "
                                      "list of stream names", "id": req_id})
                return
            act = self._subscribe if method == "SUBSCRIBE" else self._unsubscribe
            for name in params:
                act(conn, name)
            self._md_reply(conn, {"result": None, "id": req_id})
        elif method == "LIST_SUBSCRIPTIONS":
            self._md_reply(conn, {"result": list(conn.streams), "id": req_id})
        elif method == "SET_PROPERTY":
            if not (isinstance(params, list) and len(params) == 2 and params[0] == "combined"):
                self._md_reply(conn, {"code": 0, "msg": "Unknown property", "id": req_id})
            elif not isinstance(params[1], bool):
                self._md_reply(conn, {"code": 1, "msg": "Invalid value type: expected Boolean",
                                      "id": req_id})
            else:
                conn.combined = params[1]
                self._md_reply(conn, {"result": None, "id": req_id})
        elif method == "GET_PROPERTY":
            if params == ["combined"]:
                self._md_reply(conn, {"result": conn.combined, "id": req_id})
            else:
                self._md_reply(conn, {"code": 0, "msg": "Unknown property", "id": req_id})
        else:
            self._md_reply(conn, {"code": 2, "msg": "Invalid request: unknown method",
                                  "id": req_id})

    def _md_reply(self, conn: _MarketConn, msg: dict) -> None:
        if "code" in msg:
            self.stats["md_control_errors"] += 1
        conn.t.send(_TEXT, _encode(msg))

    # -- hot: market frames --
    def _publish(self, stream: str, payload: bytes, book_index: int = -1,
                 update_id: int = 0) -> None:
        """Write one market frame to every subscriber of `stream` (raw or wrapped)."""
        subs = self.subs.get(stream)
        if not subs or self.stalled:
            return
        wrapped = None
        if self.malformed_left > 0:
            self.malformed_left -= 1
            self.stats["malformed_sent"] += 1
            payload = payload[: len(payload) // 2]          # truncated JSON
            wrapped = self._wrap_prefix[stream] + payload
        if book_index >= 0:
            self.clock.stamp(book_index, update_id, perf_counter_ns())
        for conn in subs:
            if conn.combined:
                if wrapped is None:
                    wrapped = self._wrap_prefix[stream] + payload + b"}"
                conn.t.send(_TEXT, wrapped)
            else:
                conn.t.send(_TEXT, payload)
        self.stats["frames_sent"] += len(subs)

    def _tick(self) -> None:
        """One timer for every book: emit the events that are due, re-arm at the next one."""
        loop = self._loop
        now = loop.time()
        # Loop timers have ~1 ms resolution (uvloop) and may fire a little early: events due
        # within the next millisecond go now, or the timer would spin re-arming itself.
        horizon = now + _TIMER_SLACK_S
        expo, rate, next_at = self._arrivals.expovariate, self.event_rate, self._next_at
        for i, book in enumerate(self.books):
            n = 0
            while next_at[i] <= horizon and n < _MAX_BURST:
                self._book_event(book)
                next_at[i] += expo(rate)
                n += 1
            if next_at[i] < now:
                next_at[i] = now            # fell behind: do not try to catch up forever
        self._timer = loop.call_at(min(next_at), self._tick)
        if self._user_events:
            self._flush_user_events()

    def _book_event(self, book: Book) -> None:
        trade = book.step()
        self.stats["book_events"] += 1
        self.exchange.on_book(book)
        if self.chaos.enabled:
            self._book_chaos(book)
        i = book.index
        self._publish(self._bt[i], book.book_ticker(), i, book.update_id)
        if trade:
            taker_buys, price, qty = book.random_trade()
            self._print_trade(book, taker_buys, price, qty)

    def _book_chaos(self, book: Book) -> None:
        chaos = self.chaos
        resting = self.exchange.open[book.symbol]
        if resting and chaos.roll("partial_fill"):
            o = chaos.rng.choice(list(resting.values()))
            lots = (o.qty - o.filled) // book.lot
            if lots > 1:                    # part of it: at least one lot, never all
                self.exchange.taker_fill(o, chaos.rng.randint(1, lots - 1) * book.lot)
        if self.api_conns and chaos.roll("drop_api"):
            self.drop_connections("api")
        if self.api_conns and chaos.roll("silent_api"):
            self.silence_api()

    def _print_trade(self, book: Book, taker_buys: bool, price: int, qty: int) -> None:
        self.stats["trades_printed"] += 1
        if self.subs.get(self._tr[book.index]):
            self._publish(self._tr[book.index],
                          book.trade_frame(book.trade_id, price, qty, not taker_buys, now_ms()))
        self.exchange.on_trade(book, taker_buys, price, qty, book.trade_id)

    def _depth_tick(self) -> None:
        self._depth_timer = self._loop.call_later(0.1, self._depth_tick)
        self._drop_slow_consumers()
        if self.paused or self.cfg.replay_file:
            return
        self._depth_count += 1
        slow = self._depth_count % 10 == 0
        for b in self.books:
            refreshed = False
            for levels in (5, 10, 20):
                for name in (f"{b.stream_symbol}@depth{levels}@100ms",
                             f"{b.stream_symbol}@depth{levels}" if slow else None):
                    if name and self.subs.get(name):
                        if not refreshed:
                            b.refresh_depth()
                            refreshed = True
                        self._publish(name, b.depth_frame(levels))

    def _drop_slow_consumers(self) -> None:
        """Disconnect market clients that stopped reading (the venue does; memory stays bounded)."""
        limit = self._max_buffer
        for conn in list(self.md_conns):
            if conn.t.underlying_transport.get_write_buffer_size() > limit:
                self.stats["slow_consumers_dropped"] += 1
                self._abort(conn)

    def _flush_user_events(self) -> None:
        events = self._user_events
        if not events:
            return
        chaos = self.chaos if self.chaos.enabled else None
        for ev in events:
            if chaos is not None and ev.get("e") == "executionReport":
                if chaos.roll("late_report"):
                    self._loop.call_later(chaos.late_delay_s(), self._send_user_event, ev)
                    continue
                if chaos.roll("duplicate_report"):
                    self._loop.call_later(chaos.rng.uniform(0.0, 0.3), self._send_user_event, ev)
            self._send_user_event(ev)
        events.clear()

    def _send_user_event(self, ev: dict) -> None:
        """One user-data event to every subscription of every API connection."""
        for conn in self.api_conns:
            for sub in conn.session.user_subs:
                conn.send(_encode({"subscriptionId": sub, "event": ev}))

    # -- replay --
    def start_replay(self) -> None:
        """Let a held replay (replay_hold) begin with the first market connection."""
        if self._replay_go is not None:
            self._replay_go.set()

    async def _replay(self) -> None:
        """Send the capture's payloads verbatim to every market connection."""
        cfg = self.cfg
        loop = self._loop
        speed = cfg.replay_speed
        try:
            await self._replay_go.wait()
            await self._replay_file(cfg, loop, speed)
        except asyncio.CancelledError:
            raise
        except Exception:               # a broken file ends the replay, not the server
            log.exception("replay of %s stopped", cfg.replay_file)

    async def _api_quiet(self, quiet_s: float) -> None:
        """Return once no API request came and no held answer left for `quiet_s`."""
        while True:
            idle = (perf_counter_ns() - self.api_last_active) / 1e9
            if self.api_delayed == 0 and idle >= quiet_s:
                return
            await asyncio.sleep(max(quiet_s - idle, 0.001))

    async def _replay_file(self, cfg, loop, speed: float) -> None:
        gap = cfg.replay_min_gap_ms / 1000.0
        quiet = cfg.replay_quiet_ms / 1000.0
        sent = 0.0
        while True:
            t0_wall = loop.time()
            t0_rec = None
            for n, (ts, opcode, payload) in enumerate(read_capture(cfg.replay_file, strict=False)):
                if t0_rec is None:
                    t0_rec = ts
                due = t0_wall + (ts - t0_rec) / 1e9 / speed if speed > 0 else 0.0
                if gap > 0:
                    due = max(due, sent + gap)
                delay = due - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                elif speed == 0 and n % 256 == 255:
                    await asyncio.sleep(0)
                if quiet > 0:
                    await self._api_quiet(quiet)
                self._replay_frame(opcode, payload)
                sent = loop.time()
            if not cfg.replay_loop:
                return

    def _replay_frame(self, opcode: int, payload: bytes) -> None:
        kind = WSMsgType.BINARY if opcode == OPCODE_BINARY else _TEXT
        if opcode != OPCODE_BINARY:
            self._replay_book(payload)
        if self.stalled:
            return
        for conn in self.md_conns:
            conn.t.send(kind, payload)
        self.stats["frames_sent"] += len(self.md_conns)
        self.stats["replay_frames"] += 1
        if self._user_events:
            self._flush_user_events()

    def _replay_book(self, payload: bytes) -> None:
        """Follow replayed bookTicker/trade frames so resting orders still match."""
        try:
            msg = _decode(payload)
        except msgspec.DecodeError:
            return
        if isinstance(msg, dict) and isinstance(msg.get("data"), dict):
            msg = msg["data"]
        if not isinstance(msg, dict):
            return
        book = self.by_symbol.get(msg.get("s"))
        if book is None:
            return
        if "u" in msg and "b" in msg and "a" in msg and "e" not in msg:
            try:
                bid = parse_decimal(msg["b"], book.pexp)
                ask = parse_decimal(msg["a"], book.pexp)
                bq = parse_decimal(msg["B"], book.qexp)
                aq = parse_decimal(msg["A"], book.qexp)
            except (KeyError, TypeError):
                return
            if None in (bid, ask, bq, aq):
                return
            book.bid, book.ask, book.bid_qty, book.ask_qty = bid[0], ask[0], bq[0], aq[0]
            book.update_id = int(msg["u"])
            self.clock.stamp(book.index, book.update_id, perf_counter_ns())
            self.exchange.on_book(book)
        elif msg.get("e") == "trade":
            price = parse_decimal(str(msg.get("p")), book.pexp)
            qty = parse_decimal(str(msg.get("q")), book.qexp)
            if price and qty:
                self.exchange.on_trade(book, not msg.get("m"), price[0], qty[0],
                                       int(msg.get("t", 0)))

    # -- switches (call on the loop) --
    def pause_market(self) -> None:
        """Stop generating book events (the book freezes; connections stay up)."""
        self.paused = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def resume_market(self) -> None:
        self.paused = False
        if self.cfg.replay_file or self._loop is None or self._timer is not None:
            return
        now = self._loop.time()
        for i in range(len(self.books)):
            self._next_at[i] = now + self._arrivals.expovariate(self.event_rate)
        self._timer = self._loop.call_at(min(self._next_at), self._tick)

    def set_event_rate(self, per_s: float) -> None:
        """Book events per second per symbol (trade rate scales to keep the trade share)."""
        if not per_s > 0:
            raise ValueError(f"event rate: expected > 0, got {per_s}")
        share = self.cfg.trade_rate / self.cfg.event_rate
        self.event_rate = per_s
        for b in self.books:
            b.set_rates(per_s, share * per_s)
        if not self.paused:
            self.pause_market()
            self.resume_market()

    def drop_connections(self, kind: str = "all") -> int:
        """Abort connections (no close frame) of kind md | api | all. Returns how many."""
        if kind not in ("md", "api", "all"):
            raise ValueError(f"kind: expected md, api or all, got {kind!r}")
        conns = []
        if kind in ("md", "all"):
            conns += list(self.md_conns)
        if kind in ("api", "all"):
            conns += list(self.api_conns)
        for c in conns:
            self._abort(c)
        return len(conns)

    def silence_api(self) -> int:
        """Make every order API connection silent without closing it (frames read and
        dropped, nothing written: no answers, reports or pongs). Returns how many."""
        conns = [c for c in self.api_conns if not c.silent]
        for c in conns:
            c.silent = True
        if conns and len(self.silenced) < 10_000:
            self.silenced.append(perf_counter_ns())
        return len(conns)

    def mute_user_streams(self) -> int:
        """End every user-data subscription silently (answers still flow, reports do not: a
        user-data stream that died while its connection lives). Returns how many ended."""
        n = 0
        for c in self.api_conns:
            n += len(c.session.user_subs)
            c.session.user_subs.clear()
        return n

    def announce_shutdown(self) -> int:
        """Send serverShutdown on every order API connection (the venue does, before closing
        them); connections stay open. Returns how many were told."""
        frame = _encode({"event": {"e": "serverShutdown", "E": now_ms()}})
        conns = [c for c in self.api_conns if not c.closed]
        for c in conns:
            c.send(frame)
        return len(conns)

    def _abort(self, conn) -> None:
        """Drop a connection now: no close frame, and no more writes to it from here on."""
        conn.t.disconnect(graceful=False)
        if isinstance(conn, _MarketConn):
            self._md_gone(conn)
        else:
            self._api_gone(conn)

    def trade_at(self, symbol: str, price: str, qty: str, taker_side: str) -> None:
        """Print a market trade now (fills resting orders at/through `price`)."""
        book = self.by_symbol[symbol]
        p = parse_decimal(price, book.pexp)
        q = parse_decimal(qty, book.qexp)
        if p is None or q is None or not p[1] or not q[1]:
            raise ValueError(f"trade_at: price {price!r} / qty {qty!r} off the instrument grid")
        if taker_side not in ("BUY", "SELL"):
            raise ValueError(f"taker_side: expected BUY or SELL, got {taker_side!r}")
        book.trade_id += 1
        self._print_trade(book, taker_side == "BUY", p[0], q[0])
        self._flush_user_events()

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
