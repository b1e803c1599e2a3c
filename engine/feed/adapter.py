"""The venue adapter interface: everything venue-specific about market data sits behind it, so
a new venue is one module in engine/feed/venues/.

An adapter turns a venue's WebSocket frames into calls of `sink.emit(...)`, one per book or trade
event, with prices and quantities already as int64 fixed-point at the instrument's exponents.
The sink (engine/feed/publish.py) drops duplicates from redundant connections, stamps, and
writes the record straight into the md ring. Adapters never raise out of `decode`: a frame they
cannot use is counted in `self.counts` under a kind (see FRAME_KINDS) and skipped.
"""
from __future__ import annotations

from typing import Protocol, Sequence

from engine.instruments import Instrument

# What a frame can be, besides data. Counted per kind; `mm status` shows them.
FRAME_KINDS = (
    "data",            # produced at least one record
    "control",         # subscription ack, pong, LIST_SUBSCRIPTIONS result, ...
    "error",           # venue error message ({"code":..,"msg":..}, {"success":false}, event=error)
    "shutdown",        # venue announced it will close (Binance serverShutdown): reconnect now
    "malformed",       # not valid JSON / SBE, or a required field missing or of the wrong type
    "unknown",         # valid but of a type or stream this adapter does not handle
    "unknown_symbol",  # data for a symbol not in the instrument table
    "crossed",         # bid >= ask: refused
    "precision",       # a decimal with more digits than the instrument's exponent allows
    "backwards",       # update id went backwards (per instrument, per connection)
)


class MdSink(Protocol):
    def emit(self, instrument: int, kind: int, update_id: int, bid_px: int, bid_qty: int,
             ask_px: int, ask_qty: int, trade_px: int, trade_qty: int, trade_side: int,
             ts_venue: int) -> None:
        """Publish one event (kind = engine.records.MD_* flags). Prices/qtys are fixed-point."""


class VenueAdapter(Protocol):
    venue: int                    # engine.records.VENUE_*
    ping_interval_s: float        # application-level ping cadence (0 = the venue uses WS pings)
    max_connection_age_s: float   # the venue closes connections older than this (Binance 24 h)

    def __init__(self, instruments: Sequence[Instrument], streams: Sequence[str]) -> None: ...

    def stream_url(self, base_url: str) -> str:
        """Full URL to connect to for the configured symbols and streams."""

    def subscribe_frames(self) -> list[bytes]:
        """Text frames to send right after connecting (may be empty when the URL subscribes)."""

    def connect_headers(self) -> dict[str, str]:
        """HTTP headers for the WebSocket upgrade (Binance SBE: X-MBX-APIKEY), usually empty."""

    def ping_frame(self) -> bytes | None:
        """Application-level ping payload (Bybit {"op":"ping"}, OKX "ping"), or None."""

    def decode(self, payload, binary: bool, sink: MdSink) -> int:
        """Decode one frame (a memoryview of the payload; do not keep it) and emit its events.
        Returns the number of events emitted; never raises."""

    counts: dict[str, int]        # FRAME_KINDS -> count
