"""Who holds an instance's shared memory, and removing it only when nobody does (`mm shm`).

An instance's segments are one unit: while any process registered in them is alive (a role pid
in the control segment, a ring's producer or consumer pid), unlinking any of them cuts that
process off from `mm kill` and `mm status` while it keeps trading. Read-only: nothing here
registers a role or writes a word.
"""
from __future__ import annotations

import os
import sys
from typing import TextIO

from engine.ring.segment import (SHM_DIR, Segment, SegmentError, instance_of, list_segments,
                                 pid_alive, unlink)
from engine.ring.table import RINGS

RING_NAMES = tuple(spec.name for spec in RINGS)


def holders(instance: str) -> dict[str, list[str]]:
    """Live processes registered in each of the instance's segments: name -> ["feed pid 12",
    "producer pid 12", ...]; segments nobody alive holds are absent."""
    from engine.control import ROLES, Control

    out: dict[str, list[str]] = {}
    names = list_segments(instance)
    role_pids: dict[str, int] = {}
    control = f"/mm.{instance}.control"
    if control in names:
        try:
            ctl = Control.attach(instance)
        except SegmentError:
            ctl = None                      # not initialised or not ours: no one registered
        if ctl is not None:
            role_pids = {r: ctl.pid(r) for r in ROLES}
            ctl.close()
        live = [f"{r} pid {p}" for r, p in role_pids.items() if pid_alive(p) and p != os.getpid()]
        if live:
            out[control] = live
    for ring in RING_NAMES:
        name = f"/mm.{instance}.{ring}"
        if name in names:
            live = [f"{side} pid {p}" for side, p in _ring_pids(name).items()
                    if pid_alive(p) and p != os.getpid()]
            if live:
                out[name] = live
    for name in names:                      # histogram segments: written by their role
        role = name.rsplit(".hist-", 1)[1] if ".hist-" in name else ""
        pid = role_pids.get(role, 0)
        if role and pid_alive(pid) and pid != os.getpid():
            out[name] = [f"{role} pid {pid}"]
    return out


def _ring_pids(name: str) -> dict[str, int]:
    from engine.ring import header as L

    try:
        seg = Segment.attach(name)
    except SegmentError:
        return {}
    try:
        if seg.size < L.HEADER_SIZE:
            return {}
        return {"producer": int(seg.words[L.OFF_PRODUCER_PID // 8]),
                "consumer": int(seg.words[L.OFF_CONSUMER_PID // 8])}
    finally:
        seg.close()


def live_processes(instance: str) -> list[str]:
    """Every live process registered anywhere in the instance, once each, by its role when the
    control segment names it ("feed pid 12"), else by its ring end ("producer pid 12")."""
    by_pid: dict[str, str] = {}
    for who in holders(instance).values():      # the control segment comes first
        for w in who:
            by_pid.setdefault(w.rsplit(" ", 1)[1], w)
    return list(by_pid.values())


def remove(instance: str | None, force: bool = False, out: TextIO = sys.stdout,
           err: TextIO = sys.stderr) -> int:
    """`mm shm rm`: unlink the segments of `instance` (None: every instance) whose processes
    are all gone; refuse a live instance (exit status 1) unless `force`, which says what
    it breaks. Returns the exit status."""
    names = list_segments(instance)
    by_instance: dict[str, list[str]] = {}
    for n in names:
        by_instance.setdefault(instance_of(n), []).append(n)
    status = 0
    for inst, segs in by_instance.items():
        held = holders(inst)
        if held and not force:
            status = 1
            print(f"mm shm rm: instance {inst!r} is running; not removed:", file=err)
            for name, who in held.items():
                print(f"  {name}: {', '.join(who)}", file=err)
            print(f"  stop it first (mm kill --instance {inst}, or stop its units); --force "
                  f"removes the segments anyway, and then mm kill and mm status will no longer "
                  f"reach instance {inst!r} while its processes keep trading", file=err)
            continue
        if held:
            who = ", ".join(live_processes(inst))
            print(f"mm shm rm: WARNING: removing the segments of running instance {inst!r} "
                  f"({who}): mm kill and mm status will no longer reach it while its processes "
                  f"keep trading; stop them by signal (SIGTERM cancels their orders)", file=err)
        for n in segs:
            if unlink(n):
                print(f"removed {n}", file=out)
    return status


def list_lines(instance: str | None) -> list[str]:
    """`mm shm ls`: name, size, mode and who holds it, one line per segment."""
    lines = []
    held_by: dict[str, list[str]] = {}
    for inst in {instance_of(n) for n in list_segments(instance)}:
        held_by.update(holders(inst))
    for n in list_segments(instance):
        try:
            st = os.stat(SHM_DIR + n)
        except FileNotFoundError:
            continue
        who = ", ".join(held_by.get(n, ())) or "-"
        lines.append(f"{n}\t{st.st_size}\t{oct(st.st_mode & 0o777)}\t{who}")
    return lines
