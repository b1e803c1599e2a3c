"""Backtest configuration ([backtest] in the TOML file; `mm backtest` reads everything else,
the strategy and its limits included, from the same file the live engine runs)."""
from __future__ import annotations

import msgspec

from engine.strategies.common import check_fields

# engine/backtest/queue.py numbers them in this order
QUEUE_MODELS = ("touch", "risk_averse", "power_prob", "power_prob2", "power_prob3", "log_prob",
                "log_prob2")


class BacktestConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    order_latency_us: float = 250.0   # feed-to-order: a market event's arrival in the capture ->
                                      # the order it caused acts at the venue (the live
                                      # tick-to-order plus the wire; the quoter reads at arrival)
    response_latency_us: float = 250.0  # the venue acts or fills -> the quoter reads the record
    plot_points: int = 2000           # samples per series in the report and its plots
    queue_model: str = "touch"        # how much is ahead of our resting orders: touch (the
                                      # simulator's, the default), risk_averse, power_prob,
                                      # power_prob2, power_prob3, log_prob, log_prob2
                                      # (engine/backtest/queue.py; hftbacktest's models)
    queue_power: float = 2.0          # n of the power_prob* models

    def validate(self, cfg=None) -> None:
        check_fields("backtest", self, (
            ("order_latency_us", 0 <= self.order_latency_us <= 10_000_000, "0..10000000"),
            ("response_latency_us", 0 <= self.response_latency_us <= 10_000_000, "0..10000000"),
            ("plot_points", 10 <= self.plot_points <= 1_000_000, "10..1000000"),
            ("queue_model", self.queue_model in QUEUE_MODELS, ", ".join(QUEUE_MODELS)),
            ("queue_power", 0 < self.queue_power <= 100, "0..100"),
        ))
