"""The three processes' lives, each a real process run the way systemd runs it (`run(cfg)`),
watched through the control segment: the idle word is the strategy the process runs, and the
final state follows the exit status through the runner's one map (engine/agent.py), where the
copies once drifted (a killed sender was "failed", a quoter that raised was "stopped")."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import msgspec
import pytest

from engine.config import EngineConfig
from engine.control import KILL_OPERATOR, Control
from engine.exit_codes import EXIT_ERROR, EXIT_KILLED, EXIT_OK
from engine.ring.idle import IDLE_WORDS
from engine.ring.table import MD

_CHILD = ("import os, sys, msgspec\n"
          "from engine.config import EngineConfig\n"
          "from engine.{role}.process import run\n"
          "cfg = msgspec.json.decode(os.environ['MM_TEST_CFG'].encode(), type=EngineConfig)\n"
          "sys.exit(run(cfg))\n")


def _start(role: str, cfg: EngineConfig, **env) -> subprocess.Popen:
    env = {**os.environ, **env, "MM_TEST_CFG": msgspec.json.encode(cfg).decode()}
    return subprocess.Popen([sys.executable, "-c", _CHILD.format(role=role)], env=env,
                            stderr=subprocess.PIPE, text=True)


def _wait_registered(ctl: Control, role: str, proc: subprocess.Popen, state="starting",
                     timeout_s: float = 60) -> dict:
    deadline = time.monotonic() + timeout_s
    while True:
        info = ctl.role_info(role)
        if info["pid"] == proc.pid and info["state"] in (state, "running"):
            return info
        if proc.poll() is not None:
            raise AssertionError(f"{role} exited {proc.returncode}: {proc.stderr.read()}")
        assert time.monotonic() < deadline, f"{role} did not register"
        time.sleep(0.01)


def _closed_port_url(path: str) -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"ws://127.0.0.1:{s.getsockname()[1]}{path}"


@pytest.fixture
def ctl(instance):
    c = Control.open(instance)
    yield c
    c.close()


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.wait()


def test_feed_says_it_waits_in_epoll_and_a_sigterm_stops_it(instance, ctl):
    """No venue answers: the feed keeps trying, registered, until SIGTERM stops it cleanly."""
    cfg = EngineConfig(instance=instance, feed={"url": _closed_port_url("/stream")})
    feed = _start("feed", cfg)
    try:
        assert _wait_registered(ctl, "feed", feed)["idle"] == IDLE_WORDS["epoll"]
        feed.send_signal(signal.SIGTERM)
        assert feed.wait(timeout=20) == EXIT_OK
    finally:
        _stop(feed)
    assert ctl.role_info("feed")["state"] == "stopped"


def test_a_killed_sender_is_stopped_not_failed_and_says_it_parks(instance, ctl):
    """Dry run (nothing is sent, no venue needed): the latched kill switch ends it with
    EXIT_KILLED, an orderly stop."""
    cfg = EngineConfig(instance=instance, tag="mm",
                       sender={"url": _closed_port_url("/ws-api/v3"), "dry_run": True})
    sender = _start("sender", cfg)
    try:
        assert _wait_registered(ctl, "sender", sender, "running")["idle"] == IDLE_WORDS["park"]
        ctl.kill(KILL_OPERATOR)
        assert sender.wait(timeout=20) == EXIT_KILLED
    finally:
        _stop(sender)
    assert ctl.role_info("sender")["state"] == "stopped"


def test_a_quoter_that_raises_is_failed(instance, ctl, tmp_path):
    """Its state directory cannot be made (a file stands where a folder should): exit 1, FAILED,
    and the rings it had opened are let go."""
    (tmp_path / "file").write_text("")
    cfg = EngineConfig(instance=instance, quoter={"idle": "park"})
    quoter = _start("quoter", cfg, MM_STATE_DIR=str(tmp_path / "file" / "state"))
    try:
        assert quoter.wait(timeout=60) == EXIT_ERROR
        err = quoter.stderr.read()
    finally:
        _stop(quoter)
    info = ctl.role_info("quoter")
    assert info["state"] == "failed" and info["idle"] == IDLE_WORDS["park"]
    assert "mm[quoter] failed: NotADirectoryError" in err, err
    md = MD.attach(instance)
    try:
        assert md.consumer_pid() == 0
    finally:
        md.close()
