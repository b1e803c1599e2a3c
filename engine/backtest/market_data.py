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

# One market event as the backtest replays it: 72 bytes (the ring's record is 128).
REC_DTYPE = np.dtype([
    ("ts", "i8"),               # arrival time in the capture, ns
    ("update_id", "i8"),
    ("bid_px", "i8"), ("bid_qty", "i8"), ("ask_px", "i8"), ("ask_qty", "i8"),
    ("trade_px", "i8"), ("trade_qty", "i8"),
    ("instrument", "i4"),
    ("kind", "i2"),             # MD_* flags
    ("trade_side", "i1"),       # taker side of a trade, SIDE_*
], align=True)
FILE_GAP_NS = 1_000_000_000
PACK_ROWS = 1 << 16
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
            rows.append((self.ts_arrival, update_id, bid_px, bid_qty, ask_px, ask_qty,
                         trade_px, trade_qty, instrument, kind, trade_side))
            if len(rows) >= PACK_ROWS:   # 72 bytes a record instead of a tuple's ~200
                self.packed.append(np.array(rows, dtype=REC_DTYPE))
                rows.clear()

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
    when the queue model reads levels, i.e. is not `touch`) and a Binance JSON venue, the depth
    frames become MD_DEPTH records (depth_frames.py) for the venue's L2 book; without, they are
    dropped as the live feed drops them."""
    from engine.backtest.depth_frames import DepthFrames
    from engine.feed.venues import make_adapter

    if depth is None:
        depth = cfg.backtest.queue_model != "touch"
    sink = RecordSink(len(cfg.instruments))
    levels = DepthFrames(cfg.instruments) if depth and cfg.feed.venue == "binance" else None
    kinds: dict[str, int] = {}
    files = []
    shift = 0
    end = None
    for path in paths:
        adapter = make_adapter(cfg.feed.venue, cfg.instruments, cfg.feed.streams,
                               log_skipped=False)
        sink.forget_ids()
        first = last = None
        n_frames = 0
        for ts, opcode, payload in frames(path):
            if first is None:
                first = ts
                if end is not None and ts + shift <= end:
                    shift = end + FILE_GAP_NS - ts
            last = ts
            sink.ts_arrival = ts + shift
            if levels is not None and opcode != OPCODE_BINARY and levels.is_depth(payload):
                levels.decode(bytes(payload), sink)
                n_frames += 1
                continue
            adapter.decode(payload, opcode == OPCODE_BINARY, sink)
            n_frames += 1
        if first is not None:
            end = last + shift
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
