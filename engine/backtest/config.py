"""Backtest configuration ([backtest] in the TOML file; `mm backtest` reads everything else,
the strategy and its limits included, from the same file the live engine runs)."""
from __future__ import annotations

import msgspec

from engine.strategies.common import check_fields


class BacktestConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    order_latency_us: float = 250.0   # feed-to-order: a market event's arrival in the capture ->
                                      # the order it caused acts at the venue (the live
                                      # tick-to-order plus the wire; the quoter reads at arrival)
    response_latency_us: float = 250.0  # the venue acts or fills -> the quoter reads the record
    plot_points: int = 2000           # samples per series in the report and its plots

    def validate(self, cfg=None) -> None:
        check_fields("backtest", self, (
            ("order_latency_us", 0 <= self.order_latency_us <= 10_000_000, "0..10000000"),
            ("response_latency_us", 0 <= self.response_latency_us <= 10_000_000, "0..10000000"),
            ("plot_points", 10 <= self.plot_points <= 1_000_000, "10..1000000"),
        ))
