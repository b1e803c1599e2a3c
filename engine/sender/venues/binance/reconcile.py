"""Binance order truth by asking: order.status for an UNKNOWN order, openOrders.status and
account.status for a reconcile (ours confirmed, unlisted ones asked about, strangers of our tag
canceled, positions checked), and the safety net's cancel-everything-and-confirm.

Mixed into BinanceGateway (gateway.py), which supplies the encoder (`enc`), `_apply_result`,
`_on_ok` and the commission it keeps per instrument.
"""
from __future__ import annotations

import asyncio
from decimal import ROUND_DOWN, Decimal

from engine.proc import log
from engine.records import JE_STRANGER_CANCELED
from engine.sender.errors import GatewayError
from engine.sender.order_state import PENDING_NEW, UNKNOWN
from engine.sender.venues.binance import wire
from engine.sender.venues.binance.wire import (GONE_CODES, NO_SUCH_ORDER, REQ_CANCEL_ALL,
                                               error_text)

STRANGER_TRIES = 3


class BinanceReconcile:
    """Questions, reconciles and the safety net (part of BinanceGateway)."""

    async def query(self, o) -> None:
        """order.status by client id, applied to the order (UNKNOWN until the venue knows)."""
        self.orders.counts["queries_sent"] += 1
        r = await self.call(lambda rid: self.enc.status(rid, o.instrument, o.cid, self.now_ms()),
                            timeout=self.query_timeout_s())
        if r.status == 200:
            self._apply_result(o, wire.ORDER_RESULT.decode(r.result))
        elif r.error is not None and r.error.code == NO_SUCH_ORDER:
            self.orders.not_found(o, self.orders.clock(), busy=self.pending_for(o.order_id))
        else:
            raise GatewayError(f"order.status {o.cid.decode()}: {error_text(r)}")

    async def _open_orders(self, inst: int, deadline: float | None = None):
        build = lambda rid: self.enc.open_orders(rid, inst, self.now_ms())   # noqa: E731
        r = await (self.call_before(build, deadline) if deadline else self.call(build))
        if r is None:
            return None
        if r.status != 200:
            raise GatewayError(f"openOrders.status {self.instruments[inst].symbol}: {error_text(r)}")
        return wire.ORDER_RESULTS.decode(r.result)

    async def reconcile(self, full: bool = True) -> None:
        """Open orders of every instrument against the table: ours that rest are confirmed
        (an UNKNOWN one is resolved), ours that do not are asked about (never concluded from
        absence), ours that no live order holds are canceled (a previous process's, or a
        divergence); then positions, and the quoter is told where it stands (a new sender
        process first tells it to forget its slots: FILL_RESET)."""
        orders = self.orders
        first = not self._reconciled_once
        self.counts["reconciles"] += 1
        strangers = []
        for inst in range(len(self.instruments)):
            listed = set()
            asked = self.orders.clock()
            busy = {n for req in self._inflight.values() for n in req[1:3] if n}
            for e in await self._open_orders(inst):
                n = orders.order_id_of(e.clientOrderId)
                if n is None:
                    continue                          # not ours: never touched
                o = orders.find(n)
                if o is not None and (o.live or o.concluded):
                    listed.add(n)
                    self._apply_result(o, e)          # (one we called gone: revived, canceled)
                else:
                    if o is not None:
                        self.counts["divergences"] += 1   # we thought it finished
                    strangers.append((inst, e))
            self._unlisted_unknown(inst, listed, asked, busy)
        left = await self._cancel_strangers(strangers) if strangers else 0
        r = await self.call(lambda rid: self.enc.account(rid, self.now_ms()))
        if r.status != 200:
            raise GatewayError(f"account.status: {error_text(r)}")
        bal = {b.asset: (b.free, b.locked) for b in wire.ACCOUNT.decode(r.result).balances}
        settled = not self._inflight and not orders.unknown()
        for inst, i in enumerate(self.instruments):
            free, locked = bal.get(i.base, ("0", "0"))
            if first:
                self.base_commission[inst] = Decimal(0)
            held = Decimal(free) + Decimal(locked) + self.base_commission[inst]
            self.check_position(inst, _to_units(str(held), i.qexp), first, settled)
        if full:                             # every unknown asked once before quoting resumes
            await self.ask_all_unknown(asyncio.get_running_loop().time()
                                       + self.scfg.request_timeout_s)
        self._reconciled_once = True
        self.ready = True
        self.flush_deferred()
        self.cancel_orphans()
        # orders of our tag left resting that no slot holds: no RESUME until they are gone
        resume = (full or self.resume_owed) and left == 0
        self.resume_owed = (full or self.resume_owed) and left > 0
        # a new sender knows none of the quoter's slots: RESET (what they held rests no more,
        # or is canceled above as a stranger)
        self.tell_quoter(reset=first, resume=resume)

    def _unlisted_unknown(self, inst: int, listed: set, asked: int, busy: set) -> None:
        """Our live orders on `inst` that openOrders did not list are asked about (never
        concluded from absence) - except those the answer cannot speak for: a request for
        them was in flight when the question was asked (`busy`), is in flight now, or left
        after the question (the look is taken after the await, not from a snapshot)."""
        now = self.orders.clock()
        for o in list(self.orders.live.values()):
            if (o.instrument == inst and o.order_id not in listed and o.state != UNKNOWN
                    and o.order_id not in busy and o.last_sent_ns < asked
                    and not self.pending_for(o.order_id) and not (
                        o.state == PENDING_NEW and now - o.ts_sent < self.order_timeout_ns)):
                self.orders.outcome_unknown(o, now)   # not listed: ask, do not conclude

    async def _cancel_strangers(self, strangers: list) -> int:
        """Cancel orders of our tag that no live order holds; refused cancels are retried.
        Returns how many are left resting (0: all gone)."""
        for _ in range(STRANGER_TRIES):
            answers = await asyncio.gather(*(self.call(
                lambda rid, i=inst, v=e.orderId: self.enc.cancel_by_id(rid, i, v, self.now_ms()))
                for inst, e in strangers), return_exceptions=True)
            left = []
            for (inst, e), r in zip(strangers, answers):
                if isinstance(r, Exception) or (r.status != 200 and not (
                        r.error is not None and r.error.code in GONE_CODES)):
                    left.append((inst, e))
                else:
                    self.counts["strangers_canceled"] += r.status == 200
                    self.journal.decision(JE_STRANGER_CANCELED, inst,
                                          self.orders.order_id_of(e.clientOrderId) or 0,
                                          venue_order_id=e.orderId)
            strangers = left
            if not strangers:
                return 0
        log("sender", f"{len(strangers)} orders of our tag not canceled yet; quoting waits, "
                      f"the next reconcile tries again")
        return len(strangers)

    async def cancel_everything(self, deadline: float) -> int:
        loop = asyncio.get_running_loop()
        left = -1
        while loop.time() < deadline:
            if not await self.wait_unblocked(deadline):    # a 429 back-off applies here too
                return -1
            ours = []
            for inst in range(len(self.instruments)):
                if self.scfg.symbols_exclusive:
                    r = await self.call_before(
                        lambda rid, n=inst: self.enc.cancel_all(rid, n, self.now_ms()), deadline)
                    if r is not None and r.status == 200:
                        self._on_ok((REQ_CANCEL_ALL, 0, 0), r.result)
                entries = await self._open_orders(inst, deadline)
                if entries is None:
                    return -1
                ours += [(inst, e) for e in entries
                         if self.orders.order_id_of(e.clientOrderId) is not None]
            left = len(ours)
            if not ours:
                return 0
            answers = await asyncio.gather(*(self.call_before(
                lambda rid, i=inst, v=e.orderId: self.enc.cancel_by_id(rid, i, v, self.now_ms()),
                deadline) for inst, e in ours), return_exceptions=True)
            for (inst, e), r in zip(ours, answers):
                if isinstance(r, Exception) or r is None or r.status != 200:
                    continue
                self.counts["cancels_sent"] += 1
                o = self.orders.find(self.orders.order_id_of(e.clientOrderId))
                if o is not None:
                    self._apply_result(o, wire.ORDER_RESULT.decode(r.result))
            await asyncio.sleep(0.02)
        return left



def _to_units(text: str, exp: int) -> int:
    """A balance string at the instrument's qty exponent, truncated (dust below a lot is 0)."""
    return int((Decimal(text).scaleb(-exp)).to_integral_value(ROUND_DOWN))
