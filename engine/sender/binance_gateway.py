"""Binance Spot WebSocket API gateway: intents -> signed frames, responses and executionReports
-> order state -> fill records (PROTOCOLS.md sections 3-4).

Choices:
- Replace uses order.cancelReplace with cancelReplaceMode STOP_ON_FAILURE (config): when the
  cancel fails (the old order filled or is gone) no new order is placed on top of the fill; the
  quoter gets FILL_REJECT (-2022) for the new id and the fill through executionReport.
- newOrderRespType ACK: the smallest, fastest answer; fills come from executionReport.
- One connection carries requests, responses and the user data stream
  (userDataStream.subscribe after an Ed25519 session.logon, or .signature with HMAC).
"""
from __future__ import annotations

import sys
import time
from time import perf_counter_ns

import msgspec
from picows import WSMsgType

from engine.records import (ACTION_CANCEL, ACTION_CANCEL_ALL, ACTION_NEW, ACTION_REPLACE,
                            ALL_INSTRUMENTS, FILL_POSITION, FILL_RESUME)
from engine.sender import binance as bn
from engine.sender.fills import LOCAL_NOT_CONNECTED, LOCAL_RATE_LIMITED, LOCAL_UNKNOWN_ORDER
from engine.sender.gateway import Gateway, GatewayError
from engine.sender.signing import Ed25519Signer, HmacSigner

REQ_PLACE, REQ_REPLACE, REQ_CANCEL, REQ_CANCEL_ALL = 1, 2, 3, 4
UNKNOWN_ORDER = -2011
_TEXT = WSMsgType.TEXT
_INTERVAL_MS = {"SECOND": 1000, "MINUTE": 60_000, "HOUR": 3_600_000, "DAY": 86_400_000}


class BinanceGateway(Gateway):
    venue = "binance"

    def __init__(self, cfg, creds, fills, hist=None, dry_run: bool = False):
        super().__init__(cfg, creds, fills, hist, dry_run)
        s = self.scfg
        self._hmac = HmacSigner(creds.secret.reveal()) if creds.secret is not None else None
        self._ed = Ed25519Signer(creds.ed25519_private) if creds.ed25519_private is not None else None
        self.auth = bn.AUTH_SESSION if creds.auth == "ed25519" else bn.AUTH_HMAC
        self.enc = self._encoder(self.auth)
        self._cid = self.tag + b"-%d-%d"
        self._pexp = [i.pexp for i in self.instruments]
        self._qexp = [i.qexp for i in self.instruments]

    def _encoder(self, auth: str) -> bn.BinanceEncoder:
        s = self.scfg
        return bn.BinanceEncoder(self.instruments, self.creds.api_key.reveal(), auth, self._hmac,
                                 self._ed, s.recv_window_ms, s.resp_type, s.replace_mode)

    # ================================================================ hot path
    def on_intent(self, f: tuple, t_read: int) -> None:
        """One order intent (ORDER_DTYPE fields after seq) -> one frame on the wire."""
        order_id, orig, inst, action, side, _lvl, post_only, price, qty, u, ts_arr, _, _, ts_pub = f
        self.counts["intents"] += 1
        if self.dry_run:
            self._dry_intent(f, t_read)
            return
        if not self.ready or self.blocked():
            self._refuse(f)
            return
        if action == ACTION_NEW:
            cid = self._cid % (u, order_id)
            rid = self._rid = self._rid + 1
            frame = self.enc.place(rid, inst, side, post_only, cid, price, qty, self.now_ms())
            t_signed = perf_counter_ns()
            self.transport.send(_TEXT, frame)       # WSMsgType.TEXT
            t_sent = perf_counter_ns()
            self._inflight[rid] = (REQ_PLACE, order_id, 0)
            self.book.new(order_id, cid, inst, side, price, qty)
            self.counts["orders_sent"] += 1
        elif action == ACTION_REPLACE:
            old = self.book.get(orig)
            cid = self._cid % (u, order_id)
            if old is None:
                self.book.new(order_id, cid, inst, side, price, qty)
                self.book.rejected(order_id, LOCAL_UNKNOWN_ORDER)
                self.counts["unknown_intents"] += 1
                return
            rid = self._rid = self._rid + 1
            frame = self.enc.replace(rid, inst, side, post_only, old.cid, cid, price, qty,
                                     self.now_ms())
            t_signed = perf_counter_ns()
            self.transport.send(_TEXT, frame)
            t_sent = perf_counter_ns()
            self._inflight[rid] = (REQ_REPLACE, order_id, orig)
            self.book.cancel_sent(orig)
            self.book.new(order_id, cid, inst, side, price, qty)
            self.counts["replaces_sent"] += 1
        elif action == ACTION_CANCEL:
            old = self.cancel_target(orig, order_id)
            if old is None:
                return
            rid = self._rid = self._rid + 1
            frame = self.enc.cancel(rid, old.instrument, old.cid, self.now_ms())
            t_signed = perf_counter_ns()
            self.transport.send(_TEXT, frame)
            t_sent = perf_counter_ns()
            self._inflight[rid] = (REQ_CANCEL, old.order_id, 0)
            self.book.cancel_sent(old.order_id)
            self.counts["cancels_sent"] += 1
        elif action == ACTION_CANCEL_ALL:
            insts = range(len(self.instruments)) if inst == ALL_INSTRUMENTS else (inst,)
            t_signed = perf_counter_ns()
            for i in insts:
                self.cancel_all_async(i)
            t_sent = perf_counter_ns()
        else:
            self.counts["malformed"] += 1
            return
        self.record_latency(ts_pub, ts_arr, t_read, t_signed, t_sent)

    def cancel_all_async(self, inst: int) -> None:
        """openOrders.cancelAll for one instrument; the answer cancels each listed order."""
        rid = self.next_rid()
        self._inflight[rid] = (REQ_CANCEL_ALL, inst, 0)
        for o in list(self.book.live.values()):
            if o.instrument == inst:
                self.book.cancel_sent(o.order_id)
        self.send(self.enc.cancel_all(rid, inst, self.now_ms()))
        self.counts["cancel_alls_sent"] += 1

    def _refuse(self, f: tuple) -> None:
        """Not connected or backing off: new orders are refused at once (FILL_REJECT with a
        LOCAL_* code, so the quoter's view stays true); cancels are held and sent later."""
        order_id, orig, inst, action, side, _l, _p, price, qty, u = f[:10]
        self.counts["local_rejects"] += 1
        if action in (ACTION_NEW, ACTION_REPLACE):
            code = LOCAL_RATE_LIMITED if self.ready else LOCAL_NOT_CONNECTED
            self.book.new(order_id, self._cid % (u, order_id), inst, side, price, qty)
            self.book.rejected(order_id, code)
        if action == ACTION_REPLACE or action == ACTION_CANCEL:
            self.deferred_cancels.append(orig or order_id)
        elif action == ACTION_CANCEL_ALL:
            self.deferred_cancels.append(-1 - inst if inst != ALL_INSTRUMENTS else -1 - 0xFFFFFFFF)

    def flush_deferred(self) -> None:
        """Send cancels held during an outage or back-off (after reconcile / when unblocked)."""
        held, self.deferred_cancels = self.deferred_cancels, []
        for target in held:
            if target < 0:
                inst = -1 - target
                for i in (range(len(self.instruments)) if inst == ALL_INSTRUMENTS else (inst,)):
                    self.cancel_all_async(i)
                continue
            o = self.book.get(target)
            if o is None:
                continue
            rid = self.next_rid()
            self._inflight[rid] = (REQ_CANCEL, o.order_id, 0)
            self.book.cancel_sent(o.order_id)
            self.send(self.enc.cancel(rid, o.instrument, o.cid, self.now_ms()))
            self.counts["cancels_sent"] += 1

    def _dry_intent(self, f: tuple, t_read: int) -> None:
        order_id, orig, inst, action, side, _l, post_only, price, qty, u, ts_arr, _, _, ts_pub = f
        cid = self._cid % (u, order_id)
        rid = self._rid = self._rid + 1
        ts = self.now_ms()
        if action == ACTION_NEW:
            frame = self.enc.place(rid, inst, side, post_only, cid, price, qty, ts)
        elif action == ACTION_REPLACE:
            frame = self.enc.replace(rid, inst, side, post_only, self._cid % (0, orig), cid,
                                     price, qty, ts)
        elif action == ACTION_CANCEL:
            frame = self.enc.cancel(rid, inst if inst != ALL_INSTRUMENTS else 0,
                                    self._cid % (0, orig or order_id), ts)
        else:
            frame = self.enc.cancel_all(rid, 0 if inst == ALL_INSTRUMENTS else inst, ts)
        t_signed = perf_counter_ns()
        self.write(frame)
        self.record_latency(ts_pub, ts_arr, t_read, t_signed, perf_counter_ns())

    # ================================================================ incoming frames
    def on_frame(self, payload: bytes) -> None:
        try:
            fr = bn.FRAME.decode(payload)
        except msgspec.DecodeError:
            self.counts["malformed"] += 1
            return
        if fr.rateLimits:
            for rl in fr.rateLimits:
                if rl.rateLimitType == "ORDERS":
                    self.pace(rl.count, rl.limit,
                              _INTERVAL_MS.get(rl.interval, 1000) * max(rl.intervalNum, 1))
        if fr.event:
            self._on_event(fr.event)
            return
        if fr.status in (429, 418):
            data = fr.error.data if fr.error is not None else None
            self.back_off(data.retryAfter if data is not None else 0, fr.status)
        if self.resolve(fr.id, fr):
            return
        req = self._inflight.pop(fr.id, None) if isinstance(fr.id, int) else None
        if req is None:
            self.counts["unknown_responses"] += 1
            return
        try:
            if fr.status == 200:
                self._on_ok(req, fr.result)
            else:
                self._on_error(req, fr)
        except (msgspec.DecodeError, msgspec.ValidationError, ValueError):
            self.counts["malformed"] += 1
            self.book.needs_reconcile = True

    def _on_ok(self, req: tuple, result: msgspec.Raw) -> None:
        kind, oid, orig = req
        if kind == REQ_PLACE:
            r = bn.ORDER_RESULT.decode(result)
            self.book.accepted(oid, r.orderId, r.transactTime * 1_000_000)
        elif kind == REQ_REPLACE:
            r = bn.REPLACE_RESULT.decode(result)
            self.book.canceled(orig)
            new = r.newOrderResponse
            self.book.accepted(oid, new.orderId if new else 0,
                               new.transactTime * 1_000_000 if new else 0)
        elif kind == REQ_CANCEL:
            self.book.canceled(oid)
        elif kind == REQ_CANCEL_ALL:
            for r in bn.ORDER_RESULTS.decode(result):
                n = self.book.order_id_of(r.origClientOrderId or r.clientOrderId)
                if n is not None and self.book.get(n) is not None:
                    self.book.canceled(n)

    def _on_error(self, req: tuple, fr: bn.Frame) -> None:
        kind, oid, orig = req
        err = fr.error or bn.ApiError()
        code = err.code
        if fr.status >= 500:               # fate unknown: ask the venue
            self.counts["server_errors"] += 1
            self.book.needs_reconcile = True
            return
        if kind == REQ_PLACE:
            self.book.rejected(oid, code)
        elif kind == REQ_REPLACE:
            data = err.data
            if data is not None and data.cancelResult == "SUCCESS":
                self.book.canceled(orig)
            else:
                cancel_code = code
                if data is not None and data.cancelResponse:
                    cancel_code = bn.API_ERROR.decode(data.cancelResponse).code or code
                self.book.cancel_failed(orig, cancel_code)
            if data is not None and data.newOrderResult == "SUCCESS":
                new = bn.ORDER_RESULT.decode(data.newOrderResponse)
                self.book.accepted(oid, new.orderId, new.transactTime * 1_000_000)
            else:
                self.book.rejected(oid, code)
        elif kind == REQ_CANCEL:
            self.book.cancel_failed(oid, code)
        elif kind == REQ_CANCEL_ALL:
            if code != UNKNOWN_ORDER:      # -2011: nothing was open - that is success
                self.book.needs_reconcile = True

    def _on_event(self, raw: msgspec.Raw) -> None:
        try:
            if bn.EVENT_KIND.decode(raw).e != "executionReport":
                self.counts["other_events"] += 1
                return
            er = bn.EXECUTION_REPORT.decode(raw)
        except (msgspec.DecodeError, msgspec.ValidationError):
            self.counts["malformed"] += 1
            return
        x = er.x
        cid = er.C if (x == "CANCELED" and er.C) else er.c
        n = self.book.order_id_of(cid)
        inst = self.inst_by_symbol.get(er.s)
        if n is None or inst is None:
            self.counts["foreign_events"] += 1
            return
        ts = er.T * 1_000_000
        try:
            if x == "NEW":
                self.book.accepted(n, er.i, ts)
            elif x == "TRADE":
                self.book.traded(n, bn.parse_fixed(er.L, self._pexp[inst]),
                                 bn.parse_fixed(er.z, self._qexp[inst]), ts)
            elif x in ("CANCELED", "EXPIRED", "TRADE_PREVENTION"):
                if x == "TRADE_PREVENTION" and er.X not in ("EXPIRED", "EXPIRED_IN_MATCH"):
                    return
                self.book.canceled(n, ts)
            elif x == "REJECTED":
                self.book.rejected(n, -2010, ts)
            else:
                self.counts["other_events"] += 1
        except ValueError:
            self.counts["malformed"] += 1

    # ================================================================ set-up
    async def logon(self) -> None:
        """Clock sync, then session.logon (Ed25519) or nothing (HMAC), then user data."""
        await self.sync_clock()
        key = self.creds.api_key.reveal()
        if self.auth == bn.AUTH_SESSION:
            r = await self.call(lambda rid: bn.logon_frame(rid, key, self._ed, self.now_ms(),
                                                           self.scfg.recv_window_ms))
            if r.status != 200:
                raise GatewayError(f"session.logon refused: {_err(r)}")
        r = await self.call(lambda rid: bn.user_stream_frame(rid, self.auth, key, self._hmac,
                                                             self.now_ms()))
        if r.status != 200:
            raise GatewayError(f"userDataStream.subscribe refused: {_err(r)}")

    async def sync_clock(self, samples: int = 3) -> None:
        """Measure the venue clock offset with `time` requests; keep the lowest-RTT sample."""
        best = None
        for _ in range(samples):
            t0, p0 = time.time_ns(), perf_counter_ns()
            r = await self.call(bn.time_frame)
            t1, p1 = time.time_ns(), perf_counter_ns()
            if r.status != 200:
                raise GatewayError(f"time refused: {_err(r)}")
            server = bn.SERVER_TIME.decode(r.result).serverTime
            if best is None or p1 - p0 < best[0]:
                best = (p1 - p0, t0, server, t1)
        self.rtt_ns = best[0]
        self.set_clock(best[1], best[2], best[3])

    async def reconcile(self, full: bool = True) -> None:
        strangers_total = 0
        for inst, instrument in enumerate(self.instruments):
            r = await self.call(lambda rid, i=inst: self.enc.open_orders(rid, i, self.now_ms()))
            if r.status != 200:
                raise GatewayError(f"openOrders.status {instrument.symbol}: {_err(r)}")
            venue = []
            for o in bn.ORDER_RESULTS.decode(r.result):
                n = self.book.order_id_of(o.clientOrderId)
                if n is None:
                    continue
                venue.append((n, o.orderId, bn.parse_fixed(o.executedQty or "0", instrument.qexp)))
            strangers = self.book.reconcile(venue, {inst})
            for o in bn.ORDER_RESULTS.decode(r.result):
                n = self.book.order_id_of(o.clientOrderId)
                if n is not None and n in strangers:
                    rid = self.next_rid()
                    self._inflight[rid] = (REQ_CANCEL, n, 0)
                    self.send(self.enc._cancel[inst].render(rid, (o.clientOrderId.encode(),
                                                                   self.now_ms())))
                    strangers_total += 1
        self.counts["strangers_canceled"] = self.counts.get("strangers_canceled", 0) + strangers_total
        if full:
            await self.emit_positions()
        self.ready = True
        self.flush_deferred()
        if full:
            self.fills.emit(FILL_RESUME, 0, ALL_INSTRUMENTS)

    async def emit_positions(self) -> None:
        """FILL_POSITION per instrument: base asset free + locked from account.status."""
        r = await self.call(lambda rid: self.enc.account(rid, self.now_ms()))
        if r.status != 200:
            raise GatewayError(f"account.status: {_err(r)}")
        bal = {b.asset: (b.free, b.locked) for b in bn.ACCOUNT.decode(r.result).balances}
        for inst, i in enumerate(self.instruments):
            free, locked = bal.get(i.base, ("0", "0"))
            qty = _to_units(free, i.qexp) + _to_units(locked, i.qexp)
            self.fills.emit(FILL_POSITION, 0, inst, 0, 0, qty)

    async def cancel_everything(self, deadline: float) -> int:
        for inst, i in enumerate(self.instruments):
            r = await self.call_before(
                lambda rid, n=inst: self.enc.cancel_all(rid, n, self.now_ms()), deadline)
            if r is None:
                return -1
            self.counts["cancel_alls_sent"] += 1
            if r.status == 200:
                self._on_ok((REQ_CANCEL_ALL, inst, 0), r.result)
            elif not (r.error is not None and r.error.code == UNKNOWN_ORDER):
                print(f"mm[sender] cancelAll {i.symbol}: {_err(r)}", file=sys.stderr, flush=True)
        still = 0
        for inst in range(len(self.instruments)):
            r = await self.call_before(
                lambda rid, n=inst: self.enc.open_orders(rid, n, self.now_ms()), deadline)
            if r is None or r.status != 200:
                return -1
            still += len(bn.ORDER_RESULTS.decode(r.result))
        return still


def _err(r) -> str:
    e = r.error
    return f"status {r.status} code {e.code} {e.msg!r}" if e is not None else f"status {r.status}"


def _to_units(text: str, exp: int) -> int:
    """A balance string at the instrument's qty exponent, truncated (dust below a lot is 0)."""
    from decimal import ROUND_DOWN, Decimal
    return int((Decimal(text).scaleb(-exp)).to_integral_value(ROUND_DOWN))

