"""POSIX shared-memory segments of one engine instance: create (mode 0600), attach, list, unlink.

Every segment of instance `I` is named `/mm.I.<name>`, so several engines share a box and
`mm shm ls/rm` finds exactly one instance's segments.
"""
from __future__ import annotations

import mmap
import os
import re
import time

import numpy as np
import posix_ipc

SHM_DIR = "/dev/shm"
_NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,40}$")


class SegmentError(RuntimeError):
    """A segment could not be created or attached; the message says why and what to do."""


def segment_name(instance: str, name: str) -> str:
    for what, value in (("instance", instance), ("segment", name)):
        if not _NAME_RE.match(value):
            raise SegmentError(f"{what} name {value!r} must be 1-40 of [A-Za-z0-9_-]")
    return f"/mm.{instance}.{name}"


PID_MAX = 1 << 22             # the kernel's pid_max ceiling: larger "pids" are garbage words


def pid_alive(pid: int) -> bool:
    """True when `pid` names a live process (a word read from another layout is not one)."""
    if not 0 < pid <= PID_MAX:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Segment:
    """One mapped segment. `buf` is the mmap; `addr` its base address; `words` an int64 view."""

    def __init__(self, shm_name: str, size: int, created: bool):
        self.shm_name = shm_name
        self.size = size
        self.created = created
        shm = posix_ipc.SharedMemory(shm_name)
        try:
            self.buf = mmap.mmap(shm.fd, size)
        finally:
            shm.close_fd()
        self.array = np.frombuffer(self.buf, dtype=np.uint8)
        self.addr = self.array.ctypes.data
        self.words = self.array[: size - size % 8].view(np.int64)

    @classmethod
    def create(cls, shm_name: str, size: int) -> "Segment":
        """Create a new zero-filled segment, mode 0600; SegmentError if the name exists."""
        try:
            shm = posix_ipc.SharedMemory(shm_name, posix_ipc.O_CREX, mode=0o600, size=size)
        except posix_ipc.ExistentialError:
            raise SegmentError(f"shared-memory segment {shm_name} already exists") from None
        os.fchmod(shm.fd, 0o600)  # umask may have narrowed it; never let it be wider
        shm.close_fd()
        return cls(shm_name, size, created=True)

    @classmethod
    def attach(cls, shm_name: str, wait_s: float = 0.0) -> "Segment":
        """Map an existing segment, waiting up to `wait_s` for it to appear."""
        deadline = time.monotonic() + wait_s
        while True:
            try:
                shm = posix_ipc.SharedMemory(shm_name)
                break
            except posix_ipc.ExistentialError:
                if time.monotonic() >= deadline:
                    raise SegmentError(
                        f"shared-memory segment {shm_name} does not exist "
                        f"(is the creating process running with the same instance name?)"
                    ) from None
                time.sleep(0.01)
        size = os.fstat(shm.fd).st_size
        shm.close_fd()
        return cls(shm_name, size, created=False)

    def close(self) -> None:
        """Unmap. Views handed out earlier keep the mapping alive until they are dropped."""
        self.words = self.array = None
        try:
            self.buf.close()
        except BufferError:
            pass  # a numpy view still references it; the mapping goes with the last view

    def unlink(self) -> None:
        unlink(self.shm_name)


def unlink(shm_name: str) -> bool:
    try:
        posix_ipc.unlink_shared_memory(shm_name)
        return True
    except posix_ipc.ExistentialError:
        return False


def instance_of(shm_name: str) -> str:
    """The instance a segment name belongs to: "/mm.blue.md" -> "blue"."""
    return shm_name.lstrip("/").split(".", 2)[1]


def list_segments(instance: str | None = None) -> list[str]:
    """Names (with leading '/') of the engine's segments, of one instance or of all."""
    prefix = f"mm.{instance}." if instance else "mm."
    try:
        entries = sorted(os.listdir(SHM_DIR))
    except FileNotFoundError:
        return []
    return ["/" + e for e in entries if e.startswith(prefix)]
