"""The instrument table: what every process agrees an instrument index means.

Prices and quantities travel as int64 mantissas: price = price_px * 10**price_exp,
quantity = qty * 10**qty_exp. Exponents default to the decimals of tick and lot size, so every
valid price is an integer number of ticks and no float ever touches a price.
"""
from __future__ import annotations

from decimal import Decimal
from typing import Annotated

import msgspec

# A decimal number written as a string ("0.001"): exact, never a binary float. The config
# loader recognises the annotation and tells a user who wrote 0.001 to quote it.
DecimalStr = Annotated[str, msgspec.Meta(description="decimal string")]
# A commission rate, a fraction of the notional.
FeeRate = Annotated[float, msgspec.Meta(ge=-0.01, le=0.01,
                                        description="a rate (0.0001 = 1 bp), -0.01..0.01")]


class Instrument(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One tradable instrument (the venue's exchangeInfo filters)."""
    symbol: str                  # venue symbol, e.g. "BTCUSDT" (Binance/Bybit) or "BTC-USDT" (OKX)
    base: str = ""               # base asset, e.g. "BTC" (balances)
    quote: str = ""              # quote asset, e.g. "USDT"
    tick_size: DecimalStr = "0.01"    # PRICE_FILTER tickSize, as a decimal string
    lot_size: DecimalStr = "0.00001"  # LOT_SIZE stepSize
    min_notional: DecimalStr = "5"    # NOTIONAL minNotional, in quote currency
    price_exp: int | None = None  # fixed-point exponent of prices (default: -decimals of tick)
    qty_exp: int | None = None    # fixed-point exponent of quantities (default: -decimals of lot)
    maker_fee: FeeRate = 0.0      # commission rate of maker fills, a fraction of the notional
                                  # (0.0001 = 1 bp; negative: a rebate)
    taker_fee: FeeRate = 0.0      # the same for taker fills
    commission_asset: str = ""    # the asset commission is charged in ("": the quote asset);
                                  # the backtest values it at the fill price

    def __post_init__(self):
        for field in ("tick_size", "lot_size", "min_notional"):
            try:
                v = Decimal(getattr(self, field))
            except Exception:
                raise ValueError(f"instrument {self.symbol}: {field} must be a decimal string") from None
            if v <= 0 and field != "min_notional":
                raise ValueError(f"instrument {self.symbol}: {field} must be > 0")

    @property
    def pexp(self) -> int:
        return self.price_exp if self.price_exp is not None else _exp_of(self.tick_size)

    @property
    def qexp(self) -> int:
        return self.qty_exp if self.qty_exp is not None else _exp_of(self.lot_size)

    @property
    def tick(self) -> int:
        """Tick size in price mantissa units."""
        return _to_units(self.tick_size, self.pexp)

    @property
    def lot(self) -> int:
        """Lot size in quantity mantissa units."""
        return _to_units(self.lot_size, self.qexp)

    @property
    def min_notional_units(self) -> int:
        """Min notional in price*qty mantissa units (exponent pexp + qexp)."""
        return _to_units(self.min_notional, self.pexp + self.qexp)

    def price_str(self, px: int) -> str:
        """Decimal string of a price mantissa, at the tick's precision (what the venue wants)."""
        return format_fixed(px, self.pexp)

    def qty_str(self, qty: int) -> str:
        return format_fixed(qty, self.qexp)


def _exp_of(dec: str) -> int:
    d = Decimal(dec).normalize()
    return min(0, d.as_tuple().exponent)


def _to_units(dec: str, exp: int) -> int:
    v = Decimal(dec).scaleb(-exp)
    if v != v.to_integral_value():
        raise ValueError(f"{dec} is not a whole number of 10^{exp} units")
    return int(v)


def format_fixed(mantissa: int, exp: int) -> str:
    """'12345', -2 -> '123.45'; exact integer formatting, no float."""
    if exp >= 0:
        return str(mantissa * 10 ** exp)
    neg = mantissa < 0
    s = str(-mantissa if neg else mantissa).rjust(-exp + 1, "0")
    out = f"{s[:exp]}.{s[exp:]}"
    return "-" + out if neg else out


# Binance Spot's real filters for the default instruments.
DEFAULT_INSTRUMENTS = (
    Instrument(symbol="BTCUSDT", base="BTC", quote="USDT", tick_size="0.01",
               lot_size="0.00001", min_notional="5"),
    Instrument(symbol="ETHUSDT", base="ETH", quote="USDT", tick_size="0.01",
               lot_size="0.0001", min_notional="5"),
)
