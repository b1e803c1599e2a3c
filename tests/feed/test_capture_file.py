"""Raw frame capture: what goes in comes back out in order, the file format is the documented one,
and damaged files are clear errors."""
import struct

import pytest

from engine.feed.capture import (MAGIC, OPCODE_BINARY, OPCODE_TEXT, CaptureError, FrameCapture,
                                 read_capture)


def test_round_trip_in_order(tmp_path):
    path = tmp_path / "md.cap"
    frames = [(1000 + i, OPCODE_BINARY if i % 3 == 0 else OPCODE_TEXT,
               b"" if i == 5 else (b'{"u":%d}' % i) * (i % 7 + 1)) for i in range(2000)]
    with FrameCapture(path) as cap:
        for f in frames:
            cap.put(*f)
    assert cap.written + cap.dropped == len(frames) and cap.dropped == 0
    assert list(read_capture(path)) == frames


def test_file_layout_is_the_documented_one(tmp_path):
    path = tmp_path / "md.cap"
    with FrameCapture(path) as cap:
        cap.put(123456789, OPCODE_TEXT, b"hello")
    raw = path.read_bytes()
    assert raw == b"MMCAP1\n\0" + struct.pack("<qIB", 123456789, 5, 1) + b"hello"
    assert raw.startswith(MAGIC)


def test_bounded_queue_drops_are_counted(tmp_path):
    path = tmp_path / "md.cap"
    with FrameCapture(path, max_queued=4) as cap:
        for i in range(5000):
            cap.put(i, OPCODE_TEXT, b"x" * 64)
    got = list(read_capture(path))
    # Whatever the writer thread kept up with is on disk, in order; the rest is counted.
    assert len(got) == cap.written and cap.written + cap.dropped == 5000
    stamps = [ts for ts, _, _ in got]
    assert stamps == sorted(stamps)


def test_bad_magic_and_truncated_tail(tmp_path):
    bad = tmp_path / "bad.cap"
    bad.write_bytes(b"NOTACAPTURE")
    with pytest.raises(CaptureError, match="not a frame capture"):
        list(read_capture(bad))
    path = tmp_path / "cut.cap"
    with FrameCapture(path) as cap:
        cap.put(1, OPCODE_TEXT, b"first")
        cap.put(2, OPCODE_TEXT, b"second")
    raw = path.read_bytes()
    path.write_bytes(raw[:-3])
    with pytest.raises(CaptureError, match=r"record at byte 26 is cut short"):
        list(read_capture(path))
    assert list(read_capture(path, strict=False)) == [(1, OPCODE_TEXT, b"first")]
