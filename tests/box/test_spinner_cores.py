"""Nothing but its own stage runs on a spinner's core when another core is allowed: the
supervisor and the journal agent (a normal task, or even SCHED_IDLE, takes a whole time slice
from a spinner whenever it runs there)."""
from __future__ import annotations

import os

import msgspec
import pytest

from engine import config as config_mod
from engine import proc
from engine.box.core_layout import Layout

TWO = len(os.sched_getaffinity(0)) >= 2
needs_two = pytest.mark.skipif(not TWO, reason="needs two allowed cores")


def _layout(feed=(0, "epoll"), quoter=(0, "park"), sender=(1, "busy-spin")):
    cfg = config_mod.load(env={})
    rep = msgspec.structs.replace
    return rep(cfg, feed=rep(cfg.feed, core=feed[0], idle=feed[1]),
               quoter=rep(cfg.quoter, core=quoter[0], idle=quoter[1]),
               sender=rep(cfg.sender, core=sender[0], idle=sender[1]))


def _in_child(fn) -> tuple:
    """fn() in a forked child (the test process keeps its affinity and policy)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.write(w, msgspec.json.encode(fn()))
        finally:
            os._exit(0)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        out = f.read()
    os.waitpid(pid, 0)
    return msgspec.json.decode(out)


def _spinning(cfg) -> set[int]:
    return {c for c in Layout.of_config(cfg).spinning_cores().values() if c >= 0}


def test_the_spinning_stages_cores_come_from_the_layout():
    assert _spinning(_layout()) == {1}
    assert _spinning(_layout(sender=(1, "park"))) == set()
    assert _spinning(_layout(sender=(-1, "busy-spin"))) == set()   # unpinned
    assert _spinning(_layout(feed=(2, "busy-spin"), quoter=(3, "busy-spin"))) == {1, 2, 3}


@needs_two
def test_a_process_leaves_the_spinners_core_when_another_is_allowed():
    cores = sorted(os.sched_getaffinity(0))[:2]

    def leave_one():
        os.sched_setaffinity(0, set(cores))
        return [sorted(proc.stay_off({cores[1]})), sorted(os.sched_getaffinity(0))]

    def leave_all():
        os.sched_setaffinity(0, set(cores))
        return [sorted(proc.stay_off(set(cores))), sorted(os.sched_getaffinity(0))]

    assert _in_child(leave_one) == [[cores[0]], [cores[0]]]
    assert _in_child(leave_all) == [cores, cores]        # nowhere else to go: it stays


@needs_two
def test_the_journal_agent_shares_a_parked_stages_core_not_the_spinners():
    from engine.journal.placement import pin_off_trading_cores

    a, b = sorted(os.sched_getaffinity(0))[:2]
    cfg = _layout(feed=(a, "epoll"), quoter=(a, "park"), sender=(b, "busy-spin"))

    def place():
        os.sched_setaffinity(0, {a, b})
        notes = pin_off_trading_cores(cfg)
        return [notes, sorted(os.sched_getaffinity(0)), os.sched_getscheduler(0)]

    notes, affinity, policy = _in_child(place)
    assert affinity == [a]
    assert any(f"not the spinning stages' [{b}]" in n for n in notes)
    assert policy in (os.SCHED_IDLE, os.SCHED_OTHER)     # SCHED_IDLE unless a sandbox refused
    # every stage parked: it may run anywhere (SCHED_IDLE keeps it out of their way)
    parked = _layout(feed=(a, "epoll"), quoter=(a, "park"), sender=(b, "park"))

    def place_parked():
        os.sched_setaffinity(0, {a, b})
        pin_off_trading_cores(parked)
        return sorted(os.sched_getaffinity(0))

    assert _in_child(place_parked) == [a, b]
