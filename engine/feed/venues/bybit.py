"""Bybit v5 public streams: `orderbook.1` (best bid/ask, snapshot + delta), `publicTrade`, and the
L2 book `orderbook.{50|200|500|1000}` (handed to the feed's DepthFeed, engine/feed/depth_feed.py,
which keeps it by BYBIT's rules in engine/feed/depth_book.py: the snapshot comes in the stream,
`u` goes up by 1 per message, u == 1 is a service restart; after a gap the feed re-subscribes
the topic with `depth_resubscribe_frames` and Bybit sends a new snapshot).

orderbook.1 semantics (Bybit docs `v5/websocket/public/orderbook.mdx`, corpus tardis/hftbacktest):
a `snapshot` replaces the top level; a `delta` lists changed levels per side: qty "0" deletes the
level at that price, any other entry is the new best level of its side; `"a":[]` leaves the ask
as it was. The adapter keeps the top of book per instrument and emits the whole BBO after every
message. Update ids (`u`):
  - a delta with u <= the last u, or a snapshot with u < the last u, is "backwards" (skipped);
  - a snapshot with the same u is Bybit's 3-second re-send of an unchanged book: emitted again
    (harmless; the sink's cross-connection dedupe may drop it);
  - u == 1 on a snapshot means the venue's service restarted: the memory of u is reset;
  - a delta before any snapshot cannot be applied: counted "unknown".
A crossed result is applied to the kept book (it is the venue's state) but not emitted.
"""
from __future__ import annotations

from typing import Annotated, Any

import msgspec
from msgspec import UNSET, Meta, Raw, Struct

from engine.feed.fixed import INT64_MAX, MALFORMED, lookup, sentinel_kind
from engine.feed.depth_book import BYBIT
from engine.feed.venues._base import DECODE_ERRORS, AdapterBase, mantissa_levels, top_level
from engine.records import MD_BBO, MD_SNAPSHOT, MD_TRADE, SIDE_BUY, SIDE_SELL, VENUE_BYBIT

UpdateId = Annotated[int, Meta(ge=0, le=INT64_MAX)]
EpochMs = Annotated[int, Meta(ge=0, le=INT64_MAX // 1_000_000)]
MS = 1_000_000
ARGS_PER_SUBSCRIBE = 10  # spot allows at most 10 topics per subscribe request
# The L2 book topics (levels per side); 500 is in Bybit's historical dumps (and the corpus).
DEPTH_STREAMS = ("orderbook.50", "orderbook.200", "orderbook.500", "orderbook.1000")


class BookData(Struct, gc=False):
    s: str                         # symbol
    b: list[tuple[str, str]]       # bids [price, size]
    a: list[tuple[str, str]]       # asks
    u: UpdateId                    # update id (1 after a service restart)
    seq: int = 0                   # cross sequence (not used: u orders one stream)


class PublicTrade(Struct, gc=False):
    T: EpochMs                     # trade time, ms
    s: str                         # symbol
    S: str                         # taker side, "Buy" | "Sell"
    v: str                         # size
    p: str                         # price
    i: str = ""                    # trade id (numeric on spot, a UUID on linear)
    seq: UpdateId = 0              # cross sequence (2025 data; absent on older streams)


class Message(Struct, gc=False):
    """Any Bybit public frame, every field optional: data push or op response."""
    topic: str = ""                # "orderbook.1.BTCUSDT", "publicTrade.BTCUSDT"
    type: str = ""                 # "snapshot" | "delta"
    ts: EpochMs = 0                # system time of the push, ms
    data: Raw = Raw()              # left undecoded
    op: Any = ""                   # "subscribe", "ping", "pong", "auth", ...
    success: Any = UNSET           # op responses on the public WS
    retCode: Any = UNSET           # op responses on the trade/private WS


class Push(Struct, gc=False):
    """A data push of a stream this adapter handles, typed in one decode: the book's data is an
    object, a trade push's an array (one of each is a union msgspec can decode directly)."""
    topic: str
    data: BookData | list[PublicTrade]
    type: str = ""
    ts: EpochMs = 0


_push = msgspec.json.Decoder(Push)
_message = msgspec.json.Decoder(Message)
_SIDES = {"Buy": SIDE_BUY, "Sell": SIDE_SELL}


class BybitAdapter(AdapterBase):
    """Bybit v5 public market data (spot by default; set `category` for linear/inverse)."""

    venue = VENUE_BYBIT
    ping_interval_s = 20.0        # the docs ask for a ping every 20 s
    max_connection_age_s = 1e9
    STREAMS = ("orderbook.1", "publicTrade") + DEPTH_STREAMS
    DEPTH_STREAMS = DEPTH_STREAMS
    DEPTH_RULES = BYBIT
    category = "spot"

    def __init__(self, instruments, streams, log_skipped=None, fast_path=True, depth=None):
        super().__init__(instruments, streams, log_skipped, fast_path)
        self._handlers = {"orderbook.1": self._on_book, "publicTrade": self._on_trades}
        self._depth = depth                # the feed's DepthFeed (None: the L2 book not kept)
        if depth is not None:
            self._handlers.update(dict.fromkeys(DEPTH_STREAMS, self._on_depth))
        n = len(self.instruments)
        # Per instrument: [bid_px, bid_qty, ask_px, ask_qty], None until its first snapshot.
        self._top = [None] * n

    def topics(self) -> list[str]:
        return [f"{s}.{ins.symbol}" for ins in self.instruments for s in self.streams]

    def stream_url(self, base_url: str) -> str:
        """`<base>/v5/public/<category>` (kept as is when the base already names a v5 path)."""
        base = base_url.rstrip("/")
        return base if "/v5/" in base else f"{base}/v5/public/{self.category}"

    def subscribe_frames(self) -> list[bytes]:
        t = self.topics()
        return [msgspec.json.encode({"req_id": f"mm-sub-{k}", "op": "subscribe",
                                     "args": t[k:k + ARGS_PER_SUBSCRIBE]})
                for k in range(0, len(t), ARGS_PER_SUBSCRIBE)]

    def ping_frame(self) -> bytes | None:
        return b'{"op":"ping"}'

    def depth_resubscribe_frames(self, i: int) -> list[bytes]:
        """Unsubscribe + subscribe instrument i's book topics: Bybit then sends a snapshot."""
        topics = [f"{s}.{self.instruments[i].symbol}" for s in self.streams
                  if s in DEPTH_STREAMS]
        return [msgspec.json.encode({"req_id": f"mm-{op}-{i}", "op": op, "args": topics})
                for op in ("unsubscribe", "subscribe")]

    # ------------------------------------------------------------------ frames
    def decode(self, payload, binary: bool, sink) -> int:
        """Decode one frame and emit its events; count and skip anything else. Never raises."""
        try:
            if binary:
                return self._skip("unknown", payload)
            try:   # the common case: a book or trade push, one typed decode
                m = _push.decode(payload)
            except DECODE_ERRORS:
                return self._decode_other(payload)
            kind, _, symbol = m.topic.rpartition(".")
            return self._route(kind, symbol, m, payload, sink)
        except Exception:  # last resort: a frame must never take the reader down
            return self._unexpected(payload)

    def _decode_other(self, payload) -> int:
        """Op responses, other topics, and pushes that did not fit the typed decode."""
        try:
            m = _message.decode(payload)
        except DECODE_ERRORS:
            return self._skip("malformed", payload)
        if m.topic:   # a topic we handle whose push did not decode is malformed
            kind, _, symbol = m.topic.rpartition(".")
            return self._skip("malformed" if kind in self._handlers else "unknown", payload)
        return self._skip(self._control_kind(m), payload)

    @staticmethod
    def _control_kind(m: Message) -> str:
        if m.success is not UNSET:
            return "control" if m.success is True else "error"
        if m.retCode is not UNSET:
            return "control" if m.retCode == 0 else "error"
        if m.op in ("ping", "pong"):
            return "control"
        return "unknown"

    def _on_book(self, m: Push, ent, payload, sink) -> int:
        d = m.data
        if type(d) is not BookData:
            return self._skip("malformed", payload)
        i, pc, qc, pe, qe = ent
        u = d.u
        last = self._last_book_id[i]
        if m.type == "snapshot":
            if u < last and u != 1:
                return self._skip("backwards", payload)
            top = [*top_level(d.b, ent), *top_level(d.a, ent)]
            kind = MD_BBO | MD_SNAPSHOT
        elif m.type == "delta":
            old = self._top[i]
            if old is None:
                return self._skip("unknown", payload)
            if u <= last:
                return self._skip("backwards", payload)
            top = old.copy()
            bad = _apply(top, 0, d.b, ent) or _apply(top, 2, d.a, ent)
            if bad:
                return self._skip_number(bad, payload)
            kind = MD_BBO
        else:
            return self._skip("unknown", payload)
        if (top[0] | top[1] | top[2] | top[3]) < 0:
            return self._skip_number(min(top), payload)
        self._top[i] = top
        self._last_book_id[i] = u
        bp, bq, ap, aq = top
        if bp >= ap and bq and aq:
            return self._skip("crossed", payload)
        sink.emit(i, kind, u, bp, bq, ap, aq, 0, 0, 0, m.ts * MS)
        self._counts["data"] += 1
        return 1

    def _on_depth(self, m: Push, ent, payload, sink) -> int:
        d = m.data
        if type(d) is not BookData:
            return self._skip("malformed", payload)
        bids = mantissa_levels(d.b, ent)
        asks = mantissa_levels(d.a, ent)
        if bids is None or asks is None:
            return self._skip("precision", payload)
        if m.type == "delta":
            self._depth.on_diff(ent[0], d.u, d.u, -1, bids, asks, m.ts * MS)
        elif m.type == "snapshot":
            self._depth.on_snapshot(ent[0], d.u, bids, asks, m.ts * MS)
        else:
            return self._skip("unknown", payload)
        self._counts["data"] += 1    # a copy the book drops still proves the connection alive
        return 1

    def _on_trades(self, m: Push, ent, payload, sink) -> int:
        if type(m.data) is not list:
            return self._skip("malformed", payload)
        i, pc, qc, pe, qe = ent
        emitted, skipped = 0, None
        for t in m.data:
            side = _SIDES.get(t.S, MALFORMED)
            px = lookup(pc, t.p, pe)
            qty = lookup(qc, t.v, qe)
            if (side | px | qty) < 0:
                skipped = skipped or sentinel_kind(min(side, px, qty))
                continue
            tid = t.seq or _numeric_id(t.i)
            if tid:
                if tid <= self._last_trade_id[i]:
                    skipped = skipped or "backwards"
                    continue
                self._last_trade_id[i] = tid
            sink.emit(i, MD_TRADE, tid, 0, 0, 0, 0, px, qty, side, t.T * MS)
            emitted += 1
        return self._frame_done(emitted, skipped, payload)


def _numeric_id(s: str) -> int:
    """A numeric trade id string as an int64, else 0 (linear trade ids are UUIDs)."""
    if s.isascii() and s.isdigit() and len(s) <= 19:
        v = int(s)
        return v if v <= INT64_MAX else 0
    return 0


def _apply(top: list, at: int, levels, ent) -> int:
    """Apply one side's delta levels to `top` (at = 0: bids, 2: asks). Returns 0, or the
    lookup sentinel of a bad number (then `top` must be thrown away)."""
    _, pc, qc, pe, qe = ent
    for px_s, qty_s in levels:
        px, qty = lookup(pc, px_s, pe), lookup(qc, qty_s, qe)
        if (px | qty) < 0:
            return min(px, qty)
        if qty == 0:
            if px == top[at]:          # the best level went away; orderbook.1 sends the next one
                top[at] = top[at + 1] = 0
        else:
            top[at], top[at + 1] = px, qty
    return 0
