"""Feed process configuration ([feed] in the TOML file)."""
from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import msgspec

if TYPE_CHECKING:
    from engine.config import EngineConfig

MAX_CONNECTIONS = 8       # the conn field is a u1; 8 redundant copies is already generous
# The adapters of engine/feed/venues (ADAPTERS; a test keeps the two in step).
FeedVenue = Literal["binance", "binance-sbe", "bybit", "okx"]


class FeedConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    venue: FeedVenue = "binance"  # binance | binance-sbe | bybit | okx
    url: str = ""                 # market stream base URL (MM_MD_URL overrides; empty = simulator)
    streams: tuple[str, ...] = ("bookTicker", "trade")  # per symbol; () = the venue's BBO stream
    connections: int = 2          # redundant connections per stream; first copy of an update wins
    stale_after_ms: int = 2000    # no data on any connection this long: mark stale + reconnect
    reconnect_base_s: float = 0.1  # first reconnect back-off ceiling (full jitter: 0..ceiling)
    reconnect_cap_s: float = 5.0  # back-off ceiling stops doubling here
    connect_timeout_s: float = 5.0  # TCP + WebSocket handshake must finish within this
    max_age_s: float = 0.0        # recycle connections older than this (0 = the venue's limit)
    rollover_margin_s: float = 300.0  # recycle this long before the venue's own age limit
    rollover_overlap_ms: int = 200  # keep the old connection this long after the new one's first data
    capture_path: str = ""        # raw frame capture file (length-prefixed, see capture.py); "" = off
    capture_queue: int = 65536    # frames buffered for the capture thread before counting drops
    core: int = -1                # CPU to pin to (-1: chosen by the layout)

    def validate(self, cfg: "EngineConfig") -> None:
        """Range checks; ValueError names the field."""
        if self.url and not self.url.startswith(("ws://", "wss://")):
            raise ValueError(f"feed.url: expected ws:// or wss:// URL, got {self.url!r}")
        if any(not s for s in self.streams):
            raise ValueError(f"feed.streams: expected non-empty stream names, got {list(self.streams)}")
        if not 1 <= self.connections <= MAX_CONNECTIONS:
            raise ValueError(f"feed.connections: expected 1..{MAX_CONNECTIONS}, got {self.connections}")
        if self.stale_after_ms < 10:
            raise ValueError(f"feed.stale_after_ms: expected >= 10, got {self.stale_after_ms}")
        if not self.reconnect_base_s > 0:
            raise ValueError(f"feed.reconnect_base_s: expected > 0, got {self.reconnect_base_s}")
        if self.reconnect_cap_s < self.reconnect_base_s:
            raise ValueError(f"feed.reconnect_cap_s: expected >= reconnect_base_s "
                             f"({self.reconnect_base_s}), got {self.reconnect_cap_s}")
        if not self.connect_timeout_s > 0:
            raise ValueError(f"feed.connect_timeout_s: expected > 0, got {self.connect_timeout_s}")
        if self.max_age_s < 0:
            raise ValueError(f"feed.max_age_s: expected >= 0 (0 = venue limit), got {self.max_age_s}")
        if self.rollover_margin_s < 0:
            raise ValueError(f"feed.rollover_margin_s: expected >= 0, got {self.rollover_margin_s}")
        if self.rollover_overlap_ms < 0:
            raise ValueError(f"feed.rollover_overlap_ms: expected >= 0, got {self.rollover_overlap_ms}")
        if self.capture_queue < 1:
            raise ValueError(f"feed.capture_queue: expected >= 1, got {self.capture_queue}")
        if self.core < -1:
            raise ValueError(f"feed.core: expected -1 (unpinned) or a CPU number, got {self.core}")
        # Venue and streams: the adapter registry knows what each venue accepts.
        from engine.feed.venues import make_adapter

        make_adapter(self.venue, cfg.instruments, self.streams)

    def effective_max_age_s(self, venue_limit_s: float) -> float:
        """Age at which a connection is recycled: the configured age, capped below the venue's
        limit by the margin (never below half the venue's limit, so a short limit still works)."""
        venue_cap = venue_limit_s - min(self.rollover_margin_s, venue_limit_s / 2) \
            if venue_limit_s > 0 else 0.0
        if self.max_age_s > 0 and venue_cap > 0:
            return min(self.max_age_s, venue_cap)
        return self.max_age_s or venue_cap
