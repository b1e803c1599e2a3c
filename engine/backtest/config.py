"""Backtest configuration ([backtest] in the TOML file; `mm backtest` reads everything else,
the strategy and its limits included, from the same file the live engine runs)."""
from __future__ import annotations

from typing import Annotated, Literal, get_args

import msgspec
from msgspec import Meta

from engine.config_check import check_struct

# engine/backtest/queue.py numbers them in this order
QueueModel = Literal["touch", "risk_averse", "power_prob", "power_prob2", "power_prob3",
                     "log_prob", "log_prob2"]
QUEUE_MODELS = get_args(QueueModel)
LatencyUs = Annotated[float, Meta(ge=0, le=10_000_000)]


class BacktestConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    order_latency_us: LatencyUs = 250.0  # feed-to-order: a market event's arrival in the
                                      # capture -> the order it caused acts at the venue (the
                                      # live tick-to-order plus the wire; the quoter reads at
                                      # arrival)
    response_latency_us: LatencyUs = 250.0  # the venue acts or fills -> the quoter reads the
                                      # record
    latency_from: str = ""            # a live run's directory (runs/<run>): order and answer
                                      # latencies drawn from its histograms instead of the two
                                      # above (engine/backtest/latency.py; --latency-from)
    feed_latency: Literal["none", "capture"] = "none"  # capture: the venue sees each market
                                      # event at the exchange's own time in the frame (E/T),
                                      # before its arrival in the capture; none: at arrival
    plot_points: Annotated[int, Meta(ge=10, le=1_000_000)] = 2000  # samples per series in the
                                      # report and its plots
    queue_model: QueueModel = "touch"  # how much is ahead of our resting orders: touch (the
                                      # simulator's, the default), risk_averse, power_prob,
                                      # power_prob2, power_prob3, log_prob, log_prob2
                                      # (engine/backtest/queue.py; hftbacktest's models)
    queue_power: Annotated[float, Meta(gt=0, le=100)] = 2.0  # n of the power_prob* models

    def validate(self, instruments=None) -> None:
        """The field constraints; ConfigError naming the field."""
        check_struct(self, "backtest")
