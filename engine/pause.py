"""`mm kill`, `mm resume`, `mm stop`: what an operator does to a running instance.

kill   a pause: the quoter pulls every quote and stops quoting, the sender cancels every order
       and confirms none is left; every process stays up with its connections, book and
       order truth. Waits (bounded) for the sender's confirmation and says what is true.
resume the pause cleared (and a latched kill reason: drawdown, venue refusal): the sender
       reconciles with the venue and then lets the quoter quote again.
stop   the full stop, as SIGTERM: to `mm run`'s supervisor when one runs, else the kill switch
       (processes under systemd cancel, confirm and exit 0, which systemd does not restart).
Exit statuses: 0 done; 1 the instance is not running, or the wait ran out (the line says what
is known).
"""
from __future__ import annotations

import os
import signal
import sys
import time

from engine.control import (KILL_REASONS, KILL_SHUTDOWN, PAUSE_REASONS, ROLES, Control)
from engine.ring.segment import SegmentError, pid_alive

PAUSED_CONFIRMED = 2        # the sender's `paused` counter (engine/sender/process.py)


def _attach(instance: str, cmd: str) -> Control | None:
    try:
        return Control.attach(instance)
    except SegmentError as e:
        print(f"mm {cmd}: instance {instance!r} is not running ({e})", file=sys.stderr)
        return None


def kill(instance: str, wait_s: float = 15.0) -> int:
    """Pause the instance; 0 once the sender confirmed every order gone (or no sender runs)."""
    ctl = _attach(instance, "kill")
    if ctl is None:
        return 1
    try:
        if not ctl.pause():
            print(f"already paused ({PAUSE_REASONS.get(ctl.paused(), ctl.paused())}); "
                  f"mm resume quotes again, mm stop stops")
        if not pid_alive(ctl.pid("sender")):
            print("paused: no sender is running (nothing can be sent); mm resume quotes again")
            return 0
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            if ctl.counter_values("sender").get("paused") == PAUSED_CONFIRMED:
                print("paused: every order confirmed gone, quoting stopped; processes stay up "
                      "(mm resume quotes again after a reconcile, mm stop stops)")
                return 0
            if not pid_alive(ctl.pid("sender")):
                break
            time.sleep(0.05)
        print(f"paused, but the sender has not confirmed every order gone within {wait_s:g} s "
              f"(mm status shows it; check the venue)", file=sys.stderr)
        return 1
    finally:
        ctl.close()


def resume(instance: str) -> int:
    """Clear the pause and any latched kill reason."""
    from engine.proc import log

    ctl = _attach(instance, "resume")
    if ctl is None:
        return 1
    try:
        paused = ctl.unpause()
        killed = ctl.resume()
    finally:
        ctl.close()
    if not paused and not killed:
        print("not paused: nothing to resume")
        return 0
    if paused:
        print("resumed: the sender reconciles with the venue, then the quoter quotes again")
    if killed:
        log("resume", f"instance {instance}: kill switch cleared (it was: "
                      f"{KILL_REASONS.get(killed, killed)}); restart the stopped processes")
        print(f"kill switch cleared (was: {KILL_REASONS.get(killed, killed)}); the stopped "
              f"processes trade again once restarted")
    return 0


def stop(instance: str, wait_s: float = 60.0) -> int:
    """The full stop; waits (bounded) until every process of the instance has ended."""
    ctl = _attach(instance, "stop")
    if ctl is None:
        return 1
    try:
        supervisor = ctl.pid("supervisor")
        if supervisor and pid_alive(supervisor) and supervisor != os.getpid():
            os.kill(supervisor, signal.SIGTERM)       # mm run: its orderly path
            how = f"SIGTERM to mm run (pid {supervisor})"
        else:
            ctl.kill(KILL_SHUTDOWN)
            how = "kill switch (shutdown)"
        pids = [ctl.pid(r) for r in ROLES]
    finally:
        ctl.close()
    print(f"stopping: {how}; every order is canceled and confirmed before the processes end")
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        if not any(p and _running(p) for p in pids):
            print("stopped")
            return 0
        time.sleep(0.1)
    print(f"still running after {wait_s:g} s (mm status shows which process)", file=sys.stderr)
    return 1


def _running(pid: int) -> bool:
    """Alive and not a zombie (an ended `mm run` whose parent has not reaped it yet)."""
    if not pid_alive(pid):
        return False
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False
