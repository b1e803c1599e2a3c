"""The process runner (engine/agent.py) itself, in this process, on a real control segment and
real rings from the ring table: the final state of every exit status for both duty-cycle kinds,
the idle word, signals delivered and restored, the gc freeze undone, and everything closed even
when on_start fails half-way. The real processes: tests/concurrency/test_process_lives.py."""
from __future__ import annotations

import gc
import os
import signal
import threading

import pytest

from engine import agent
from engine.config import EngineConfig
from engine.control import KILL_HEARTBEAT, KILL_OPERATOR, STATE_NAMES, STATE_STOPPED, Control
from engine.exit_codes import EXIT_CONFIG, EXIT_ERROR, EXIT_OK, MEANING, ORDERS_CONFIRMED_GONE
from engine.ring import header as L
from engine.ring.idle import IDLE_WORDS
from engine.ring.table import FILLS, MD

KINDS = ("sync", "async")


class Probe(agent.Agent):
    """A test agent: returns `status` (or raises `fail`) from the kind of duty cycle asked for,
    and notes what it saw."""
    role = "feed"
    histograms = ("h",)
    counters = ("a", "b")

    def __init__(self, cfg, status=EXIT_OK, idle="park", fail=None, fail_start=None,
                 during=None):
        self.cfg, self.status, self.idle = cfg, status, idle
        self.fail, self.fail_start, self.during = fail, fail_start, during
        self.rings = (agent.RingEnd(MD, "producer"), agent.RingEnd(FILLS, "consumer"))
        self.stopped_by: list[str] = []
        self.closed: list[str] = []
        self.seen: dict = {}

    def on_start(self, life):
        self.life = life
        life.closing.callback(self.closed.append, "own resource")
        if self.fail_start is not None:
            raise self.fail_start

    def on_close(self):
        self.closed.append("on_close")

    def request_stop(self, reason):
        self.stopped_by.append(reason)

    def duty(self):
        life = self.life
        info = life.control.role_info(self.role)
        self.seen.update(state=info["state"], idle=info["idle"], pid=info["pid"],
                         names=life.control.counter_names(self.role),
                         handler=signal.getsignal(signal.SIGTERM))
        life.running()
        self.seen.update(gc_enabled=gc.isenabled(), frozen=gc.get_freeze_count(),
                         running=life.control.role_info(self.role)["state"])
        if self.during is not None:
            self.during(self)
        if self.fail is not None:
            raise self.fail
        return self.status


class SyncProbe(Probe):
    def run(self):
        return self.duty()


class AsyncProbe(Probe):
    async def run(self):
        import asyncio

        status = self.duty()
        while self.during is not None and not self.stopped_by:
            await asyncio.sleep(0.001)       # a signal reaches request_stop through the loop
        return status


PROBES = {"sync": SyncProbe, "async": AsyncProbe}


def _run(kind, instance, **kw):
    made = []

    def make(cfg):
        made.append(PROBES[kind](cfg, **kw))
        return made[0]
    make.role = Probe.role
    status = agent.run(make, EngineConfig(instance=instance))
    return status, made[0] if made else None


@pytest.fixture
def ctl(instance):
    c = Control.open(instance)
    yield c
    c.close()


def test_one_map_from_exit_status_to_final_state():
    """Every documented status has its state: stopped exactly when the stop was orderly."""
    assert set(agent.FINAL_STATE) == set(MEANING)
    for status in MEANING:
        stopped = agent.final_state(status) == STATE_STOPPED
        assert stopped == (status in ORDERS_CONFIRMED_GONE), status
    assert STATE_NAMES[agent.final_state(99)] == "failed"      # an unknown one is looked at


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("status", sorted(MEANING))
def test_the_exit_status_decides_the_final_state(instance, ctl, kind, status):
    got, probe = _run(kind, instance, status=status)
    assert got == status
    assert probe.seen["running"] == "running"
    assert ctl.role_info("feed")["state"] == STATE_NAMES[agent.final_state(status)]


@pytest.mark.parametrize("kind", KINDS)
def test_a_duty_cycle_that_raises_exits_1_and_is_failed(instance, ctl, kind, capfd):
    got, _ = _run(kind, instance, fail=RuntimeError("boom"))
    assert got == EXIT_ERROR
    assert ctl.role_info("feed")["state"] == "failed"
    assert "mm[feed] failed: RuntimeError: boom" in capfd.readouterr().err


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("idle", sorted(IDLE_WORDS))
def test_the_idle_word_is_the_strategy_the_agent_runs(instance, kind, idle):
    _, probe = _run(kind, instance, idle=idle)
    assert probe.seen["idle"] == IDLE_WORDS[idle]
    assert probe.seen["pid"] == os.getpid() and probe.seen["state"] == "starting"


def test_counters_are_named_and_a_previous_life_s_values_cleared(instance, ctl):
    ctl.register("feed")
    ctl.counters("feed")[:4] = 7
    ctl.deregister("feed")
    _, probe = _run("sync", instance)
    assert probe.seen["names"] == ["a", "b"]
    assert ctl.counters("feed")[:4].tolist() == [0, 0, 0, 0]


def test_a_transient_kill_is_cleared_a_latched_one_kept(instance, ctl, capfd):
    ctl.kill(KILL_HEARTBEAT)
    _run("sync", instance)
    assert ctl.killed() == 0
    assert "cleared the transient kill reason of a previous life (heartbeat lost)" in \
        capfd.readouterr().err
    ctl.kill(KILL_OPERATOR)
    _run("sync", instance)
    assert ctl.killed() == KILL_OPERATOR


def test_a_refused_configuration_registers_nothing(instance, ctl):
    def refuse(cfg):
        raise ValueError("feed.url is empty")
    refuse.role = "feed"
    assert agent.run(refuse, EngineConfig(instance=instance)) == EXIT_CONFIG
    assert ctl.pid("feed") == 0 and ctl.role_info("feed")["state"] == "absent"


def _mine(signum, frame):                   # the host program's own handler
    pass


@pytest.fixture
def host_handlers():
    old = {s: signal.signal(s, _mine) for s in agent.STOP_SIGNALS}
    yield
    for s, h in old.items():
        signal.signal(s, h)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("sig", agent.STOP_SIGNALS)
def test_a_signal_asks_the_agent_to_stop_and_the_handlers_come_back(instance, host_handlers,
                                                                   kind, sig):
    got, probe = _run(kind, instance, during=lambda p: os.kill(os.getpid(), sig))
    assert got == EXIT_OK
    assert probe.stopped_by == [signal.Signals(sig).name]
    assert probe.seen["handler"] is not _mine            # the runner's, while it ran
    assert all(signal.getsignal(s) is _mine for s in agent.STOP_SIGNALS)


def test_outside_the_main_thread_the_host_s_handlers_are_left_alone(instance, host_handlers):
    out = {}
    t = threading.Thread(target=lambda: out.update(zip(("status", "probe"),
                                                       _run("sync", instance))))
    t.start()
    t.join(30)
    assert out["status"] == EXIT_OK
    assert out["probe"].seen["handler"] is _mine
    assert all(signal.getsignal(s) is _mine for s in agent.STOP_SIGNALS)


@pytest.mark.parametrize("kind", KINDS)
def test_the_gc_freeze_is_undone(instance, kind):
    assert gc.isenabled()
    _, probe = _run(kind, instance)
    assert probe.seen["gc_enabled"] is False and probe.seen["frozen"] > 0
    assert gc.isenabled() and gc.get_freeze_count() == 0


@pytest.mark.parametrize("kind", KINDS)
def test_everything_is_closed_when_on_start_raises(instance, ctl, host_handlers, kind):
    got, probe = _run(kind, instance, fail_start=OSError("no such file"))
    assert got == EXIT_ERROR
    assert ctl.role_info("feed")["state"] == "failed"
    life = probe.life
    assert probe.closed == ["on_close", "own resource"]        # last words first
    for ring in life.rings.values():
        assert ring.seg.words is None                          # unmapped
    md, fills = MD.attach(instance), FILLS.attach(instance)
    try:                                                       # and deregistered from both
        assert md.seg.words[L.OFF_PRODUCER_PID // 8] == 0
        assert fills.seg.words[L.OFF_CONSUMER_PID // 8] == 0
    finally:
        md.close()
        fills.close()
    assert life.histograms.table is None and life.control.words is None
    assert all(signal.getsignal(s) is _mine for s in agent.STOP_SIGNALS)
    assert gc.isenabled() and gc.get_freeze_count() == 0


def test_a_role_held_by_a_live_process_is_not_taken(instance, ctl, capfd):
    """Registration refused (another live process holds the slot): exit 1, its state kept."""
    import subprocess
    import sys

    code = ("import sys, time; from engine.control import Control, STATE_RUNNING; "
            f"c = Control.open({instance!r}); c.register('feed'); "
            "c.set_state('feed', STATE_RUNNING); print('held', flush=True); time.sleep(60)")
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        got, _ = _run("sync", instance)
        assert got == EXIT_ERROR
        assert f"role feed is already running as pid {holder.pid}" in capfd.readouterr().err
        assert ctl.pid("feed") == holder.pid and ctl.role_info("feed")["state"] == "running"
    finally:
        holder.kill()
        holder.wait()
