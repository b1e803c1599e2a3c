"""The order connection (picows) and its make-before-break replacement, and the
request/response plumbing of set-up calls (logon, status questions, reconciles).

Mixed into engine/sender/gateway.py's Gateway, which sets the state these methods use
(transport, fd, _retiring, _waiters, _rid, liveness, ...).
"""
from __future__ import annotations

import asyncio
from time import perf_counter_ns

from picows import WSListener, WSMsgType, ws_connect

from engine.proc import log
from engine.sender.errors import GatewayError


class _Listener(WSListener):
    """Hands text frames to the gateway; a CLOSE or a drop ends that connection."""

    def __init__(self, gateway):
        self.gw = gateway

    def on_ws_frame(self, transport, frame) -> None:
        t = frame.msg_type
        gw = self.gw
        if transport is gw.transport:        # proof of life: one stamp, checked by the watch
            gw.liveness.last_frame_ns = perf_counter_ns()
        if t == WSMsgType.TEXT or t == WSMsgType.BINARY:
            try:
                self.gw.on_frame(frame.get_payload_as_bytes())
            except Exception as e:  # a bug must not drop the connection: count, say, go on
                self.gw.counts["frame_errors"] += 1
                if self.gw.counts["frame_errors"] <= 3:
                    log("sender", f"error handling a frame: {type(e).__name__}: {e}")
        elif t == WSMsgType.CLOSE:
            transport.send_close(frame.get_close_code())
            transport.disconnect()

    def on_ws_disconnected(self, transport) -> None:
        self.gw.on_disconnected(transport)



class Connection:
    """Connection life and set-up calls (part of Gateway)."""

    async def open_connection(self, url: str):
        """A new WebSocket to `url`, logged on: returns its transport; GatewayError on
        failure (the half-open connection is closed)."""
        try:
            transport, _ = await asyncio.wait_for(
                ws_connect(lambda: _Listener(self), url, enable_auto_pong=True,
                           websocket_handshake_timeout=self.scfg.connect_timeout_s),
                self.scfg.connect_timeout_s)
        except (OSError, asyncio.TimeoutError, Exception) as e:
            raise GatewayError(f"connect {url}: {type(e).__name__}: {e}") from None
        try:
            await self.logon(transport)
        except Exception:
            _close(transport)
            raise
        return transport

    async def connect(self, url: str) -> None:
        """Open the connection and run the venue's logon; GatewayError on failure."""
        transport = await self.open_connection(url)
        self._use(transport)
        self.fresh_connection()
        self.connected = True
        self.connected_ever = True
        self.connected_at = asyncio.get_running_loop().time()

    async def roll_over(self, url: str) -> None:
        """Make-before-break: log on a second connection, move the hot path to it, retire the
        old one once its requests are answered (or time out). Orders never see a gap."""
        new = await self.open_connection(url)
        old = self.transport
        self._use(new)
        self.fresh_connection()
        self.connected_at = asyncio.get_running_loop().time()
        self.counts["rollovers"] += 1
        if old is not None:
            self._retiring.append((old, perf_counter_ns() + self.order_timeout_ns))

    async def replace_dead(self, url: str) -> None:
        """The connection is dead (it stopped proving alive): stop sending orders, log on a new
        one (make-before-break: the dead one is dropped only once the new one is up), treat
        what was in flight on the dead one as unknown. The caller reconciles before quoting
        resumes (`ready` stays False until then). GatewayError: no new connection (the dead
        one is closed; the reconnect loop takes over)."""
        self.ready = False
        self.counts["dead_connections"] += 1
        try:
            new = await self.open_connection(url)
        except GatewayError:
            self.close()
            raise
        old = self.transport
        self._use(new)
        self.fresh_connection()
        self.connected = True
        self.connected_at = asyncio.get_running_loop().time()
        for t, _ in self._retiring:
            _close(t)
        self._retiring = []
        if old is not None:
            _close(old)
            self._orphan_requests(old)

    def fresh_connection(self) -> None:
        """A new connection carries the hot path: alive as of now (venues add their own)."""
        self.liveness.reset(perf_counter_ns())

    def dead_reason(self, now_ns: int) -> str:
        """Watch duty: ping the connection when it has been quiet; why it is dead, or ""."""
        if not self.connected or self.transport is None:
            return ""
        live = self.liveness
        if live.ping_due(now_ns):
            try:
                self.ping()
            except Exception:
                pass
        oldest = min((req[3] for req in self._inflight.values() if req[4] is self.transport),
                     default=0)
        return live.dead_reason(now_ns, oldest)
    def _use(self, transport) -> None:
        """Make `transport` the connection the hot path writes to."""
        self.transport = transport
        tr = transport.underlying_transport
        sock = tr.get_extra_info("socket")
        self.fd = sock.fileno() if sock is not None and not transport.is_secure else -1
        self._tr_write = tr.write
        self._tr_buffered = tr.get_write_buffer_size

    def retire_old_connections(self, now_ns: int) -> None:
        """Close retired connections with nothing in flight on them (or past their deadline)."""
        keep = []
        for t, deadline in self._retiring:
            busy = any(req[4] is t for req in self._inflight.values())
            if busy and now_ns < deadline:
                keep.append((t, deadline))
            else:
                _close(t)
        self._retiring = keep

    def close(self) -> None:
        """Drop the connection (if any): what was in flight on it has an unknown outcome."""
        t = self.transport
        for old, _ in self._retiring:
            _close(old)
        self._retiring = []
        if t is not None:
            _close(t)
        self._lost(t)

    def on_disconnected(self, transport=None) -> None:
        if transport is not None and transport is self.transport:
            self._lost(transport)
        else:                                 # a retired connection ended
            self._retiring = [(t, d) for t, d in self._retiring if t is not transport]
            self._orphan_requests(transport)

    def _lost(self, transport) -> None:
        self.connected = False
        self.ready = False
        self.transport = None
        self.fd = -1
        self.out_len = 0
        for fut in self._waiters.values():
            if not fut.done():
                fut.set_exception(GatewayError("connection lost"))
        self._waiters.clear()
        self._orphan_requests(transport)

    def send(self, frame: bytes, transport=None) -> None:
        (transport or self.transport).send(WSMsgType.TEXT, frame)

    def next_rid(self) -> int:
        self._rid += 1
        return self._rid

    async def call(self, build, timeout: float | None = None, transport=None):
        """Send a set-up request built by `build(request_id) -> bytes` (on `transport`, default
        the current connection); await its answer (the decoded frame); GatewayError on timeout
        or disconnect."""
        if transport is None and not self.connected:
            raise GatewayError("not connected")
        if self.requests_blocked():
            raise GatewayError("backing off after the venue's rate limit")   # any request kind
        rid = self.next_rid()
        fut = asyncio.get_running_loop().create_future()
        self._waiters[rid] = fut
        self.send(build(rid), transport)
        wait = timeout or self.scfg.request_timeout_s
        try:
            return await asyncio.wait_for(fut, wait)
        except asyncio.TimeoutError:
            raise GatewayError(f"no answer to request {rid} within {wait:g} s") from None
        finally:
            self._waiters.pop(rid, None)

    def resolve(self, rid, response) -> bool:
        """Complete a set-up call's future; False when `rid` is not a set-up call."""
        fut = self._waiters.pop(rid, None)
        if fut is None:
            return False
        if not fut.done():
            fut.set_result(response)
        return True

    async def call_before(self, build, deadline: float):
        """`call` bounded by an absolute loop-time deadline; None once it has passed."""
        left = deadline - asyncio.get_running_loop().time()
        return await self.call(build, timeout=left) if left > 0 else None



def _close(transport) -> None:
    try:
        transport.send_close()
        transport.disconnect()
    except Exception:
        pass
