"""Order venues (one package per venue) and the registry the sender, the credentials check and
the instrument look-up pick from, by `sender.venue`.

Each package engine/sender/venues/<name>/ holds:
    encoding.py      requests from pre-built byte templates (the hot path's in C or %-format)
    wire.py          the msgspec schema of what comes back, the venue's codes, its status words
                     as our order states
    gateway.py       a subclass of engine.sender.gateway.Gateway: the hot path's hooks
                     (place_into, replace_into, send_cancel, dry_intent), answers and events
                     (on_frame), logon, redact
    reconcile.py     query, reconcile, cancel_everything: order truth by asking the venue
    instruments.py   list_instruments: the venue's filters for the configured symbols
                     (engine/venue_info.py reconciles the config with them)
and in its __init__.py one OrderVenue (engine/sender/venues/_base.py): name, title, the
gateway's import path, the credential methods it takes (engine/sender/keys.py), its
instrument listing, the venue's names of the instrument fields, its "trading" status.

A new order venue is one package and one line in VENUES.
"""
from __future__ import annotations

from engine.sender.venues import binance, bybit
from engine.sender.venues._base import OrderVenue

VENUES: dict[str, OrderVenue] = {
    "binance": binance.VENUE,
    "bybit": bybit.VENUE,
}


def venue(name: str) -> OrderVenue:
    """The order venue `name` (sender.venue); ValueError naming the field and the known ones."""
    v = VENUES.get(name)
    if v is None:
        raise ValueError(f"sender.venue: expected one of {', '.join(VENUES)}; got {name!r}")
    return v


def make_gateway(cfg, creds, fills, hist=None, dry_run: bool = False, kill_addr: int = 0):
    """A fresh gateway for cfg.sender.venue (see engine.sender.gateway.Gateway)."""
    cls = venue(cfg.sender.venue).gateway_class()
    return cls(cfg, creds, fills, hist, dry_run, kill_addr)
