"""Instruments from the venue: ask the venue for its filters at start and reconcile the config.

Tick, lot, minimum notional and the base/quote assets of every configured symbol come from the
venue's exchange information (Binance WS API `exchangeInfo` over the order URL, or the REST
endpoints of Binance or Bybit named by `instruments_url`). A value the user wrote that the
venue contradicts is an error naming both (`instruments[0].tick_size: config 0.01, venue BTCUSDT
tickSize 0.1`); a value the user did not write (a built-in default) is replaced by the venue's;
a symbol the venue does not list, or does not trade, is refused before anything starts.

Set-up code, run once by the supervisor before it creates anything (and by `mm feed|quoter|sender`
started alone): one short-lived connection, a bounded wait, nothing kept.
"""
from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from decimal import Decimal
from typing import Callable, NamedTuple

import msgspec

from engine.feed.exchange_info import (ExchangeInfo, bybit_instrument_of,
                                       decode_bybit_instruments, instrument_of)
from engine.instruments import Instrument

TIMEOUT_S = 10.0                 # one attempt: connect + answer
RETRY_CAP_S = 5.0                # back-off between attempts stops doubling here
UNKNOWN_SYMBOL = -1121           # Binance: "Invalid symbol."
# The venue's names of the fields an Instrument takes from it (for the error messages).
VENUE_KEYS = {
    "binance": {"base": "baseAsset", "quote": "quoteAsset", "tick_size": "tickSize",
                "lot_size": "stepSize", "min_notional": "minNotional"},
    "bybit": {"base": "baseCoin", "quote": "quoteCoin", "tick_size": "tickSize",
              "lot_size": "basePrecision", "min_notional": "minOrderAmt"},
}
TRADING = {"binance": "TRADING", "bybit": "Trading"}


class VenueRefused(ValueError):
    """The venue answered, and the answer refuses the configuration (unknown symbol, a filter
    that disagrees): restarting will not help."""


class VenueUnreachable(OSError):
    """No answer from the venue (connection refused, timeout, a 5xx): worth another try."""


class Listing(NamedTuple):
    """What the venue says about the symbols asked for: symbol -> (Instrument, status); a
    symbol it does not know is absent."""
    venue: str
    url: str
    symbols: dict[str, tuple[Instrument, str]]


def source(cfg) -> tuple[str, str]:
    """(url, "") where the instrument filters can be read, or ("", why not) for the log."""
    venue = cfg.sender.venue
    if cfg.instruments_url:
        return cfg.instruments_url, ""
    if venue == "bybit":
        return "", ("Bybit serves its instrument filters over REST only: set instruments_url = "
                    "\"https://api.bybit.com\" to check them against the venue")
    if not cfg.sender.url:
        return "", "no order URL (MM_ORDER_URL or sender.url) to ask for exchange information"
    return cfg.sender.url, ""


# ---------------------------------------------------------------------- fetching
def fetch(cfg, url: str, timeout_s: float = TIMEOUT_S) -> Listing:
    """Ask the venue at `url` about every configured symbol. VenueUnreachable or VenueRefused."""
    symbols = [i.symbol.upper() for i in cfg.instruments]
    venue = cfg.sender.venue
    if venue == "bybit":
        if not url.startswith(("http://", "https://")):
            raise VenueRefused(f"instruments_url: Bybit instruments come from its REST API "
                               f"(https://api.bybit.com), got {url!r}")
        return Listing(venue, url, _bybit_rest(url, cfg.sender.bybit_category, symbols,
                                               timeout_s))
    if url.startswith(("http://", "https://")):
        query = urllib.parse.urlencode({"symbols": json.dumps(symbols, separators=(",", ":"))})
        doc = _http_json(f"{url.rstrip('/')}/api/v3/exchangeInfo?{query}", timeout_s)
    else:
        doc = asyncio.run(_ws_request(url, {"symbols": symbols}, timeout_s))
        if doc.get("status") != 200:
            doc = doc.get("error") or {"code": doc.get("status"), "msg": "no error text"}
    if isinstance(doc, dict) and doc.get("code") == UNKNOWN_SYMBOL and len(symbols) > 1:
        # One unknown symbol fails the whole request: ask one by one to name it.
        found: dict[str, tuple[Instrument, str]] = {}
        for s in symbols:
            found.update(fetch(_one_symbol(cfg, s), url, timeout_s).symbols)
        return Listing(venue, url, found)
    if isinstance(doc, dict) and doc.get("code") == UNKNOWN_SYMBOL:
        return Listing(venue, url, {})
    if isinstance(doc, dict) and "code" in doc and "symbols" not in doc:
        raise VenueRefused(f"exchangeInfo at {url}: error {doc.get('code')} {doc.get('msg')}")
    body = doc.get("result", doc) if isinstance(doc, dict) else doc
    try:
        info = msgspec.convert(body, ExchangeInfo)
        listed = {s.symbol: (instrument_of(s), s.status) for s in info.symbols
                  if s.symbol in symbols}
    except (msgspec.ValidationError, ValueError) as e:
        raise VenueRefused(f"exchangeInfo at {url}: unreadable answer ({e})") from None
    return Listing(venue, url, listed)


def _one_symbol(cfg, symbol: str):
    inst = next(i for i in cfg.instruments if i.symbol.upper() == symbol)
    return msgspec.structs.replace(cfg, instruments=(inst,))


def _bybit_rest(base: str, category: str, symbols: list[str], timeout_s: float) -> dict:
    out = {}
    for s in symbols:
        query = urllib.parse.urlencode({"category": category, "symbol": s})
        doc = _http_json(f"{base.rstrip('/')}/v5/market/instruments-info?{query}", timeout_s)
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


def _http_json(url: str, timeout_s: float):
    """GET `url` and decode its JSON; a 4xx with a JSON body is returned (the venue's error)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as r:
            return json.loads(r.read())
    except urllib.error.HTTPError as e:
        if 400 <= e.code < 500:
            try:
                return json.loads(e.read())
            except ValueError:
                raise VenueRefused(f"GET {url}: HTTP {e.code}") from None
        raise VenueUnreachable(f"GET {url}: HTTP {e.code}") from None
    except (urllib.error.URLError, TimeoutError, OSError) as e:
        raise VenueUnreachable(f"GET {url}: {getattr(e, 'reason', e)}") from None
    except ValueError:
        raise VenueRefused(f"GET {url}: the answer is not JSON") from None


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


# ---------------------------------------------------------------------- reconciling
def resolve(cfg, configured: dict[str, frozenset[str]], listing: Listing):
    """The config with every instrument's filters from the venue; (config, notes).

    `configured` names, per symbol, the filters the user wrote (config.load_with_sources): those
    must agree with the venue (VenueRefused names both values); the rest are taken from it and
    a note says so when they differ from the built-in default.
    """
    keys = VENUE_KEYS[listing.venue]
    out, notes = [], []
    for k, inst in enumerate(cfg.instruments):
        sym = inst.symbol.upper()
        if sym not in listing.symbols:
            raise VenueRefused(f"instruments[{k}]: {sym} is not listed by the venue at "
                               f"{listing.url}; check the symbol (MM_SYMBOL or "
                               f"instruments[{k}].symbol)")
        venue_inst, status = listing.symbols[sym]
        if status and status != TRADING[listing.venue]:
            raise VenueRefused(f"instruments[{k}]: {sym} is not trading at the venue "
                               f"(status {status})")
        written = configured.get(sym, frozenset())
        values = {}
        for field, vkey in keys.items():
            mine, theirs = getattr(inst, field), getattr(venue_inst, field)
            if _same(field, mine, theirs):
                values[field] = mine
            elif field in written:
                raise VenueRefused(f"instruments[{k}].{field}: config {mine}, venue {sym} "
                                   f"{vkey} {theirs}")
            else:
                values[field] = theirs
                notes.append(f"{sym} {field} {theirs} from the venue (built-in default {mine})")
        try:
            new = msgspec.structs.replace(inst, **values)
            _whole = (new.tick, new.lot, new.min_notional_units)  # raise if not whole numbers
        except ValueError as e:
            raise VenueRefused(f"instruments[{k}] ({sym}): {e} with the venue's filters; "
                               f"remove instruments[{k}].price_exp/qty_exp or fix them") from None
        out.append(new)
    return msgspec.structs.replace(cfg, instruments=tuple(out)), notes


def _same(field: str, mine: str, theirs: str) -> bool:
    if field in ("base", "quote"):
        return not theirs or mine.upper() == theirs.upper()
    return Decimal(mine) == Decimal(theirs)


def instruments_from_venue(cfg, configured, log: Callable[[str], None],
                           deadline: float | None = None, stop: Callable[[], bool] = lambda: False):
    """Fetch (retrying an unreachable venue with back-off until `deadline`, a monotonic time, or
    until `stop()` says so) and resolve. Returns the new config, or None when the venue was
    never reached. VenueRefused (a config the venue refuses) and config errors propagate."""
    from engine import config as config_mod

    url, why_not = source(cfg)
    if not url:
        log(f"instruments: {why_not}; using the configured filters as they are")
        return cfg
    attempt, wait = 0, 0.5
    while True:
        attempt += 1
        left = None if deadline is None else deadline - time.monotonic()
        try:
            listing = fetch(cfg, url, TIMEOUT_S if left is None else max(min(TIMEOUT_S, left), 0.1))
            break
        except VenueUnreachable as e:
            left = None if deadline is None else deadline - time.monotonic()
            if stop() or (left is not None and left <= 0.05):
                log(f"instruments: venue unreachable, gave up after {attempt} attempt(s): {e}")
                return None
            pause = wait if left is None else min(wait, left)
            log(f"instruments: venue unreachable (attempt {attempt}): {e}; "
                f"next try in {pause:.1f} s")
            end = time.monotonic() + pause
            while time.monotonic() < end and not stop():
                time.sleep(0.05)
            wait = min(wait * 2, RETRY_CAP_S)
    new, notes = resolve(cfg, configured, listing)
    for n in notes:
        log(f"instruments: {n}")
    try:
        config_mod.check(new)            # quoter.order_size against the venue's lot, ...
    except config_mod.ConfigError as e:
        raise VenueRefused(f"{e} (with the venue's filters)") from None
    log("instruments: " + "; ".join(
        f"{i.symbol} tick {i.tick_size} lot {i.lot_size} min notional {i.min_notional} "
        f"{i.quote}" for i in new.instruments) + f" (from {url})")
    return new
