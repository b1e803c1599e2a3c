"""Venue adapters (one module per venue) and the registry the feed process picks from.

`make_adapter(FeedConfig.venue, instruments, streams)` builds one adapter per connection; every
adapter implements engine.feed.adapter.VenueAdapter.
"""
from __future__ import annotations

from typing import Sequence

from engine.feed.venues.binance import BinanceJsonAdapter
from engine.feed.venues.binance_sbe import BinanceSbeAdapter
from engine.feed.venues.bybit import BybitAdapter
from engine.feed.venues.okx import OkxAdapter
from engine.instruments import Instrument

ADAPTERS = {
    "binance": BinanceJsonAdapter,
    "binance-sbe": BinanceSbeAdapter,
    "bybit": BybitAdapter,
    "okx": OkxAdapter,
}

# Streams subscribed when the configuration names none: each venue's best bid/ask stream.
DEFAULT_STREAMS = {
    "binance": ("bookTicker",),
    "binance-sbe": ("bestBidAsk",),
    "bybit": ("orderbook.1",),
    "okx": ("bbo-tbt",),
}


def make_adapter(name: str, instruments: Sequence[Instrument],
                 streams: Sequence[str] | None = None, **options):
    """A fresh adapter for venue `name` (a key of ADAPTERS); `streams` None or empty means the
    venue's best bid/ask stream. Raises ValueError naming the bad field."""
    cls = ADAPTERS.get(name)
    if cls is None:
        raise ValueError(f"feed.venue: expected one of {sorted(ADAPTERS)}, got {name!r}")
    return cls(instruments, tuple(streams) if streams else DEFAULT_STREAMS[name], **options)
