"""Binance Spot WebSocket API gateway: intents -> signed frames, answers and executionReports
-> order truth (engine/sender/order_state.py) -> fill records (PROTOCOLS.md sections 3-4).

Choices:
- Replace uses order.cancelReplace with cancelReplaceMode STOP_ON_FAILURE (config): when the
  cancel leg fails (the old order filled or is gone) no new order is placed on top of the fill.
- newOrderRespType ACK: the smallest, fastest answer; fills come from executionReport.
- One connection carries requests, answers and the user data stream
  (userDataStream.subscribe after an Ed25519 session.logon, or .signature with HMAC).
- What an answer means for the order (the venue's documented semantics):
    200                       done as asked
    5xx, -1007, no answer     "execution status unknown": the order is UNKNOWN, order.status asks
    429 / 418                 not done (rate limit / ban): back off - every request kind,
                              except after -1015 (ORDERS windows): then new orders only
    -2011 / -2013 to a cancel the order is gone (filled or canceled) - or, under load, it still
                              rests, or its own place is still on its way: UNKNOWN, asked
                              before anything else (never "done")
    other 4xx                 not done: a new order is rejected, a cancel is refused (the order
                              still rests: the quoter backs off and tries again)
- Cancels name the venue's orderId when we know it (the venue's fastest path), the client id
  otherwise; the safety net cancels only orders carrying our tag, one by one, unless
  sender.symbols_exclusive says the symbols are this engine's alone (openOrders.cancelAll).
"""
from __future__ import annotations

import time
from decimal import Decimal
from time import perf_counter_ns

import msgspec

from engine.journal.writer import asset_word, commission_units
from engine.records import (ACTION_CANCEL, ACTION_NEW, ACTION_REPLACE, ACTION_RESET_SEEN,
                            ALL_INSTRUMENTS, JE_REQ_CANCEL, JE_REQ_CANCEL_ALL, JE_REQ_NEW,
                            JE_REQ_REPLACE)
from engine.sender.errors import GatewayError, VenueRefusal
from engine.sender.gateway import Gateway
from engine.sender.intents import PERMANENT_STREAK
from engine.sender.signing import Ed25519Signer, HmacSigner
from engine.sender.venues.binance import encoding as bn
from engine.sender.venues.binance import wire
from engine.sender.venues.binance.reconcile import BinanceReconcile
from engine.sender.venues.binance.wire import (AUTH_CODES, GONE_CODES, INTERVAL_MS, ORDER_CODES,
                                               REQ_CANCEL, REQ_CANCEL_ALL, REQ_PLACE,
                                               REQ_REPLACE, STATUS_UNKNOWN, TOO_MANY_ORDERS,
                                               error_text)


class BinanceGateway(BinanceReconcile, Gateway):
    """Binance Spot's order gateway: the hot path's hooks, answers and user-data events."""
    venue = "binance"
    CREATES = frozenset((REQ_PLACE, REQ_REPLACE))
    redact = staticmethod(bn.redact)

    def __init__(self, cfg, creds, fills, hist=None, dry_run: bool = False, kill_addr: int = 0):
        super().__init__(cfg, creds, fills, hist, dry_run, kill_addr)
        self._hmac = HmacSigner(creds.secret.reveal()) if creds.secret is not None else None
        self._ed = Ed25519Signer(creds.ed25519_private) if creds.ed25519_private is not None else None
        self.auth = bn.AUTH_SESSION if creds.auth == "ed25519" else bn.AUTH_HMAC
        self.enc = self._encoder(self.auth)
        self._pexp = [i.pexp for i in self.instruments]
        self._qexp = [i.qexp for i in self.instruments]
        # commission paid in the base asset since the first balance snapshot, per instrument:
        # the venue's base balance is our fills' position minus it
        self.base_commission = [Decimal(0)] * len(self.instruments)
        # orders the venue accepted by answer whose order report has not come yet: the
        # user-data stream's proof of life (order id -> perf_counter_ns of the answer)
        self._awaiting_report: dict[int, int] = {}
        self._report_timeout_ns = int(self.scfg.report_timeout_ms * 1e6)

    def _encoder(self, auth: str) -> bn.BinanceEncoder:
        s = self.scfg
        return bn.BinanceEncoder(self.instruments, self.creds.api_key.reveal(), auth, self._hmac,
                                 self._ed, s.recv_window_ms, s.resp_type, s.replace_mode)

    # ================================================================ hot path (hooks of
    # the base's on_intent): every frame goes to the output buffer, written at the batch's end
    def place_into(self, rid: int, order_id: int, inst: int, side: int, post_only: int,
                   cid: bytes, price: int, qty: int, u: int, ts_pub: int, ts_arr: int,
                   t_read: int) -> None:
        """order.place."""
        self.out_len = self.enc.place_into(self.out, self.out_len, rid, inst, side,
                                           post_only, cid, price, qty, self.now_ms())
        self.track(rid, REQ_PLACE, order_id, 0, t_read)
        self.orders.new(order_id, cid, inst, side, price, qty)
        self.counts["orders_sent"] += 1
        self.journal_later.append((JE_REQ_NEW, order_id, 0, inst, side, price, qty, u))
        self.sent(ts_pub, ts_arr, t_read, perf_counter_ns())

    def replace_into(self, rid: int, old, order_id: int, inst: int, side: int, post_only: int,
                     cid: bytes, price: int, qty: int, u: int, ts_pub: int, ts_arr: int,
                     t_read: int) -> None:
        """order.cancelReplace of `old` (cancelReplaceMode: sender.replace_mode)."""
        orig = old.order_id
        self.out_len = self.enc.replace_into(self.out, self.out_len, rid, inst, side,
                                             post_only, old.cid, cid, price, qty,
                                             self.now_ms())
        self.track(rid, REQ_REPLACE, order_id, orig, t_read)
        self.orders.cancel_sent(old)
        self.orders.new(order_id, cid, inst, side, price, qty)
        self.counts["replaces_sent"] += 1
        self.journal_later.append((JE_REQ_REPLACE, order_id, orig, inst, side, price,
                                   qty, u))
        self.sent(ts_pub, ts_arr, t_read, perf_counter_ns())

    def send_cancel(self, o, ts_pub: int = 0, ts_arr: int = 0, t_read: int = 0) -> None:
        """order.cancel for a live order, by the venue's id when known (its fastest lookup)."""
        rid = self._rid = self._rid + 1
        self.out_len = self.enc.cancel_into(self.out, self.out_len, rid, o.instrument, o.cid,
                                            o.venue_id, self.now_ms())
        t_signed = perf_counter_ns()
        self.track(rid, REQ_CANCEL, o.order_id, 0, t_read or t_signed)
        self.orders.cancel_sent(o)
        self.counts["cancels_sent"] += 1
        self.journal_later.append((JE_REQ_CANCEL, o.order_id, 0, o.instrument, o.side, o.price))
        self.sent(ts_pub, ts_arr, t_read or t_signed, t_signed)

    def cancel_ours(self, inst: int) -> None:
        """The quoter's CANCEL_ALL; with symbols_exclusive, openOrders.cancelAll instead of
        one cancel per order of ours."""
        if not self.scfg.symbols_exclusive:
            super().cancel_ours(inst)
            return
        self.mark_stop_cancels()
        for n in range(len(self.instruments)) if inst == ALL_INSTRUMENTS else (inst,):
            rid = self.next_rid()
            self.track(rid, REQ_CANCEL_ALL, 0, 0, perf_counter_ns())
            self.send(self.enc.cancel_all(rid, n, self.now_ms()))
            self.counts["cancel_alls_sent"] += 1
            self.journal.request(JE_REQ_CANCEL_ALL, 0, 0, n)

    def dry_intent(self, f: tuple, t_read: int) -> None:
        """Dry run: every intent rendered and logged as it would go, no order table."""
        (_seq, order_id, orig, inst, action, side, _l, post_only, price, qty, u, ts_arr,
         _, _, ts_pub) = f
        if action == ACTION_RESET_SEEN:
            self.reset_seen(order_id)
            return
        cid = self.cid_of(u, order_id)
        rid = self.next_rid()
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
        self.dry_write(frame)
        self.record_latency(ts_pub, ts_arr, t_read, t_signed, perf_counter_ns())

    # ================================================================ incoming frames
    def on_frame(self, payload: bytes) -> None:
        try:
            fr = wire.FRAME.decode(payload)
        except msgspec.DecodeError:
            self.counts["malformed"] += 1
            return
        if fr.rateLimits:
            self._rate_limits(fr.rateLimits)
        if fr.event:
            self._on_event(fr.event)
            return
        if fr.status in (429, 418):
            data = fr.error.data if fr.error is not None else None
            if fr.status == 418:             # banned: stop sending (the process pulls the kill
                self.banned = True           # switch); a 418 holds every request kind
            self.back_off(data.retryAfter if data is not None else 0, fr.status,
                          every_kind=fr.status == 418 or fr.error is None
                          or fr.error.code != TOO_MANY_ORDERS)
        if self.resolve(fr.id, fr):
            return
        req = self.take_request(fr.id) if isinstance(fr.id, int) else None
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
            self.request_unknown(req, perf_counter_ns())
        if self.orders.to_cancel:            # an order we called gone rests: cancel it now
            self.cancel_orphans()

    def _rate_limits(self, entries) -> None:
        """ORDERS windows pace new orders (only when the answer has some); REQUEST_WEIGHT is
        noted for every request kind."""
        orders = []
        for rl in entries:
            span = INTERVAL_MS.get(rl.interval, 1000) * max(rl.intervalNum, 1)
            if rl.rateLimitType == "ORDERS":
                orders.append((rl.count, rl.limit, span))
            elif rl.rateLimitType == "REQUEST_WEIGHT":
                self.note_weight(rl.count, rl.limit, span)
        if orders:
            self.pace(orders)

    def _apply_result(self, o, r: wire.OrderResult) -> None:
        """An order result (cancel answer, status, open orders entry): its fills, then its
        status."""
        executed = wire.parse_fixed(r.executedQty, self._qexp[o.instrument]) if r.executedQty else 0
        self.orders.venue_status(o, wire.state_of(r.status or "CANCELED"), executed,
                                 r.orderId)

    def _on_ok(self, req: tuple, result: msgspec.Raw) -> None:
        kind, oid, orig = req[:3]
        orders = self.orders
        if kind == REQ_PLACE:
            o = orders.find(oid)
            if o is not None:
                r = wire.ORDER_RESULT.decode(result)
                orders.accepted(o, r.orderId, r.transactTime * 1_000_000)
                self.accepted_one()
                self._expect_report(o)
        elif kind == REQ_REPLACE:
            r = wire.REPLACE_RESULT.decode(result)
            old, new = orders.find(orig), orders.find(oid)
            if old is not None:
                if r.cancelResponse is not None:
                    self._apply_result(old, r.cancelResponse)
                else:
                    orders.canceled(old)
            if new is not None:
                n = r.newOrderResponse
                orders.accepted(new, n.orderId if n else 0, n.transactTime * 1_000_000 if n else 0)
                self.accepted_one()
                self._expect_report(new)
        elif kind == REQ_CANCEL:
            o = orders.find(oid)
            if o is not None:
                self._apply_result(o, wire.ORDER_RESULT.decode(result))
        elif kind == REQ_CANCEL_ALL:
            for r in wire.ORDER_RESULTS.decode(result):
                n = orders.order_id_of(r.origClientOrderId or r.clientOrderId)
                o = orders.find(n) if n is not None else None
                if o is not None:
                    self._apply_result(o, r)

    def _on_error(self, req: tuple, fr: wire.Frame) -> None:
        kind, oid, orig = req[:3]
        orders = self.orders
        err = fr.error or wire.ApiError()
        code = err.code
        if fr.status >= 500 or code == STATUS_UNKNOWN:     # not known whether it was done
            self.counts["server_errors"] += 1
            self.request_unknown(req, perf_counter_ns())
            return
        if code in AUTH_CODES:
            self.refusal = f"venue refused us ({code} {err.msg}): {AUTH_CODES[code]}"
        if kind == REQ_PLACE:
            o = orders.find(oid)
            if o is not None:
                orders.rejected(o, code)
                self._note_order_refusal(o.instrument, code, err.msg)
        elif kind == REQ_REPLACE:
            old, new = orders.find(orig), orders.find(oid)
            data = err.data
            if data is not None and data.cancelResult:      # the venue ran the legs
                if old is not None:
                    if data.cancelResult == "SUCCESS":
                        self._apply_result(old, wire.ORDER_RESULT.decode(data.cancelResponse))
                    else:
                        self._cancel_failed(old, wire.API_ERROR.decode(data.cancelResponse).code
                                            or code)
                if new is not None:
                    if data.newOrderResult == "SUCCESS":
                        r = wire.ORDER_RESULT.decode(data.newOrderResponse)
                        orders.accepted(new, r.orderId, r.transactTime * 1_000_000)
                    else:
                        new_code = code
                        if data.newOrderResult == "FAILURE" and data.newOrderResponse:
                            new_code = wire.API_ERROR.decode(data.newOrderResponse).code or code
                        orders.rejected(new, new_code)
                        if data.newOrderResult == "FAILURE":
                            self._note_order_refusal(new.instrument, new_code, err.msg)
            else:                                           # refused as a whole: nothing done
                if old is not None:
                    orders.cancel_refused(old, code)
                if new is not None:
                    orders.rejected(new, code)
                    self._note_order_refusal(new.instrument, code, err.msg)
        elif kind == REQ_CANCEL:
            o = orders.find(oid)
            if o is not None:
                self._cancel_failed(o, code)
        elif kind == REQ_CANCEL_ALL:
            pass          # -2011: nothing was open; otherwise the next reconcile looks

    def _cancel_failed(self, o, code: int) -> None:
        if code in GONE_CODES:
            self.orders.outcome_unknown(o)      # filled or canceled - or a false answer: ask
        else:
            self.orders.cancel_refused(o, code)

    def _note_order_refusal(self, inst: int, code: int, msg: str) -> None:
        what = ORDER_CODES.get(code)
        self.refused(code, what is not None or code in AUTH_CODES,
                     f"{self.instruments[inst].symbol}: venue refused {PERMANENT_STREAK} "
                     f"orders in a row ({code} {msg}): {what}")

    def _on_event(self, raw: msgspec.Raw) -> None:
        try:
            kind = wire.EVENT_KIND.decode(raw).e
            if kind != "executionReport":
                if kind == "serverShutdown":
                    self.shutdown_notice = True
                self.counts["other_events"] += 1
                return
            er = wire.EXECUTION_REPORT.decode(raw)
        except (msgspec.DecodeError, msgspec.ValidationError):
            self.counts["malformed"] += 1
            return
        x = er.x
        cid = er.C if (x == "CANCELED" and er.C) else er.c
        orders = self.orders
        n = orders.order_id_of(cid)
        inst = self.inst_by_symbol.get(er.s)
        if n is None or inst is None:
            self.counts["foreign_events"] += 1
            return
        o = orders.find(n)
        if o is None:
            orders.report_for_unknown_id(n)
            return
        if not o.reported:
            o.reported = True
            self._awaiting_report.pop(n, None)
        ts = er.T * 1_000_000
        try:
            cum = wire.parse_fixed(er.z, self._qexp[inst])
            if x == "NEW":
                orders.accepted(o, er.i, ts)
            elif x == "TRADE":
                before = o.cum_qty
                px = wire.parse_fixed(er.L, self._pexp[inst])
                orders.traded(o, px, cum, ts)
                if o.cum_qty > before:       # once per new fill
                    if er.N == self.instruments[inst].base and er.n:
                        self.base_commission[inst] += Decimal(er.n)
                    self.journal.exec_trade(n, er.i, er.t, inst, o.side, px,
                                            wire.parse_fixed(er.l, self._qexp[inst]), cum,
                                            commission_units(er.n) if er.N else 0,
                                            asset_word(er.N), er.m, ts)
            elif x in ("CANCELED", "EXPIRED", "TRADE_PREVENTION"):
                if x == "TRADE_PREVENTION" and er.X not in ("EXPIRED", "EXPIRED_IN_MATCH"):
                    return
                if cum > o.cum_qty:
                    orders.traded(o, o.price, cum, ts)
                orders.canceled(o, ts)
            elif x == "REJECTED":
                orders.rejected(o, -2010, ts)
            else:
                self.counts["other_events"] += 1
        except (ValueError, ArithmeticError):
            self.counts["malformed"] += 1
        if orders.to_cancel:
            self.cancel_orphans()

    # ================================================================ user-data stream liveness
    def _expect_report(self, o) -> None:
        if not o.reported:
            self._awaiting_report[o.order_id] = perf_counter_ns()

    def fresh_connection(self) -> None:
        super().fresh_connection()
        self._awaiting_report.clear()        # a new subscription: the truth comes by reconcile

    def dead_reason(self, now_ns: int) -> str:
        """The connection's own proof of life, then the user-data stream's: two orders the
        venue accepted whose reports have not come within report_timeout_ms (one alone may be
        a lost report; older ones are forgotten)."""
        reason = super().dead_reason(now_ns)
        waiting = self._awaiting_report
        if reason or not waiting:
            return reason
        late = [t for t in waiting.values() if now_ns - t > self._report_timeout_ns]
        if len(late) >= 2:
            return (f"user-data stream silent: {len(late)} accepted orders without a report "
                    f"for {(now_ns - min(late)) // 1_000_000} ms")
        if late:
            forget = now_ns - 3 * self._report_timeout_ns
            for n in [n for n, t in waiting.items() if t < forget]:
                del waiting[n]
        return ""

    # ================================================================ set-up
    async def logon(self, transport) -> None:
        """Clock sync, then session.logon (Ed25519) or nothing (HMAC), then user data."""
        await self.sync_clock(transport)
        key = self.creds.api_key.reveal()
        if self.auth == bn.AUTH_SESSION:
            r = await self.call(lambda rid: bn.logon_frame(rid, key, self._ed, self.now_ms(),
                                                           self.scfg.recv_window_ms),
                                transport=transport)
            if r.status != 200:
                raise self._logon_error("session.logon", r)
        r = await self.call(lambda rid: bn.user_stream_frame(rid, self.auth, key, self._hmac,
                                                             self.now_ms()), transport=transport)
        if r.status != 200:
            raise self._logon_error("userDataStream.subscribe", r)

    def _logon_error(self, what: str, r) -> GatewayError:
        code = r.error.code if r.error is not None else 0
        if code in AUTH_CODES:
            return VenueRefusal(f"{what} refused ({error_text(r)}): {AUTH_CODES[code]}")
        return GatewayError(f"{what} refused: {error_text(r)}")

    async def sync_clock(self, transport=None, samples: int = 3) -> None:
        """Measure the venue clock offset with `time` requests; keep the lowest-RTT sample."""
        best = None
        for _ in range(samples):
            t0, p0 = time.time_ns(), perf_counter_ns()
            r = await self.call(bn.time_frame, transport=transport)
            t1, p1 = time.time_ns(), perf_counter_ns()
            if r.status != 200:
                raise GatewayError(f"time refused: {error_text(r)}")
            server = wire.SERVER_TIME.decode(r.result).serverTime
            if best is None or p1 - p0 < best[0]:
                best = (p1 - p0, t0, server, t1)
        self.rtt_ns = best[0]
        self.set_clock(best[1], best[2], best[3])
