"""Order-truth upkeep: the questions asked about UNKNOWN orders, orders concluded gone that
the venue shows live (canceled until it confirms), and the stop's settling of requests in
flight and unknown orders.

Mixed into engine/sender/gateway.py's Gateway, which sets the state these methods use
(orders, _queries, _inflight, rtt, ready) and supplies the venue's `query` and `send_cancel`.
"""
from __future__ import annotations

import asyncio
from time import perf_counter_ns

from engine.sender.errors import GatewayError
from engine.sender.order_state import OPEN, UNKNOWN

QUERIES_IN_FLIGHT = 16       # order.status questions outstanding at once


class OrderTruth:
    """Questions about unknown orders, orphans, the stop's settling (part of Gateway)."""

    def ask_about_unknown_orders(self) -> None:
        """Start order.status questions for UNKNOWN orders that are due (bounded)."""
        if not self.ready:
            return
        room = (1 if self.weight_tight() else QUERIES_IN_FLIGHT) - self._queries
        if room <= 0 or self.requests_blocked():
            return
        loop = asyncio.get_running_loop()
        for o in self.orders.due_queries(self.orders.clock(), room):
            o.querying = True
            self._queries += 1
            loop.create_task(self._ask(o))

    async def _ask(self, o) -> None:
        try:
            await self.query(o)
        except Exception as e:              # no answer, a refusal, an answer we cannot read:
            if not isinstance(e, GatewayError):     # ask again later, not at once
                self.counts["malformed"] += 1
            o.query_due_ns = perf_counter_ns() + max(self.rtt.deadline_ns(),
                                                     self.order_timeout_ns // 4)
        finally:
            o.querying = False
            self._queries -= 1

    def query_timeout_s(self) -> float:
        """How long an order.status question may take (two order deadlines, at most the cap)."""
        return min(2 * self.rtt.deadline_ns(), self.order_timeout_ns) / 1e9

    async def ask_all_unknown(self, deadline: float) -> None:
        """Ask the venue about every UNKNOWN order now (reconcile after a replacement), all at
        once, bounded by `deadline` (loop time); what stays unknown is asked again later."""
        todo = [o for o in self.orders.unknown() if not o.querying]
        if not todo or asyncio.get_running_loop().time() >= deadline:
            return
        for o in todo:
            o.querying = True
            self._queries += 1
        await asyncio.gather(*(self._ask(o) for o in todo))

    def cancel_orphans(self) -> None:
        """Cancel orders concluded gone that the venue showed live (order_state `_revive`), at
        once, and again whenever one is back to OPEN (a cancel refused or "unknown"), until the
        venue confirms it is gone."""
        orders = self.orders
        if orders.to_cancel:
            orders.to_cancel.clear()
        if not self.ready or self.requests_blocked():
            return
        for o in list(orders.live.values()):
            if o.orphan and o.state == OPEN:
                self.send_cancel(o)

    async def settle(self, deadline: float) -> bool:
        """The stop's last step: wait for every request in flight to be answered or expire, and
        ask the venue about every UNKNOWN order, until none is left (True) or `deadline`
        (loop time) passes (False). An order the answers show resting is left OPEN for the
        caller to cancel."""
        loop = asyncio.get_running_loop()
        while True:
            self.expire_requests(perf_counter_ns())
            if not self._inflight and not self.orders.unknown():
                return True
            if loop.time() >= deadline or not self.connected:
                return False
            for o in self.orders.due_queries(self.orders.clock(), QUERIES_IN_FLIGHT):
                o.querying = True
                self._queries += 1
                loop.create_task(self._ask(o))
            await asyncio.sleep(0.02)

    def doubt_live_orders(self) -> None:
        """The venue just listed none of our orders: every live one the table holds with no
        request for it in flight is asked about (never concluded from that absence)."""
        now = self.orders.clock()
        for o in list(self.orders.live.values()):
            if o.state != UNKNOWN and not self.pending_for(o.order_id):
                self.orders.outcome_unknown(o, now)

