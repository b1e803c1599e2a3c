"""The venue-neutral order gateway: one WebSocket connection to a venue's order API.

A venue module subclasses `Gateway` and supplies: `logon()` (authenticate, sync the clock,
subscribe to order events), `on_intent(fields, t_read)` (hot path: one ORDER_DTYPE record's
fields -> one signed frame written to the socket), `on_frame(payload)` (responses and order
events -> OrderBook transitions -> fill-ring records), `reconcile()` and
`cancel_everything()` (safety net). This base class owns the connection (picows), the
request/response plumbing for set-up calls, the clock offset, rate-limit pacing and back-off,
the dry-run path and the latency stamps.
"""
from __future__ import annotations

import asyncio
import re
import sys
import time
from time import perf_counter_ns

from picows import WSListener, WSMsgType, ws_connect

from engine._native import hist_record as _hist_record
from engine.sender.fills import FillWriter
from engine.sender.state import OrderBook

_REDACT = re.compile(rb'"(apiKey|signature|sign)":"[^"]*"')
_REDACT_ARGS = re.compile(rb'"args":\["[^"]*",(\d+),"[^"]*"\]')

# Histograms the sender records (HistogramSet names)
HISTOGRAMS = ("intent_published_to_read", "sign", "encode_send", "read_to_written",
              "tick_to_order")


class GatewayError(Exception):
    """A set-up request failed (logon refused, timeout): the message says which and why."""


def redact(frame: bytes) -> bytes:
    """The frame with every key and signature value replaced by ***."""
    return _REDACT_ARGS.sub(rb'"args":["***",\1,"***"]', _REDACT.sub(rb'"\1":"***"', frame))


class _Listener(WSListener):
    """Hands text frames to the gateway; a CLOSE or a drop ends the session."""

    def __init__(self, gateway: "Gateway"):
        self.gw = gateway

    def on_ws_frame(self, transport, frame) -> None:
        t = frame.msg_type
        if t == WSMsgType.TEXT or t == WSMsgType.BINARY:
            try:
                self.gw.on_frame(frame.get_payload_as_bytes())
            except Exception as e:  # a bug must not drop the connection: count, say, go on
                self.gw.counts["frame_errors"] += 1
                if self.gw.counts["frame_errors"] <= 3:
                    print(f"mm[sender] error handling a frame: {type(e).__name__}: {e}",
                          file=sys.stderr, flush=True)
        elif t == WSMsgType.CLOSE:
            transport.send_close(frame.get_close_code())
            transport.disconnect()

    def on_ws_disconnected(self, transport) -> None:
        self.gw.on_disconnected(transport)


class Gateway:
    """Connection, request plumbing and pacing shared by the venue gateways."""
    venue = "?"

    def __init__(self, cfg, creds, fills: FillWriter, hist=None, dry_run: bool = False):
        self.cfg = cfg                      # EngineConfig
        self.scfg = cfg.sender
        self.creds = creds
        self.fills = fills
        self.hist = hist
        self.dry_run = dry_run
        self.instruments = cfg.instruments
        self.inst_by_symbol = {i.symbol: n for n, i in enumerate(cfg.instruments)}
        self.book = OrderBook(fills, cfg.tag)
        self.tag = cfg.tag.encode()
        self.transport = None
        self.connected = False
        self.ready = False                  # connected, logged on and reconciled
        self.clock_offset_ms = 0            # venue clock - local clock
        self.rtt_ns = 0
        self.counts: dict[str, int] = dict.fromkeys(
            ("intents", "orders_sent", "replaces_sent", "cancels_sent", "cancel_alls_sent",
             "malformed", "unknown_responses", "foreign_events", "other_events",
             "local_rejects", "unknown_intents", "rate_paced", "rate_backoffs", "dry_run_frames",
             "server_errors", "frame_errors"), 0)
        self.banned = False                 # 418: stop sending; the process pulls the kill switch
        self.pace_ns = 0                    # minimum spacing of order sends (0 = none)
        self.next_send_ns = 0
        self.blocked_until_ns = 0           # 429 back-off end (perf_counter_ns)
        self.deferred_cancels: list[int] = []  # cancel targets held while blocked/disconnected
        self._rid = 0
        self._waiters: dict[int, asyncio.Future] = {}
        self._inflight: dict[int, tuple] = {}
        self._dry_log_budget = 0
        self._dry_log_second = 0
        if hist is not None:
            (self._h_read, self._h_sign, self._h_send, self._h_r2w,
             self._h_t2o) = (hist.addr(n) for n in HISTOGRAMS)

    # ---------------------------------------------------------------- connection
    async def connect(self, url: str) -> None:
        """Open the WebSocket and run the venue's logon; GatewayError on failure."""
        try:
            self.transport, _ = await asyncio.wait_for(
                ws_connect(lambda: _Listener(self), url, enable_auto_pong=True,
                           websocket_handshake_timeout=self.scfg.connect_timeout_s),
                self.scfg.connect_timeout_s)
        except (OSError, asyncio.TimeoutError, Exception) as e:
            raise GatewayError(f"connect {url}: {type(e).__name__}: {e}") from None
        self.connected = True
        try:
            await self.logon()
        except Exception:
            self.close()
            raise

    def close(self) -> None:
        """Drop the connection (if any) and forget everything that was in flight on it."""
        t = self.transport
        if t is not None:
            try:
                t.send_close()
                t.disconnect()
            except Exception:
                pass
        self._lost()

    def on_disconnected(self, transport=None) -> None:
        # only the current connection's end counts: an old one closing late changes nothing
        if transport is not None and transport is self.transport:
            self._lost()

    def _lost(self) -> None:
        self.connected = False
        self.ready = False
        self.transport = None
        for fut in self._waiters.values():
            if not fut.done():
                fut.set_exception(GatewayError("connection lost"))
        self._waiters.clear()
        # requests in flight have unknown fate: reconciliation after reconnect decides
        self._inflight.clear()

    def send(self, frame: bytes) -> None:
        self.transport.send(WSMsgType.TEXT, frame)

    def next_rid(self) -> int:
        self._rid += 1
        return self._rid

    async def call(self, build, timeout: float | None = None):
        """Send a set-up request built by `build(request_id) -> bytes`; await its answer
        (the decoded frame); GatewayError on timeout or disconnect."""
        if not self.connected:
            raise GatewayError("not connected")
        rid = self.next_rid()
        fut = asyncio.get_running_loop().create_future()
        self._waiters[rid] = fut
        frame = build(rid)
        self.send(frame)
        try:
            return await asyncio.wait_for(fut, timeout or self.scfg.request_timeout_s)
        except asyncio.TimeoutError:
            raise GatewayError(f"no answer to request {rid} within "
                               f"{timeout or self.scfg.request_timeout_s} s") from None
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

    def now_ms(self) -> int:
        """Local wall clock corrected to the venue's, in ms (what timestamp= carries)."""
        return time.time_ns() // 1_000_000 + self.clock_offset_ms

    def set_clock(self, t0_ns: int, server_ms: int, t1_ns: int) -> None:
        """Offset = server - midpoint of the local send/receive wall times."""
        self.clock_offset_ms = server_ms - (t0_ns + t1_ns) // 2_000_000

    # ---------------------------------------------------------------- pacing and back-off
    def send_delay_ns(self) -> int:
        """0 when an order may go out now, else how long to wait (ring is left unread)."""
        if self.pace_ns:
            d = self.next_send_ns - perf_counter_ns()
            if d > 0:
                return d
        return 0

    def back_off(self, retry_after_ms: int, status: int) -> None:
        """429 (wait until retryAfter, venue epoch ms) or 418 (banned: stop sending)."""
        self.counts["rate_backoffs"] += 1
        if status == 418:
            self.banned = True
        wait_ms = max(retry_after_ms - self.now_ms(), 1000) if retry_after_ms else 1000
        self.blocked_until_ns = max(self.blocked_until_ns, perf_counter_ns() + wait_ms * 1_000_000)
        print(f"mm[sender] venue answered {status}: backing off {wait_ms} ms", file=sys.stderr,
              flush=True)

    def blocked(self) -> bool:
        return self.banned or (self.blocked_until_ns and perf_counter_ns() < self.blocked_until_ns)

    def pace(self, count: int, limit: int, interval_ms: int) -> None:
        """Rate-limit feedback from a response: above the slow-down share of an order limit,
        space order sends evenly over what is left of the window."""
        if limit > 0 and count > self.scfg.rate_slow_fraction * limit:
            spacing = interval_ms * 1_000_000 // limit
            if spacing > self.pace_ns:
                self.pace_ns = spacing
                self.counts["rate_paced"] += 1
        elif self.pace_ns and count < 0.5 * limit:
            self.pace_ns = 0

    # ---------------------------------------------------------------- hot-path helpers
    def record_latency(self, ts_published: int, ts_arrival: int, t_read: int, t_signed: int,
                       t_sent: int) -> None:
        if self.hist is None:
            return
        rec = _hist_record
        if ts_published:
            rec(self._h_read, t_read - ts_published)
        rec(self._h_sign, t_signed - t_read)
        rec(self._h_send, t_sent - t_signed)
        rec(self._h_r2w, t_sent - t_read)
        if ts_arrival:
            rec(self._h_t2o, t_sent - ts_arrival)

    def write(self, frame: bytes) -> None:
        """Write a hot-path frame (or, in dry run, log it redacted at a bounded rate)."""
        if self.dry_run:
            self.counts["dry_run_frames"] += 1
            sec = perf_counter_ns() // 1_000_000_000
            if sec != self._dry_log_second:
                self._dry_log_second, self._dry_log_budget = sec, self.scfg.dry_run_log_per_s
            if self._dry_log_budget > 0:
                self._dry_log_budget -= 1
                print(f"mm[sender] dry-run: {redact(frame).decode()}", file=sys.stderr, flush=True)
            return
        self.transport.send(WSMsgType.TEXT, frame)

    def cancel_target(self, orig: int, order_id: int):
        """The live order a CANCEL intent names (orig_order_id, else order_id), or None
        (counted: the order already finished or was never sent)."""
        o = self.book.get(orig or order_id)
        if o is None:
            self.counts["unknown_intents"] += 1
        return o

    async def call_before(self, build, deadline: float):
        """`call` bounded by an absolute loop-time deadline; None once it has passed."""
        left = deadline - asyncio.get_running_loop().time()
        return await self.call(build, timeout=left) if left > 0 else None

    # ---------------------------------------------------------------- venue interface
    async def logon(self) -> None:
        raise NotImplementedError

    def on_intent(self, fields: tuple, t_read: int) -> None:
        raise NotImplementedError

    def on_frame(self, payload: bytes) -> None:
        raise NotImplementedError

    def periodic(self, now: float) -> None:
        """Called by the watch duty every ~50 ms (application pings and the like)."""

    async def reconcile(self, full: bool = True) -> None:
        """Align the order book with the venue's open orders and cancel strangers carrying our
        tag; `full` (start-up, reconnect) then emits FILL_POSITION per instrument and
        FILL_RESUME. Sets `ready`: intents are sent from then on."""
        raise NotImplementedError

    async def cancel_everything(self, deadline: float) -> int:
        """Cancel every open order on every instrument and check none is left before
        `deadline` (loop.time()). Returns the number of open orders still seen (-1: unknown)."""
        raise NotImplementedError
