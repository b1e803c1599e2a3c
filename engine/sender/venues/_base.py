"""What every order venue package declares: one OrderVenue, the facts the engine reaches the
venue by (its registry entry in engine/sender/venues/__init__.py); and what the venues'
instrument listings (<venue>/instruments.py) share: their errors, a JSON GET, decimal strings
normalised.

The gateway is named, not imported: a configuration names its venue, and loading it (or
checking credentials, or asking for instruments) must not import every venue's hot path.
"""
from __future__ import annotations

import importlib
import json
import urllib.error
import urllib.request
from decimal import Decimal, InvalidOperation
from typing import Callable, NamedTuple


class OrderVenue(NamedTuple):
    """One order venue: its name in the config and in messages, its gateway, the credential
    methods its order API takes, and how its instruments are asked for."""
    name: str                     # sender.venue
    title: str                    # in messages: "Bybit signs with HMAC"
    gateway: str                  # "package.module:Class", a subclass of engine.sender.gateway's
                                  # Gateway, imported when a sender starts
    auths: tuple[str, ...]        # "hmac" (every venue), "ed25519" (an Ed25519 session)
    # -- instruments (engine/venue_info.py) --
    list_instruments: Callable    # (cfg, url, symbols, timeout_s) -> {symbol: (Instrument,
                                  # status)}, a symbol the venue does not know absent;
                                  # VenueUnreachable or VenueRefused
    instrument_keys: dict         # Instrument field -> the venue's name for it (messages)
    trading: str                  # the status of a symbol that trades
    not_at_order_url: str = ""    # why the order URL cannot say (""; it can: the default
                                  # source when instruments_url is not set)
    # -- the journal's check against the venue (engine/journal/agent.py) --
    trade_list: str = ""          # "package.module:Class": the client of the venue's own trade
                                  # list (from_config, fetch, close); its module's
                                  # reconcile_symbol compares it with the journal ("": none)

    def gateway_class(self) -> type:
        """The venue's Gateway subclass (imports its module)."""
        return _load(self.gateway)

    def trade_list_parts(self) -> tuple[type, Callable] | None:
        """(the trade list's client class, its module's reconcile_symbol), or None."""
        if not self.trade_list:
            return None
        cls = _load(self.trade_list)
        return cls, importlib.import_module(cls.__module__).reconcile_symbol


def _load(path: str):
    """The object named "package.module:Name" (imports its module)."""
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


class VenueRefused(ValueError):
    """The venue answered, and the answer refuses the configuration (unknown symbol, a filter
    that disagrees): restarting will not help."""


class VenueUnreachable(OSError):
    """No answer from the venue (connection refused, timeout, a 5xx): worth another try."""


def normalised(symbol: str, what: str, value: str | None) -> str:
    """A venue's decimal string normalised ("0.01000000" -> "0.01"); ValueError naming the
    symbol and the field when it is missing, not a decimal, or negative."""
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


def http_json(url: str, timeout_s: float):
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
