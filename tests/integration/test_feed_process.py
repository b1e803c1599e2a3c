"""The feed process (`mm feed`, engine.feed.process.run) against the simulator: it registers, beats,
keeps its counters, publishes into the md ring, and stops cleanly (exit 0) on the kill switch or
SIGTERM. Also: an empty feed.url is refused with a clear message."""
from __future__ import annotations

import signal
import time

import numpy as np
import pytest

from engine.exit_codes import EXIT_KILLED

from engine.config import EngineConfig
from engine.control import KILL_OPERATOR, Control
from engine.feed.process import COUNTERS, run
from engine.latency.histogram import HistogramSet
from engine.records import MD_BBO
from engine.ring import Ring
from tests.support.feed_process import start_feed
from tests.support.sim_thread import SimThread

START_TIMEOUT_S = 60


def _wait_running_with_data(ctl: Control, feed, ring: Ring) -> np.ndarray:
    deadline = time.monotonic() + START_TIMEOUT_S
    got = []
    while time.monotonic() < deadline:
        assert feed.poll() is None, f"feed exited early: {feed.stderr.read()}"
        recs = ring.pop_many()
        got.append(recs.copy())
        if ctl.role_info("feed")["state"] == "running" and sum(len(g) for g in got) > 50:
            return np.concatenate(got)
        time.sleep(0.02)
    pytest.fail("feed did not reach running with data in time")


def _sigterm_stops(feed) -> None:
    feed.send_signal(signal.SIGTERM)
    assert feed.wait(timeout=15) == 0


def _reap(feed) -> None:
    if feed.poll() is None:
        feed.kill()
        feed.wait()


@pytest.mark.parametrize("how", ["kill_switch", "sigterm"])
def test_feed_process_runs_and_stops_cleanly(tmp_path, instance, how):
    with SimThread(event_rate=300, trade_rate=30) as sim:
        cfg, ring, ctl, feed = start_feed(tmp_path, instance, sim.md_url)
        try:
            recs = _wait_running_with_data(ctl, feed, ring)
            info = ctl.role_info("feed")
            assert info["pid"] == feed.pid and info["heartbeat_age_ns"] < 1_000_000_000
            time.sleep(0.3)        # two timer ticks: counters are current
            counters = ctl.counter_values("feed")
            assert list(counters) == list(COUNTERS)
            assert counters["records"] >= len(recs) > 0 and counters["frames"] > 0
            assert counters["data"] > 0 and counters["malformed"] == 0
            if how == "kill_switch":     # latched: it stays down until `mm resume`
                ctl.kill(KILL_OPERATOR)
                assert feed.wait(timeout=15) == EXIT_KILLED
            else:
                _sigterm_stops(feed)
        finally:
            _reap(feed)
    stderr = feed.stderr.read()
    assert "receiving from" in stderr
    assert ctl.role_info("feed")["state"] == "stopped"
    assert np.any(recs["kind"] & MD_BBO)
    a = recs["ts_arrival"]
    assert np.all((a > 0) & (a <= recs["ts_decoded"]) & (recs["ts_decoded"] <= recs["ts_published"]))
    hs = HistogramSet.attach(instance, "feed")
    try:
        end = ctl.counter_values("feed")
        # Every data record has its hops recorded; stale/fresh marks (one per instrument) not.
        marks = (end["stale_marks"] + end["fresh_marks"]) * len(cfg.instruments)
        assert hs.snapshot("arrival_to_published").count == end["records"] - marks > 0
    finally:
        hs.close()
        ring.close()
        ctl.close()


def test_a_busy_spin_feed_polls_its_sockets_without_sleeping(tmp_path, instance):
    """feed.idle = busy-spin: it says so in its idle word, takes its core while frames are
    sparse (it never sleeps in epoll), publishes every frame, and a SIGTERM still stops it."""
    import psutil

    from engine.ring.idle import IDLE_WORDS

    with SimThread(event_rate=50, trade_rate=5) as sim:
        cfg, ring, ctl, feed = start_feed(tmp_path, instance, sim.md_url, idle="busy-spin")
        try:
            _wait_running_with_data(ctl, feed, ring)
            assert ctl.role_info("feed")["idle"] == IDLE_WORDS["busy-spin"]
            p = psutil.Process(feed.pid)
            t0, c0 = time.monotonic(), sum(p.cpu_times()[:2])
            time.sleep(1.0)
            busy = (sum(p.cpu_times()[:2]) - c0) / (time.monotonic() - t0)
            assert busy > 0.5, f"a spinning feed used {busy:.0%} of a core at 50 events/s"
            assert ctl.counter_values("feed")["records"] > 0
            _sigterm_stops(feed)
        finally:
            _reap(feed)
            ring.close()
            ctl.close()


def test_empty_url_is_refused_clearly(instance, capfd):
    cfg = EngineConfig(instance=instance)
    assert run(cfg) == 2
    assert "feed.url is empty: set MM_MD_URL or run `mm run`" in capfd.readouterr().err
