"""Helpers for the decoder tests (not collected): a list-collecting MdSink, readers for the
shared corpus's file formats, an exact Decimal oracle, and an SBE frame builder that follows
stream_1_0.xml field by field (written from the schema, independently of the adapter's dtypes).
"""
from __future__ import annotations

import json
import struct
from decimal import Decimal, localcontext
from pathlib import Path
from typing import NamedTuple

from engine.instruments import Instrument


class Event(NamedTuple):
    instrument: int
    kind: int
    update_id: int
    bid_px: int
    bid_qty: int
    ask_px: int
    ask_qty: int
    trade_px: int
    trade_qty: int
    trade_side: int
    ts_venue: int


class ListSink:
    """MdSink keeping every event (and checking each value fits the record's int64 fields)."""

    def __init__(self):
        self.events: list[Event] = []

    def emit(self, *args) -> None:
        assert len(args) == 11
        for v in args:
            assert type(v) is int and -(1 << 63) <= v < (1 << 63), args
        self.events.append(Event(*args))


class NotifySink(ListSink):
    """MdSink with the depth feed's extra call (`notify`: MD_DEPTH_BOOK records, kept in
    `notes`)."""
    ts_arrival = 0

    def __init__(self):
        super().__init__()
        self.notes: list[tuple] = []

    def notify(self, *args) -> None:
        assert len(args) == 8
        self.notes.append(args)


def instruments(*symbols: str, exp: int = -8) -> list[Instrument]:
    return [Instrument(symbol=s, price_exp=exp, qty_exp=exp) for s in symbols]


def fixed(s: str, exp: int) -> int:
    """Oracle: the decimal string at 10**exp via Decimal (exactness asserted)."""
    with localcontext() as ctx:
        ctx.prec = 100
        v = Decimal(s).scaleb(-exp)
        assert v == v.to_integral_value(), (s, exp)
        return int(v)


# ---------------------------------------------------------------- corpus file formats
def cryptofeed_frames(path: Path) -> list[bytes]:
    """Received frames of a cryptofeed raw recording (`<ts>: <json>`; sends and header skipped)."""
    out = []
    for line in path.read_bytes().splitlines():
        if not line or b" <- " in line or b" <-> " in line:
            continue
        out.append(line.split(b": ", 1)[1])
    return out


def hftbacktest_frames(path: Path) -> list[bytes]:
    """`<local ns> <json>` lines."""
    return [line.split(b" ", 1)[1] for line in path.read_bytes().splitlines() if line.strip()]


def jsonl_frames(path: Path) -> list[bytes]:
    return [line for line in path.read_bytes().splitlines() if line.strip()]


def doc_blocks(path: Path) -> list[tuple[bool, bytes]]:
    """(valid_json, text) of each docs example block."""
    return [(b["valid_json"], b["text"].encode()) for b in json.loads(path.read_text())["blocks"]]


def decode_all(adapter, frames, binary: bool = False) -> ListSink:
    sink = ListSink()
    for f in frames:
        n = adapter.decode(memoryview(f), binary, sink)
        assert isinstance(n, int)
    return sink


# ---------------------------------------------------------------- SBE frames from the schema
def sbe_header(block_length: int, template: int, schema: int = 1, version: int = 0) -> bytes:
    # messageHeader: blockLength u16, templateId u16, schemaId u16, version u16
    return struct.pack("<HHHH", block_length, template, schema, version)


def var_string8(s: bytes) -> bytes:
    return struct.pack("<B", len(s)) + s


def sbe_best_bid_ask(symbol: bytes, event_time_us: int, update_id: int, price_exp: int,
                     qty_exp: int, bid_px: int, bid_qty: int, ask_px: int, ask_qty: int,
                     **header) -> bytes:
    # BestBidAskStreamEvent (10001): eventTime i64, bookUpdateId i64, priceExponent i8,
    # qtyExponent i8, bidPrice i64, bidQty i64, askPrice i64, askQty i64 | symbol varString8
    block = struct.pack("<qqbbqqqq", event_time_us, update_id, price_exp, qty_exp,
                        bid_px, bid_qty, ask_px, ask_qty)
    return sbe_header(len(block), 10001, **header) + block + var_string8(symbol)


def sbe_trades(symbol: bytes, event_time_us: int, transact_time_us: int, price_exp: int,
               qty_exp: int, trades: list[tuple[int, int, int, bool]]) -> bytes:
    # TradesStreamEvent (10000): eventTime, transactTime i64, priceExponent, qtyExponent i8 |
    # group trades (groupSizeEncoding: blockLength u16, numInGroup u32) of
    # id i64, price i64, qty i64, isBuyerMaker u8 (isBestMatch is constant: no bytes) | symbol
    block = struct.pack("<qqbb", event_time_us, transact_time_us, price_exp, qty_exp)
    group = struct.pack("<HI", 25, len(trades))
    entries = b"".join(struct.pack("<qqqB", *t) for t in trades)
    return sbe_header(len(block), 10000) + block + group + entries + var_string8(symbol)


def sbe_depth(symbol: bytes, template: int, event_time_us: int, update_ids: tuple[int, ...],
              price_exp: int, qty_exp: int, bids: list[tuple[int, int]],
              asks: list[tuple[int, int]]) -> bytes:
    # DepthSnapshotStreamEvent (10002: one bookUpdateId) / DepthDiffStreamEvent (10003: first
    # and last ids) | groups bids, asks (groupSize16Encoding: blockLength u16, numInGroup u16)
    # of price i64, qty i64 | symbol
    block = struct.pack("<q" + "q" * len(update_ids) + "bb", event_time_us, *update_ids,
                        price_exp, qty_exp)
    out = sbe_header(len(block), template) + block
    for side in (bids, asks):
        out += struct.pack("<HH", 16, len(side)) + b"".join(struct.pack("<qq", *lv) for lv in side)
    return out + var_string8(symbol)
