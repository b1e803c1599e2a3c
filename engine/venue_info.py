"""Instruments from the venue: ask the venue for its filters at start and reconcile the config.

Tick, lot, minimum notional and the base/quote assets of every configured symbol come from the
venue's exchange information, asked by the order venue's own listing (its OrderVenue in
engine/sender/venues: Binance's WS API `exchangeInfo` over the order URL, or the REST
endpoints of Binance or Bybit named by `instruments_url`). A value the user wrote that the
venue contradicts is an error naming both (`instruments[0].tick_size: config 0.01, venue BTCUSDT
tickSize 0.1`); a value the user did not write (a built-in default) is replaced by the venue's;
a symbol the venue does not list, or does not trade, is refused before anything starts.

Set-up code, run once by the supervisor before it creates anything (and by `mm feed|quoter|sender`
started alone): one short-lived connection, a bounded wait, nothing kept.
"""
from __future__ import annotations

import time
from decimal import Decimal
from typing import Callable, NamedTuple

import msgspec

from engine.instruments import Instrument
from engine.sender.venues import venue
from engine.sender.venues._base import VenueRefused, VenueUnreachable

TIMEOUT_S = 10.0                 # one attempt: connect + answer
RETRY_CAP_S = 5.0                # back-off between attempts stops doubling here


class Listing(NamedTuple):
    """What the venue says about the symbols asked for: symbol -> (Instrument, status); a
    symbol it does not know is absent."""
    venue: str
    url: str
    symbols: dict[str, tuple[Instrument, str]]


def source(cfg) -> tuple[str, str]:
    """(url, "") where the instrument filters can be read, or ("", why not) for the log."""
    if cfg.instruments_url:
        return cfg.instruments_url, ""
    why_not = venue(cfg.sender.venue).not_at_order_url
    if why_not:
        return "", why_not
    if not cfg.sender.url:
        return "", "no order URL (MM_ORDER_URL or sender.url) to ask for exchange information"
    return cfg.sender.url, ""


# ---------------------------------------------------------------------- fetching
def fetch(cfg, url: str, timeout_s: float = TIMEOUT_S) -> Listing:
    """Ask the venue at `url` about every configured symbol. VenueUnreachable or VenueRefused."""
    symbols = [i.symbol.upper() for i in cfg.instruments]
    where = venue(cfg.sender.venue)
    return Listing(where.name, url, where.list_instruments(cfg, url, symbols, timeout_s))


# ---------------------------------------------------------------------- reconciling
def resolve(cfg, configured: dict[str, frozenset[str]], listing: Listing):
    """The config with every instrument's filters from the venue; (config, notes).

    `configured` names, per symbol, the filters the user wrote (config.load_with_sources): those
    must agree with the venue (VenueRefused names both values); the rest are taken from it and
    a note says so when they differ from the built-in default.
    """
    where = venue(listing.venue)
    keys = where.instrument_keys
    out, notes = [], []
    for k, inst in enumerate(cfg.instruments):
        sym = inst.symbol.upper()
        if sym not in listing.symbols:
            raise VenueRefused(f"instruments[{k}]: {sym} is not listed by the venue at "
                               f"{listing.url}; check the symbol (MM_SYMBOL or "
                               f"instruments[{k}].symbol)")
        venue_inst, status = listing.symbols[sym]
        if status and status != where.trading:
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

