"""Capture files -> the md records the live feed would have published (set-up, not timed).

Two formats are read:
  MMCAP1   what the feed writes (engine/feed/capture.py; `mm capture`, feed.capture_path)
  text     one frame per line, "<arrival ns> <frame>" (the hftbacktest capture format of
           ../shared/corpus); a `.gz` file is read through gzip
Every frame goes through the venue adapter the feed uses (feed.venue, feed.streams), and what
the feed's sink would drop is dropped here too (an update or trade id not above the last one
of its instrument: the copies of redundant connections). Records carry the capture's arrival
time; nothing else of the live stamps is kept.

Several files are replayed one after the other, each decoded afresh (as by a feed that started
with it: update ids may begin anywhere); a file whose clock starts before the previous one
ended (another boot, another box) is moved to start one second after it.
"""
from __future__ import annotations

import gzip
from pathlib import Path
from time import perf_counter_ns
from typing import Iterator

import numpy as np

from engine.feed.capture import MAGIC, OPCODE_BINARY, OPCODE_TEXT, CaptureError, read_capture
from engine.records import MD_TRADE

# One market event as the backtest replays it: 80 bytes (the ring's record is 128).
REC_DTYPE = np.dtype([
    ("ts", "i8"),               # arrival time in the capture, ns
    ("update_id", "i8"),
    ("bid_px", "i8"), ("bid_qty", "i8"), ("ask_px", "i8"), ("ask_qty", "i8"),
    ("trade_px", "i8"), ("trade_qty", "i8"),
    ("instrument", "i4"),
    ("kind", "i2"),             # MD_* flags
    ("trade_side", "i1"),       # taker side of a trade, SIDE_*
    ("ts_venue", "i8"),         # the exchange's event time in the frame, on the arrival clock
                                # (ns; 0: the frame has none, or the file no wall-clock offset)
], align=True)
FILE_GAP_NS = 1_000_000_000
PACK_ROWS = 1 << 16
SCAN_CHUNK = 32 << 20      # bytes of text a scan call sees at most
SCAN_RECORDS = 1 << 18     # records a scan call writes at most
_NO_ID = -(1 << 63)


class CaptureFormatError(ValueError):
    """Not a capture this reader knows; the message names the file and line or byte."""


def frames(path: str | Path) -> Iterator[tuple[int, int, bytes]]:
    """(arrival ns, opcode, payload) of every frame of a capture file, in file order."""
    path = Path(path)
    with open(path, "rb") as f:
        head = f.read(len(MAGIC))
    if head == MAGIC:
        try:
            yield from read_capture(path, strict=False)   # a cut-short tail: the writer died
        except CaptureError as e:
            raise CaptureFormatError(str(e)) from None
        return
    opener = gzip.open if head[:2] == b"\x1f\x8b" else open
    with opener(path, "rb") as f:
        for n, line in enumerate(f, 1):
            line = line.rstrip(b"\r\n")
            if not line:
                continue
            ts, sep, payload = line.partition(b" ")
            if not sep or not ts.isdigit():
                raise CaptureFormatError(
                    f"{path}:{n}: expected '<arrival ns> <frame>' (an MMCAP1 file starts with "
                    f"{MAGIC!r}), got {line[:60]!r}")
            yield int(ts), OPCODE_TEXT, payload


class RecordSink:
    """An md sink (engine/feed/adapter.MdSink) that drops repeated ids as the feed's RingSink
    does and keeps the rest in `rows` (or only counts them, keep=False: `mm capture`). It has
    what the live feed's StreamGroup asks of a sink, so the live connections can feed it."""

    def __init__(self, n_instruments: int, keep: bool = True):
        self.keep = keep
        self.conn = 0
        self.ts_arrival = 0           # set by the caller (the connection, or load()) per frame
        self.venue_shift: int | None = 0   # venue epoch ns -> the arrival clock (None: unknown)
        self.rows: list[tuple] = []   # the newest records; older ones are packed in `packed`
        self.packed: list[np.ndarray] = []
        self.records = 0
        self.dupes = 0
        self.stale = False
        self.stale_since_ns = 0
        self.last_published_ns = 0
        self.last_book = [_NO_ID] * n_instruments
        self.last_trade = [_NO_ID] * n_instruments

    def emit(self, instrument, kind, update_id, bid_px, bid_qty, ask_px, ask_qty, trade_px,
             trade_qty, trade_side, ts_venue) -> None:
        last = self.last_trade if kind & MD_TRADE else self.last_book
        if update_id and update_id <= last[instrument]:
            self.dupes += 1
            return
        last[instrument] = update_id
        self.records += 1
        self.stale = False
        self.last_published_ns = perf_counter_ns()
        if self.keep:
            rows = self.rows
            vs = self.venue_shift
            rows.append((self.ts_arrival, update_id, bid_px, bid_qty, ask_px, ask_qty,
                         trade_px, trade_qty, instrument, kind, trade_side,
                         ts_venue + vs if ts_venue and vs is not None else 0))
            if len(rows) >= PACK_ROWS:   # 72 bytes a record instead of a tuple's ~200
                self.packed.append(np.array(rows, dtype=REC_DTYPE))
                rows.clear()

    def extend(self, records: np.ndarray) -> None:
        """Records decoded elsewhere (text_scan, which filtered and counted them), after the
        ones emitted so far."""
        if len(records) == 0:
            return
        if self.rows:
            self.packed.append(np.array(self.rows, dtype=REC_DTYPE))
            self.rows.clear()
        self.packed.append(records.copy())

    def array(self) -> np.ndarray:
        """Every record kept, in order (REC_DTYPE)."""
        parts = self.packed + ([np.array(self.rows, dtype=REC_DTYPE)] if self.rows else [])
        return np.concatenate(parts) if parts else np.zeros(0, REC_DTYPE)

    def mark_stale(self) -> None:
        self.stale = True
        self.stale_since_ns = perf_counter_ns()

    def forget_ids(self) -> None:
        n = len(self.last_book)
        self.last_book[:] = [_NO_ID] * n
        self.last_trade[:] = [_NO_ID] * n

    def counters(self) -> dict[str, int]:
        return {"records": self.records, "dupes": self.dupes}


def load(paths, cfg, depth: bool | None = None) -> tuple[np.ndarray, dict]:
    """The records of every capture in `paths` for cfg's venue, streams and instruments, and
    what decoding saw (frames per kind, duplicates, the files' time spans). With `depth` (None:
    when the queue model reads levels, i.e. is not `touch`, or feed.streams keep an L2 book)
    and a Binance JSON venue, the depth frames become MD_DEPTH records (depth_frames.py) for
    the venue's L2 book and the feed's; without, they are dropped as the live feed drops them."""
    from engine.backtest.depth_frames import DepthFrames
    from engine.feed.venues import make_adapter

    if depth is None:       # the venue's queue models or the feed's L2 book read the levels
        depth = cfg.backtest.queue_model != "touch" or cfg.feed.keeps_depth()
    sink = RecordSink(len(cfg.instruments))
    levels = DepthFrames(cfg.instruments) if depth and cfg.feed.venue == "binance" else None
    kinds: dict[str, int] = {}
    files = []
    clock = _FileClock()
    for path in paths:
        adapter = make_adapter(cfg.feed.venue, cfg.instruments, cfg.feed.streams,
                               log_skipped=False)
        sink.forget_ids()
        read = _scan_text if _scannable(path, cfg, adapter) else _decode_frames
        clock.wall_offset = _wall_offset(path)
        first, last, n_frames = read(path, adapter, levels, sink, clock)
        if first is not None:
            clock.end = last + clock.shift
        for k, v in adapter.counts.items():
            kinds[k] = kinds.get(k, 0) + v
        files.append({"path": str(path), "frames": n_frames,
                      "span_s": (last - first) / 1e9 if first is not None else 0.0})
    recs = sink.array()
    if len(recs) > 1 and (np.diff(recs["ts"]) < 0).any():
        # frames are written in arrival order; a clock step inside a file is kept in order
        recs["ts"] = np.maximum.accumulate(recs["ts"])
    info = {"files": files, "records": len(recs), "duplicates": sink.dupes,
            "frames_by_kind": {k: v for k, v in kinds.items() if v},
            "depth_frames": levels.frames if levels else 0,
            "depth_levels": levels.levels if levels else 0}
    return recs, info


class _FileClock:
    """Arrival times across files: a file whose clock starts before the previous one ended is
    moved to start FILE_GAP_NS after it. The exchange's times move with them, from the venue's
    epoch onto the file's arrival clock (`wall_offset`: wall minus arrival clock; None when the
    file does not say)."""

    def __init__(self):
        self.shift = 0
        self.end: int | None = None
        self.wall_offset: int | None = 0

    def first(self, ts: int) -> None:
        """A file's first arrival time: sets the shift for its frames."""
        if self.end is not None and ts + self.shift <= self.end:
            self.shift = self.end + FILE_GAP_NS - ts

    def venue_shift(self) -> int | None:
        """What turns an exchange time (epoch ns) into this file's shifted arrival clock."""
        return None if self.wall_offset is None else self.shift - self.wall_offset


def _wall_offset(path) -> int | None:
    """Wall clock minus the arrival clock of a capture: 0 for text captures (their stamps are
    epoch ns, as hftbacktest's collector writes them); an MMCAP1 file's (perf_counter_ns
    stamps) from its metadata, None when it has none (taken before mm capture wrote it)."""
    import json

    from engine.capture import metadata_path

    with open(path, "rb") as f:
        if f.read(len(MAGIC)) != MAGIC:
            return 0
    meta = metadata_path(path)
    if not meta.is_file():
        return None
    return json.loads(meta.read_text()).get("wall_minus_arrival_ns")


def _decode_one(ts, payload, binary, adapter, levels, sink, clock) -> None:
    """One frame the way the feed decodes it (depth frames to the depth reader)."""
    sink.ts_arrival = ts + clock.shift
    sink.venue_shift = clock.venue_shift()
    if levels is not None and not binary and levels.is_depth(payload):
        levels.decode(bytes(payload), sink)
    else:
        adapter.decode(payload, binary, sink)


def _decode_frames(path, adapter, levels, sink, clock) -> tuple:
    """Every frame of `path` through the adapter: (first arrival, last arrival, frames)."""
    first = last = None
    n = 0
    for ts, opcode, payload in frames(path):
        if first is None:
            first = ts
            clock.first(ts)
        last = ts
        _decode_one(ts, payload, opcode == OPCODE_BINARY, adapter, levels, sink, clock)
        n += 1
    return first, last, n


def _scannable(path, cfg, adapter) -> bool:
    """A text capture of Binance JSON frames: text_scan takes its common lines."""
    if cfg.feed.venue != "binance" or not hasattr(adapter, "_last_book_id"):
        return False
    with open(path, "rb") as f:
        return f.read(len(MAGIC)) != MAGIC


def _text_chunks(path, size: int | None = None) -> Iterator[memoryview]:
    """The bytes of a text capture (gzip or plain) in pieces that end at a line end (the last
    may not), read into one buffer: each piece is valid until the next is asked for."""
    with open(path, "rb") as f:
        gz = f.read(2) == b"\x1f\x8b"
    buf = bytearray(size or SCAN_CHUNK)
    have = 0
    with (_gzip_open(path) if gz else open(path, "rb")) as f:
        while True:
            if have == len(buf):                  # a line longer than the buffer
                buf.extend(bytes(len(buf)))
            got = f.readinto(memoryview(buf)[have:])
            if not got:
                break
            have += got
            cut = buf.rfind(b"\n", 0, have) + 1
            if cut == 0:
                continue
            yield memoryview(buf)[:cut]
            buf[:have - cut] = buf[cut:have]
            have -= cut
        if have:
            yield memoryview(buf)[:have]


def _gzip_open(path):
    """ISA-L's gzip reader (twice zlib's speed) when installed, else the standard one."""
    try:
        from isal import igzip
        return igzip.open(path, "rb")
    except ImportError:
        return gzip.open(path, "rb")


def _scan_text(path, adapter, levels, sink, clock) -> tuple:
    """A text capture through text_scan, its other lines through the adapter as
    _decode_frames does: the same records and counts, at memory speed."""
    from engine.backtest import text_scan as ts_

    sc = _ScanState(adapter, levels, sink)
    first = None
    n_frames = 0
    for chunk in _text_chunks(path):
        b = np.frombuffer(chunk, np.uint8)
        if first is None:
            first = _first_arrival(chunk)
            if first is not None:
                clock.first(first)
        pos = 0
        while True:
            status, pos, n = ts_.scan(b, pos, clock.shift, sc.flags, *sc.args)
            sink.extend(sc.out[:n])
            if status == ts_.DONE:
                break
            if status == ts_.FULL:
                continue
            st = sc.st
            line = bytes(chunk[st[ts_.S_LINE_START]:st[ts_.S_LINE_END]])
            ts, sep, payload = line.partition(b" ")
            if status == ts_.BAD_LINE:
                raise CaptureFormatError(
                    f"{path}:{int(st[ts_.S_LINES]) + 1}: expected '<arrival ns> <frame>' (an "
                    f"MMCAP1 file starts with {MAGIC!r}), got {line[:60]!r}")
            if first is None:
                first = int(ts)
                clock.first(first)
            sc.to_python()
            _decode_one(int(ts), payload, False, adapter, levels, sink, clock)
            sc.from_python()
            st[ts_.S_LINES] += 1
            st[ts_.S_LAST_TS] = int(ts)
            n_frames += 1
            pos = int(st[ts_.S_LINE_NEXT])
    sc.fold_counts()
    n_frames += int(sc.st[ts_.S_FRAMES])
    last = int(sc.st[ts_.S_LAST_TS]) if first is not None else None
    return first, last, n_frames


def _first_arrival(chunk) -> int | None:
    """The arrival time of the first line of a chunk, when it has one."""
    for line in bytes(chunk[:1 << 16]).split(b"\n", 8):
        line = line.rstrip(b"\r")
        if line:
            ts = line.partition(b" ")[0]
            return int(ts) if ts.isdigit() else None
    return None


class _ScanState:
    """text_scan's arrays for one file, and their exchange with the Python decoders' state
    around a line handed back (the adapter's last trade ids, the sink's duplicate filter, the
    depth reader's last instrument; the last book ids are one memory, shared with the adapter
    and its C fast path)."""

    def __init__(self, adapter, levels, sink):
        from engine.backtest import text_scan as ts_

        ins = adapter.instruments
        table, keys, klen = ts_.symbol_table([i.symbol for i in ins])
        self.adapter, self.levels, self.sink = adapter, levels, sink
        self.book_ids = np.frombuffer(adapter._last_book_id, np.int64)
        self.trade_ids = np.array(adapter._last_trade_id, np.int64)
        self.sink_book = np.array(sink.last_book, np.int64)
        self.sink_trade = np.array(sink.last_trade, np.int64)
        self.st = np.zeros(ts_.S_WORDS, np.int64)
        self.st[ts_.S_DEPTH_LAST] = levels.last if levels is not None else -1
        self.out = np.zeros(SCAN_RECORDS, REC_DTYPE)
        self.flags = (ts_.F_FAST if adapter._fast else 0) | (ts_.F_DEPTH if levels else 0)
        pexp = np.array([i.pexp for i in ins], np.int64)
        qexp = np.array([i.qexp for i in ins], np.int64)
        self.args = (table, keys, klen, pexp, qexp, self.book_ids, self.trade_ids,
                     self.sink_book, self.sink_trade, self.st, self.out,
                     np.zeros((64, 2), np.int64), np.zeros(64, np.int64), ts_.literals())

    def to_python(self) -> None:
        from engine.backtest import text_scan as ts_

        self.adapter._last_trade_id[:] = self.trade_ids.tolist()
        self.sink.last_book[:] = self.sink_book.tolist()
        self.sink.last_trade[:] = self.sink_trade.tolist()
        if self.levels is not None:
            self.levels.last = int(self.st[ts_.S_DEPTH_LAST])

    def from_python(self) -> None:
        from engine.backtest import text_scan as ts_

        self.trade_ids[:] = self.adapter._last_trade_id
        self.sink_book[:] = self.sink.last_book
        self.sink_trade[:] = self.sink.last_trade
        if self.levels is not None:
            self.st[ts_.S_DEPTH_LAST] = self.levels.last

    def fold_counts(self) -> None:
        """The scanner's counts into the adapter's, the depth reader's and the sink's."""
        from engine.backtest import text_scan as ts_

        self.to_python()
        st = self.st
        self.adapter.counts["data"] += int(st[ts_.S_DATA])
        self.sink.records += int(st[ts_.S_RECORDS])
        self.sink.dupes += int(st[ts_.S_DUPES])
        if self.levels is not None:
            self.levels.frames += int(st[ts_.S_DEPTH_FRAMES])
            self.levels.levels += int(st[ts_.S_DEPTH_LEVELS])
