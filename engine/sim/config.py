"""Simulator configuration ([sim] in the TOML file, or `mm sim` flags)."""
from __future__ import annotations

from decimal import Decimal

import msgspec

from engine.instruments import DecimalStr


class SimConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    host: str = "127.0.0.1"
    port: int = 0                 # 0 = pick a free port
    seed: int = 1                 # seeds the random walk, sizes and trades: same seed, same market
    # -- the synthetic market (one book per instrument) --
    event_rate: float = 200.0     # book events per second per symbol (Poisson arrivals)
    volatility_bps: float = 1.0   # std dev of the mid, basis points per sqrt(second)
    trade_rate: float = 20.0      # market trade prints per second per symbol
    spread_ticks_max: int = 5     # the spread is 1 tick most of the time, sometimes up to this
    top_size_notional: float = 50_000.0   # mean displayed size per level, in quote currency
    trade_size_notional: float = 2_000.0  # mean size of a market trade print, in quote currency
    start_mid: dict[str, DecimalStr] = msgspec.field(    # starting mid per symbol (others: 100)
        default_factory=lambda: {"BTCUSDT": "60000.00", "ETHUSDT": "3000.00"})
    # -- connections (Binance: ping every 20 s, pong within 60 s, 24 h maximum age) --
    max_connection_age_s: float = 86_400.0  # the server closes connections older than this
    ping_interval_s: float = 20.0  # server ping frames (0 = off)
    max_send_buffer_mb: float = 64.0  # a market client this far behind is dropped (slow consumer)
    pong_timeout_s: float = 60.0   # no pong within this (capped at ping_interval_s): disconnect
    # -- the order API --
    recv_window_ms: int = 5000    # default recvWindow when a request does not send one
    balances: dict[str, DecimalStr] = msgspec.field(     # initial free balance per asset
        default_factory=lambda: {"BTC": "10", "ETH": "10", "USDT": "1000000"})
    orders_per_10s: int = 10_000  # ORDERS limit per 10 s (Binance: 50); above it: 429 / -1015
    orders_per_day: int = 10_000_000   # ORDERS limit per day (Binance: 160000)
    weight_per_minute: int = 600_000   # REQUEST_WEIGHT limit per minute (Binance: 6000) -> -1003
    # -- replay instead of the synthetic market --
    replay_file: str = ""         # MMCAP1 capture to replay ("" = synthetic market)
    replay_speed: float = 1.0     # 2.0 = twice as fast as recorded; 0 = as fast as possible
    replay_loop: bool = False     # start again at the end of the file
    replay_min_gap_ms: float = 0.0  # at least this long between replayed frames (tests: each
                                  # frame handled by the engine before the next comes)
    replay_quiet_ms: float = 0.0  # ... and each frame only once no order request came and no
                                  # (delayed) answer left for this long (0 = off; tests)
    replay_hold: bool = False     # replay only once start_replay() is called (tests that need
                                  # the engine ready first; in-process simulator only)
    # -- seeded chaos: the races a live venue produces (engine/sim/chaos.py lists the kinds) --
    chaos: dict[str, float] = {}  # kind -> probability per opportunity, e.g. {lost_answer = 0.02}
    chaos_seed: int = 0           # seeds the chaos dice (0 = derive from `seed`)

    def validate(self, cfg=None) -> None:
        """Raise ValueError naming the field when a value is out of range."""
        checks = (
            ("port", 0 <= self.port <= 65535, "0..65535"),
            ("event_rate", 0 < self.event_rate <= 100_000, "0 < x <= 100000"),
            ("volatility_bps", self.volatility_bps >= 0, ">= 0"),
            ("trade_rate", 0 <= self.trade_rate <= self.event_rate, "0 <= x <= event_rate"),
            ("spread_ticks_max", self.spread_ticks_max >= 1, ">= 1"),
            ("top_size_notional", self.top_size_notional > 0, "> 0"),
            ("trade_size_notional", self.trade_size_notional > 0, "> 0"),
            ("max_connection_age_s", self.max_connection_age_s > 0, "> 0"),
            ("ping_interval_s", self.ping_interval_s >= 0, ">= 0"),
            ("pong_timeout_s", self.pong_timeout_s > 0, "> 0"),
            ("max_send_buffer_mb", self.max_send_buffer_mb > 0, "> 0"),
            ("recv_window_ms", 0 < self.recv_window_ms <= 60_000, "1..60000"),
            ("orders_per_10s", self.orders_per_10s >= 1, ">= 1"),
            ("orders_per_day", self.orders_per_day >= 1, ">= 1"),
            ("weight_per_minute", self.weight_per_minute >= 1, ">= 1"),
            ("replay_speed", self.replay_speed >= 0, ">= 0"),
            ("replay_min_gap_ms", 0 <= self.replay_min_gap_ms <= 60_000, "0..60000"),
            ("replay_quiet_ms", 0 <= self.replay_quiet_ms <= 60_000, "0..60000"),
        )
        for name, ok, want in checks:
            if not ok:
                raise ValueError(f"sim.{name}: expected {want}, got {getattr(self, name)!r}")
        from engine.sim.chaos import Chaos
        Chaos(self.chaos, 0)          # names the bad kind or probability
        for field in ("start_mid", "balances"):
            for key, value in getattr(self, field).items():
                try:
                    if Decimal(value) < 0:
                        raise ValueError
                except Exception:
                    raise ValueError(f"sim.{field}.{key}: expected a decimal string >= 0, "
                                     f"got {value!r}") from None
