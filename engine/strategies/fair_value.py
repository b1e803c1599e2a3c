"""The fair value strategies quote around, in ticks (compiled, hot path)."""
from __future__ import annotations

from numba import njit

from engine.strategies.common import FAIR_DEPTH, FAIR_MICRO


@njit(cache=True, nogil=True, fastmath=False, _nrt=False)
def fair_ticks(s, p, kind):
    """The book's mid (FAIR_MID), or the size-weighted micro-price (FAIR_MICRO), or the same
    weighed by the L2 book's best `depth_levels` sizes per side (FAIR_DEPTH: the mid while the
    depth is unknown or stale), in ticks, of the core's instrument row `s` (a good book: both
    sides present, not crossed)."""
    if kind == FAIR_DEPTH:
        bq = float(s.depth_bid_qty)
        aq = float(s.depth_ask_qty)
        if s.depth_stale != 0 or bq <= 0.0 or aq <= 0.0:
            return s.mid
        b = s.bid_px / p.tick
        a = s.ask_px / p.tick
        return (b * aq + a * bq) / (bq + aq)
    if kind == FAIR_MICRO:
        b = s.bid_px / p.tick
        a = s.ask_px / p.tick
        bq = float(s.bid_qty)
        aq = float(s.ask_qty)
        return (b * aq + a * bq) / (bq + aq)
    return s.mid
