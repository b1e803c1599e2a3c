"""The simulator's connections: one picows listener per WebSocket connection, routed by path,
their life (age limit, slow readers, aborts) and the user-data events written to API
connections. A part of SimServer (engine/sim/server.py puts the parts together).

  /ws/<stream>[/<stream>...]     raw streams (frames as the venue sends them)
  /stream?streams=<a>/<b>        combined streams ({"stream": ..., "data": ...})
  /ws-api/v3                     the WebSocket API (engine.sim.api)

Server pings every `ping_interval_s`; connections older than `max_connection_age_s` are closed.
A market client whose unsent backlog passes `max_send_buffer_mb` is disconnected.
"""
from __future__ import annotations

import asyncio
from time import perf_counter_ns
from urllib.parse import parse_qs, urlsplit

import msgspec
from picows import (WSCloseCode, WSListener, WSMsgType, WSTransport, WSUpgradeRequest,
                    WSUpgradeResponse, WSUpgradeResponseWithListener)

from engine.sim.api_params import now_ms
from engine.sim.api_session import Session

_TEXT = WSMsgType.TEXT
_encode = msgspec.json.Encoder().encode
TIMER_SLACK_S = 0.001         # loop timers can fire up to ~1 ms early


class MarketConn(WSListener):
    """One market-stream connection (raw or combined)."""

    def __init__(self, server: "Connections", combined: bool, streams: list[str]):
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


class ApiConn(WSListener):
    """One WebSocket API connection."""

    def __init__(self, server: "Connections", return_rate_limits: bool):
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
            # + slack: a delay is a lower bound
            self.server.api_delayed += 1
            asyncio.get_running_loop().call_later(delay + TIMER_SLACK_S, self._send_later, data)
        elif not self.closed:
            self.t.send(_TEXT, data)

    def _send_later(self, data: bytes) -> None:
        self.server.api_delayed -= 1
        self.server.api_last_active = perf_counter_ns()
        if not self.closed and not self.silent:
            self.t.send(_TEXT, data)

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        self.server._api_gone(self)


class Connections:
    """SimServer's connection part: the open connections and what happens to them. Uses cfg,
    stats, _loop and the other parts' hooks (_md_control, _subscribe, the replay's task)."""

    def _init_connections(self) -> None:
        self.md_conns: dict[MarketConn, None] = {}
        self.api_conns: dict[ApiConn, None] = {}
        self.api_conn_count = 0
        self.api_opened: list[int] = []  # perf_counter_ns of every API connection (bounded)
        self.api_delayed = 0          # answers and user events held by response_delay_s
        self.api_last_active = 0      # perf_counter_ns of the last API request or held send
        self._user_events: list[dict] = []    # the exchange's reports, written by the next flush
        self._max_buffer = int(self.cfg.max_send_buffer_mb * 1024 * 1024)

    # -- routing --
    def _route(self, request: WSUpgradeRequest):
        url = urlsplit(request.path.decode("latin-1"))
        path, query = url.path.rstrip("/") or "/", parse_qs(url.query)
        if path == "/ws-api/v3":
            rrl = query.get("returnRateLimits", ["true"])[0].lower() != "false"
            return ApiConn(self, rrl)
        if path == "/ws" or path.startswith("/ws/"):
            return MarketConn(self, False, [s for s in path[4:].split("/") if s])
        if path == "/stream":
            names = query.get("streams", [""])[0]
            return MarketConn(self, True, [s for s in names.split("/") if s])
        if path.startswith("/api/"):   # REST (diff_depth.py): an HTTP answer, no upgrade
            status, body = self.rest_get(path, url.query)
            head = {"Content-Type": "application/json"}
            answer = WSUpgradeResponse.create_ok_response(body, head) if status == 200 \
                else WSUpgradeResponse.create_error_response(status, body, head)
            return WSUpgradeResponseWithListener(answer, None)
        return None                 # 404

    # -- life --
    def _arm_age(self, conn) -> None:
        conn.age_timer = self._loop.call_later(self.cfg.max_connection_age_s, self._expire, conn)

    @staticmethod
    def _expire(conn) -> None:
        if conn.t is not None and not conn.t.is_disconnected:
            conn.t.send_close(WSCloseCode.OK, b"connection age limit")
            conn.t.disconnect()

    def _md_connected(self, conn: MarketConn) -> None:
        self.md_conns[conn] = None
        self.stats["md_connections"] += 1
        for name in conn.initial:
            self._subscribe(conn, name)
        self._arm_age(conn)
        if self.cfg.replay_file and self._replay_task is None:
            self._replay_task = self._loop.create_task(self._replay())

    def _md_gone(self, conn: MarketConn) -> None:
        self.md_conns.pop(conn, None)
        for name in conn.streams:
            subs = self.subs.get(name)
            if subs is not None:
                subs.pop(conn, None)
        conn.streams = []
        if conn.age_timer is not None:
            conn.age_timer.cancel()

    def _api_connected(self, conn: ApiConn) -> None:
        self.api_conns[conn] = None
        self.stats["api_connections"] += 1
        if len(self.api_opened) < 10_000:
            self.api_opened.append(perf_counter_ns())
        self._arm_age(conn)

    def _api_gone(self, conn: ApiConn) -> None:
        conn.closed = True
        self.api_conns.pop(conn, None)
        if conn.age_timer is not None:
            conn.age_timer.cancel()

    def _drop_slow_consumers(self) -> None:
        """Disconnect market clients that stopped reading (the venue does; memory stays bounded)."""
        limit = self._max_buffer
        for conn in list(self.md_conns):
            if conn.t.underlying_transport.get_write_buffer_size() > limit:
                self.stats["slow_consumers_dropped"] += 1
                self._abort(conn)

    def _abort(self, conn) -> None:
        """Drop a connection now: no close frame, and no more writes to it from here on."""
        conn.t.disconnect(graceful=False)
        if isinstance(conn, MarketConn):
            self._md_gone(conn)
        else:
            self._api_gone(conn)

    def _close_all(self) -> None:
        """Close every connection (GOING_AWAY), market connections told first as Binance does."""
        event = _encode({"e": "serverShutdown", "E": now_ms()})
        for conn in self.md_conns:
            if conn.t is not None and not conn.t.is_disconnected:
                conn.t.send(_TEXT, b'{"stream":"!serverShutdown","data":' + event + b"}"
                            if conn.combined else event)
        for conn in list(self.md_conns) + list(self.api_conns):
            if conn.t is not None:
                conn.t.send_close(WSCloseCode.GOING_AWAY)
                conn.t.disconnect()

    # -- user-data events --
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
