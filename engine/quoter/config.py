"""Quoter process configuration ([quoter] in the TOML file): the strategy to run and its section
([quoter.<strategy>], engine/strategies/), the ladder, requoting and risk limits every strategy
runs under."""
from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal, Sequence

import msgspec
from msgspec import Meta

from engine.config_check import (ConfigError, Core, NonNegativeInt, PositiveFloat, PositiveInt,
                                 check_decimal, check_struct)
from engine.instruments import DecimalStr, Instrument
from engine.strategies import StrategyName
from engine.strategies.fixed_spread.config import FixedSpreadConfig
from engine.strategies.glft.config import GlftConfig

# Choices (the numba side keeps its own codes: ring.idle.STRATEGIES; a test keeps them in step).
QuoterIdle = Literal["", "busy-spin", "yield", "park"]


class QuoterConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    core: Core = -1               # CPU to pin to (-1: chosen by the layout)
    idle: QuoterIdle = ""         # busy-spin | yield | park ("" = park)
    park_timeout_us: Annotated[int, Meta(ge=1, le=100_000)] = 1000  # longest park: the timers
                                  # (stale data, quote age) are served
    warm_us: Annotated[int, Meta(ge=0, le=1_000_000)] = 0  # park: yield, not sleep, until this long
                                  # after the last event
    # -- strategy: the quotes it wants (engine/strategies/; its section is [quoter.<name>]) --
    strategy: StrategyName = "glft"  # glft | fixed_spread
    glft: GlftConfig = GlftConfig()
    fixed_spread: FixedSpreadConfig = FixedSpreadConfig()
    # -- the ladder --
    levels: Annotated[int, Meta(ge=1, le=16)] = 2  # quotes per side
    level_spacing_ticks: PositiveInt = 10  # distance between levels, ticks
    order_size: DecimalStr = "0.002"  # base quantity per quote (a whole number of lots)
    order_size_by_symbol: dict[str, DecimalStr] = {}  # per-symbol override of order_size
    # -- requoting --
    requote_ticks: PositiveInt = 10  # replace a live quote when its desired price moved this much
    max_quote_age_ms: NonNegativeInt = 30_000  # ... or when it is older than this (0 = never)
    # -- risk --
    max_position: DecimalStr = "0.01"  # |base position| limit, base units (quotes beyond it withheld)
    max_position_by_symbol: dict[str, DecimalStr] = {}  # per-symbol override of max_position
    max_notional: DecimalStr = "1000"  # |position| * price limit, quote units
    stale_after_ms: PositiveInt = 3000  # no book update for this long: pull quotes until fresh data
    price_band_bps: Annotated[float, Meta(gt=0, le=10_000)] = 50.0  # never quote further than this
                                  # from the current mid
    max_drawdown: DecimalStr = "1000"  # peak-to-trough MTM PnL limit, quote units (0 = off):
                                  # kill switch
    rate_per_10s: Annotated[int, Meta(ge=1, le=100_000)] = 40  # new/replace orders per any 10 s
                                  # window (Binance ORDERS: 50)
    rate_per_day: Annotated[int, Meta(ge=1, le=10_000_000)] = 120_000  # new/replace orders per any
                                  # 24 h window (Binance: 160000; the default stays under 80% of it)
    # -- refusals --
    retry_backoff_ms: PositiveFloat = 50.0  # after a refused cancel/replace/new: wait this long
                                  # before the slot asks again, doubling per refusal in a row ...
    retry_backoff_cap_ms: float = 2000.0  # ... up to this (>= retry_backoff_ms)
    cancel_after_failures: PositiveInt = 2  # a slot whose requests were refused this often in a row
                                  # moves by cancel-then-new instead of cancelReplace

    def validate(self, instruments: Sequence[Instrument] | None = None) -> None:
        """The field constraints (the strategies' sections' too), the decimal strings and,
        given the instrument table, the per-symbol keys and the order size in whole lots;
        ConfigError naming the field."""
        check_struct(self, "quoter")
        if self.retry_backoff_cap_ms < self.retry_backoff_ms:
            raise ConfigError(f"quoter.retry_backoff_cap_ms: expected >= retry_backoff_ms, "
                              f"got {self.retry_backoff_cap_ms!r}")
        for name in ("order_size", "max_position", "max_notional", "max_drawdown"):
            check_decimal(f"quoter.{name}", getattr(self, name), positive=name == "order_size")
        for name in ("order_size_by_symbol", "max_position_by_symbol"):
            for sym, value in getattr(self, name).items():
                check_decimal(f"quoter.{name}.{sym}", value,
                              positive=name == "order_size_by_symbol")
        if instruments is None:
            return
        symbols = {i.symbol for i in instruments}
        for name in ("order_size_by_symbol", "max_position_by_symbol"):
            for sym in getattr(self, name):
                if sym not in symbols:
                    raise ConfigError(f"quoter.{name}.{sym}: not in the instrument table")
        for inst in instruments:
            size = Decimal(self.size_for(inst.symbol))
            if size % Decimal(inst.lot_size):
                raise ConfigError(f"quoter.order_size: {size} {inst.symbol} is not a whole "
                                  f"number of lots ({inst.lot_size})")

    def size_for(self, symbol: str) -> str:
        """Order size (decimal string) for `symbol`."""
        return self.order_size_by_symbol.get(symbol, self.order_size)

    def max_position_for(self, symbol: str) -> str:
        return self.max_position_by_symbol.get(symbol, self.max_position)

