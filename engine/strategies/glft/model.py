"""GLFT quotes (compiled hooks, hot path; set-up in `build_params`).

Model, per instrument, in ticks:
  fair: the mid or the micro-price (fair_value.fair_ticks)
  volatility: E <- E * exp(-lambda * dt) + (mid - mid_prev)^2 on every good book update;
              sigma^2 = lambda * E  (ticks^2 per second; lambda = ln 2 / half-life)
  quotes: half = max(c1 + 0.5*c2*sigma, floor/2), skew = c2 * sigma,
          reservation r = fair - skew * (inventory - target) / order_size,
          level l: bid r - half - l*spacing, ask r + half + l*spacing, one order size each
          (the core rounds bids down and asks up to the tick, keeps them off the other side).
Float operations run in the order written (fastmath off): tests/support/quoter_reference.py
repeats them in plain Python and must produce bit-identical intents.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

from engine.instruments import Instrument
from engine.quoter.arrays import ASK, BID
from engine.strategies.common import FAIR_KINDS
from engine.strategies.defaults import on_fill, on_timer  # noqa: F401  (no fill or timer logic)
from engine.strategies.fair_value import fair_ticks
from engine.strategies.glft.config import GlftConfig

STATE_DTYPE = np.dtype([
    ("fair", "f8"),             # fair value, ticks
    ("mid", "f8"),              # mid of the previous volatility sample, ticks
    ("has_mid", "i8"),
    ("vol_energy", "f8"),       # time-decayed sum of squared mid changes (ticks^2)
    ("last_mid_ns", "i8"),      # read time of the last volatility sample
], align=True)

PARAM_DTYPE = np.dtype([
    ("fair_kind", "i8"),        # strategies.common.FAIR_*
    ("c1", "f8"),               # constant part of the half-spread, ticks
    ("c2", "f8"),               # volatility coefficient (see coefficients)
    ("half_floor", "f8"),       # minimum half-spread, ticks
    ("vol_lambda", "f8"),       # EWMA decay rate, 1/s (ln 2 / half-life)
], align=True)

USES_TIMER = False              # on_timer never asks for a requote


def coefficients(gamma: float, k: float, A: float) -> tuple[float, float]:
    """(c1, c2) of the GLFT closed-form approximation, so that with volatility sigma
         half_spread = c1 + 0.5 * c2 * sigma        skew per unit of inventory = c2 * sigma
    where  c1 = (1/gamma) * ln(1 + gamma/k)
           c2 = sqrt(gamma / (2*A*k) * (1 + gamma/k) ** (1 + k/gamma)).
    Source: Gueant, Lehalle, Fernandez-Tapia, "Dealing with the inventory risk: a solution to the
    market making problem", Math. Financ. Econ. 7 (2013), asymptotic quotes (eq. 4.6-4.7 with
    xi = gamma, Delta = 1); the same form as the GLFT market-making tutorial of hftbacktest."""
    c1 = (1.0 / gamma) * math.log(1.0 + gamma / k)
    c2 = math.sqrt(gamma / (2.0 * A * k) * (1.0 + gamma / k) ** (1.0 + k / gamma))
    return c1, c2


def build_params(cfg: GlftConfig, instruments: tuple[Instrument, ...]) -> np.ndarray:
    """One PARAM_DTYPE row per instrument (the same for all)."""
    par = np.zeros(len(instruments), PARAM_DTYPE)
    c1, c2 = coefficients(cfg.gamma, cfg.k, cfg.A)
    par["fair_kind"] = FAIR_KINDS[cfg.fair_value]
    par["c1"] = c1
    par["c2"] = c2
    par["half_floor"] = 0.5 * cfg.floor_spread_ticks
    par["vol_lambda"] = math.log(2.0) / cfg.vol_half_life_s
    return par


_jit = njit(cache=True, nogil=True, fastmath=False, _nrt=False)


@_jit
def on_book(st, sp, s, p, now):
    """A good book (s.mid set): new fair value and one volatility sample."""
    mid = s.mid
    st.fair = fair_ticks(s, p, sp.fair_kind)
    if st.has_mid:
        dt = (now - st.last_mid_ns) * 1e-9
        r = mid - st.mid
        st.vol_energy = st.vol_energy * math.exp(-sp.vol_lambda * dt) + r * r
    st.mid = mid
    st.last_mid_ns = now
    st.has_mid = 1


@_jit
def quote(st, sp, s, p, want):
    sigma = math.sqrt(st.vol_energy * sp.vol_lambda)
    half = sp.c1 + 0.5 * sp.c2 * sigma
    if half < sp.half_floor:
        half = sp.half_floor
    skew = sp.c2 * sigma
    r = st.fair - skew * ((s.inventory - s.target) / p.size)
    bid = r - half
    ask = r + half
    for level in range(p.levels):
        want[BID, level].px = bid - level * p.spacing
        want[BID, level].qty = p.size
        want[ASK, level].px = ask + level * p.spacing
        want[ASK, level].qty = p.size
