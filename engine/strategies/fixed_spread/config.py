"""[quoter.fixed_spread]: the fixed-spread strategy's parameters (ticks, order sizes)."""
from __future__ import annotations

import msgspec

from engine.strategies.common import FAIR_KINDS, FairValue, check_fields


class FixedSpreadConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    fair_value: FairValue = "mid"  # mid | micro (size-weighted micro-price)
    half_spread_ticks: float = 5.0  # level-0 bid and ask sit this far below / above the fair value
    skew_ticks: float = 1.0       # both quotes move this far down per order size held long
                                  # (up per order size held short)
    max_skew_ticks: float = 50.0  # ... and never further than this

    def validate(self, section: str = "quoter.fixed_spread") -> None:
        check_fields(section, self, (
            ("fair_value", self.fair_value in FAIR_KINDS, f"one of {sorted(FAIR_KINDS)}"),
            ("half_spread_ticks", 0 < self.half_spread_ticks <= 1e6, "0 < x <= 1000000"),
            ("skew_ticks", 0 <= self.skew_ticks <= 1e6, "0 <= x <= 1000000"),
            ("max_skew_ticks", 0 <= self.max_skew_ticks <= 1e6, "0 <= x <= 1000000"),
        ))
