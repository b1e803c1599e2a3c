"""Build the instrument table from a Binance `GET /api/v3/exchangeInfo` response (the format the
venue's exchange-info endpoint returns; also what a saved copy of it holds).

Per symbol: PRICE_FILTER.tickSize -> tick_size, LOT_SIZE.stepSize -> lot_size,
NOTIONAL.minNotional (or the older MIN_NOTIONAL.minNotional) -> min_notional. Decimal strings
are normalised ("0.01000000" -> "0.01"); the exponents follow from them (engine/instruments.py).
Set-up code: no network here, the caller fetches or reads the document.
"""
from __future__ import annotations

import os
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Sequence

import msgspec

from engine.instruments import Instrument


class Filter(msgspec.Struct):
    filterType: str
    tickSize: str | None = None        # PRICE_FILTER
    stepSize: str | None = None        # LOT_SIZE / MARKET_LOT_SIZE
    minNotional: str | None = None     # NOTIONAL / MIN_NOTIONAL


class SymbolInfo(msgspec.Struct):
    symbol: str
    status: str = ""                   # TRADING, BREAK, HALT, ...
    baseAsset: str = ""
    quoteAsset: str = ""
    filters: list[Filter] = []


class ExchangeInfo(msgspec.Struct):
    symbols: list[SymbolInfo]


def _normalised(symbol: str, what: str, value: str | None) -> str:
    if value is None:
        raise ValueError(f"exchangeInfo {symbol}: {what} missing")
    try:
        d = Decimal(value)
    except InvalidOperation:
        raise ValueError(f"exchangeInfo {symbol}: {what} is not a decimal: {value!r}") from None
    if not d.is_finite() or d < 0:
        raise ValueError(f"exchangeInfo {symbol}: {what} must be a finite value >= 0, "
                         f"got {value!r}")
    return format(d.normalize(), "f") if d else "0"


def instrument_of(info: SymbolInfo) -> Instrument:
    """One Instrument from one exchangeInfo symbol entry. Raises ValueError naming the symbol."""
    by_type = {f.filterType: f for f in info.filters}
    price, lot = by_type.get("PRICE_FILTER"), by_type.get("LOT_SIZE")
    notional = by_type.get("NOTIONAL") or by_type.get("MIN_NOTIONAL")
    tick = _normalised(info.symbol, "PRICE_FILTER.tickSize", price and price.tickSize)
    step = _normalised(info.symbol, "LOT_SIZE.stepSize", lot and lot.stepSize)
    min_notional = _normalised(info.symbol, "NOTIONAL.minNotional",
                               notional.minNotional if notional else "0")
    try:
        return Instrument(symbol=info.symbol, base=info.baseAsset, quote=info.quoteAsset,
                          tick_size=tick, lot_size=step, min_notional=min_notional)
    except ValueError as e:
        raise ValueError(f"exchangeInfo {info.symbol}: {e}") from None


def instruments_from_exchange_info(doc: bytes | str | dict, symbols: Sequence[str] | None = None,
                                   trading_only: bool = False) -> tuple[Instrument, ...]:
    """The instrument table for `symbols` (in that order; None: every symbol in the document).

    `doc` is the response body (bytes/str) or its decoded dict. A requested symbol that is
    absent (or not TRADING when `trading_only`) raises ValueError naming it.
    """
    try:
        info = (msgspec.convert(doc, ExchangeInfo) if isinstance(doc, dict)
                else msgspec.json.decode(doc, type=ExchangeInfo))
    except msgspec.MsgspecError as e:
        raise ValueError(f"exchangeInfo: {e}") from None
    entries = {s.symbol: s for s in info.symbols
               if not trading_only or s.status == "TRADING"}
    wanted = list(entries) if symbols is None else [s.upper() for s in symbols]
    missing = [s for s in wanted if s not in entries]
    if missing:
        why = " (or not TRADING)" if trading_only else ""
        raise ValueError(f"exchangeInfo: symbols not found{why}: {missing}")
    return tuple(instrument_of(entries[s]) for s in wanted)


def load_exchange_info(path: str | os.PathLike, symbols: Sequence[str] | None = None,
                       trading_only: bool = False) -> tuple[Instrument, ...]:
    """`instruments_from_exchange_info` of a saved exchangeInfo JSON file."""
    return instruments_from_exchange_info(Path(path).read_bytes(), symbols, trading_only)


# ---------------------------------------------------------------------- Bybit v5
# GET /v5/market/instruments-info?category=<spot|linear|inverse>&symbol=<S> (Bybit v5 docs,
# "Get Instruments Info"). Spot: lotSizeFilter.basePrecision is the quantity step and
# minOrderAmt the minimum order value in quote coin; linear/inverse: qtyStep, minNotionalValue.
class BybitPriceFilter(msgspec.Struct):
    tickSize: str | None = None


class BybitLotSizeFilter(msgspec.Struct):
    basePrecision: str | None = None   # spot: quantity step
    qtyStep: str | None = None         # linear / inverse: quantity step
    minOrderAmt: str | None = None     # spot: minimum order value, quote coin
    minNotionalValue: str | None = None  # linear: minimum notional, quote coin


class BybitInstrument(msgspec.Struct):
    symbol: str
    status: str = ""                   # Trading, PreLaunch, Delivering, Closed
    baseCoin: str = ""
    quoteCoin: str = ""
    priceFilter: BybitPriceFilter = msgspec.field(default_factory=BybitPriceFilter)
    lotSizeFilter: BybitLotSizeFilter = msgspec.field(default_factory=BybitLotSizeFilter)


class BybitInstrumentList(msgspec.Struct):
    category: str = ""
    entries: list[BybitInstrument] = msgspec.field(default_factory=list, name="list")


class BybitInstrumentsInfo(msgspec.Struct):
    retCode: int
    retMsg: str = ""
    result: BybitInstrumentList | None = None


def bybit_instrument_of(info: BybitInstrument) -> Instrument:
    """One Instrument from one Bybit instruments-info entry. Raises ValueError naming it."""
    lot = info.lotSizeFilter
    step_key = "basePrecision" if lot.basePrecision is not None else "qtyStep"
    tick = _normalised(info.symbol, "priceFilter.tickSize", info.priceFilter.tickSize)
    step = _normalised(info.symbol, f"lotSizeFilter.{step_key}", lot.basePrecision or lot.qtyStep)
    min_notional = _normalised(info.symbol, "lotSizeFilter.minOrderAmt",
                               lot.minOrderAmt or lot.minNotionalValue or "0")
    try:
        return Instrument(symbol=info.symbol, base=info.baseCoin, quote=info.quoteCoin,
                          tick_size=tick, lot_size=step, min_notional=min_notional)
    except ValueError as e:
        raise ValueError(f"instruments-info {info.symbol}: {e}") from None


def decode_bybit_instruments(doc: bytes | str | dict) -> BybitInstrumentsInfo:
    """The decoded response; ValueError when it is not one (or retCode says the call failed)."""
    try:
        info = (msgspec.convert(doc, BybitInstrumentsInfo) if isinstance(doc, dict)
                else msgspec.json.decode(doc, type=BybitInstrumentsInfo))
    except msgspec.MsgspecError as e:
        raise ValueError(f"instruments-info: {e}") from None
    return info
