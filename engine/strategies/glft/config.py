"""[quoter.glft]: the GLFT strategy's parameters (model units: ticks, seconds, order sizes)."""
from __future__ import annotations

from typing import Annotated

import msgspec
from msgspec import Meta

from engine.config_check import PositiveFloat, PositiveInt
from engine.strategies.common import MAX_DEPTH_LEVELS, FairValue


class GlftConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The defaults give a spread of roughly 0.4 USDT (ETHUSDT at 3000) to 1.5 USDT (BTCUSDT at
    60000) at a volatility of 1 bp per sqrt(second), and never less than floor_spread_ticks."""
    fair_value: FairValue = "mid"  # mid | micro (size-weighted micro-price) | depth_imbalance
                                  # (the micro-price weighed by the sizes of the best
                                  # depth_levels levels of the feed's L2 book: needs a diff-depth
                                  # stream in feed.streams, e.g. "depth@100ms")
    depth_levels: Annotated[int, Meta(ge=1, le=MAX_DEPTH_LEVELS)] = 5  # levels per side summed
                                  # by depth_imbalance
    vol_half_life_s: PositiveFloat = 30.0  # half-life of the EWMA of squared mid changes
    gamma: PositiveFloat = 0.01   # risk aversion (per tick per order-size unit of inventory)
    k: PositiveFloat = 0.05       # decay of order-arrival intensity with depth (per tick)
    A: PositiveFloat = 10.0       # order-arrival intensity at zero depth (per second)
    floor_spread_ticks: PositiveInt = 2  # minimum full spread (bid to ask), ticks
