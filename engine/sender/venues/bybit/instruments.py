"""Bybit's instruments: GET /v5/market/instruments-info over REST (its trade WebSocket has no
such question), one symbol at a time, read into Instruments.

Set-up code, run once before anything starts (engine/venue_info.py).
"""
from __future__ import annotations

import urllib.parse

import msgspec

from engine.instruments import Instrument
from engine.sender.venues._base import VenueRefused, http_json, normalised


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
    tick = normalised(info.symbol, "priceFilter.tickSize", info.priceFilter.tickSize)
    step = normalised(info.symbol, f"lotSizeFilter.{step_key}", lot.basePrecision or lot.qtyStep)
    min_notional = normalised(info.symbol, "lotSizeFilter.minOrderAmt",
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


def list_instruments(cfg, url: str, symbols: list[str], timeout_s: float) -> dict:
    """{symbol: (Instrument, status)} from the REST API at `url` (instruments_url)."""
    if not url.startswith(("http://", "https://")):
        raise VenueRefused(f"instruments_url: Bybit instruments come from its REST API "
                           f"(https://api.bybit.com), got {url!r}")
    return _rest(url, cfg.sender.bybit_category, symbols, timeout_s)


def _rest(base: str, category: str, symbols: list[str], timeout_s: float) -> dict:
    out = {}
    for s in symbols:
        query = urllib.parse.urlencode({"category": category, "symbol": s})
        doc = http_json(f"{base.rstrip('/')}/v5/market/instruments-info?{query}", timeout_s)
        try:
            info = decode_bybit_instruments(doc)
            if info.retCode != 0:      # e.g. 10001 "params error: symbol invalid"
                continue
            for entry in info.result.entries if info.result else ():
                if entry.symbol == s:
                    out[s] = (bybit_instrument_of(entry), entry.status)
        except ValueError as e:
            raise VenueRefused(f"instruments-info at {base}: unreadable answer ({e})") from None
    return out
