"""Process set-up shared by feed, quoter and sender: pinning, real-time scheduling, gc freezing.
Set-up only: nothing here runs on the hot path."""
from __future__ import annotations

import gc
import os
import sys
import time

from engine.box.topology import format_cpu_list, isolated_cpus, online_cpus


def isolated_cores() -> set[int]:
    """CPUs the kernel isolated (isolcpus=), from /sys/devices/system/cpu/isolated."""
    return isolated_cpus()


def pin(role: str, core: int) -> list[str]:
    """Pin this process to `core` (-1: leave it). Returns warnings for the caller to log.

    An isolated core is accepted although no default affinity lists it (isolcpus keeps it out
    of them); a core that is not online is refused with the role's config field named."""
    warnings: list[str] = []
    if core < 0:
        return warnings
    online = online_cpus()
    if core not in online:
        raise ValueError(f"{role}.core: CPU {core} is not online here "
                         f"(online: {format_cpu_list(online)})")
    os.sched_setaffinity(0, {core})
    iso = isolated_cores()
    if core not in iso:
        warnings.append(f"{role}: core {core} is not isolated (isolcpus="
                        f"{format_cpu_list(iso) or 'none'}); expect scheduler noise in the tail")
    return warnings


def stay_off(cores: set[int]) -> set[int]:
    """Leave `cores` (the spinners' cores; -1, an unpinned one, changes nothing) out of this
    process's affinity when any other core is allowed; returns the affinity now. A normal task beside a spinner takes the core for a
    whole time slice (ms here) whenever it wakes, and the spinner's stage waits that long."""
    allowed = os.sched_getaffinity(0)
    rest = allowed - cores
    if rest and rest != allowed:
        os.sched_setaffinity(0, rest)
    return rest or allowed


def realtime(prio: int, idle: str) -> str | None:
    """SCHED_FIFO at `prio` for this process when it waits by parking or in epoll (a woken
    FIFO process preempts whatever normal task runs on its core); never for a spinner (the
    kernel's RT throttling would take ~50 ms of every second from it). Call before any thread
    starts: threads inherit the policy. Returns an error message instead of raising."""
    if not prio or idle == "busy-spin":
        return None
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(prio))
    except PermissionError:
        return (f"realtime_priority = {prio}: SCHED_FIFO refused (needs CAP_SYS_NICE or an "
                f"rtprio limit; systemd: LimitRTPRIO=): running at normal priority")
    return None


def lock_memory() -> str | None:
    """mlockall(MCL_CURRENT|MCL_FUTURE); returns an error message instead of raising."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.mlockall(1 | 2) != 0:
        return ("mlockall refused: needs CAP_IPC_LOCK or a memlock limit "
                "(systemd: LimitMEMLOCK=infinity)")
    return None


def freeze_gc() -> None:
    """After warm-up: move every live object to the permanent generation and stop automatic
    collection, so no GC pause lands on the hot path."""
    gc.collect()
    gc.freeze()
    gc.disable()


def log(role: str, msg: str) -> None:
    """One log line on stderr, `2025-01-31T12:00:00.123Z mm[role] msg`: set-up and shutdown
    messages of every process and the supervisor (never from the hot path). UTC with
    milliseconds, so the lines of several processes (and of journald) sort into one story."""
    now = time.time()
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now * 1000) % 1000:03d}Z"
    print(f"{stamp} mm[{role}] {msg}", file=sys.stderr, flush=True)
