"""The fair value strategies quote around, in ticks (compiled, hot path)."""
from __future__ import annotations

from numba import njit

from engine.strategies.common import FAIR_MICRO


@njit(cache=True, nogil=True, fastmath=False, _nrt=False)
def fair_ticks(s, p, kind):
    """The book's mid (FAIR_MID), or the size-weighted micro-price (FAIR_MICRO), in ticks, of
    the core's instrument row `s` (a good book: both sides present, not crossed)."""
    if kind == FAIR_MICRO:
        b = s.bid_px / p.tick
        a = s.ask_px / p.tick
        bq = float(s.bid_qty)
        aq = float(s.ask_qty)
        return (b * aq + a * bq) / (bq + aq)
    return s.mid
