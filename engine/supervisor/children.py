"""The processes `mm run` starts: their roles in start order, how long each may take to stop,
the environment they get, their death with the supervisor, and stopping one."""
from __future__ import annotations

import os
import signal
import subprocess

from engine import config as config_mod
from engine.proc import log as proc_log

ROLES = ("sender", "quoter", "feed")   # start order: the order gateway first, data last
STOP_WAIT_S = {"sender": 20.0, "quoter": 5.0, "feed": 5.0}
START_TIMEOUT_S = 120.0       # without --duration: how long connecting may take


def log(msg: str) -> None:
    proc_log("supervisor", msg)


def _child_env() -> dict[str, str]:
    """The environment of the processes started here: the config file they get is resolved
    (instance, URLs, symbols), so the variables that override a config are left out; the
    credentials (MM_API_KEY, ...) stay."""
    return {k: v for k, v in os.environ.items() if k not in config_mod.CONFIG_ENV}


def _die_with_parent() -> None:
    """In the child, before exec: SIGTERM when the supervisor dies, even by SIGKILL, so no
    process is left quoting without its supervisor (SIGTERM is the orderly path: the sender
    still cancels everything)."""
    import ctypes

    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _stop(p: subprocess.Popen, wait_s: float) -> int | None:
    """Wait for a process that was told to stop (kill switch); then SIGTERM, then SIGKILL."""
    for sig, wait in ((None, wait_s), (signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
        if sig is not None and p.poll() is None:
            try:
                p.send_signal(sig)
            except ProcessLookupError:
                pass
        try:
            return p.wait(wait)
        except subprocess.TimeoutExpired:
            continue
    return p.poll()


def _readline_with_timeout(p: subprocess.Popen, timeout_s: float) -> str | None:
    import selectors

    sel = selectors.DefaultSelector()
    sel.register(p.stdout, selectors.EVENT_READ)
    if not sel.select(timeout_s):
        return None
    return p.stdout.readline()


def _forward(stream) -> None:
    """Keep draining the simulator's stdout so it never blocks on a full pipe."""
    for line in stream:
        proc_log("sim", line.rstrip("\n"))
