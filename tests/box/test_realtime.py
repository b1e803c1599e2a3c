"""realtime_priority: each process sets SCHED_FIFO on itself when it parks or waits in epoll
(so under systemd too, where no supervisor is there to set it), never when it spins."""
from __future__ import annotations

import os

import pytest

from engine import proc


def _fifo_allowed() -> bool:
    pid = os.fork()
    if pid == 0:                      # try in a child: the test process keeps its own policy
        try:
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(1))
        except PermissionError:
            os._exit(1)
        os._exit(0)
    return os.waitpid(pid, 0)[1] == 0


FIFO = _fifo_allowed()


def test_a_spinner_or_priority_zero_is_left_alone():
    before = os.sched_getscheduler(0)
    assert proc.realtime(0, "park") is None
    assert proc.realtime(5, "busy-spin") is None
    assert os.sched_getscheduler(0) == before


@pytest.mark.skipif(not FIFO, reason="SCHED_FIFO is not allowed here (CAP_SYS_NICE, rtprio)")
@pytest.mark.parametrize("prio", [5, 0])
def test_the_feed_started_alone_sets_its_own_policy(tmp_path, instance, prio):
    from tests.integration.test_feed_process import _reap, _sigterm_stops, _wait_running_with_data
    from tests.support.feed_process import start_feed
    from tests.support.sim_thread import SimThread

    with SimThread(event_rate=100, trade_rate=10) as sim:
        _cfg, ring, ctl, feed = start_feed(tmp_path, instance, sim.md_url,
                                           engine={"realtime_priority": prio})
        try:
            _wait_running_with_data(ctl, feed, ring)
            policy = os.sched_getscheduler(feed.pid)
            assert policy == (os.SCHED_FIFO if prio else os.SCHED_OTHER)
            if prio:
                assert os.sched_getparam(feed.pid).sched_priority == prio
            _sigterm_stops(feed)
        finally:
            _reap(feed)
            ring.close()
            ctl.close()
