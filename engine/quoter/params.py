"""Set-up: turn the configuration and the instrument table into the numeric parameters the hot
path uses (PARAM_DTYPE rows of the core; the strategy builds its own), once, at start. Nothing
here runs per tick."""
from __future__ import annotations

from decimal import Decimal

import numpy as np

from engine.instruments import Instrument
from engine.quoter.config import QuoterConfig
from engine.quoter.arrays import PARAM_DTYPE


def units(value: str, exp: int) -> int:
    """Decimal string -> integer mantissa at 10**exp, rounded down (toward zero)."""
    return int(Decimal(value).scaleb(-exp).to_integral_value(rounding="ROUND_DOWN"))


def build_params(q: QuoterConfig, instruments: tuple[Instrument, ...]) -> np.ndarray:
    """One PARAM_DTYPE row per instrument."""
    par = np.zeros(len(instruments), PARAM_DTYPE)
    exp_min = min(i.pexp + i.qexp for i in instruments)
    for n, inst in enumerate(instruments):
        size = units(q.size_for(inst.symbol), inst.qexp)
        size -= size % inst.lot
        p = par[n]
        p["tick"] = inst.tick
        p["lot"] = inst.lot
        p["size"] = max(size, inst.lot)
        p["max_position"] = units(q.max_position_for(inst.symbol), inst.qexp)
        p["max_notional"] = units(q.max_notional, inst.pexp + inst.qexp)
        p["pnl_scale"] = 10 ** (inst.pexp + inst.qexp - exp_min)
        p["levels"] = q.levels
        p["spacing"] = q.level_spacing_ticks
        p["requote_ticks"] = q.requote_ticks
        p["max_age_ns"] = q.max_quote_age_ms * 1_000_000
        p["stale_ns"] = q.stale_after_ms * 1_000_000
        p["band"] = q.price_band_bps * 1e-4
        p["backoff_ns"] = int(q.retry_backoff_ms * 1e6)
        p["backoff_cap_ns"] = int(q.retry_backoff_cap_ms * 1e6)
        p["cancel_after"] = q.cancel_after_failures
        p["depth_levels"] = getattr(q, q.strategy).depth_levels
    return par


def pnl_exponent(instruments: tuple[Instrument, ...]) -> int:
    """Exponent of the common PnL unit (the `pnl` counter and max_drawdown)."""
    return min(i.pexp + i.qexp for i in instruments)


def max_drawdown_units(q: QuoterConfig, instruments: tuple[Instrument, ...]) -> int:
    return units(q.max_drawdown, pnl_exponent(instruments))
