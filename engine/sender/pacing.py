"""Rate-limit pacing and back-off: ORDERS windows space new orders, REQUEST_WEIGHT keeps
questions and reconciles light, a venue's 429 holds new orders (or every request kind); a
ban (`banned`, set by the venue's gateway) holds everything.

Mixed into engine/sender/gateway.py's Gateway, which sets the state these methods use
(pace_ns, next_send_ns, blocked_until_ns, all_blocked_until_ns, weight, banned).
"""
from __future__ import annotations

import asyncio
from time import perf_counter_ns

from engine.proc import log


class Pacing:
    """Pacing and back-off (part of Gateway)."""

    def send_delay_ns(self) -> int:
        """0 when an order may go out now, else how long to wait (ring is left unread)."""
        if self.pace_ns:
            d = self.next_send_ns - perf_counter_ns()
            if d > 0:
                return d
        return 0

    def back_off(self, retry_after_ms: int, status: int, every_kind: bool = True) -> None:
        """The venue limits us (`status`, for the log): no new order until retryAfter (venue
        epoch ms; 0: a second from now), and no request of any kind either when `every_kind`.
        A venue that bans (Binance's 418) sets `banned` too: see its gateway."""
        self.counts["rate_backoffs"] += 1
        wait_ms = max(retry_after_ms - self.now_ms(), 1000) if retry_after_ms else 1000
        until = perf_counter_ns() + wait_ms * 1_000_000
        self.blocked_until_ns = max(self.blocked_until_ns, until)
        if every_kind:
            self.all_blocked_until_ns = max(self.all_blocked_until_ns, until)
        log("sender", f"venue answered {status}: backing off {wait_ms} ms")

    def blocked(self) -> bool:
        """No new order may go out (a 429 of any kind, a ban)."""
        return self.banned or (self.blocked_until_ns and perf_counter_ns() < self.blocked_until_ns)

    def requests_blocked(self) -> bool:
        """No request of any kind may go out: a 429 for request weight (or one whose kind is
        not known), a ban. An ORDERS 429 (too many new orders) holds new orders only."""
        return self.banned or (self.all_blocked_until_ns and
                               perf_counter_ns() < self.all_blocked_until_ns)

    async def wait_unblocked(self, deadline: float) -> bool:
        """Sleep out a back-off, at most until `deadline` (loop time); True when clear."""
        if self.banned:
            return False
        left = (self.all_blocked_until_ns - perf_counter_ns()) / 1e9
        if left <= 0:
            return True
        if asyncio.get_running_loop().time() + left > deadline:
            return False
        await asyncio.sleep(left)
        return True

    def note_weight(self, count: int, limit: int, interval_ms: int) -> None:
        """The REQUEST_WEIGHT window an answer reported (every request kind counts in it)."""
        if limit > 0:
            self.weight = (count, limit, perf_counter_ns() + interval_ms * 1_000_000)

    def weight_tight(self) -> bool:
        """True while the reported REQUEST_WEIGHT use is above the slow-down share: queries are
        kept to one at a time and the periodic reconcile waits (orders and cancels go on)."""
        count, limit, until = self.weight
        return limit > 0 and count > self.scfg.rate_slow_fraction * limit and \
            perf_counter_ns() < until

    def pace(self, limits) -> None:
        """Rate-limit feedback from one answer: `limits` are (count, limit, interval_ms) of
        every ORDERS window the venue reported. Above the slow-down share of any of them,
        order sends are spaced evenly over that window; the widest spacing needed wins, and
        pacing ends only when every window is below half its limit. An answer without ORDERS
        windows (a cancel, a query) says nothing about them: call this only with some."""
        if not limits:
            return
        need = 0
        relaxed = True
        slow = self.scfg.rate_slow_fraction
        for count, limit, interval_ms in limits:
            if limit <= 0:
                continue
            if count > slow * limit:
                need = max(need, interval_ms * 1_000_000 // limit)
            if count >= 0.5 * limit:
                relaxed = False
        if need > self.pace_ns:
            self.pace_ns = need
            self.counts["rate_paced"] += 1
        elif relaxed:
            self.pace_ns = 0
