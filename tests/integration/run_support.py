"""Helpers shared by the tests that run the engine as a user does."""
from __future__ import annotations

import time


def wait_until(cond, timeout_s: float, what: str) -> None:
    """Poll `cond` every 0.1 s; AssertionError naming `what` after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")
