"""Bybit order truth without questions: /v5/trade has no order query and no open-orders
list (REST only), so an UNKNOWN order is settled by canceling it, a reconcile trusts the local
table, and the safety net cancels every live order one by one.

Mixed into BybitGateway (gateway.py), which supplies the encoder (`enc`) and `send_cancel`.
"""
from __future__ import annotations

import asyncio
from time import perf_counter_ns

from engine.proc import log
from engine.sender.venues.bybit.wire import REQ_CANCEL


class BybitReconcile:
    """Questions, reconciles and the safety net (part of BybitGateway)."""

    async def query(self, o) -> None:
        """No order query on /v5/trade: an UNKNOWN order is settled by canceling it by its
        orderLinkId - canceled means it rested (and now does not), "not found" means it does
        not rest. Either way nothing of ours rests unmanaged."""
        rid = self.next_rid()
        self.track(rid, REQ_CANCEL, o.order_id, 0, perf_counter_ns())
        self.send(self.enc.cancel(rid, o.instrument, o.cid, self.now_ms()))
        self.orders.counts["queries_sent"] += 1
        o.query_due_ns = perf_counter_ns() + 2 * self.order_timeout_ns

    async def reconcile(self, full: bool = True) -> None:
        # No open-orders query on /v5/trade (REST only): the local table stays the truth.
        first = not self._reconciled_once
        self._reconciled_once = True
        self.ready = True
        self.flush_deferred()
        self.tell_quoter(reset=first, resume=full)

    async def cancel_everything(self, deadline: float) -> int:
        loop = asyncio.get_running_loop()
        for o in list(self.orders.live.values()):
            self.send_cancel(o)
        while self.orders.live and loop.time() < deadline and self.connected:
            await asyncio.sleep(0.01)
        if self.orders.live:
            log("sender", f"bybit: {len(self.orders.live)} orders not confirmed canceled")
        return len(self.orders.live) if self.connected else -1
