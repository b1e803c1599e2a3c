"""Raw frame capture: every data frame with its arrival stamp, written by a background thread to a
length-prefixed file the simulator can replay.

File format (little endian):
    magic  b"MMCAP1\\n\\0"                              8 bytes, once
    record struct "<qIB" = arrival perf_counter_ns (i64), payload length (u32),
           opcode (u8: 1 text, 2 binary), then the payload bytes.

The hot path only appends (stamp, opcode, bytes) to a deque: the copy of the payload is the one
allocation capture costs, and only when capture is on. The writer thread drains the deque every
few milliseconds (polling, so the reader never pays for a wake-up). A full queue drops the frame
and counts it in `dropped`: capture never slows the feed.
"""
from __future__ import annotations

import collections
import struct
import threading
from pathlib import Path
from typing import Iterator

MAGIC = b"MMCAP1\n\0"
RECORD = struct.Struct("<qIB")
OPCODE_TEXT = 1
OPCODE_BINARY = 2
_POLL_S = 0.005


class CaptureError(ValueError):
    """The file is not a capture, or is cut short; the message names the byte offset."""


class FrameCapture:
    """Write frames to `path` on a background thread. Use as a context manager or call `close()`."""

    def __init__(self, path: str | Path, max_queued: int = 65536):
        self.path = Path(path)
        self.max_queued = max_queued
        self.dropped = 0            # frames refused because the queue was full
        self.written = 0            # frames on disk
        self._queue: collections.deque = collections.deque()
        self._file = open(self.path, "wb", buffering=1 << 20)
        self._file.write(MAGIC)
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._drain_loop, name="mm-feed-capture", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ hot path
    def put(self, ts_arrival: int, opcode: int, payload: bytes) -> None:
        """Queue one frame (the caller hands a copy it owns: picows frames are views)."""
        q = self._queue
        if len(q) >= self.max_queued:
            self.dropped += 1
            return
        q.append((ts_arrival, opcode, payload))

    # ------------------------------------------------------------------ writer thread
    def _drain_loop(self) -> None:
        try:
            while not self._stop.is_set():
                if not self._drain():
                    self._stop.wait(_POLL_S)
            self._drain()
            self._file.flush()
        except BaseException as e:  # disk full, ...: kept for close() to report
            self._error = e

    def _drain(self) -> int:
        q, f, pack, n = self._queue, self._file, RECORD.pack, 0
        while q:
            ts, opcode, payload = q.popleft()
            f.write(pack(ts, len(payload), opcode))
            f.write(payload)
            n += 1
        self.written += n
        return n

    def close(self) -> None:
        """Write what is queued, flush and close the file. Raises the writer's error, if any."""
        if self._file.closed:
            return
        self._stop.set()
        self._thread.join(timeout=10)
        self._file.close()
        if self._error is not None:
            raise OSError(f"frame capture to {self.path} failed: {self._error}") from self._error

    def __enter__(self) -> "FrameCapture":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def read_capture(path: str | Path, strict: bool = True) -> Iterator[tuple[int, int, bytes]]:
    """Yield (ts_arrival_ns, opcode, payload) for every frame of a capture file.

    A bad magic raises CaptureError. A record cut short at the end (the writer was killed) raises
    CaptureError naming the offset when `strict`, else ends the iteration quietly."""
    with open(path, "rb") as f:
        head = f.read(len(MAGIC))
        if head != MAGIC:
            raise CaptureError(f"{path}: not a frame capture (magic {head!r}, expected {MAGIC!r})")
        offset = len(MAGIC)
        while True:
            raw = f.read(RECORD.size)
            if not raw:
                return
            if len(raw) < RECORD.size:
                break
            ts, length, opcode = RECORD.unpack(raw)
            if opcode not in (OPCODE_TEXT, OPCODE_BINARY):
                raise CaptureError(f"{path}: bad opcode {opcode} in the record at byte {offset}")
            payload = f.read(length)
            if len(payload) < length:
                break
            yield ts, opcode, payload
            offset += RECORD.size + length
    if strict:
        raise CaptureError(f"{path}: record at byte {offset} is cut short (file ends mid-record)")

