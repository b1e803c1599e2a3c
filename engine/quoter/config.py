"""Quoter process configuration ([quoter] in the TOML file): the strategy to run and its section
([quoter.<strategy>], engine/strategies/), the ladder, requoting and risk limits every strategy
runs under."""
from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Literal

import msgspec

from engine.instruments import DecimalStr
from engine.strategies import STRATEGIES, StrategyName
from engine.strategies.common import check_fields
from engine.strategies.fixed_spread.config import FixedSpreadConfig
from engine.strategies.glft.config import GlftConfig

# Choices (the numba side keeps its own codes: ring.idle.STRATEGIES; a test keeps them in step).
QuoterIdle = Literal["", "busy-spin", "yield", "park"]


class QuoterConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    core: int = -1                # CPU to pin to (-1: chosen by the layout)
    idle: QuoterIdle = ""         # busy-spin | yield | park ("" = park)
    park_timeout_us: int = 1000   # longest park: the timers (stale data, quote age) are served
    warm_us: int = 0              # park: yield, not sleep, until this long after the last event
    # -- strategy: the quotes it wants (engine/strategies/; its section is [quoter.<name>]) --
    strategy: StrategyName = "glft"  # glft | fixed_spread
    glft: GlftConfig = GlftConfig()
    fixed_spread: FixedSpreadConfig = FixedSpreadConfig()
    # -- the ladder --
    levels: int = 2               # quotes per side
    level_spacing_ticks: int = 10  # distance between levels, ticks
    order_size: DecimalStr = "0.002"  # base quantity per quote (a whole number of lots)
    order_size_by_symbol: dict[str, DecimalStr] = {}  # per-symbol override of order_size
    # -- requoting --
    requote_ticks: int = 10       # replace a live quote when its desired price moved this much
    max_quote_age_ms: int = 30_000  # ... or when it is older than this (0 = never)
    # -- risk --
    max_position: DecimalStr = "0.01"  # |base position| limit, base units (quotes beyond it withheld)
    max_position_by_symbol: dict[str, DecimalStr] = {}  # per-symbol override of max_position
    max_notional: DecimalStr = "1000"  # |position| * price limit, quote units
    stale_after_ms: int = 3000    # no book update for this long: pull quotes until fresh data
    price_band_bps: float = 50.0  # never quote further than this from the current mid
    max_drawdown: DecimalStr = "1000"  # peak-to-trough MTM PnL limit, quote units (0 = off):
                                  # kill switch
    rate_per_10s: int = 40        # new/replace orders per any 10 s window (Binance ORDERS: 50)
    rate_per_day: int = 120_000   # new/replace orders per any 24 h window (Binance: 160000;
                                  # the default stays under 80% of it)
    # -- refusals --
    retry_backoff_ms: float = 50.0   # after a refused cancel/replace/new: wait this long before
                                  # the slot asks again, doubling per refusal in a row ...
    retry_backoff_cap_ms: float = 2000.0  # ... up to this
    cancel_after_failures: int = 2  # a slot whose requests were refused this often in a row
                                  # moves by cancel-then-new instead of cancelReplace

    def validate(self, cfg=None) -> None:
        """Raise ValueError("quoter.<field>: ...") for any value out of range."""
        from engine.ring.idle import STRATEGIES as IDLE

        check_fields("quoter", self, (
            ("idle", self.idle in ("", *IDLE), f"one of {['', *sorted(IDLE)]}"),
            ("park_timeout_us", 1 <= self.park_timeout_us <= 100_000, "1..100000"),
            ("warm_us", 0 <= self.warm_us <= 1_000_000, "0..1000000"),
            ("strategy", self.strategy in STRATEGIES, f"one of {sorted(STRATEGIES)}"),
            ("levels", 1 <= self.levels <= 16, "1..16"),
            ("level_spacing_ticks", self.level_spacing_ticks >= 1, ">= 1"),
            ("requote_ticks", self.requote_ticks >= 1, ">= 1"),
            ("max_quote_age_ms", self.max_quote_age_ms >= 0, ">= 0"),
            ("stale_after_ms", self.stale_after_ms >= 1, ">= 1"),
            ("price_band_bps", 0 < self.price_band_bps <= 10_000, "0 < x <= 10000"),
            ("rate_per_10s", 1 <= self.rate_per_10s <= 100_000, "1..100000"),
            ("rate_per_day", 1 <= self.rate_per_day <= 10_000_000, "1..10000000"),
            ("retry_backoff_ms", self.retry_backoff_ms > 0, "> 0"),
            ("retry_backoff_cap_ms", self.retry_backoff_cap_ms >= self.retry_backoff_ms,
             ">= retry_backoff_ms"),
            ("cancel_after_failures", self.cancel_after_failures >= 1, ">= 1"),
        ))
        for name in STRATEGIES:      # every section, so a typo in an unused one shows too
            getattr(self, name).validate(f"quoter.{name}")
        for name in ("order_size", "max_position", "max_notional", "max_drawdown"):
            _decimal(f"quoter.{name}", getattr(self, name), positive=name == "order_size")
        for name in ("order_size_by_symbol", "max_position_by_symbol"):
            for sym, value in getattr(self, name).items():
                _decimal(f"quoter.{name}.{sym}", value, positive=name == "order_size_by_symbol")
        if cfg is not None:
            symbols = {i.symbol for i in cfg.instruments}
            for name in ("order_size_by_symbol", "max_position_by_symbol"):
                for sym in getattr(self, name):
                    if sym not in symbols:
                        raise ValueError(f"quoter.{name}.{sym}: not in the instrument table")
            for inst in cfg.instruments:
                size = Decimal(self.size_for(inst.symbol))
                if size % Decimal(inst.lot_size):
                    raise ValueError(f"quoter.order_size: {size} {inst.symbol} is not a whole "
                                     f"number of lots ({inst.lot_size})")

    def size_for(self, symbol: str) -> str:
        """Order size (decimal string) for `symbol`."""
        return self.order_size_by_symbol.get(symbol, self.order_size)

    def max_position_for(self, symbol: str) -> str:
        return self.max_position_by_symbol.get(symbol, self.max_position)


def _decimal(field: str, value: str, positive: bool) -> Decimal:
    try:
        d = Decimal(value)
    except (InvalidOperation, TypeError):
        raise ValueError(f"{field}: expected a decimal string, got {value!r}") from None
    if not d.is_finite() or d < 0 or (positive and d == 0):
        raise ValueError(f"{field}: expected a decimal {'> 0' if positive else '>= 0'}, "
                         f"got {value!r}")
    return d
