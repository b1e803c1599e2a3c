"""A feed process (`mm feed`) started against a market URL for a test, with the md ring and the
control segment it writes opened on the test's side (the caller stops and reaps it)."""
from __future__ import annotations

import subprocess
import sys

import msgspec

from engine.config import EngineConfig, dump_json
from engine.control import Control
from engine.records import MD_DTYPE
from engine.ring import Ring


def start_feed(tmp_path, instance: str, url: str, **feed):
    """(config, md ring, control, process) of a feed on `url`; `feed`: feed.* overrides
    (stale_after_ms defaults to 1000 here)."""
    cfg = EngineConfig(instance=instance)
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
