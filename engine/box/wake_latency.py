"""Idle CPUs that answer a wake-up at once: the kernel's PM QoS CPU latency request
(/dev/cpu_dma_latency), held by each process on the tick-to-order path for its whole life.

A parked stage is woken across cores several times per tick (socket -> feed, feed -> quoter
futex, quoter -> sender doorbell). An idle CPU in a sleep state pays its exit on every one: on
the 2-core KVM dev box a cross-core pipe ping-pong (two wake-ups) takes 64 us P50 with the box's
default (the haltpoll cpuidle driver: the vCPU halts and the host must run it again), 10 us
while a process holds a 0 us request (idle CPUs poll: the woken task runs at once). This is the
request tuned's latency-performance profile holds: a 32-bit integer written to the device, in
force while the descriptor stays open, dropped by the kernel when the process exits however it
exits, so nothing is left behind and nothing needs undoing.

The cost: idle CPUs poll instead of sleeping (power; on a VM the host sees the vCPU busy). No
process's CPU time grows, and a polling idle CPU gives way to any task at once, unlike a
spinning process, so it takes no core from the venue or the other stages.
`cpu_wake_latency_us = -1` leaves the box's own setting.
"""
from __future__ import annotations

import os
import struct

PATH = "/dev/cpu_dma_latency"
_S32 = struct.Struct("i")


def hold(latency_us: int, path: str = PATH) -> tuple[int, str]:
    """Ask the kernel to keep every CPU's wake-up within `latency_us` while this process lives.
    Returns (the descriptor that holds the request: close it to drop it; -1 when not held,
    and why). A refusal costs latency only, so it is reported, not raised."""
    if latency_us < 0:
        return -1, ""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    except OSError as e:
        return -1, (f"cpu_wake_latency_us = {latency_us}: {path} refused ({e.strerror}): idle "
                    f"CPUs sleep, each cross-core wake-up pays their exit (run as root, or "
                    f"give the engine's user write access to {path})")
    try:
        os.write(fd, _S32.pack(latency_us))
    except OSError as e:
        os.close(fd)
        return -1, f"cpu_wake_latency_us = {latency_us}: writing {path} failed ({e.strerror})"
    return fd, ""


def in_force(path: str = PATH) -> int | None:
    """The wake-up latency bound the kernel keeps now (the lowest of all held requests; the
    default when none is held is 2,000,000,000 us), None when it cannot be read."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        data = os.read(fd, _S32.size)
    finally:
        os.close(fd)
    return _S32.unpack(data)[0] if len(data) == _S32.size else None


def describe(latency_us: int | None) -> str:
    """The bound in force, as the report and `mm doctor` say it."""
    if latency_us is None:
        return "unknown (the PM QoS device cannot be read)"
    if latency_us >= 1_000_000:
        return "none (idle CPUs may sleep as deep as they like)"
    return f"{latency_us} us" + (" (idle CPUs poll)" if latency_us == 0 else "")
