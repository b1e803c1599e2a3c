"""Venue adapters (one module per venue) and the registry the feed process picks from.

`make_adapter(FeedConfig.venue, instruments, streams)` builds one adapter per connection; every
adapter implements engine.feed.adapter.VenueAdapter. A venue with an L2 book stream (its
DEPTH_STREAMS: Binance JSON diff depth, Bybit orderbook.50.., OKX books) also takes `depth=`
(the feed's one DepthFeed, shared by the connections) and names its sequence rules,
DEPTH_RULES (engine/feed/depth_book.py). Where the snapshots come over REST (Binance) it names
that side: `rest_base(md_url)`, `depth_snapshot_url(rest, instrument, limit)`,
`decode_depth_snapshot(body, i)`; where they come in the stream (Bybit, OKX) it names
`depth_resubscribe_frames(i)`, the frames that make the venue send instrument i's snapshot
again (engine/feed/depth_feed.py uses them).

    stream_url(base_url) -> str         full URL (Binance: combined /stream?streams=...)
    subscribe_frames() -> list[bytes]   text frames to send once connected (Bybit, OKX)
    ping_frame() -> bytes | None        application ping, every `ping_interval_s`
    max_connection_age_s                the venue's connection lifetime (Binance 24 h)
    decode(payload, binary, sink) -> n  emit n events via sink.emit(...); never raises
    counts                              frames per kind (engine.feed.adapter.FRAME_KINDS)
    unexpected                          frames that needed the last-resort handler (a bug)

A new venue is one module: subclass venues._base.AdapterBase, name the streams it accepts,
and add it to ADAPTERS.

Binance's combined bookTicker (JSON) and SBE bestBidAsk frames are decoded and published by a C
fast path (engine._feed.BookDecoder) in front of the adapter's Python `decode`, which gets every
other frame; `make_adapter(..., fast_path=False)` builds the Python decoder alone.
"""
from __future__ import annotations

from typing import Sequence

from engine.feed.venues.binance import PARTIAL_DEPTH_STREAMS, BinanceJsonAdapter
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

# Binance's names accepted for every venue (the feed config's default streams are Binance's):
# the venue's own BBO and trade streams.
ALIASES = {
    "binance-sbe": {"bookTicker": "bestBidAsk"},
    "bybit": {"bookTicker": "orderbook.1", "trade": "publicTrade"},
    "okx": {"bookTicker": "bbo-tbt", "trade": "trades"},
}


# Streams that carry a best bid/ask (the quoter's book) per venue; a feed with diff depth alone
# publishes its L2 book's top instead.
BBO_STREAMS = {
    "binance": ("bookTicker",) + PARTIAL_DEPTH_STREAMS,
    "binance-sbe": ("bestBidAsk",),
    "bybit": ("orderbook.1",),
    "okx": ("bbo-tbt",),
}


def depth_streams(name: str, streams) -> tuple[str, ...]:
    """The diff-depth streams among `streams` of venue `name` (its adapter's DEPTH_STREAMS)."""
    cls = ADAPTERS.get(name)
    known = getattr(cls, "DEPTH_STREAMS", ())
    return tuple(s for s in streams if s in known)


def depth_in_stream(name: str) -> bool:
    """True when venue `name` sends its book snapshots in the stream (its adapter's
    DEPTH_RULES.in_stream: Bybit, OKX): no REST base is needed for depth."""
    rules = getattr(ADAPTERS.get(name), "DEPTH_RULES", None)
    return bool(rules is not None and rules.in_stream)


def has_bbo_stream(name: str, streams) -> bool:
    alias = ALIASES.get(name, {})
    streams = tuple(alias.get(s, s) for s in streams) if streams else DEFAULT_STREAMS[name]
    return any(s in BBO_STREAMS.get(name, ()) for s in streams)


def make_adapter(name: str, instruments: Sequence[Instrument],
                 streams: Sequence[str] | None = None, **options):
    """A fresh adapter for venue `name` (a key of ADAPTERS); `streams` None or empty means the
    venue's best bid/ask stream; "bookTicker"/"trade" mean the venue's equivalents (ALIASES).
    Raises ValueError naming the bad field."""
    cls = ADAPTERS.get(name)
    if cls is None:
        raise ValueError(f"feed.venue: expected one of {sorted(ADAPTERS)}, got {name!r}")
    alias = ALIASES.get(name, {})
    streams = tuple(alias.get(s, s) for s in streams) if streams else DEFAULT_STREAMS[name]
    return cls(instruments, streams, **options)
