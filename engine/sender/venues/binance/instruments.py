"""Binance's instruments: the instrument table from its exchangeInfo document (the WS API's
`exchangeInfo` over the order URL, `GET /api/v3/exchangeInfo` over REST, or a saved copy).

Per symbol: PRICE_FILTER.tickSize -> tick_size, LOT_SIZE.stepSize -> lot_size,
NOTIONAL.minNotional (or the older MIN_NOTIONAL.minNotional) -> min_notional. Decimal strings
are normalised ("0.01000000" -> "0.01"); the exponents follow from them (engine/instruments.py).
Set-up code, run once before anything starts (engine/venue_info.py): one short-lived
connection or GET, a bounded wait.
"""
from __future__ import annotations

import asyncio
import json
import os
import urllib.parse
from pathlib import Path
from typing import Sequence

import msgspec

from engine.instruments import Instrument
from engine.sender.venues._base import VenueRefused, VenueUnreachable, http_json, normalised

UNKNOWN_SYMBOL = -1121           # Binance: "Invalid symbol."


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



def instrument_of(info: SymbolInfo) -> Instrument:
    """One Instrument from one exchangeInfo symbol entry. Raises ValueError naming the symbol."""
    by_type = {f.filterType: f for f in info.filters}
    price, lot = by_type.get("PRICE_FILTER"), by_type.get("LOT_SIZE")
    notional = by_type.get("NOTIONAL") or by_type.get("MIN_NOTIONAL")
    tick = normalised(info.symbol, "PRICE_FILTER.tickSize", price and price.tickSize)
    step = normalised(info.symbol, "LOT_SIZE.stepSize", lot and lot.stepSize)
    min_notional = normalised(info.symbol, "NOTIONAL.minNotional",
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



def list_instruments(cfg, url: str, symbols: list[str], timeout_s: float) -> dict:
    """{symbol: (Instrument, status)} from exchangeInfo at `url`: the WS API (the order URL) or
    the REST API (instruments_url, http(s)://host)."""
    if url.startswith(("http://", "https://")):
        query = urllib.parse.urlencode({"symbols": json.dumps(symbols, separators=(",", ":"))})
        doc = http_json(f"{url.rstrip('/')}/api/v3/exchangeInfo?{query}", timeout_s)
    else:
        doc = asyncio.run(_ws_request(url, {"symbols": symbols}, timeout_s))
        if doc.get("status") != 200:
            doc = doc.get("error") or {"code": doc.get("status"), "msg": "no error text"}
    if isinstance(doc, dict) and doc.get("code") == UNKNOWN_SYMBOL and len(symbols) > 1:
        # One unknown symbol fails the whole request: ask one by one to name it.
        found: dict[str, tuple[Instrument, str]] = {}
        for s in symbols:
            found.update(list_instruments(cfg, url, [s], timeout_s))
        return found
    if isinstance(doc, dict) and doc.get("code") == UNKNOWN_SYMBOL:
        return {}
    if isinstance(doc, dict) and "code" in doc and "symbols" not in doc:
        raise VenueRefused(f"exchangeInfo at {url}: error {doc.get('code')} {doc.get('msg')}")
    body = doc.get("result", doc) if isinstance(doc, dict) else doc
    try:
        info = msgspec.convert(body, ExchangeInfo)
        listed = {s.symbol: (instrument_of(s), s.status) for s in info.symbols
                  if s.symbol in symbols}
    except (msgspec.ValidationError, ValueError) as e:
        raise VenueRefused(f"exchangeInfo at {url}: unreadable answer ({e})") from None
    return listed


async def _ws_request(url: str, params: dict, timeout_s: float) -> dict:
    """One `exchangeInfo` request over a fresh WebSocket; the decoded response."""
    from picows import WSListener, WSMsgType, ws_connect

    loop = asyncio.get_running_loop()
    answer: asyncio.Future = loop.create_future()

    class Listener(WSListener):
        def on_ws_frame(self, transport, frame):
            if frame.msg_type == WSMsgType.TEXT and not answer.done():
                answer.set_result(frame.get_payload_as_bytes())
            elif frame.msg_type == WSMsgType.CLOSE:
                transport.disconnect()

        def on_ws_disconnected(self, transport):
            if not answer.done():
                answer.set_exception(VenueUnreachable(f"{url}: closed before answering"))

    deadline = loop.time() + timeout_s
    try:
        transport, _ = await asyncio.wait_for(
            ws_connect(Listener, url, websocket_handshake_timeout=timeout_s), timeout_s)
    except asyncio.TimeoutError:
        raise VenueUnreachable(f"{url}: no connection within {timeout_s:g} s") from None
    except Exception as e:            # picows raises OSError subclasses and its own errors
        raise VenueUnreachable(f"{url}: {type(e).__name__}: {e}") from None
    try:
        transport.send(WSMsgType.TEXT, json.dumps(
            {"id": 1, "method": "exchangeInfo", "params": params}).encode())
        payload = await asyncio.wait_for(answer, max(deadline - loop.time(), 0.1))
    except asyncio.TimeoutError:
        raise VenueUnreachable(f"{url}: no exchangeInfo answer within {timeout_s:g} s") from None
    finally:
        transport.send_close()
        transport.disconnect()
    try:
        return json.loads(payload)
    except ValueError:
        raise VenueRefused(f"{url}: the exchangeInfo answer is not JSON") from None
