"""A periodic CLOCK_MONOTONIC timerfd through ctypes (os.timerfd_create exists only from Python
3.13): the bench venue's pacing. The descriptor becomes readable at each period; reading it
returns how many periods passed since the last read, so a late reader learns what it missed
instead of drifting, and nothing busy-waits.

    t = Timer()
    t.set_period_ns(200_000)        # 5,000 expirations per second; 0 disarms
    epoll.register(t.fd, select.EPOLLIN)
    ... n = t.expirations()         # >= 1 when the descriptor was readable, 0 if none yet
    t.close()
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os

CLOCK_MONOTONIC = 1
TFD_NONBLOCK = os.O_NONBLOCK
TFD_CLOEXEC = os.O_CLOEXEC


class _Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


class _Itimerspec(ctypes.Structure):
    _fields_ = [("it_interval", _Timespec), ("it_value", _Timespec)]


_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
_libc.timerfd_create.argtypes = (ctypes.c_int, ctypes.c_int)
_libc.timerfd_settime.argtypes = (ctypes.c_int, ctypes.c_int, ctypes.POINTER(_Itimerspec),
                                  ctypes.c_void_p)


def _check(result: int) -> int:
    if result < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return result


class Timer:
    """One non-blocking periodic timer descriptor (Linux only)."""

    def __init__(self):
        self.fd = _check(_libc.timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC))
        self.period_ns = 0

    def set_period_ns(self, period_ns: int) -> None:
        """Fire every `period_ns` from one period from now; 0 disarms."""
        period_ns = max(int(period_ns), 0)
        s, ns = divmod(period_ns, 1_000_000_000)
        spec = _Itimerspec(_Timespec(s, ns), _Timespec(s, ns))
        _check(_libc.timerfd_settime(self.fd, 0, ctypes.byref(spec), None))
        self.period_ns = period_ns

    def expirations(self) -> int:
        """Periods elapsed since the last call (0 when none: the read would block)."""
        try:
            return int.from_bytes(os.read(self.fd, 8), "little")
        except BlockingIOError:
            return 0

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
