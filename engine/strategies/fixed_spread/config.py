"""[quoter.fixed_spread]: the fixed-spread strategy's parameters (ticks, order sizes)."""
from __future__ import annotations

from typing import Annotated

import msgspec
from msgspec import Meta

from engine.strategies.common import MAX_DEPTH_LEVELS, FairValue


class FixedSpreadConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    fair_value: FairValue = "mid"  # mid | micro (size-weighted micro-price) | depth_imbalance
                                  # (the micro-price weighed by the sizes of the best
                                  # depth_levels levels of the feed's L2 book: needs a diff-depth
                                  # stream in feed.streams, e.g. "depth@100ms")
    depth_levels: Annotated[int, Meta(ge=1, le=MAX_DEPTH_LEVELS)] = 5  # levels per side summed
                                  # by depth_imbalance
    half_spread_ticks: Annotated[float, Meta(gt=0, le=1e6)] = 5.0  # level-0 bid and ask sit this
                                  # far below / above the fair value
    skew_ticks: Annotated[float, Meta(ge=0, le=1e6)] = 1.0  # both quotes move this far down per
                                  # order size held long (up per order size held short)
    max_skew_ticks: Annotated[float, Meta(ge=0, le=1e6)] = 50.0  # ... and never further than this
