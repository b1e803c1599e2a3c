"""Tests and the bench keep engine state (tags, rate windows) in temporary directories, never in
the checkout's ./state (issue 20, item 9)."""
from __future__ import annotations

import os
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parents[2]


def _outside_checkout(path: str) -> bool:
    return not Path(path).resolve().is_relative_to(CHECKOUT)


def test_the_test_session_state_dir_is_temporary():
    assert _outside_checkout(os.environ["MM_STATE_DIR"])


def test_the_bench_gives_its_engines_a_temporary_state_dir(monkeypatch):
    import bench.contenders as contenders

    monkeypatch.delenv("MM_STATE_DIR")
    monkeypatch.setattr(contenders, "_STATE_DIR", [])
    env = contenders.clean_env({"MM_MD_URL": "ws://127.0.0.1:1"})
    assert _outside_checkout(env["MM_STATE_DIR"]) and Path(env["MM_STATE_DIR"]).is_dir()
    assert env["MM_MD_URL"] == "ws://127.0.0.1:1"
    os.rmdir(env["MM_STATE_DIR"])
