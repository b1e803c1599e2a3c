"""Set-up: turn the configuration and the instrument table into the numeric parameters the hot
path uses (PARAM_DTYPE rows), once, at start. Nothing here runs per tick."""
from __future__ import annotations

import math
from decimal import Decimal

import numpy as np

from engine.instruments import Instrument
from engine.quoter.config import QuoterConfig
from engine.quoter.arrays import FAIR_KINDS, PARAM_DTYPE


def glft_coefficients(gamma: float, k: float, A: float) -> tuple[float, float]:
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


def units(value: str, exp: int) -> int:
    """Decimal string -> integer mantissa at 10**exp, rounded down (toward zero)."""
    return int(Decimal(value).scaleb(-exp).to_integral_value(rounding="ROUND_DOWN"))


def build_params(q: QuoterConfig, instruments: tuple[Instrument, ...]) -> np.ndarray:
    """One PARAM_DTYPE row per instrument."""
    par = np.zeros(len(instruments), PARAM_DTYPE)
    c1, c2 = glft_coefficients(q.gamma, q.k, q.A)
    exp_min = min(i.pexp + i.qexp for i in instruments)
    for n, inst in enumerate(instruments):
        size = units(q.size_for(inst.symbol), inst.qexp)
        size -= size % inst.lot
        p = par[n]
        p["tick"] = inst.tick
        p["size"] = max(size, inst.lot)
        p["max_position"] = units(q.max_position_for(inst.symbol), inst.qexp)
        p["max_notional"] = units(q.max_notional, inst.pexp + inst.qexp)
        p["pnl_scale"] = 10 ** (inst.pexp + inst.qexp - exp_min)
        p["levels"] = q.levels
        p["spacing"] = q.level_spacing_ticks
        p["requote_ticks"] = q.requote_ticks
        p["max_age_ns"] = q.max_quote_age_ms * 1_000_000
        p["stale_ns"] = q.stale_after_ms * 1_000_000
        p["fair_kind"] = FAIR_KINDS[q.fair_value]
        p["c1"] = c1
        p["c2"] = c2
        p["half_floor"] = 0.5 * q.floor_spread_ticks
        p["vol_lambda"] = math.log(2.0) / q.vol_half_life_s
        p["band"] = q.price_band_bps * 1e-4
        p["backoff_ns"] = int(q.retry_backoff_ms * 1e6)
        p["backoff_cap_ns"] = int(q.retry_backoff_cap_ms * 1e6)
        p["cancel_after"] = q.cancel_after_failures
    return par


def pnl_exponent(instruments: tuple[Instrument, ...]) -> int:
    """Exponent of the common PnL unit (the `pnl` counter and max_drawdown)."""
    return min(i.pexp + i.qexp for i in instruments)


def max_drawdown_units(q: QuoterConfig, instruments: tuple[Instrument, ...]) -> int:
    return units(q.max_drawdown, pnl_exponent(instruments))
