"""Creating, attaching and recovering ring segments: every mismatch is a clear error."""
import os
import signal
import stat
import subprocess
import sys
import time

import numpy as np
import posix_ipc
import pytest

from engine import _native as C
from engine.records import FILL_DTYPE, MD_DTYPE
from engine.ring import Ring, RingError, SegmentError
from engine.ring import header as L
from engine.ring.segment import list_segments, segment_name


def test_segment_is_mode_0600(instance):
    ring = Ring.create(instance, "md", MD_DTYPE, 16)
    try:
        mode = stat.S_IMODE(os.stat("/dev/shm" + ring.name).st_mode)
        assert mode == 0o600
    finally:
        ring.close()
        ring.unlink()


def test_attach_checks_dtype_capacity_version_magic(instance):
    ring = Ring.create(instance, "md", MD_DTYPE, 16)
    try:
        with pytest.raises(RingError, match="record dtype mismatch"):
            other = np.dtype({"names": ["seq", "x"], "formats": ["i8", "i8"],
                              "offsets": [0, 8], "itemsize": 128})
            Ring.attach(instance, "md", other)
        with pytest.raises(RingError, match="record size 128 bytes, attacher expects 64"):
            Ring.attach(instance, "md", np.dtype({"names": ["seq"], "formats": ["i8"],
                                                  "offsets": [0], "itemsize": 64}))
        with pytest.raises(RingError, match="capacity 16, attacher expects 32"):
            Ring.attach(instance, "md", MD_DTYPE, capacity=32)
        same_size = np.dtype(FILL_DTYPE)  # 128 bytes too, other fields
        with pytest.raises(RingError, match="dtype mismatch"):
            Ring.attach(instance, "md", same_size)
        u32 = ring.seg.array[:L.HEADER_SIZE].view(np.uint32)
        u32[L.OFF_VERSION // 4] = 99
        with pytest.raises(RingError, match="layout version 99"):
            Ring.attach(instance, "md", MD_DTYPE)
        u32[L.OFF_VERSION // 4] = L.VERSION
        ring.seg.words[0] = 12345
        with pytest.raises(RingError, match="bad magic"):
            Ring.attach(instance, "md", MD_DTYPE)
    finally:
        ring.close()
        ring.unlink()


def test_attach_missing_segment_is_clear(instance):
    with pytest.raises(SegmentError, match="does not exist"):
        Ring.attach(instance, "nothing", MD_DTYPE)


def test_garbage_segment_is_refused(instance):
    name = segment_name(instance, "junk")
    shm = posix_ipc.SharedMemory(name, posix_ipc.O_CREX, mode=0o600, size=4096)
    os.write(shm.fd, b"\xff" * 4096)
    shm.close_fd()
    with pytest.raises(RingError, match="bad magic"):
        Ring.attach(instance, "junk", MD_DTYPE)


def test_bad_capacity_and_dtype_refused_at_creation(instance):
    with pytest.raises(RingError, match="power of two"):
        Ring.create(instance, "md", MD_DTYPE, 100)
    with pytest.raises(ValueError, match="'seq'"):
        Ring.create(instance, "md", np.dtype({"names": ["x"], "formats": ["i8"], "itemsize": 64}), 8)
    with pytest.raises(ValueError, match="multiple of 64"):
        Ring.create(instance, "md", np.dtype([("seq", "i8"), ("x", "i8")]), 8)
    assert list_segments(instance) == []


def test_second_live_producer_refused(instance):
    ring = Ring.create(instance, "md", MD_DTYPE, 16, role="producer")
    child = subprocess.run(
        [sys.executable, "-c",
         "import sys; from engine.ring import Ring; from engine.records import MD_DTYPE\n"
         f"try:\n  Ring.attach({instance!r}, 'md', MD_DTYPE, role='producer')\n"
         "except Exception as e:\n  print(e); sys.exit(7)"],
        capture_output=True, text=True, timeout=60)
    try:
        assert child.returncode == 7, child.stderr
        assert f"already has a live producer (pid {os.getpid()})" in child.stdout
    finally:
        ring.close()
        ring.unlink()


def _spawn_holder(instance, role, capacity=16):
    """A child process that creates/attaches the ring as `role`, then waits to be killed."""
    code = ("import sys, time; from engine.ring import Ring; from engine.records import MD_DTYPE\n"
            f"r = Ring.open({instance!r}, 'md', MD_DTYPE, {capacity}, 'block', role={role!r})\n"
            "print('ready', flush=True); time.sleep(600)")
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "ready"
    return p


def test_stale_segment_of_killed_processes_is_replaced(instance, capfd):
    p = _spawn_holder(instance, "producer")
    p.send_signal(signal.SIGKILL)
    p.wait(10)
    assert list_segments(instance) == [segment_name(instance, "md")]
    ring = Ring.create(instance, "md", MD_DTYPE, 16)
    try:
        assert "replacing stale ring segment" in capfd.readouterr().err
        assert ring.stats()["producer_pid"] == 0
    finally:
        ring.close()
        ring.unlink()


def test_segment_in_use_is_not_replaced(instance):
    p = _spawn_holder(instance, "consumer")
    try:
        with pytest.raises(RingError, match=f"in use \\(consumer pid {p.pid}\\)"):
            Ring.create(instance, "md", MD_DTYPE, 16)
    finally:
        p.kill()
        p.wait(10)


def test_blocked_producer_gives_up_when_consumer_is_killed(instance):
    ring = Ring.create(instance, "md", MD_DTYPE, 4, "block", role="producer")
    p = _spawn_holder(instance, "consumer", capacity=4)
    try:
        rec = np.zeros(1, MD_DTYPE)
        for _ in range(4):
            assert ring.push(rec)
        p.kill()
        p.wait(10)
        t = time.monotonic()
        assert ring.push(rec) is False  # full, consumer dead: refused and counted, no hang
        assert time.monotonic() - t < 10
        st = ring.stats()
        assert st["blocked"] == 1 and st["dropped"] == 1
    finally:
        ring.close()
        ring.unlink()


def test_unlink_on_close_leaves_nothing(instance):
    ring = Ring.create(instance, "md", MD_DTYPE, 16)
    ring.close()
    ring.unlink()
    assert list_segments(instance) == []


def test_futex_and_atomics_from_python(instance):
    ring = Ring.create(instance, "md", MD_DTYPE, 16)
    try:
        addr = ring.hdr + L.OFF_PRODUCER_POS
        C.store_release(addr, 41)
        assert C.load_acquire(addr) == 41
        # futex_wait returns EAGAIN (11) at once when the word no longer holds `expected`
        assert C.futex_wait(addr, 40, 1_000_000) == 11
        assert C.futex_wait(addr, 41, 1_000_000) == 110  # ETIMEDOUT: nobody woke it
        C.store_release(addr, 0)
    finally:
        ring.close()
        ring.unlink()
