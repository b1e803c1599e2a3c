"""Binance Spot JSON market streams: `@bookTicker`, `@depth<N>[@100ms]` (partial book), `@trade`,
and `@depth[@100ms]` (diff depth: handed to the feed's DepthFeed, engine/feed/depth_feed.py,
which keeps the L2 book with REST snapshots from `depth_snapshot_url`).

Combined-stream frames (`{"stream":..,"data":..}`, what `stream_url` subscribes) and raw `/ws/`
frames (the bare payload) both decode. The hot case, a combined bookTicker, is one typed msgspec
decode straight off the frame's memoryview plus four fixed-point cache hits; everything else goes
through a permissive envelope (`data` kept as msgspec.Raw) and a second typed decode.
Wire format: ../shared/PROTOCOLS.md section 1.
"""
from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlsplit

import msgspec
from msgspec import UNSET, Meta, Raw, Struct

from engine.feed.fixed import INT64_MAX, lookup
from engine.feed.depth_book import BINANCE
from engine.feed.venues._base import DECODE_ERRORS, AdapterBase, mantissa_levels, top_level
from engine.records import MD_BBO, MD_SNAPSHOT, MD_TRADE, SIDE_BUY, SIDE_SELL, VENUE_BINANCE

UpdateId = Annotated[int, Meta(ge=0, le=INT64_MAX)]
EpochMs = Annotated[int, Meta(ge=0, le=INT64_MAX // 1_000_000)]
MS = 1_000_000  # ns per ms

MAX_STREAMS = 1024  # per connection (venue limit)
PARTIAL_DEPTH_STREAMS = tuple(f"depth{n}{speed}" for n in (5, 10, 20)
                              for speed in ("", "@100ms", "@1000ms"))
# Diff depth: spot `depth` (1 s) and `depth@100ms`; USD-M futures also 0/250/500 ms.
DIFF_DEPTH_STREAMS = ("depth", "depth@100ms", "depth@1000ms", "depth@0ms", "depth@250ms",
                      "depth@500ms")
# The REST hosts of Binance's market stream hosts (anything else: the stream's own host).
REST_HOSTS = {"stream.binance.com": "https://api.binance.com",
              "data-stream.binance.vision": "https://data-api.binance.vision",
              "fstream.binance.com": "https://fapi.binance.com",
              "stream.testnet.binance.vision": "https://testnet.binance.vision"}


# ---------------------------------------------------------------- venue schemas (keys = JSON keys)
class BookTicker(Struct, gc=False):
    u: UpdateId       # order book updateId
    s: str            # symbol, upper case
    b: str            # best bid price
    B: str            # best bid qty
    a: str            # best ask price
    A: str            # best ask qty
    E: EpochMs = 0    # event time, ms (USD-M futures only; spot bookTicker has none)


class _BookTickerEnvelope(Struct, gc=False):
    stream: str       # "<symbol>@bookTicker"
    data: BookTicker


class Trade(Struct, gc=False):
    s: str            # symbol
    t: UpdateId       # trade id
    p: str            # price
    q: str            # quantity
    m: bool           # buyer is the maker (so the taker sold)
    E: EpochMs = 0    # event time, ms
    T: EpochMs = 0    # trade time, ms


class _TradeEnvelope(Struct, gc=False):
    stream: str       # "<symbol>@trade"
    data: Trade


class PartialDepth(Struct, gc=False):
    lastUpdateId: UpdateId
    bids: list[tuple[str, str]]   # [price, qty], best first
    asks: list[tuple[str, str]]


class DiffDepth(Struct, gc=False):
    s: str                        # symbol, upper case
    U: UpdateId                   # first update id in the event
    u: UpdateId                   # final update id in the event
    b: list[tuple[str, str]]      # bids to update [price, qty]; qty 0 deletes the level
    a: list[tuple[str, str]]      # asks to update
    E: EpochMs = 0                # event time, ms
    pu: int = -1                  # USD-M futures: the previous event's u (-1: spot, none)


class Envelope(Struct, gc=False):
    """Every field any Binance frame type might carry at the top level, all optional: enough to
    tell combined from raw, data from control, and which typed decoder to run next."""
    stream: str = ""          # combined stream name
    data: Raw = Raw()         # combined payload, decoded later by type
    e: Any = ""               # event type of a raw event ("trade", "bookTicker", "serverShutdown")
    u: Any = UNSET            # a raw spot bookTicker has u and no e
    lastUpdateId: Any = UNSET  # a raw partial-depth book
    result: Any = UNSET       # (un)subscribe / LIST_SUBSCRIPTIONS / WS-API result
    code: Any = UNSET         # {"code":..,"msg":..} error
    error: Any = UNSET        # WS-API {"status":4xx,"error":{..}}


_book_ticker_envelope = msgspec.json.Decoder(_BookTickerEnvelope)
_trade_envelope = msgspec.json.Decoder(_TradeEnvelope)
_book_ticker = msgspec.json.Decoder(BookTicker)
_trade = msgspec.json.Decoder(Trade)
_partial_depth = msgspec.json.Decoder(PartialDepth)
_diff_depth = msgspec.json.Decoder(DiffDepth)
envelope = msgspec.json.Decoder(Envelope)
# '"': a combined bookTicker frame ends with `"}}` (a trade with `true}}`, a depth with `]]}}`).
_QUOTE = 34
_E = 101   # 'e': a combined trade frame ends with `true}}` / `false}}` (its "M" field)
_FAST_PATH_MISSES = DECODE_ERRORS + (IndexError,)   # IndexError: a frame under 3 bytes


def control_kind(env: Envelope) -> str | None:
    """Frame kind of a non-data Binance frame (shared with the SBE adapter's text frames)."""
    if env.e == "serverShutdown":
        return "shutdown"
    if env.code is not UNSET or env.error is not UNSET:
        return "error"
    if env.result is not UNSET:
        return "control"
    return None


class BinanceJsonAdapter(AdapterBase):
    """Binance Spot JSON market data (also decodes USD-M futures bookTicker/trade frames)."""

    venue = VENUE_BINANCE
    ping_interval_s = 0.0                 # the server pings; picows answers
    max_connection_age_s = 24 * 3600.0    # the server closes connections at 24 h
    STREAMS = ("bookTicker", "trade") + PARTIAL_DEPTH_STREAMS + DIFF_DEPTH_STREAMS
    DEPTH_STREAMS = DIFF_DEPTH_STREAMS
    DEPTH_RULES = BINANCE              # U/u/pu, snapshots over REST (engine/feed/depth_book.py)

    def __init__(self, instruments, streams, log_skipped=None, fast_path=True, depth=None):
        super().__init__(instruments, streams, log_skipped, fast_path)
        self._depth = depth                # the feed's DepthFeed (None: diff depth not kept)
        self._fast = "bookTicker" in self.streams or "trade" in self.streams
        self._by_stream_symbol = {ins.symbol.lower(): self._by_symbol[self.symbol_key(ins.symbol)]
                                  for ins in self.instruments}
        self._handlers = {"bookTicker": self._on_book_ticker, "trade": self._on_trade}
        self._handlers.update(dict.fromkeys(PARTIAL_DEPTH_STREAMS, self._on_partial_depth))
        if depth is not None:
            self._handlers.update(dict.fromkeys(DIFF_DEPTH_STREAMS, self._on_diff_depth))
        # A raw partial-depth frame names no symbol: usable only with a single instrument.
        self._only = self._by_symbol[self.symbol_key(self.instruments[0].symbol)] \
            if len(self.instruments) == 1 else None
        # A combined spot bookTicker, byte for byte as Binance writes it, is decoded and published
        # in C (engine._feed.BookDecoder); every other frame comes to `decode` below.
        self._install_fast_path("binance-json")

    @staticmethod
    def symbol_key(symbol: str) -> str:
        return symbol.upper()

    def stream_names(self) -> list[str]:
        return [f"{ins.symbol.lower()}@{s}" for ins in self.instruments for s in self.streams]

    def stream_url(self, base_url: str) -> str:
        """`<base>/stream?streams=btcusdt@bookTicker/...` (combined streams, lowercase symbols)."""
        names = self.stream_names()
        if len(names) > MAX_STREAMS:
            raise ValueError(f"feed: {len(names)} streams on one connection, "
                             f"Binance allows {MAX_STREAMS}")
        return f"{base_url.rstrip('/')}/stream?streams={'/'.join(names)}"

    def subscribe_frames(self) -> list[bytes]:
        return []                          # the URL subscribes

    def ping_frame(self) -> bytes | None:
        return None

    # ------------------------------------------------------------------ hot path
    def decode(self, payload, binary: bool, sink) -> int:
        """Decode one frame and emit its events; count and skip anything else. Never raises."""
        try:
            d = None
            if self._fast and not binary:
                t = None
                try:   # the likely cases, a combined bookTicker or trade: one typed decode
                    last = payload[-3]
                    if last == _QUOTE:
                        d = _book_ticker_envelope.decode(payload).data
                        ent = self._by_symbol.get(d.s)
                    elif last == _E:
                        t = _trade_envelope.decode(payload).data
                except _FAST_PATH_MISSES:
                    d = None
                if t is not None:
                    return self._emit_trade(t, self._by_symbol.get(t.s), payload, sink)
            if d is None:
                if binary:
                    return self._skip("unknown", payload)
                # Any other frame: done there, unless it is a bookTicker in another shape.
                r = self._decode_general(payload, sink)
                if type(r) is int:
                    return r
                d, ent = r
            # bookTicker -> one MD_BBO record; written out inline: the latency-critical path.
            if ent is None:
                return self._skip("unknown_symbol", payload)
            i, pc, qc, pe, qe = ent
            u = d.u
            if u < self._last_book_id[i]:
                return self._skip("backwards", payload)
            try:   # plain dict hits; a string not seen before is parsed by `lookup`
                bp = pc[d.b]
                bq = qc[d.B]
                ap = pc[d.a]
                aq = qc[d.A]
            except KeyError:
                bp, bq = lookup(pc, d.b, pe), lookup(qc, d.B, qe)
                ap, aq = lookup(pc, d.a, pe), lookup(qc, d.A, qe)
            if (bp | bq | ap | aq) < 0:
                return self._skip_number(min(bp, bq, ap, aq), payload)
            if bp >= ap and bq and aq:
                return self._skip("crossed", payload)
            self._last_book_id[i] = u
            sink.emit(i, MD_BBO, u, bp, bq, ap, aq, 0, 0, 0, d.E * MS)
            self._counts["data"] += 1
            return 1
        except Exception:  # last resort: a frame must never take the reader down
            return self._unexpected(payload)

    # ------------------------------------------------------------------ everything else
    def _decode_general(self, payload, sink):
        """Every frame but the fast path's: returns the frame's count of events, or
        (BookTicker, instrument entry) for `decode` to finish."""
        try:
            env = envelope.decode(payload)
        except DECODE_ERRORS:
            return self._skip("malformed", payload)
        try:
            if env.stream:
                return self._on_stream(env, payload, sink)
            kind = control_kind(env)
            if kind is not None:
                return self._skip(kind, payload)
            e = env.e
            if e == "bookTicker" or (e == "" and env.u is not UNSET and env.lastUpdateId is UNSET):
                return self._on_book_ticker(payload, None, payload, sink)
            if e == "trade":
                return self._on_trade(payload, None, payload, sink)
            if e == "depthUpdate" and self._depth is not None:
                return self._on_diff_depth(payload, None, payload, sink)
            if e == "" and env.lastUpdateId is not UNSET:
                if self._only is None:
                    return self._skip("unknown_symbol", payload)
                return self._on_partial_depth(payload, self._only, payload, sink)
            return self._skip("unknown", payload)
        except DECODE_ERRORS:
            return self._skip("malformed", payload)

    def _on_stream(self, env: Envelope, payload, sink) -> int:
        symbol, at, kind = env.stream.partition("@")
        if not at:  # "!serverShutdown", or a non-market stream name
            inner = envelope.decode(env.data)
            return self._skip(control_kind(inner) or "unknown", payload)
        return self._route(kind, symbol, env.data, payload, sink, self._by_stream_symbol)

    def _on_book_ticker(self, raw, ent, payload, sink):
        d = _book_ticker.decode(raw)
        return d, (self._by_symbol.get(d.s) if ent is None else ent)

    def _on_trade(self, raw, ent, payload, sink) -> int:
        d = _trade.decode(raw)
        return self._emit_trade(d, self._by_symbol.get(d.s) if ent is None else ent, payload, sink)

    def _emit_trade(self, d: Trade, ent, payload, sink) -> int:
        if ent is None:
            return self._skip("unknown_symbol", payload)
        i, pc, qc, pe, qe = ent
        t = d.t
        if t <= self._last_trade_id[i]:  # a trade id names one print: a repeat is not news
            return self._skip("backwards", payload)
        try:
            px = pc[d.p]
            qty = qc[d.q]
        except KeyError:
            px, qty = lookup(pc, d.p, pe), lookup(qc, d.q, qe)
        if (px | qty) < 0:
            return self._skip_number(min(px, qty), payload)
        self._last_trade_id[i] = t
        sink.emit(i, MD_TRADE, t, 0, 0, 0, 0, px, qty, SIDE_SELL if d.m else SIDE_BUY,
                  (d.T or d.E) * MS)
        self._counts["data"] += 1
        return 1

    def _on_partial_depth(self, raw, ent, payload, sink) -> int:
        d = _partial_depth.decode(raw)
        i, pc, qc, pe, qe = ent
        u = d.lastUpdateId
        if u < self._last_book_id[i]:
            return self._skip("backwards", payload)
        bp, bq = top_level(d.bids, ent)
        ap, aq = top_level(d.asks, ent)
        if (bp | bq | ap | aq) < 0:
            return self._skip_number(min(bp, bq, ap, aq), payload)
        if bp >= ap and bq and aq:
            return self._skip("crossed", payload)
        self._last_book_id[i] = u
        sink.emit(i, MD_BBO | MD_SNAPSHOT, u, bp, bq, ap, aq, 0, 0, 0, 0)
        self._counts["data"] += 1
        return 1

    # ------------------------------------------------------------------ diff depth
    def _on_diff_depth(self, raw, ent, payload, sink) -> int:
        d = _diff_depth.decode(raw)
        if ent is None:
            ent = self._by_symbol.get(d.s)
            if ent is None:
                return self._skip("unknown_symbol", payload)
        bids = mantissa_levels(d.b, ent)
        asks = mantissa_levels(d.a, ent)
        if bids is None or asks is None:
            return self._skip("precision", payload)
        self._depth.on_diff(ent[0], d.U, d.u, d.pu, bids, asks, d.E * MS)
        self._counts["data"] += 1    # a copy the book drops still proves the connection alive
        return 1

    @staticmethod
    def rest_base(md_url: str) -> str:
        """The REST base URL beside market stream URL `md_url`: Binance's own hosts map to
        their REST hosts (REST_HOSTS), any other host (the simulator) answers on the same
        host and port (ws -> http, wss -> https)."""
        u = urlsplit(md_url)
        if u.hostname in REST_HOSTS:
            return REST_HOSTS[u.hostname]
        scheme = {"ws": "http", "wss": "https"}.get(u.scheme, u.scheme)
        return f"{scheme}://{u.netloc}"

    @staticmethod
    def depth_snapshot_url(rest_base: str, instrument, limit: int) -> str:
        """GET /api/v3/depth (spot) or /fapi/v1/depth (a USD-M host) for one instrument."""
        base = rest_base.rstrip("/")
        path = "/fapi/v1/depth" if "fapi" in (urlsplit(base).hostname or "") else "/api/v3/depth"
        return f"{base}{path}?symbol={instrument.symbol.upper()}&limit={limit}"

    def decode_depth_snapshot(self, body: bytes, i: int):
        """(lastUpdateId, bids, asks) of a REST depth answer for instrument i, levels as
        (px, qty) mantissas. Raises ValueError naming what is wrong."""
        try:
            d = _partial_depth.decode(body)
        except DECODE_ERRORS as e:
            raise ValueError(f"depth snapshot: {e}: {bytes(body[:200])!r}") from None
        ent = self._by_symbol[self.symbol_key(self.instruments[i].symbol)]
        bids = mantissa_levels(d.bids, ent)
        asks = mantissa_levels(d.asks, ent)
        if bids is None or asks is None:
            raise ValueError("depth snapshot: a price or quantity off the instrument's grid")
        return d.lastUpdateId, bids, asks
