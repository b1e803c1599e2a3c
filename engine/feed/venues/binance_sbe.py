"""Binance Spot SBE market data (schema spot_stream id 1 version 0, ../shared/corpus/binance/sbe/
stream_1_0.xml; layout table in ../shared/PROTOCOLS.md section 2): `@bestBidAsk` (template 10001),
`@trade` (10000), `@depth20` (10002, top level only). Diff depth (10003) is counted "unknown".

The numpy structured dtypes below are the layout definition (unaligned, little-endian, field
order = schema order). The hot path reads a bestBidAsk frame with one `struct.unpack_from`
derived from that dtype (one C call returning a tuple, symbol bytes included: cheaper than
field access through an `np.frombuffer` view, see bench/feed_decode.py); `read_best_bid_ask`
gives the zero-copy numpy view for tools and tests. Text frames on this connection are the
JSON control messages (subscription acks, errors, serverShutdown).

Values arrive as int64 mantissa * 10^exponent (exponents per message) and are rescaled to the
instrument's exponents with integer multiply/divide; a remainder is counted "precision".
"""
from __future__ import annotations

import os

import struct

import numpy as np

from engine.feed.fixed import INT64_MAX, MALFORMED, POW10, PRECISION, sentinel_kind
from engine.feed.venues import binance
from engine.feed.venues._base import DECODE_ERRORS, AdapterBase
from engine.records import MD_BBO, MD_SNAPSHOT, MD_TRADE, SIDE_BUY, SIDE_SELL, VENUE_BINANCE

SCHEMA_ID = 1
SCHEMA_VERSION = 0
TEMPLATE_TRADES = 10000
TEMPLATE_BEST_BID_ASK = 10001
TEMPLATE_DEPTH_SNAPSHOT = 10002
TEMPLATE_DEPTH_DIFF = 10003
US = 1000  # ns per µs
MAX_US = INT64_MAX // US  # larger event times are nonsense: sent as 0 rather than overflowing

HEADER_DTYPE = np.dtype([("blockLength", "<u2"), ("templateId", "<u2"), ("schemaId", "<u2"),
                         ("version", "<u2")])
BEST_BID_ASK_DTYPE = np.dtype([
    ("blockLength", "<u2"), ("templateId", "<u2"), ("schemaId", "<u2"), ("version", "<u2"),
    ("eventTime", "<i8"),        # µs since epoch
    ("bookUpdateId", "<i8"),
    ("priceExponent", "i1"),
    ("qtyExponent", "i1"),
    ("bidPrice", "<i8"), ("bidQty", "<i8"), ("askPrice", "<i8"), ("askQty", "<i8"),
    ("symbolLength", "u1"),      # varString8 length; the symbol bytes follow
])
BEST_BID_ASK_BLOCK = BEST_BID_ASK_DTYPE.itemsize - HEADER_DTYPE.itemsize - 1   # 50
# Root block of 10000 / 10002: eventTime|transactTime or bookUpdateId (i8), two exponents.
TRADES_ROOT_DTYPE = np.dtype([("eventTime", "<i8"), ("transactTime", "<i8"),
                              ("priceExponent", "i1"), ("qtyExponent", "i1")])
TRADE_ENTRY_DTYPE = np.dtype([("id", "<i8"), ("price", "<i8"), ("qty", "<i8"),
                              ("isBuyerMaker", "u1")])                          # 25 bytes
DEPTH_ROOT_DTYPE = np.dtype([("eventTime", "<i8"), ("bookUpdateId", "<i8"),
                             ("priceExponent", "i1"), ("qtyExponent", "i1")])
GROUP_SIZE_DTYPE = np.dtype([("blockLength", "<u2"), ("numInGroup", "<u4")])    # groupSizeEncoding
GROUP_SIZE16_DTYPE = np.dtype([("blockLength", "<u2"), ("numInGroup", "<u2")])  # groupSize16
LEVEL_DTYPE = np.dtype([("price", "<i8"), ("qty", "<i8")])


def struct_format(dtype: np.dtype, names: tuple[str, ...] | None = None) -> str:
    """The struct module format of (some consecutive fields of) an unaligned little-endian
    structured dtype."""
    codes = {"i1": "b", "u1": "B", "i2": "h", "u2": "H", "i4": "i", "u4": "I", "i8": "q", "u8": "Q"}
    return "<" + "".join(codes[dtype.fields[n][0].str.lstrip("<|")] for n in names or dtype.names)


_HEADER = struct.Struct(struct_format(HEADER_DTYPE))
_TRADES_ROOT = struct.Struct(struct_format(TRADES_ROOT_DTYPE))
_TRADE_ENTRY = struct.Struct(struct_format(TRADE_ENTRY_DTYPE))
_DEPTH_ROOT = struct.Struct(struct_format(DEPTH_ROOT_DTYPE))
_GROUP = struct.Struct(struct_format(GROUP_SIZE_DTYPE))
_GROUP16 = struct.Struct(struct_format(GROUP_SIZE16_DTYPE))
_LEVEL = struct.Struct(struct_format(LEVEL_DTYPE))
# The bestBidAsk hot path reads a whole frame with one unpack_from: the 8-byte message header as
# one u64 (checked against the one value it may have), the root block's fields as in the dtype,
# then the varString8 (length byte + symbol) as one bytes object that keys the instrument dict,
# so a length byte that disagrees with the frame's length simply finds no instrument.
# One Struct per frame length (symbols of 1..255 bytes).
_BBA_HEADER_VALUE = (BEST_BID_ASK_BLOCK | TEMPLATE_BEST_BID_ASK << 16 | SCHEMA_ID << 32
                     | SCHEMA_VERSION << 48)
_BBA_FIXED = "<Q" + struct_format(BEST_BID_ASK_DTYPE, BEST_BID_ASK_DTYPE.names[4:-1])[1:]
_BBA_PREFIX = BEST_BID_ASK_DTYPE.itemsize - 1  # 58: header + root block
_BBA_BY_LENGTH = {_BBA_PREFIX + 1 + n: struct.Struct(f"{_BBA_FIXED}{n + 1}s") for n in range(1, 256)}


_BBA_OFFSETS = tuple(BEST_BID_ASK_DTYPE.fields[n][1] for n in (
    "eventTime", "bookUpdateId", "priceExponent", "qtyExponent", "bidPrice", "bidQty", "askPrice",
    "askQty", "symbolLength"))


def read_best_bid_ask(payload) -> np.ndarray:
    """Zero-copy numpy view of a bestBidAsk frame's fixed part (one BEST_BID_ASK_DTYPE record)."""
    return np.frombuffer(payload, BEST_BID_ASK_DTYPE, count=1)


def _scale(mantissa: int, shift: int) -> int:
    """mantissa * 10^shift as an int64; PRECISION (-2) when a division leaves a remainder,
    MALFORMED (-1) outside 0..int64 max."""
    if shift >= 0:
        v = mantissa * POW10[shift] if shift < 40 else MALFORMED
    else:
        div = POW10[-shift] if -shift < 40 else 1 << 200
        v, r = divmod(mantissa, div)
        if r:
            return PRECISION
    return v if 0 <= v <= INT64_MAX else MALFORMED


def _scale_book(bpm: int, bqm: int, apm: int, aqm: int, ps: int, qs: int):
    """Bid/ask price and qty mantissas rescaled by 10^ps (prices) and 10^qs (quantities), in
    one call: the exact integer arithmetic of `_scale`, with the same sentinels. The price and
    quantity halves are written out on purpose: a helper call per half measured ~120 ns more
    per frame (bench/feed_decode.py, "exp -8, rescaled")."""
    if 0 < -ps < 40:
        d = POW10[-ps]
        bp, ap = bpm // d, apm // d
        if bp * d != bpm or ap * d != apm:
            bp = ap = PRECISION
    elif 0 <= ps < 40:
        bp, ap = bpm * POW10[ps], apm * POW10[ps]
    else:
        bp = ap = MALFORMED
    if 0 < -qs < 40:
        d = POW10[-qs]
        bq, aq = bqm // d, aqm // d
        if bq * d != bqm or aq * d != aqm:
            bq = aq = PRECISION
    elif 0 <= qs < 40:
        bq, aq = bqm * POW10[qs], aqm * POW10[qs]
    else:
        bq = aq = MALFORMED
    if bp > INT64_MAX or ap > INT64_MAX or bq > INT64_MAX or aq > INT64_MAX:
        return MALFORMED, MALFORMED, MALFORMED, MALFORMED
    return bp, bq, ap, aq


def _fits(block: int, root: struct.Struct, group: struct.Struct, size: int) -> bool:
    """The header's block length covers the root fields we read, and the frame holds the root
    block plus the first group's size header."""
    return block >= root.size and _HEADER.size + block + group.size <= size


class BinanceSbeAdapter(AdapterBase):
    """Binance Spot SBE market streams (binary frames) plus their JSON control text frames.
    The connection needs an Ed25519 API key in the X-MBX-APIKEY header (the connection's job)."""

    venue = VENUE_BINANCE
    ping_interval_s = 0.0
    max_connection_age_s = 24 * 3600.0
    STREAMS = ("bestBidAsk", "trade", "depth20")

    def __init__(self, instruments, streams, log_skipped=None, fast_path=True):
        super().__init__(instruments, streams, log_skipped, fast_path)
        self._by_bytes = {k.encode(): v for k, v in self._by_symbol.items()}
        # varString8 as it sits in the frame (length byte + UTF-8 symbol) -> instrument entry.
        self._by_var_string = {bytes([len(k)]) + k: v for k, v in self._by_bytes.items()}
        # A bestBidAsk with the declared block length is decoded and published in C
        # (engine._feed.BookDecoder, reading the fields at BEST_BID_ASK_DTYPE's offsets); every
        # other frame comes to `decode` below.
        self._install_fast_path("sbe-best-bid-ask", sbe=(_BBA_HEADER_VALUE, _BBA_OFFSETS))

    @staticmethod
    def symbol_key(symbol: str) -> str:
        return symbol.upper()

    def stream_url(self, base_url: str) -> str:
        """`<base>/stream?streams=btcusdt@bestBidAsk/...` on stream-sbe.binance.com."""
        names = [f"{ins.symbol.lower()}@{s}" for ins in self.instruments for s in self.streams]
        if len(names) > binance.MAX_STREAMS:
            raise ValueError(f"feed: {len(names)} streams on one connection, Binance allows "
                             f"{binance.MAX_STREAMS}")
        return f"{base_url.rstrip('/')}/stream?streams={'/'.join(names)}"

    def subscribe_frames(self) -> list[bytes]:
        return []

    def ping_frame(self) -> bytes | None:
        return None

    def connect_headers(self) -> dict[str, str]:
        """Binance's SBE streams want an (Ed25519) API key in X-MBX-APIKEY when connecting;
        no signature. Taken from MM_API_KEY; the local simulator needs none."""
        key = os.environ.get("MM_API_KEY", "")
        return {"X-MBX-APIKEY": key} if key else {}

    # ------------------------------------------------------------------ hot path
    def decode(self, payload, binary: bool, sink) -> int:
        """Decode one frame and emit its events; count and skip anything else. Never raises."""
        try:
            if not binary:
                return self._decode_text(payload)
            st = _BBA_BY_LENGTH.get(len(payload))
            if st is not None:
                header, ts, u, pe, qe, bpm, bqm, apm, aqm, sym = st.unpack_from(payload)
                if header == _BBA_HEADER_VALUE:
                    ent = self._by_var_string.get(sym)
                    if ent is None:
                        return self._skip("malformed" if sym[0] != len(sym) - 1
                                          else "unknown_symbol", payload)
                    i, _, _, ipe, iqe = ent
                    if u < self._last_book_id[i]:
                        return self._skip("backwards", payload)
                    if pe == ipe and qe == iqe:   # exponents agree: no arithmetic at all
                        bp, bq, ap, aq = bpm, bqm, apm, aqm
                    else:
                        bp, bq, ap, aq = _scale_book(bpm, bqm, apm, aqm, pe - ipe, qe - iqe)
                    if (bp | bq | ap | aq) < 0:
                        return self._skip_number(min(bp, bq, ap, aq), payload)
                    if bp >= ap and bq and aq:
                        return self._skip("crossed", payload)
                    self._last_book_id[i] = u
                    sink.emit(i, MD_BBO, u, bp, bq, ap, aq, 0, 0, 0,
                              ts * US if 0 <= ts <= MAX_US else 0)
                    self._counts["data"] += 1
                    return 1
            return self._decode_other(payload, sink)
        except Exception:  # last resort: a frame must never take the reader down
            return self._unexpected(payload)

    # ------------------------------------------------------------------ other templates
    def _decode_text(self, payload) -> int:
        try:
            env = binance.envelope.decode(payload)
        except DECODE_ERRORS:
            return self._skip("malformed", payload)
        if env.stream:   # combined control events ({"stream":"!serverShutdown","data":..})
            try:
                env = binance.envelope.decode(env.data)
            except DECODE_ERRORS:
                return self._skip("malformed", payload)
        return self._skip(binance.control_kind(env) or "unknown", payload)

    def _decode_other(self, payload, sink) -> int:
        if len(payload) < _HEADER.size:
            return self._skip("malformed", payload)
        block, template, schema, version = _HEADER.unpack_from(payload)
        if schema != SCHEMA_ID or version != SCHEMA_VERSION:
            return self._skip("unknown", payload)
        if template == TEMPLATE_TRADES:
            return self._trades(payload, block, sink)
        if template == TEMPLATE_DEPTH_SNAPSHOT:
            return self._depth_top(payload, block, sink)
        if template == TEMPLATE_BEST_BID_ASK:
            # The fast path takes only the declared 50-byte block. A longer one: the fields we
            # know come first, the symbol sits at 8 + blockLength; decode the known layout.
            if block > BEST_BID_ASK_BLOCK and _HEADER.size + block < len(payload):
                known = (struct.pack("<H", BEST_BID_ASK_BLOCK) + bytes(payload[2:_BBA_PREFIX])
                         + bytes(payload[_HEADER.size + block:]))
                if len(known) in _BBA_BY_LENGTH:
                    return self.decode(memoryview(known), True, sink)
            return self._skip("malformed", payload)
        return self._skip("unknown", payload)

    def _symbol_at(self, payload, off: int, payload_len: int):
        """Instrument entry of the varString8 symbol at `off`, or the frame kind (str) to skip."""
        if off + 1 > payload_len:
            return "malformed"
        n = payload[off]
        if off + 1 + n != payload_len:
            return "malformed"
        ent = self._by_bytes.get(bytes(payload[off + 1:off + 1 + n]))
        return "unknown_symbol" if ent is None else ent

    def _trades(self, payload, block: int, sink) -> int:
        size = len(payload)
        if not _fits(block, _TRADES_ROOT, _GROUP, size):
            return self._skip("malformed", payload)
        ts, _, pe, qe = _TRADES_ROOT.unpack_from(payload, _HEADER.size)
        entry_len, count = _GROUP.unpack_from(payload, _HEADER.size + block)
        first = _HEADER.size + block + _GROUP.size
        if entry_len < _TRADE_ENTRY.size or count > size:
            return self._skip("malformed", payload)
        ent = self._symbol_at(payload, first + count * entry_len, size)
        if type(ent) is str:
            return self._skip(ent, payload)
        i, _, _, ipe, iqe = ent
        ps, qs = pe - ipe, qe - iqe
        ts_ns = ts * US if 0 <= ts <= MAX_US else 0
        emitted, skipped = 0, None
        for k in range(count):
            tid, pm, qm, maker = _TRADE_ENTRY.unpack_from(payload, first + k * entry_len)
            if tid <= self._last_trade_id[i]:
                skipped = skipped or "backwards"
                continue
            px, qty = _scale(pm, ps), _scale(qm, qs)
            if (px | qty) < 0:
                skipped = skipped or sentinel_kind(min(px, qty))
                continue
            self._last_trade_id[i] = tid
            sink.emit(i, MD_TRADE, tid, 0, 0, 0, 0, px, qty, SIDE_SELL if maker else SIDE_BUY,
                      ts_ns)
            emitted += 1
        return self._frame_done(emitted, skipped, payload)

    def _depth_top(self, payload, block: int, sink) -> int:
        size = len(payload)
        if not _fits(block, _DEPTH_ROOT, _GROUP16, size):
            return self._skip("malformed", payload)
        ts, u, pe, qe = _DEPTH_ROOT.unpack_from(payload, _HEADER.size)
        off = _HEADER.size + block
        tops = []
        for _side in (0, 1):   # bids group, then asks group; keep each side's first level
            if off + _GROUP16.size > size:
                return self._skip("malformed", payload)
            level_len, count = _GROUP16.unpack_from(payload, off)
            off += _GROUP16.size
            if level_len < _LEVEL.size or off + count * level_len > size:
                return self._skip("malformed", payload)
            tops.append(_LEVEL.unpack_from(payload, off) if count else (0, 0))
            off += count * level_len
        ent = self._symbol_at(payload, off, size)
        if type(ent) is str:
            return self._skip(ent, payload)
        i, _, _, ipe, iqe = ent
        if u < self._last_book_id[i]:
            return self._skip("backwards", payload)
        (bpm, bqm), (apm, aqm) = tops
        ps, qs = pe - ipe, qe - iqe
        bp, bq, ap, aq = _scale_book(bpm, bqm, apm, aqm, ps, qs)
        if (bp | bq | ap | aq) < 0:
            return self._skip_number(min(bp, bq, ap, aq), payload)
        if bp >= ap and bq and aq:
            return self._skip("crossed", payload)
        self._last_book_id[i] = u
        sink.emit(i, MD_BBO | MD_SNAPSHOT, u, bp, bq, ap, aq, 0, 0, 0,
                  ts * US if 0 <= ts <= MAX_US else 0)
        self._counts["data"] += 1
        return 1
