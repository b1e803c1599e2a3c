"""A trader's units for the engine's counters, at display time (report, mm status, metrics).

The quoter publishes PnL and drawdown as integers in 10**exp quote units (`pnl_e-7`) and each
position as an integer number of 10**qty_exp base units (`position_BTCUSDT`), the account's
holdings at start included. The supervisor notes those holdings once (`start_<SYMBOL>` in its
own counter slot). Here they become "BTCUSDT 10.00200 BTC (start 10.00000, traded +0.00200)"
and "PnL +1.24 USDT" using the run's instrument table. Nothing here runs on a hot path.
"""
from __future__ import annotations

import re
from decimal import Decimal
from typing import NamedTuple, Sequence

from engine.instruments import Instrument, format_fixed

# Tick-to-order P99 ceiling of DESIGN.md ("the ceiling, not the goal"); config latency_ceiling_us.
DEFAULT_LATENCY_CEILING_US = 500
_SCALED = re.compile(r"^(pnl|drawdown)_e(-?\d+)$")
POSITION_PREFIX = "position_"
START_PREFIX = "start_"          # the supervisor's note of the holdings at start


class Position(NamedTuple):
    symbol: str
    asset: str                   # base asset ("" when the table does not say)
    units: int                   # 10**exp base units
    start_units: int | None      # None: not noted (no supervisor, or not yet)
    exp: int

    @property
    def quantity(self) -> Decimal:
        return Decimal(self.units).scaleb(self.exp)

    @property
    def start(self) -> Decimal | None:
        return None if self.start_units is None else Decimal(self.start_units).scaleb(self.exp)

    def describe(self) -> str:
        """'BTCUSDT 10.00200 BTC (start 10.00000, traded +0.00200)'."""
        asset = f" {self.asset}" if self.asset else ""
        text = f"{self.symbol} {format_fixed(self.units, self.exp)}{asset}"
        if self.start_units is None:
            return text + " (start not noted)"
        traded = self.units - self.start_units
        sign = "+" if traded >= 0 else "-"
        return (f"{text} (start {format_fixed(self.start_units, self.exp)}, traded "
                f"{sign}{format_fixed(abs(traded), self.exp)})")


def scaled(counters: dict[str, int], what: str) -> Decimal | None:
    """`pnl` or `drawdown` in quote units from its `<what>_e<exp>` counter; None if absent."""
    for name, value in counters.items():
        m = _SCALED.match(name)
        if m and m.group(1) == what:
            return Decimal(value).scaleb(int(m.group(2)))
    return None


def quote_currency(instruments: Sequence[Instrument]) -> str:
    """The one quote currency PnL is summed in ("USDT"); "" when unknown or mixed."""
    quotes = {i.quote for i in instruments}
    return quotes.pop() if len(quotes) == 1 else ""


def positions(quoter: dict[str, int], instruments: Sequence[Instrument],
              start: dict[str, int] | None = None) -> list[Position]:
    """The quoter's positions in base units, with the holdings at start when noted."""
    start = start or {}
    out = []
    for inst in instruments:
        name = POSITION_PREFIX + inst.symbol
        if name in quoter:
            out.append(Position(inst.symbol, inst.base, quoter[name],
                                start.get(START_PREFIX + inst.symbol), inst.qexp))
    return out


def money(value: Decimal | None, currency: str, signed: bool = False) -> str:
    """'+1.24 USDT' (2 decimals; more when the amount is smaller than a cent)."""
    if value is None:
        return "n/a"
    places = 2 if value == 0 or abs(value) >= Decimal("0.01") else 8
    text = f"{value:{'+' if signed else ''}.{places}f}"
    return f"{text} {currency}" if currency else f"{text} (quote units)"


def is_unit_counter(name: str) -> bool:
    """Counters shown converted (positions, PnL, drawdown), not as raw integers."""
    return bool(_SCALED.match(name)) or name.startswith(POSITION_PREFIX)


def plain(counters: dict[str, int]) -> dict[str, int]:
    """The counters that are plain counts (everything `is_unit_counter` does not convert)."""
    return {k: v for k, v in counters.items() if not is_unit_counter(k)}


def trading_lines(quoter: dict[str, int], instruments: Sequence[Instrument],
                  start: dict[str, int] | None = None) -> list[str]:
    """Positions, then PnL and drawdown, one line each, as the report and mm status print them."""
    lines = [p.describe() for p in positions(quoter, instruments, start)]
    ccy = quote_currency(instruments)
    pnl, dd = scaled(quoter, "pnl"), scaled(quoter, "drawdown")
    if pnl is not None:
        lines.append(f"PnL {money(pnl, ccy, signed=True)} (mark-to-market at mid, traded "
                     f"inventory only), drawdown {money(dd, ccy)}")
    return lines
