"""Binance depth frames of a capture -> MD_DEPTH records for the backtest's L2 books, the
venue's and the feed's (set-up, not timed).

Read: diff-depth events (`depthUpdate`, spot `@depth[@100ms]` and USD-M `@depth@0ms`, combined
or raw) and the REST snapshot hftbacktest's collector writes into the stream
(`{"lastUpdateId":..,"bids":..,"asks":..}`: its levels are set, none cleared by the venue's
book; flagged MD_SNAPSHOT for the feed's, which it replaces). Every level becomes one record
(qty 0: the level is gone), in frame order, bids first, as hftbacktest's converter orders
them. The update-id rules (snapshot sync, gaps) are not applied: the capture is replayed as it
was received, as hftbacktest replays it.
"""
from __future__ import annotations

import msgspec
from msgspec import Struct

from engine.feed.fixed import FixedError, parse_fixed
from engine.records import MD_DEPTH, MD_SNAPSHOT, SIDE_BUY, SIDE_SELL

MS = 1_000_000


class DepthUpdate(Struct, gc=False):
    s: str                          # symbol
    b: list[tuple[str, str]]        # bids [price, qty]; qty "0": the level is gone
    a: list[tuple[str, str]]        # asks
    E: int = 0                      # event time, ms


class _Combined(Struct, gc=False):
    data: DepthUpdate


class RestSnapshot(Struct, gc=False):
    lastUpdateId: int
    bids: list[tuple[str, str]]
    asks: list[tuple[str, str]]
    E: int = 0                      # the collector's stamp of it, ms (when written)


CACHE_MAX = 1 << 20      # strings cached per instrument and kind, at most

_combined = msgspec.json.Decoder(_Combined)
_raw = msgspec.json.Decoder(DepthUpdate)
_snapshot = msgspec.json.Decoder(RestSnapshot)


class DepthFrames:
    """Turns a capture's depth frames into MD_DEPTH records on an md sink."""

    def __init__(self, instruments):
        self.instruments = list(instruments)
        self.by_symbol = {ins.symbol.upper(): k for k, ins in enumerate(self.instruments)}
        self.frames = 0
        self.levels = 0
        self.last = -1                  # the instrument of the last depth event
        self._exps = [(ins.pexp, ins.qexp) for ins in self.instruments]   # (Decimal each call)
        # decimal string -> mantissa, per instrument: a book repeats its prices and sizes
        self._px = [{} for _ in self.instruments]
        self._qty = [{} for _ in self.instruments]

    @staticmethod
    def is_depth(payload: bytes) -> bool:
        """Whether `payload` may be a depth frame (a cheap test before decoding)."""
        return b'"depthUpdate"' in payload or payload.startswith(b'{"lastUpdateId"')

    def decode(self, payload: bytes, sink) -> int:
        """Emit the levels of one depth frame on `sink` (RecordSink.emit); the records emitted
        (0: not a depth frame of a configured instrument, or malformed)."""
        try:
            if payload.startswith(b'{"lastUpdateId"'):
                d = _snapshot.decode(payload)
                # a REST snapshot names no symbol: the file's (hftbacktest's collector writes
                # one symbol a file), known from the depth events before it
                i = 0 if len(self.instruments) == 1 else self.last
                if i < 0:
                    return 0
                bids, asks = d.bids, d.asks
            else:
                d = (_combined.decode(payload).data if payload.startswith(b'{"stream"')
                     else _raw.decode(payload))
                i = self.by_symbol.get(d.s.upper(), -1)
                if i < 0:
                    return 0
                self.last = i
                bids, asks = d.b, d.a
        except (msgspec.DecodeError, msgspec.ValidationError):
            return 0
        pexp, qexp = self._exps[i]
        pc, qc = self._px[i], self._qty[i]
        ts_venue = d.E * MS if d.E > 0 else 0
        kind = MD_DEPTH | MD_SNAPSHOT if payload.startswith(b'{"lastUpdateId"') else MD_DEPTH
        emit = sink.emit
        n = 0
        try:
            for side, levels in ((SIDE_BUY, bids), (SIDE_SELL, asks)):
                for px, qty in levels:
                    p = pc.get(px)
                    if p is None:
                        p = parse_fixed(px, pexp)
                        if len(pc) < CACHE_MAX:
                            pc[px] = p
                    q = qc.get(qty)
                    if q is None:
                        q = parse_fixed(qty, qexp)
                        if len(qc) < CACHE_MAX:
                            qc[qty] = q
                    emit(i, kind, 0, 0, 0, 0, 0, p, q, side, ts_venue)
                    n += 1
        except FixedError:
            return n
        self.frames += 1
        self.levels += n
        return n
