"""Order requests in flight: tracked by request id until answered, given a deadline measured
from the round trips (engine/sender/liveness.py); one not answered by then, or sent on a
connection that ended, has an unknown outcome.

Mixed into engine/sender/gateway.py's Gateway, which sets the state these methods use
(_inflight, _expired, rtt, liveness, orders, counts).
"""
from __future__ import annotations

from time import perf_counter_ns

from engine._native import hist_record

EXPIRED_KEPT = 4096          # timed-out requests remembered so a late answer is still applied


class Inflight:
    """Requests in flight and their deadlines (part of Gateway)."""

    def track(self, rid: int, kind: int, order_id: int, orig: int, t_sent: int) -> None:
        self._inflight[rid] = (kind, order_id, orig, t_sent, self.transport)

    def take_request(self, rid) -> tuple | None:
        """The request an answer belongs to (a timed-out one too: its answer is still the
        truth, applied idempotently), or None."""
        req = self._inflight.pop(rid, None)
        if req is None:
            req = self._expired.pop(rid, None)
            if req is not None:
                self.counts["late_answers"] += 1    # not a sample (Karn), but a sign of life
                self.liveness.answered()
            return req
        rtt = perf_counter_ns() - req[3]
        self.rtt.sample(rtt)
        if self._h_rtt:                 # the venue's round trips: mm backtest --latency-from
            hist_record(self._h_rtt, rtt)
        self.liveness.answered()
        return req

    def expire_requests(self, now_ns: int) -> None:
        """Order requests unanswered past their measured deadline: outcome unknown."""
        limit = now_ns - self.rtt.deadline_ns()
        late = [rid for rid, req in self._inflight.items() if req[3] < limit]
        if not late:
            return
        self.rtt.missed()
        # one miss per pass: a burst caught by one slow spell of the venue is one sign, not
        # several (each new request that goes unanswered later is another)
        here = [self._inflight[rid][3] for rid in late if self._inflight[rid][4] is self.transport]
        if here:
            self.liveness.missed(max(here))
        for rid in late:
            req = self._inflight.pop(rid)
            self._expired[rid] = req
            self.counts["timeouts"] += 1
            self.request_unknown(req, now_ns)
        while len(self._expired) > EXPIRED_KEPT:
            del self._expired[next(iter(self._expired))]

    def request_unknown(self, req: tuple, now_ns: int) -> None:
        """Every order `req` touched has an unknown outcome (the venue is asked), except a new
        order whose acceptance a report already told (its creation is not in doubt)."""
        kind, order_id, orig = req[:3]
        for n in (orig, order_id):          # the old order first (ordering contract)
            o = self.orders.get(n) if n else None
            if o is not None and not (n == order_id and kind in self.CREATES and o.acked
                                      and not o.cancel_asked):
                self.orders.outcome_unknown(o, now_ns)

    CREATES: frozenset = frozenset()        # request kinds whose order_id is a new order

    def in_flight(self) -> int:
        return len(self._inflight)

    def pending_for(self, order_id: int) -> bool:
        """True while a request touching `order_id` waits for its answer."""
        return any(order_id == req[1] or order_id == req[2] for req in self._inflight.values())

    def _orphan_requests(self, transport) -> None:
        """Requests sent on a connection that ended: their outcome is unknown."""
        now = perf_counter_ns()
        for rid in [r for r, req in self._inflight.items()
                    if transport is None or req[4] is transport]:
            self.request_unknown(self._inflight.pop(rid), now)


    def unknown_summary(self) -> str:
        """What is not known at a stop: requests in flight and UNKNOWN orders, by client id."""
        unknown = [o.cid.decode() for o in self.orders.unknown()]
        return (f"{len(self._inflight)} requests unanswered, {len(unknown)} orders of unknown "
                f"outcome{': ' + ', '.join(unknown[:10]) if unknown else ''}")
