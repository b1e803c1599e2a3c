"""Simulator configuration ([sim] in the TOML file, or `mm sim` flags)."""
from __future__ import annotations

from typing import Annotated

import msgspec
from msgspec import Meta

from engine.config_check import (ConfigError, NonNegativeFloat, PositiveFloat, PositiveInt,
                                 check_decimal, check_struct)
from engine.instruments import DecimalStr
from engine.sim.chaos import Chaos


class SimConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    host: str = "127.0.0.1"
    port: Annotated[int, Meta(ge=0, le=65535)] = 0  # 0 = pick a free port
    seed: int = 1                 # seeds the random walk, sizes and trades: same seed, same market
    # -- the synthetic market (one book per instrument) --
    event_rate: Annotated[float, Meta(gt=0, le=100_000)] = 200.0  # book events per second per
                                  # symbol (Poisson arrivals)
    volatility_bps: NonNegativeFloat = 1.0  # std dev of the mid, basis points per sqrt(second)
    trade_rate: NonNegativeFloat = 20.0  # market trade prints per second per symbol (<= event_rate)
    spread_ticks_max: PositiveInt = 5  # the spread is 1 tick most of the time, sometimes up to this
    top_size_notional: PositiveFloat = 50_000.0  # mean displayed size per level, in quote currency
    trade_size_notional: PositiveFloat = 2_000.0  # mean size of a market trade print, in quote currency
    start_mid: dict[str, DecimalStr] = msgspec.field(    # starting mid per symbol (others: 100)
        default_factory=lambda: {"BTCUSDT": "60000.00", "ETHUSDT": "3000.00"})
    # -- connections (Binance: ping every 20 s, pong within 60 s, 24 h maximum age) --
    max_connection_age_s: PositiveFloat = 86_400.0  # the server closes connections older than this
    ping_interval_s: NonNegativeFloat = 20.0  # server ping frames (0 = off)
    max_send_buffer_mb: PositiveFloat = 64.0  # a market client this far behind is dropped (slow
                                  # consumer)
    pong_timeout_s: PositiveFloat = 60.0  # no pong within this (capped at ping_interval_s): disconnect
    # -- the order API --
    recv_window_ms: Annotated[int, Meta(ge=1, le=60_000)] = 5000  # default recvWindow when a
                                  # request does not send one
    balances: dict[str, DecimalStr] = msgspec.field(     # initial free balance per asset
        default_factory=lambda: {"BTC": "10", "ETH": "10", "USDT": "1000000"})
    orders_per_10s: PositiveInt = 10_000  # ORDERS limit per 10 s (Binance: 50); above it: 429 / -1015
    orders_per_day: PositiveInt = 10_000_000  # ORDERS limit per day (Binance: 160000)
    weight_per_minute: PositiveInt = 600_000  # REQUEST_WEIGHT limit per minute (Binance: 6000) -> -1003
    # -- replay instead of the synthetic market --
    replay_file: str = ""         # MMCAP1 capture to replay ("" = synthetic market)
    replay_speed: NonNegativeFloat = 1.0  # 2.0 = twice as fast as recorded; 0 = as fast as possible
    replay_loop: bool = False     # start again at the end of the file
    replay_min_gap_ms: Annotated[float, Meta(ge=0, le=60_000)] = 0.0  # at least this long between
                                  # replayed frames (tests: each frame handled by the engine before
                                  # the next comes)
    replay_quiet_ms: Annotated[float, Meta(ge=0, le=60_000)] = 0.0  # ... and each frame only once
                                  # no order request came and no (delayed) answer left for this long
                                  # (0 = off; tests)
    replay_hold: bool = False     # replay only once start_replay() is called (tests that need
                                  # the engine ready first; in-process simulator only)
    # -- seeded chaos: the races a live venue produces (engine/sim/chaos.py lists the kinds) --
    chaos: dict[str, float] = {}  # kind -> probability per opportunity, e.g. {lost_answer = 0.02}
    chaos_seed: int = 0           # seeds the chaos dice (0 = derive from `seed`)

    def validate(self, instruments=None) -> None:
        """The field constraints, the rules between fields, the chaos kinds and the decimal
        strings; ConfigError naming the field. (No rule here needs the instruments.)"""
        check_struct(self, "sim")
        if self.trade_rate > self.event_rate:
            raise ConfigError(f"sim.trade_rate: expected 0 <= x <= event_rate, "
                              f"got {self.trade_rate!r}")
        Chaos(self.chaos, 0)          # names the bad kind or probability
        for field in ("start_mid", "balances"):
            for key, value in getattr(self, field).items():
                check_decimal(f"sim.{field}.{key}", value)
