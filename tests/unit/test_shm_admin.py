"""`mm shm rm` refuses an instance whose registered processes are alive, says who holds what,
and with --force says what it breaks; an instance whose processes are gone is removed."""
from __future__ import annotations

import subprocess
import sys

import pytest

from engine.ring.segment import list_segments

HOLDER = """
import sys, time
from engine.control import Control
from engine.records import MD_DTYPE
from engine.ring import Ring
ctl = Control.create(sys.argv[1]); ctl.register("feed")
ring = Ring.open(sys.argv[1], "md", MD_DTYPE, 64, "drop", role="producer")
print("ready", flush=True)
time.sleep(60)
"""


@pytest.fixture
def live_instance(instance):
    """An instance whose feed (control segment) and md producer is a live process."""
    p = subprocess.Popen([sys.executable, "-c", HOLDER, instance], stdout=subprocess.PIPE,
                         text=True)
    try:
        assert p.stdout.readline().strip() == "ready"
        yield instance, p
    finally:
        p.kill()
        p.wait(10)


def _shm(*args):
    return subprocess.run([sys.executable, "-m", "engine.cli", "shm", *args],
                          capture_output=True, text=True, timeout=60)


def test_rm_refuses_a_live_instance_and_lists_the_holders(live_instance):
    instance, p = live_instance
    before = list_segments(instance)
    out = _shm("rm", "--instance", instance)
    assert out.returncode == 1
    assert f"instance {instance!r} is running" in out.stderr
    assert f"/mm.{instance}.control: feed pid {p.pid}" in out.stderr
    assert f"/mm.{instance}.md: producer pid {p.pid}" in out.stderr
    assert "--force" in out.stderr
    assert list_segments(instance) == before          # nothing removed
    ls = _shm("ls", "--instance", instance)
    assert f"feed pid {p.pid}" in ls.stdout


def test_rm_all_refuses_the_live_one_too(live_instance):
    instance, _ = live_instance
    out = _shm("rm", "--all")
    assert out.returncode == 1 and f"instance {instance!r} is running" in out.stderr
    assert list_segments(instance)


def test_force_removes_and_says_what_it_breaks(live_instance):
    instance, p = live_instance
    out = _shm("rm", "--instance", instance, "--force")
    assert out.returncode == 0
    assert "mm kill and mm status will no longer reach it while its processes keep trading" \
        in out.stderr
    assert f"feed pid {p.pid}" in out.stderr
    assert list_segments(instance) == []


def test_an_instance_whose_processes_are_gone_is_removed(instance):
    gone = subprocess.run([sys.executable, "-c", HOLDER.replace("time.sleep(60)", ""), instance],
                          capture_output=True, text=True, timeout=60)
    assert gone.stdout.strip() == "ready"               # registered, then exited
    assert len(list_segments(instance)) == 2
    out = _shm("rm", "--instance", instance)
    assert out.returncode == 0, out.stderr
    assert f"removed /mm.{instance}.control" in out.stdout
    assert list_segments(instance) == []
