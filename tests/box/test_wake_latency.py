"""The PM QoS wake-up bound (engine/box/wake_latency.py): what is written, what a refusal says,
and that a hot process holds it for exactly its own life."""
from __future__ import annotations

import os
import struct

import pytest

from engine.box import wake_latency
from engine.box.wake_latency import hold, in_force

DEVICE_WRITABLE = os.access(wake_latency.PATH, os.W_OK)


def test_hold_writes_the_bound_as_a_32_bit_integer_and_keeps_the_descriptor(tmp_path):
    dev = tmp_path / "cpu_dma_latency"
    dev.write_bytes(b"")
    fd, why = hold(7, str(dev))
    try:
        assert fd >= 0 and why == ""
        assert dev.read_bytes() == struct.pack("i", 7)
        assert in_force(str(dev)) == 7
    finally:
        os.close(fd)


def test_minus_one_leaves_the_box_alone(tmp_path):
    dev = tmp_path / "cpu_dma_latency"
    dev.write_bytes(struct.pack("i", 2_000_000_000))
    assert hold(-1, str(dev)) == (-1, "")
    assert in_force(str(dev)) == 2_000_000_000


def test_a_refused_device_is_reported_with_the_setting_and_the_path(tmp_path):
    missing = tmp_path / "absent"
    fd, why = hold(0, str(missing))
    assert fd == -1
    assert "cpu_wake_latency_us = 0" in why and str(missing) in why
    assert in_force(str(missing)) is None


def test_the_bound_is_described_as_the_report_says_it():
    assert wake_latency.describe(0) == "0 us (idle CPUs poll)"
    assert wake_latency.describe(50) == "50 us"
    assert wake_latency.describe(2_000_000_000).startswith("none")
    assert wake_latency.describe(None).startswith("unknown")


@pytest.mark.skipif(not DEVICE_WRITABLE, reason=f"{wake_latency.PATH} is not writable here")
def test_the_kernel_keeps_the_bound_while_the_descriptor_is_open():
    fd, why = hold(0)
    assert fd >= 0, why
    try:
        assert in_force() == 0
    finally:
        os.close(fd)


def _holds_device(pid: int) -> bool:
    fds = f"/proc/{pid}/fd"
    for name in os.listdir(fds):
        try:
            if os.readlink(f"{fds}/{name}") == wake_latency.PATH:
                return True
        except OSError:
            pass
    return False


@pytest.mark.skipif(not DEVICE_WRITABLE, reason=f"{wake_latency.PATH} is not writable here")
@pytest.mark.parametrize("bound", [0, -1])
def test_a_hot_process_holds_the_bound_for_its_life(tmp_path, instance, bound):
    """`mm feed` (as the quoter and the sender: engine/cli.py's process start) holds the
    request while it runs, and not at all with cpu_wake_latency_us = -1."""
    from tests.integration.test_feed_process import _reap, _sigterm_stops, _wait_running_with_data
    from tests.support.feed_process import start_feed
    from tests.support.sim_thread import SimThread

    with SimThread(event_rate=100, trade_rate=10) as sim:
        _cfg, ring, ctl, feed = start_feed(tmp_path, instance, sim.md_url,
                                           engine={"cpu_wake_latency_us": bound})
        try:
            _wait_running_with_data(ctl, feed, ring)
            assert _holds_device(feed.pid) == (bound >= 0)
            _sigterm_stops(feed)
        finally:
            _reap(feed)
            ring.close()
            ctl.close()
