"""Position truth: the venue's balances against the position our fills add up to, and
what the quoter is told of where it stands (RESET, POSITION, RESUME).

Mixed into engine/sender/gateway.py's Gateway, which sets the state these methods use
(orders, _position_seen, fills, journal, awaiting_reset_seen).
"""
from __future__ import annotations

from time import perf_counter_ns

from engine.proc import log
from engine.records import (ALL_INSTRUMENTS, FILL_POSITION, FILL_RESET, FILL_RESUME,
                            JE_DIVERGENCE, JE_POSITION_REPAIRED)


class Position:
    """Position checks and what the quoter is told (part of Gateway)."""

    def check_position(self, inst: int, venue_qty: int, first: bool, settled: bool) -> None:
        """Compare the venue's base balance with the position our fills add up to. The first
        snapshot sets it. A difference is repaired only when nothing can still explain it (no
        request in flight, no order whose outcome is being asked: `settled`) and the next
        settled check sees the same venue figure (a report on its way explains a one-off)."""
        table = self.orders
        if first or inst not in table.position:
            table.position[inst] = venue_qty
            self._position_seen.pop(inst, None)
        elif venue_qty == table.position[inst]:
            self._position_seen.pop(inst, None)
        elif settled:
            if self._position_seen.get(inst) == venue_qty:
                self.counts["position_repairs"] += 1
                log("sender", f"{self.instruments[inst].symbol}: venue position {venue_qty} "
                              f"differs from our fills' {table.position[inst]} twice: repaired")
                table.position[inst] = venue_qty
                self._position_seen.pop(inst, None)
                self.journal.decision(JE_POSITION_REPAIRED, inst, qty=venue_qty)
            else:
                self.counts["divergences"] += 1
                self._position_seen[inst] = venue_qty
                self.journal.decision(JE_DIVERGENCE, inst, qty=venue_qty)

    def tell_quoter(self, reset: bool, resume: bool) -> None:
        """Where the quoter stands: (RESET: forget every slot,) POSITION per instrument (the
        position our fills add up to, consistent with every TRADE record before it), (RESUME:
        quote). After every reconcile, and for every new quoter process."""
        if reset:
            # intents the quoter publishes before reading it belong to slots it will drop:
            # none is placed until its RESET_SEEN (an order placed for one would rest unmanaged)
            # the token: perf_counter_ns, distinct for every RESET of every sender on the box
            token = self.awaiting_reset_seen = perf_counter_ns()
            self.fills.emit(FILL_RESET, token, ALL_INSTRUMENTS)
        for inst in range(len(self.instruments)):
            if inst in self.orders.position:
                self.fills.emit(FILL_POSITION, 0, inst, 0, 0, self.orders.position[inst])
        if resume:
            self.fills.emit(FILL_RESUME, 0, ALL_INSTRUMENTS)
