"""OKX v5 public channels: `bbo-tbt` (best bid/ask, tick by tick), `trades`, and the L2 book
`books` (400 levels, 100 ms) / `books-l2-tbt` / `books50-l2-tbt` (tick by tick), handed to the
feed's DepthFeed (engine/feed/depth_feed.py), which keeps it by OKX's rules in
engine/feed/depth_book.py: the snapshot comes in the stream (`action`), `prevSeqId` chains to
the previous `seqId`, and each message's CRC32 `checksum` of the best 25 levels must match the
book (levels carry their "price:size" text for it); after a gap the feed re-subscribes the
channel with `depth_resubscribe_frames` and OKX sends a new snapshot.

A bbo-tbt push is the whole top of book (`[price, size, "0", orders]` per side), so each one is
emitted as it stands. Update id: `seqId` where the venue sends it (current API), else the
push's `ts` in ms (older captures have no seqId); ids going backwards are skipped, equal ids
(OKX repeats a push) are emitted. OKX's application ping is the text frame `ping`, answered by
the text frame `pong` (not JSON).
"""
from __future__ import annotations

from typing import Annotated, Any

import msgspec
from msgspec import UNSET, Meta, Raw, Struct

from engine.feed.fixed import INT64_MAX, MALFORMED, lookup, sentinel_kind
from engine.feed.depth_book import OKX
from engine.feed.venues._base import DECODE_ERRORS, AdapterBase, mantissa_levels, top_level
from engine.records import MD_BBO, MD_TRADE, SIDE_BUY, SIDE_SELL, VENUE_OKX

UpdateId = Annotated[int, Meta(ge=0, le=INT64_MAX)]
MS = 1_000_000
MAX_MS = INT64_MAX // MS
_CONTROL_EVENTS = frozenset({"subscribe", "unsubscribe", "login", "channel-conn-count"})
# The L2 book channels: snapshot + incremental updates with seqId/prevSeqId and a checksum.
DEPTH_STREAMS = ("books", "books-l2-tbt", "books50-l2-tbt")


class Arg(Struct, gc=False):
    channel: str = ""              # "bbo-tbt", "trades", ...
    instId: str = ""               # "BTC-USDT"


class Bbo(Struct, gc=False):
    asks: list[list[str]]          # [[price, size, "0", order count]]
    bids: list[list[str]]
    ts: str                        # ms since epoch, as a string
    seqId: UpdateId | None = None  # sequence id (absent in older data)


class BookUpdate(Struct, gc=False):
    asks: list[list[str]]          # [[price, size, "0", order count]]; size "0" deletes
    bids: list[list[str]]
    ts: str                        # ms since epoch, as a string
    checksum: int | None = None    # CRC32 of the best 25 levels, signed (engine/feed/depth_book)
    seqId: UpdateId | None = None  # sequence id (absent before 2022)
    prevSeqId: int | None = None   # the previous message's seqId; -1 on a snapshot


class BooksPush(Struct, gc=False):
    """A books / books-l2-tbt / books50-l2-tbt push, typed in one decode."""
    arg: Arg
    action: str                    # "snapshot" | "update"
    data: list[BookUpdate]


class OkxTrade(Struct, gc=False):
    instId: str
    tradeId: str                   # numeric string
    px: str
    sz: str
    side: str                      # taker side, "buy" | "sell"
    ts: str                        # ms, string


class Push(Struct, gc=False):
    """Any OKX public frame, every field optional: data push or event."""
    arg: Arg | None = None
    data: Raw = Raw()              # decoded by channel
    event: Any = ""                # "subscribe", "error", "notice", ...
    code: Any = UNSET
    msg: Any = UNSET


class BboPush(Struct, gc=False):
    """A bbo-tbt push, typed in one decode."""
    arg: Arg
    data: list[Bbo]


_push = msgspec.json.Decoder(Push)
_bbo_push = msgspec.json.Decoder(BboPush)
_books_push = msgspec.json.Decoder(BooksPush)
_data = {"bbo-tbt": msgspec.json.Decoder(list[Bbo]), "trades": msgspec.json.Decoder(list[OkxTrade])}
# OKX writes `arg` first, so a bbo-tbt push starts `{"arg":{"channel":"bbo-tbt",`: byte 20 is
# the second 'b' ("books" has 'o', "trades"/"tickers" 'r'/'i'). Only a hint, read in one
# index: the typed decode checks the frame, and routing uses the channel it decoded.
_BBO_HINT_AT, _BBO_HINT = 20, ord("b")
_BOOKS_HINT = ord("o")           # "books...": tried as a BooksPush when the book is kept
_SIDES = {"buy": SIDE_BUY, "sell": SIDE_SELL}


def _ms(s: str, max_len: int = 15) -> int:
    """A digit string (ms timestamp, trade id) as an int, or -1."""
    if s.isascii() and s.isdigit() and len(s) <= max_len:
        return int(s)
    return -1


class OkxAdapter(AdapterBase):
    """OKX v5 public market data."""

    venue = VENUE_OKX
    ping_interval_s = 25.0        # OKX closes a connection idle for 30 s
    max_connection_age_s = 1e9
    STREAMS = ("bbo-tbt", "trades") + DEPTH_STREAMS
    DEPTH_STREAMS = DEPTH_STREAMS
    DEPTH_RULES = OKX

    def __init__(self, instruments, streams, log_skipped=None, fast_path=True, depth=None):
        super().__init__(instruments, streams, log_skipped, fast_path)
        self._handlers = {"bbo-tbt": self._on_bbo, "trades": self._on_trades}
        self._depth = depth                # the feed's DepthFeed (None: the L2 book not kept)
        if depth is not None:
            self._handlers.update(dict.fromkeys(DEPTH_STREAMS, self._on_books))

    def stream_url(self, base_url: str) -> str:
        """`<base>/ws/v5/public` (kept as is when the base already names a v5 path)."""
        base = base_url.rstrip("/")
        return base if "/v5/" in base else f"{base}/ws/v5/public"

    def subscribe_frames(self) -> list[bytes]:
        args = [{"channel": s, "instId": ins.symbol}
                for ins in self.instruments for s in self.streams]
        return [msgspec.json.encode({"op": "subscribe", "args": args})]

    def ping_frame(self) -> bytes | None:
        return b"ping"

    def depth_resubscribe_frames(self, i: int) -> list[bytes]:
        """Unsubscribe + subscribe instrument i's book channels: OKX then sends a snapshot."""
        args = [{"channel": s, "instId": self.instruments[i].symbol} for s in self.streams
                if s in DEPTH_STREAMS]
        return [msgspec.json.encode({"op": op, "args": args})
                for op in ("unsubscribe", "subscribe")]

    # ------------------------------------------------------------------ frames
    def decode(self, payload, binary: bool, sink) -> int:
        """Decode one frame and emit its events; count and skip anything else. Never raises."""
        try:
            if binary:
                return self._skip("unknown", payload)
            if len(payload) == 4 and payload == b"pong":
                return self._skip("control", payload)
            hint = payload[_BBO_HINT_AT] if len(payload) > _BBO_HINT_AT else 0
            if hint == _BBO_HINT:
                try:
                    b = _bbo_push.decode(payload)
                except DECODE_ERRORS:
                    b = None
                if b is not None:
                    return self._route(b.arg.channel, b.arg.instId, b.data, payload, sink)
            elif hint == _BOOKS_HINT and self._depth is not None:
                try:
                    k = _books_push.decode(payload)
                except DECODE_ERRORS:
                    k = None
                if k is not None:
                    return self._route(k.arg.channel, k.arg.instId, k, payload, sink)
            try:
                p = _push.decode(payload)
                if p.event:
                    return self._skip(_event_kind(p.event), payload)
                if p.code is not UNSET:   # an op response ({"op":"order","code":"0",..}) or error
                    return self._skip("control" if p.code == "0" else "error", payload)
                if p.arg is None:
                    return self._skip("unknown", payload)
                if p.arg.channel in DEPTH_STREAMS and self._depth is not None:
                    k = _books_push.decode(payload)      # a books frame not written compactly
                    return self._route(k.arg.channel, k.arg.instId, k, payload, sink)
                dec = _data.get(p.arg.channel)
                if dec is None:
                    return self._skip("unknown", payload)
                return self._route(p.arg.channel, p.arg.instId, dec.decode(p.data), payload, sink)
            except DECODE_ERRORS:
                return self._skip("malformed", payload)
        except Exception:  # last resort: a frame must never take the reader down
            return self._unexpected(payload)

    def _on_bbo(self, pushes: list[Bbo], ent, payload, sink) -> int:
        i, pc, qc, pe, qe = ent
        emitted, skipped = 0, None
        for d in pushes:
            ts = _ms(d.ts)
            u = d.seqId if d.seqId is not None else ts
            if ts < 0 or ts > MAX_MS:
                skipped = skipped or "malformed"
                continue
            if u < self._last_book_id[i]:
                skipped = skipped or "backwards"
                continue
            bp, bq = top_level(d.bids, ent)
            ap, aq = top_level(d.asks, ent)
            if (bp | bq | ap | aq) < 0:
                skipped = skipped or sentinel_kind(min(bp, bq, ap, aq))
                continue
            if bp >= ap and bq and aq:
                skipped = skipped or "crossed"
                continue
            self._last_book_id[i] = u
            sink.emit(i, MD_BBO, u, bp, bq, ap, aq, 0, 0, 0, ts * MS)
            emitted += 1
        return self._frame_done(emitted, skipped, payload)

    def _on_books(self, push, ent, payload, sink) -> int:
        if type(push) is not BooksPush:      # a books frame that missed the typed decode
            return self._skip("malformed", payload)
        action = push.action
        if action != "update" and action != "snapshot":
            return self._skip("unknown", payload)
        depth, i = self._depth, ent[0]
        emitted, skipped = 0, None
        for d in push.data:
            ts = _ms(d.ts)
            bids = mantissa_levels(d.bids, ent, text=True)
            asks = mantissa_levels(d.asks, ent, text=True)
            if ts < 0 or ts > MAX_MS or bids is None or asks is None:
                skipped = skipped or ("malformed" if ts < 0 or ts > MAX_MS else "precision")
                continue
            if d.seqId is not None:         # the current API: chained by prevSeqId
                u = d.seqId
                prev = d.prevSeqId if d.prevSeqId is not None else -1
            else:                           # before 2022: ordered by ts, checked by checksum
                u, prev = ts, -1
            if action == "update":
                depth.on_diff(i, u, u, prev, bids, asks, ts * MS, d.checksum)
            else:
                depth.on_snapshot(i, u, bids, asks, ts * MS, d.checksum)
            emitted += 1                    # a copy the book drops still proves the link alive
        return self._frame_done(emitted, skipped, payload)

    def _on_trades(self, trades: list[OkxTrade], ent, payload, sink) -> int:
        i, pc, qc, pe, qe = ent
        emitted, skipped = 0, None
        for t in trades:
            side = _SIDES.get(t.side)
            px, qty = lookup(pc, t.px, pe), lookup(qc, t.sz, qe)
            tid, ts = _ms(t.tradeId, 18), _ms(t.ts)
            if side is None or tid < 0 or ts < 0 or ts > MAX_MS or (px | qty) < 0:
                skipped = skipped or sentinel_kind(min(px, qty, MALFORMED))
                continue
            if tid <= self._last_trade_id[i]:
                skipped = skipped or "backwards"
                continue
            self._last_trade_id[i] = tid
            sink.emit(i, MD_TRADE, tid, 0, 0, 0, 0, px, qty, side, ts * MS)
            emitted += 1
        return self._frame_done(emitted, skipped, payload)


def _event_kind(event) -> str:
    if type(event) is not str:
        return "malformed"
    if event == "error":
        return "error"
    if event == "notice":          # e.g. code 64008: the connection closes soon for an upgrade
        return "shutdown"
    return "control" if event in _CONTROL_EVENTS else "unknown"
