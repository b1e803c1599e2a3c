"""Feed process configuration ([feed] in the TOML file)."""
from __future__ import annotations

from typing import Annotated, Literal, Sequence
from urllib.parse import urlsplit

import msgspec
from msgspec import Meta

from engine.config_check import (ConfigError, Core, NonNegativeFloat, NonNegativeInt,
                                 PositiveFloat, PositiveInt, WsUrl, check_struct)
from engine.instruments import Instrument

MAX_CONNECTIONS = 8       # the conn field is a u1; 8 redundant copies is already generous
HttpUrl = Annotated[str, Meta(pattern=r"^(https?://[^/?#\s]+/?$|$)",
                             description="http:// or https:// base URL (scheme and host only)")]
# The adapters of engine/feed/venues (ADAPTERS; a test keeps the two in step).
FeedVenue = Literal["binance", "binance-sbe", "bybit", "okx"]


class FeedConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    venue: FeedVenue = "binance"  # binance | binance-sbe | bybit | okx
    url: WsUrl = ""               # market stream base URL (MM_MD_URL overrides; empty = simulator)
    streams: tuple[str, ...] = ("bookTicker", "trade")  # per symbol; () = the venue's BBO stream
    connections: Annotated[int, Meta(ge=1, le=MAX_CONNECTIONS)] = 2  # redundant connections per
                                  # stream; first copy of an update wins
    stale_after_ms: Annotated[int, Meta(ge=10)] = 2000  # no data on any connection this long: mark
                                  # stale + reconnect
    reconnect_base_s: PositiveFloat = 0.1  # first reconnect back-off ceiling (full jitter: 0..ceiling)
    reconnect_cap_s: float = 5.0  # back-off ceiling stops doubling here (>= reconnect_base_s)
    connect_timeout_s: PositiveFloat = 5.0  # TCP + WebSocket handshake must finish within this
    max_age_s: NonNegativeFloat = 0.0  # recycle connections older than this (0 = the venue's limit)
    rollover_margin_s: NonNegativeFloat = 300.0  # recycle this long before the venue's own age limit
    rollover_overlap_ms: NonNegativeInt = 200  # keep the old connection this long after the new
                                  # one's first data
    capture_path: str = ""        # raw frame capture file (length-prefixed, see capture.py); "" = off
    capture_queue: PositiveInt = 65536  # frames buffered for the capture thread before counting drops
    rest_url: HttpUrl = ""        # REST base for diff-depth snapshots (GET /api/v3/depth); "" =
                                  # derived from url: Binance's stream hosts -> their REST hosts,
                                  # any other host (the simulator) -> the same host and port.
                                  # Bybit, OKX: not used (their snapshots come in the stream)
    depth_snapshot_limit: Annotated[int, Meta(ge=5, le=5000)] = 1000  # levels per snapshot
                                  # (Binance weight: 50 up to 1000, 250 above; Bybit's and OKX's
                                  # depth is in the stream's name: orderbook.200, books)
    core: Core = -1               # CPU to pin to (-1: chosen by the layout)
    idle: Literal["", "epoll", "busy-spin"] = ""  # how it waits for frames: epoll (its sockets
                                  # wake it) | busy-spin (polls them without sleeping; only on a
                                  # core of its own); "" = the layout's choice: busy-spin on an
                                  # isolated core nobody else uses, else epoll

    def validate(self, instruments: Sequence[Instrument] | None = None) -> None:
        """The field constraints, the rules between fields and, given the instrument table,
        the venue's adapter for these streams; ConfigError naming the field."""
        check_struct(self, "feed")
        if any(not s for s in self.streams):
            raise ConfigError(f"feed.streams: expected non-empty stream names, "
                              f"got {list(self.streams)}")
        if self.reconnect_cap_s < self.reconnect_base_s:
            raise ConfigError(f"feed.reconnect_cap_s: expected >= reconnect_base_s "
                              f"({self.reconnect_base_s}), got {self.reconnect_cap_s}")
        rest = urlsplit(self.effective_rest_url()) \
            if self.keeps_depth() and self.url and self._depth_over_rest() else None
        if rest is not None and (rest.scheme not in ("http", "https") or not rest.hostname):
            raise ConfigError(f"feed.rest_url: diff depth needs an http(s) REST base for its "
                              f"snapshots; none derives from feed.url {self.url!r}")
        if instruments is not None:   # the adapter registry knows what each venue accepts
            from engine.feed.venues import make_adapter

            make_adapter(self.venue, instruments, self.streams)

    def keeps_depth(self) -> bool:
        """True when a diff-depth stream is subscribed: the feed keeps L2 books."""
        from engine.feed.venues import depth_streams

        return bool(depth_streams(self.venue, self.streams))

    def _depth_over_rest(self) -> bool:
        from engine.feed.venues import depth_in_stream

        return not depth_in_stream(self.venue)

    def effective_rest_url(self) -> str:
        """rest_url, or the REST base the venue's adapter derives from url ("" for a venue
        whose book snapshots come in the stream: Bybit, OKX)."""
        if not self._depth_over_rest():
            return ""
        if self.rest_url:
            return self.rest_url.rstrip("/")
        from engine.feed.venues import ADAPTERS

        return ADAPTERS[self.venue].rest_base(self.url) if self.url else ""

    def effective_max_age_s(self, venue_limit_s: float) -> float:
        """Age at which a connection is recycled: the configured age, capped below the venue's
        limit by the margin (never below half the venue's limit, so a short limit still works)."""
        venue_cap = venue_limit_s - min(self.rollover_margin_s, venue_limit_s / 2) \
            if venue_limit_s > 0 else 0.0
        if self.max_age_s > 0 and venue_cap > 0:
            return min(self.max_age_s, venue_cap)
        return self.max_age_s or venue_cap
