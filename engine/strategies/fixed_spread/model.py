"""Fixed spread with inventory skew (compiled hooks, hot path; set-up in `build_params`).

Per instrument, in ticks: skew = clamp(skew_ticks * (inventory - target) / order_size,
-max_skew, max_skew); level l: bid fair - half - skew - l*spacing, ask fair + half - skew +
l*spacing, one order size each. Long inventory lowers both quotes (buy less eagerly, sell more
eagerly), short raises them. No clock, no volatility: the quotes depend on the book and the
inventory only.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from engine.instruments import Instrument
from engine.quoter.arrays import ASK, BID
from engine.strategies.common import FAIR_KINDS
from engine.strategies.defaults import on_fill, on_timer  # noqa: F401  (no fill or timer logic)
from engine.strategies.fair_value import fair_ticks
from engine.strategies.fixed_spread.config import FixedSpreadConfig

STATE_DTYPE = np.dtype([
    ("fair", "f8"),             # fair value of the last good book, ticks
    ("books", "i8"),            # good books seen
], align=True)

PARAM_DTYPE = np.dtype([
    ("fair_kind", "i8"),        # strategies.common.FAIR_*
    ("half", "f8"),             # level-0 distance from the fair value, ticks
    ("skew", "f8"),             # ticks per order size of inventory
    ("max_skew", "f8"),         # ticks
], align=True)

USES_TIMER = False


def build_params(cfg: FixedSpreadConfig, instruments: tuple[Instrument, ...]) -> np.ndarray:
    par = np.zeros(len(instruments), PARAM_DTYPE)
    par["fair_kind"] = FAIR_KINDS[cfg.fair_value]
    par["half"] = cfg.half_spread_ticks
    par["skew"] = cfg.skew_ticks
    par["max_skew"] = cfg.max_skew_ticks
    return par


_jit = njit(cache=True, nogil=True, fastmath=False, _nrt=False)


@_jit
def on_book(st, sp, s, p, now):
    st.fair = fair_ticks(s, p, sp.fair_kind)
    st.books += 1


@_jit
def quote(st, sp, s, p, want):
    skew = sp.skew * ((s.inventory - s.target) / p.size)
    if skew > sp.max_skew:
        skew = sp.max_skew
    elif skew < -sp.max_skew:
        skew = -sp.max_skew
    centre = st.fair - skew
    for level in range(p.levels):
        want[BID, level].px = centre - sp.half - level * p.spacing
        want[BID, level].qty = p.size
        want[ASK, level].px = centre + sp.half + level * p.spacing
        want[ASK, level].qty = p.size
