"""A feed process (`mm feed`) for a test: started against a market URL with the md ring and the
control segment it writes opened on the test's side, read until a condition, stopped and
reaped."""
from __future__ import annotations

import subprocess
import sys
import time

import msgspec
import numpy as np
import pytest

from engine.config import EngineConfig, dump_json
from engine.control import Control
from engine.records import MD_DTYPE
from engine.ring import Ring


def start_feed(tmp_path, instance: str, url: str, engine: dict | None = None, **feed):
    """(config, md ring, control, process) of a feed on `url`; `feed`: feed.* overrides
    (stale_after_ms defaults to 1000 here), `engine`: top-level ones."""
    cfg = EngineConfig(instance=instance, **(engine or {}))
    cfg = msgspec.structs.replace(cfg, feed=msgspec.structs.replace(
        cfg.feed, url=url, **{"stale_after_ms": 1000, **feed}))
    path = tmp_path / "cfg.json"
    path.write_bytes(dump_json(cfg))
    ring = Ring.open(instance, "md", MD_DTYPE, cfg.rings.md.capacity, cfg.rings.md.policy,
                     role="consumer")
    ctl = Control.open(instance)
    proc = subprocess.Popen([sys.executable, "-m", "engine.cli", "feed", "--config", str(path)],
                            stderr=subprocess.PIPE, text=True)
    return cfg, ring, ctl, proc


def stop_feed(proc: subprocess.Popen, *segments) -> None:
    """SIGTERM the feed (SIGKILL if it has not gone in 15 s), then close `segments` (rings,
    boards, control; None skipped)."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    for s in segments:
        if s is not None:
            s.close()


def read_until(ring, proc: subprocess.Popen, done, timeout_s: float, got: list | None = None):
    """The md records read from `ring` (kept in `got`, also across calls) until done(records)
    holds; fails the test after timeout_s or when the feed exits first."""
    got = [] if got is None else got
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"feed exited early: {proc.stderr.read()}"
        got.append(ring.pop_many().copy())
        recs = np.concatenate(got)
        if done(recs):
            return recs
        time.sleep(0.005)
    pytest.fail(f"not seen within {timeout_s} s")
