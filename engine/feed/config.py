"""Feed process configuration ([feed] in the TOML file)."""
from __future__ import annotations

from typing import Annotated, Literal, Sequence

import msgspec
from msgspec import Meta

from engine.config_check import (ConfigError, Core, NonNegativeFloat, NonNegativeInt,
                                 PositiveFloat, PositiveInt, WsUrl, check_struct)
from engine.instruments import Instrument

MAX_CONNECTIONS = 8       # the conn field is a u1; 8 redundant copies is already generous
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
        if instruments is not None:   # the adapter registry knows what each venue accepts
            from engine.feed.venues import make_adapter

            make_adapter(self.venue, instruments, self.streams)

    def effective_max_age_s(self, venue_limit_s: float) -> float:
        """Age at which a connection is recycled: the configured age, capped below the venue's
        limit by the margin (never below half the venue's limit, so a short limit still works)."""
        venue_cap = venue_limit_s - min(self.rollover_margin_s, venue_limit_s / 2) \
            if venue_limit_s > 0 else 0.0
        if self.max_age_s > 0 and venue_cap > 0:
            return min(self.max_age_s, venue_cap)
        return self.max_age_s or venue_cap
