"""[quoter.glft]: the GLFT strategy's parameters (model units: ticks, seconds, order sizes)."""
from __future__ import annotations

import msgspec

from engine.strategies.common import FAIR_KINDS, FairValue, check_fields


class GlftConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The defaults give a spread of roughly 0.4 USDT (ETHUSDT at 3000) to 1.5 USDT (BTCUSDT at
    60000) at a volatility of 1 bp per sqrt(second), and never less than floor_spread_ticks."""
    fair_value: FairValue = "mid"  # mid | micro (size-weighted micro-price)
    vol_half_life_s: float = 30.0  # half-life of the EWMA of squared mid changes
    gamma: float = 0.01           # risk aversion (per tick per order-size unit of inventory)
    k: float = 0.05               # decay of order-arrival intensity with depth (per tick)
    A: float = 10.0               # order-arrival intensity at zero depth (per second)
    floor_spread_ticks: int = 2   # minimum full spread (bid to ask), ticks

    def validate(self, section: str = "quoter.glft") -> None:
        check_fields(section, self, (
            ("fair_value", self.fair_value in FAIR_KINDS, f"one of {sorted(FAIR_KINDS)}"),
            ("vol_half_life_s", self.vol_half_life_s > 0, "> 0"),
            ("gamma", self.gamma > 0, "> 0"),
            ("k", self.k > 0, "> 0"),
            ("A", self.A > 0, "> 0"),
            ("floor_spread_ticks", self.floor_spread_ticks >= 1, ">= 1"),
        ))
