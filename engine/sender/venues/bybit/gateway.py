"""Bybit v5 trade WebSocket (`/v5/trade`) gateway: order.create / order.amend / order.cancel
after `op: auth` (PROTOCOLS.md section 5).

Frames are pre-built byte templates like Binance's (no per-request signature: the connection is
authenticated once). `orderLinkId` is our client id `<tag>-<u>-<n>`; `reqId` is a decimal
counter (<= 36 chars, never repeated on a connection).

What this gateway reports: FILL_ACK when order.create is accepted (retCode 0 - Bybit says this
only means "accepted"), FILL_REJECT with the retCode otherwise, FILL_CANCELED on a confirmed
cancel, and for a replace (order.amend of the old order in place) FILL_CANCELED for the old
engine id and FILL_ACK for the new one, which keeps the old orderLinkId on the venue.
Not covered (known gap): fills and venue-side cancels arrive on the separate private stream
(`/v5/private`, topics order/execution), and open orders / balances need REST
(`/v5/order/realtime`, `/v5/order/cancel-all`); so reconciliation here trusts the local table,
an order whose outcome is unknown is settled by canceling it by orderLinkId, and the safety net
cancels every live order one by one.
"""
from __future__ import annotations

import asyncio
import time
from time import perf_counter_ns

import msgspec
from picows import WSMsgType

from engine.records import (ACTION_CANCEL, ACTION_CANCEL_ALL, ACTION_NEW, ACTION_REPLACE,
                            ACTION_RESET_SEEN)
from engine.sender.errors import GatewayError, VenueRefusal
from engine.sender.gateway import Gateway
from engine.sender.venues.bybit.encoding import BybitEncoder, auth_frame, redact
from engine.sender.venues.bybit.reconcile import BybitReconcile
from engine.sender.venues.bybit.wire import (AUTH_REFUSALS, ORDER_NOT_FOUND, REQ_AMEND,
                                             REQ_CANCEL, REQ_CREATE, RESPONSE, SERVICE_UNKNOWN,
                                             venue_id_of)

AUTH_EXPIRES_MS = 10_000        # auth `expires` = now + this
PING_EVERY_S = 20.0             # Bybit recommends an application ping every 20 s
_TEXT = WSMsgType.TEXT


class BybitGateway(BybitReconcile, Gateway):
    """Bybit v5's order gateway: the hot path's hooks, answers, auth and application pings."""
    venue = "bybit"
    auth = "hmac-auth"
    CREATES = frozenset((REQ_CREATE, REQ_AMEND))
    redact = staticmethod(redact)

    def __init__(self, cfg, creds, fills, hist=None, dry_run: bool = False, kill_addr: int = 0):
        super().__init__(cfg, creds, fills, hist, dry_run, kill_addr)
        self.enc = BybitEncoder(self.instruments, self.scfg.recv_window_ms,
                                self.scfg.bybit_category)
        self._auth_waiter: asyncio.Future | None = None
        self._last_ping = 0.0

    # ---------------------------------------------------------------- hot path (hooks of
    # the base's on_intent): each frame is written at once (no batch buffer here)
    def place_into(self, rid: int, order_id: int, inst: int, side: int, post_only: int,
                   cid: bytes, price: int, qty: int, u: int, ts_pub: int, ts_arr: int,
                   t_read: int) -> None:
        """order.create (dry run: logged, not sent)."""
        frame = self.enc.create(rid, inst, side, post_only, cid, price, qty, self.now_ms())
        self.orders.new(order_id, cid, inst, side, price, qty)
        self.counts["orders_sent"] += 1
        t_signed = perf_counter_ns()
        if self.dry_run:
            self.dry_write(frame)
        else:
            self.transport.send(_TEXT, frame)
            self.track(rid, REQ_CREATE, order_id, 0, perf_counter_ns())
        self.record_latency(ts_pub, ts_arr, t_read, t_signed, perf_counter_ns())

    def replace_into(self, rid: int, old, order_id: int, inst: int, side: int, post_only: int,
                     cid: bytes, price: int, qty: int, u: int, ts_pub: int, ts_arr: int,
                     t_read: int) -> None:
        """order.amend of `old` in place: the venue order keeps its orderLinkId (old.cid),
        which the new engine order takes over (dry run: logged, not sent)."""
        frame = self.enc.amend(rid, inst, old.cid, price, qty, self.now_ms())
        self.orders.cancel_sent(old)
        self.orders.new(order_id, old.cid, inst, side, price, qty)
        self.counts["replaces_sent"] += 1
        t_signed = perf_counter_ns()
        if self.dry_run:
            self.dry_write(frame)
        else:
            self.transport.send(_TEXT, frame)
            self.track(rid, REQ_AMEND, order_id, old.order_id, perf_counter_ns())
        self.record_latency(ts_pub, ts_arr, t_read, t_signed, perf_counter_ns())

    def dry_intent(self, f: tuple, t_read: int) -> None:
        """Dry run: on_intent without its refusals; the hooks log frames instead of sending
        them (the order table is kept as if they went)."""
        (_seq, order_id, orig, inst, action, side, _l, post_only, price, qty, u, ts_arr,
         _, _, ts_pub) = f
        if action == ACTION_CANCEL_ALL:
            self.cancel_ours(inst)
        elif action == ACTION_CANCEL:
            self.cancel_intent(orig, order_id)
        elif action == ACTION_RESET_SEEN:
            self.reset_seen(order_id)
        elif action == ACTION_NEW or action == ACTION_REPLACE:
            rid = self.next_rid()
            cid = self.cid_of(u, order_id)
            if action == ACTION_NEW:
                self.place_into(rid, order_id, inst, side, post_only, cid, price, qty, u,
                                ts_pub, ts_arr, t_read)
            else:
                old = self.replaceable(orig, order_id, cid, inst, side, price, qty)
                if old is not None:
                    self.replace_into(rid, old, order_id, inst, side, post_only, cid, price,
                                      qty, u, ts_pub, ts_arr, t_read)
        else:
            self.counts["malformed"] += 1

    def send_cancel(self, o, ts_pub: int = 0, ts_arr: int = 0, t_read: int = 0) -> None:
        rid = self.next_rid()
        frame = self.enc.cancel(rid, o.instrument, o.cid, self.now_ms())
        if self.dry_run:
            self.dry_write(frame)
            return
        self.send(frame)
        self.track(rid, REQ_CANCEL, o.order_id, 0, perf_counter_ns())
        self.orders.cancel_sent(o)
        self.counts["cancels_sent"] += 1

    # ---------------------------------------------------------------- incoming
    def on_frame(self, payload: bytes) -> None:
        try:
            r = RESPONSE.decode(payload)
        except (msgspec.DecodeError, msgspec.ValidationError):
            self.counts["malformed"] += 1
            return
        if r.op == "auth":
            if self._auth_waiter is not None and not self._auth_waiter.done():
                self._auth_waiter.set_result(r)
            return
        if r.op in ("pong", "ping"):
            return
        if r.header:
            self._limits(r.header)
        try:
            rid = int(r.reqId)
        except ValueError:
            self.counts["unknown_responses"] += 1
            return
        if self.resolve(rid, r):
            return
        req = self.take_request(rid)
        if req is None:
            self.counts["unknown_responses"] += 1
            return
        kind, oid, orig = req[:3]
        orders = self.orders
        ok = r.retCode == 0
        if r.retCode in (10006, 10429, 10403):        # rate limits: back off a second
            self.back_off(0, 429)
        if r.retCode in SERVICE_UNKNOWN:               # "service restarting": fate unknown
            self.request_unknown(req, perf_counter_ns())
            return
        if kind == REQ_CREATE:
            o = orders.find(oid)
            if o is not None:
                if ok:
                    orders.accepted(o, venue_id_of(r.data))
                    self.accepted_one()
                else:
                    orders.rejected(o, r.retCode)
        elif kind == REQ_AMEND:
            old, new = orders.find(orig), orders.find(oid)
            if ok:
                if old is not None:
                    orders.canceled(old)
                if new is not None:
                    orders.accepted(new, venue_id_of(r.data))
            else:
                if old is not None:
                    orders.cancel_refused(old, r.retCode)
                if new is not None:
                    orders.rejected(new, r.retCode)
        elif kind == REQ_CANCEL:
            o = orders.find(oid)
            if o is not None:
                if ok or r.retCode == ORDER_NOT_FOUND:
                    orders.canceled(o)
                else:
                    orders.cancel_refused(o, r.retCode)

    def _limits(self, header: dict) -> None:
        try:
            limit = int(header.get("X-Bapi-Limit", "0"))
            left = int(header.get("X-Bapi-Limit-Status", "0"))
        except ValueError:
            return
        if limit:
            self.pace([(limit - left, limit, 1000)])   # Bybit limits are per second
        now = header.get("Timenow")
        if now and now.isdigit() and self.rtt_ns == 0:
            self.clock_offset_ms = int(now) - time.time_ns() // 1_000_000

    # ---------------------------------------------------------------- set-up
    async def logon(self, transport) -> None:
        loop = asyncio.get_running_loop()
        self._auth_waiter = loop.create_future()
        t0 = perf_counter_ns()
        self.send(auth_frame(self.creds.api_key.reveal(), self.creds.secret.reveal(),
                             time.time_ns() // 1_000_000 + AUTH_EXPIRES_MS), transport)
        try:
            r = await asyncio.wait_for(self._auth_waiter, self.scfg.request_timeout_s)
        except asyncio.TimeoutError:
            raise GatewayError("no answer to op auth") from None
        if r.retCode in AUTH_REFUSALS:
            raise VenueRefusal(f"auth refused: retCode {r.retCode} {r.retMsg!r}: "
                               f"{AUTH_REFUSALS[r.retCode]}")
        if r.retCode != 0:
            raise GatewayError(f"auth refused: retCode {r.retCode} {r.retMsg!r}")
        self.rtt_ns = perf_counter_ns() - t0

    def ping(self) -> None:
        """Bybit documents its application ping (op ping -> op pong) for liveness: use it."""
        self.send(b'{"op":"ping"}')

    def periodic(self, now: float) -> None:
        if self.connected and now - self._last_ping >= PING_EVERY_S:
            self._last_ping = now
            self.send(b'{"op":"ping"}')
