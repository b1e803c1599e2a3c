"""Reading and writing MMCAP1 capture files (the feed's raw-frame capture format).

File: the 8 bytes b"MMCAP1\\n\\0", then records: struct '<qIB' (arrival perf_counter_ns int64,
payload length uint32, opcode uint8: 1 text, 2 binary) followed by the payload bytes.
The simulator replays the payloads verbatim at recorded speed (or scaled).
"""
from __future__ import annotations

import struct
from pathlib import Path
from typing import BinaryIO, Iterator

MAGIC = b"MMCAP1\n\0"
RECORD = struct.Struct("<qIB")
OPCODE_TEXT = 1
OPCODE_BINARY = 2


class CaptureError(ValueError):
    """The file is not a complete MMCAP1 capture; the message says where it broke."""


def read_capture(path: str | Path) -> Iterator[tuple[int, int, bytes]]:
    """Yield (arrival_ns, opcode, payload) for each record of the capture at `path`."""
    with open(path, "rb") as f:
        yield from _records(f, str(path))


def _records(f: BinaryIO, name: str) -> Iterator[tuple[int, int, bytes]]:
    if f.read(len(MAGIC)) != MAGIC:
        raise CaptureError(f"{name}: not an MMCAP1 capture (bad magic)")
    offset = len(MAGIC)
    while True:
        head = f.read(RECORD.size)
        if not head:
            return
        if len(head) < RECORD.size:
            raise CaptureError(f"{name}: truncated record header at byte {offset}")
        ts, length, opcode = RECORD.unpack(head)
        payload = f.read(length)
        if len(payload) < length:
            raise CaptureError(f"{name}: truncated payload at byte {offset}")
        if opcode not in (OPCODE_TEXT, OPCODE_BINARY):
            raise CaptureError(f"{name}: unknown opcode {opcode} at byte {offset}")
        offset += RECORD.size + length
        yield ts, opcode, payload


def write_capture(path: str | Path, records) -> int:
    """Write (arrival_ns, opcode, payload) records as an MMCAP1 file; returns the count."""
    n = 0
    with open(path, "wb") as f:
        f.write(MAGIC)
        for ts, opcode, payload in records:
            f.write(RECORD.pack(ts, len(payload), opcode))
            f.write(payload)
            n += 1
    return n
