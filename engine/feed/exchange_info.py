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
