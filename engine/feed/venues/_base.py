"""What every venue adapter shares: the instrument lookup, per-instrument update-id memory,
frame-kind counters, the C fast path in front of a venue's Python decoder, and the
rate-limited log of frames that were skipped.

Set-up and reporting code lives here; each venue module keeps its own hot path.
"""
from __future__ import annotations

import logging
import time
from array import array
from typing import Sequence

import msgspec

from engine import _feed
from engine.feed.adapter import FRAME_KINDS
from engine.feed.fixed import MALFORMED, fixed_cache, lookup, sentinel_kind
from engine.instruments import Instrument
from engine.records import MD_BBO

log = logging.getLogger("engine.feed.venues")

# What a decoder raises on bad input: msgspec's errors, and UnicodeDecodeError for a string
# that is not UTF-8 (msgspec lets that one through as is).
DECODE_ERRORS = (msgspec.MsgspecError, UnicodeDecodeError)

# Kinds worth a log line when they arrive (rate-limited); data and control are routine.
LOGGED_KINDS = frozenset(FRAME_KINDS) - {"data", "control"}
LOG_INTERVAL_S = 1.0
LOG_BYTES = 200


def top_level(levels, ent) -> tuple[int, int]:
    """(price, qty) mantissas of the first `[price, qty, ...]` level of a side (best first);
    (0, 0) for an empty side; lookup sentinels for bad numbers or a short level."""
    if not levels:
        return 0, 0
    lv = levels[0]
    if len(lv) < 2:
        return MALFORMED, MALFORMED
    _, pc, qc, pe, qe = ent
    try:
        return pc[lv[0]], qc[lv[1]]
    except KeyError:
        return lookup(pc, lv[0], pe), lookup(qc, lv[1], qe)


def mantissa_levels(levels, ent, text: bool = False) -> list[tuple] | None:
    """[(px, qty)] mantissas of `[[price, qty, ...], ...]` (with `text`: (px, qty, "price:qty")
    as the venue wrote them, for a checksum); None when a level is short or a number is not
    usable."""
    _, pc, qc, pe, qe = ent
    out = []
    for lv in levels:
        if len(lv) < 2:
            return None
        p, q = lv[0], lv[1]
        try:
            px, qty = pc[p], qc[q]
        except KeyError:
            px, qty = lookup(pc, p, pe), lookup(qc, q, qe)
        if (px | qty) < 0:
            return None
        out.append((px, qty, f"{p}:{q}") if text else (px, qty))
    return out


class AdapterBase:
    """Common state of a venue adapter; one instance per connection.

    Subclasses set `venue`, `ping_interval_s`, `max_connection_age_s`, `STREAMS` (the stream
    names they accept) and implement `stream_url`, `subscribe_frames`, `ping_frame`, `decode`.
    A venue whose best bid/ask frame has a C decoder in engine._feed puts it in front of its
    Python `decode` with `_install_fast_path`; `fast_path=False` keeps the Python decoder alone
    (the reference the fast path is tested against).
    """

    venue: int = 0
    ping_interval_s: float = 0.0
    max_connection_age_s: float = 1e9
    STREAMS: tuple[str, ...] = ()
    log_frames: bool = True           # class default; `log_skipped=` overrides per instance

    def __init__(self, instruments: Sequence[Instrument], streams: Sequence[str],
                 log_skipped: bool | None = None, fast_path: bool = True):
        if not instruments:
            raise ValueError("feed adapter: at least one instrument is needed")
        bad = [s for s in streams if s not in self.STREAMS]
        if bad or not streams:
            raise ValueError(f"feed.streams: {type(self).__name__} supports {list(self.STREAMS)}, "
                             f"got {list(streams)}")
        self.instruments = tuple(instruments)
        self.streams = tuple(dict.fromkeys(streams))
        self._counts: dict[str, int] = dict.fromkeys(FRAME_KINDS, 0)   # see `counts`
        self._fast_path = None           # engine._feed.BookDecoder, when installed
        self._fast_path_wanted = fast_path
        # Frames that reached the last-resort `except Exception` in decode (a bug to fix: normal
        # bad input is classified on its own path); counted as malformed too.
        self.unexpected = 0
        # Per instrument: (index, price cache, qty cache, price exp, qty exp); the caches are
        # engine.feed.fixed's shared string -> mantissa dicts.
        self._by_symbol: dict[str, tuple[int, dict, dict, int, int]] = {}
        for i, ins in enumerate(self.instruments):
            key = self.symbol_key(ins.symbol)
            if key in self._by_symbol:
                raise ValueError(f"instruments: symbol {ins.symbol} listed twice")
            self._by_symbol[key] = (i, fixed_cache(ins.pexp), fixed_cache(ins.qexp),
                                    ins.pexp, ins.qexp)
        self._handlers: dict = {}          # stream name -> handler(body, entry, payload, sink)
        n = len(self.instruments)
        # Highest book update id emitted, per instrument; an int64 array because a C fast path
        # reads and writes the same memory.
        self._last_book_id = array("q", [-1]) * n
        self._last_trade_id = [-1] * n
        # Flag computed once: the skip path tests one attribute, the log work happens only then.
        self._log_on = self.log_frames if log_skipped is None else log_skipped
        self._log_last: dict[str, float] = {}
        self._log_suppressed: dict[str, int] = {}

    @property
    def counts(self) -> dict[str, int]:
        """Frames per kind (FRAME_KINDS). The C fast path counts its data frames in C (no Python
        int per frame); they are folded in here, whenever the counts are read."""
        fast = self._fast_path
        if fast is not None and fast.data:
            self._counts["data"] += fast.take_data()
        return self._counts

    def _install_fast_path(self, fmt: str, **options) -> None:
        """Put engine._feed's C decoder for frame shape `fmt` in front of this adapter's Python
        `decode` (which gets every frame the C path does not publish itself), unless the
        adapter was built with fast_path=False."""
        if not self._fast_path_wanted:
            return
        symbols = [(key.encode(), i, pe, qe) for key, (i, _, _, pe, qe) in self._by_symbol.items()]
        self._fast_path = _feed.BookDecoder(fmt, symbols, self._last_book_id, self.decode, MD_BBO,
                                            **options)
        self.decode = self._fast_path

    def connect_headers(self) -> dict[str, str]:
        """HTTP headers of the WebSocket upgrade request (none unless the venue wants some)."""
        return {}

    @staticmethod
    def symbol_key(symbol: str) -> str:
        """How the venue spells `symbol` inside its messages (override per venue)."""
        return symbol

    def _route(self, stream: str, symbol: str, body, payload, sink, by_symbol=None):
        """Hand a data message to `self._handlers[stream]` with its instrument entry, or count it
        "unknown" (a stream we do not handle) / "unknown_symbol"."""
        handler = self._handlers.get(stream)
        if handler is None:
            return self._skip("unknown", payload)
        ent = (self._by_symbol if by_symbol is None else by_symbol).get(symbol)
        if ent is None:
            return self._skip("unknown_symbol", payload)
        return handler(body, ent, payload, sink)

    # ------------------------------------------------------------------ skip path
    def _skip(self, kind: str, payload) -> int:
        """Count a frame that produced nothing, log it (at most once a second per kind)."""
        self._counts[kind] += 1
        if self._log_on and kind in LOGGED_KINDS:
            self._log_skip(kind, payload)
        return 0

    def _frame_done(self, emitted: int, skipped: str | None, payload) -> int:
        """End of a frame holding several events: it counts once, as data when anything was
        emitted, else as the first reason an event was refused ("unknown" for an empty list)."""
        if emitted:
            self._counts["data"] += 1
            return emitted
        return self._skip(skipped or "unknown", payload)

    def _unexpected(self, payload) -> int:
        """The last resort of `decode`: an exception nobody anticipated. Count, skip."""
        self.unexpected += 1
        return self._skip("malformed", payload)

    def _skip_number(self, value: int, payload) -> int:
        """Skip a frame whose decimal field came back from `fixed.lookup` as a sentinel."""
        return self._skip(sentinel_kind(value), payload)

    def _log_skip(self, kind: str, payload) -> None:
        now = time.monotonic()
        if now - self._log_last.get(kind, -1e18) < LOG_INTERVAL_S:
            self._log_suppressed[kind] = self._log_suppressed.get(kind, 0) + 1
            return
        self._log_last[kind] = now
        more = self._log_suppressed.pop(kind, 0)
        try:
            head = bytes(payload[:LOG_BYTES])
        except Exception:
            head = repr(type(payload)).encode()
        log.warning("%s: skipped a %s frame (%d more since the last line, %d in all): %r",
                    type(self).__name__, kind, more, self._counts[kind], head)
