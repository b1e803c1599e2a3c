"""Quoting strategies: the part of the quoter a user writes (README: "Writing a strategy").

A strategy decides which quotes it wants (a price in ticks and a size per side and level, or
none) from its own state and the book; the quoter's core (engine/quoter/model.py) keeps
everything that must hold for any strategy: order truth in the quote slots, tick and lot
rounding, never crossing the book, the price band, position and notional limits, rate windows,
stale data, drawdown and the kill switch, and when a resting quote is worth moving.

Each strategy is a package here with two modules:
  config.py  its [quoter.<name>] section: a frozen msgspec Struct whose fields carry their
             ranges as msgspec constraints (engine/config_check.py; no numba: the
             configuration loads it)
  model.py   STATE_DTYPE and PARAM_DTYPE (one row per instrument; every strategy's STATE_DTYPE
             differs: compiled calls find the strategy by it), USES_TIMER, `build_params(cfg,
             instruments)`, and four compiled hooks (st/sp: the strategy's state and parameter
             rows of the instrument, s/p: the core's, read-only by convention):
               on_book(st, sp, s, p, now)                    a good book (s.mid set)
               on_fill(st, sp, s, p, kind, side, price, qty, now)  a sender record (FILL_*)
               on_timer(st, sp, s, p, now) -> bool           True: requote the instrument
               quote(st, sp, s, p, want)                     fill want[side, level].px/.qty
             (defaults.py has no-op on_fill and on_timer to import)
`quoter.strategy` names the one to run, in `mm run` and in `mm backtest` alike.
"""
from __future__ import annotations

import importlib
from typing import Literal

from engine.strategies.fixed_spread.config import FixedSpreadConfig
from engine.strategies.glft.config import GlftConfig

StrategyName = Literal["glft", "fixed_spread"]

# name -> (the struct of its [quoter.<name>] section, the module of its compiled model); the
# section is the QuoterConfig field of the same name (a test keeps the three in step).
STRATEGIES = {
    "glft": (GlftConfig, "engine.strategies.glft.model"),
    "fixed_spread": (FixedSpreadConfig, "engine.strategies.fixed_spread.model"),
}


def model(name: str):
    """The compiled model module of strategy `name` (imports numba)."""
    if name not in STRATEGIES:
        raise ValueError(f"quoter.strategy: expected one of {sorted(STRATEGIES)}, got {name!r}")
    return importlib.import_module(STRATEGIES[name][1])


def build(q, instruments) -> tuple:
    """(state, params) arrays of the strategy `q.strategy` names, for `instruments`."""
    import numpy as np

    m = model(q.strategy)
    return np.zeros(len(instruments), m.STATE_DTYPE), m.build_params(getattr(q, q.strategy),
                                                                       instruments)
