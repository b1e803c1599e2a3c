"""The exit-status contract of `mm run` (engine/exit_codes.py, the README's table), one test per
row, each run as a user runs it: a subprocess, its exit status and its last line.

  0  asked-for stop, every order confirmed gone
  1  the venue never reached (orders or market data: refused, HTTP status, timed out) or a
     stage failed
  2  the configuration or the venue refused us (here: a key the venue does not know)
  3  orders may be resting (here: the venue refuses every cancel)
  4  a risk limit stopped it (the drawdown limit)

Rows covered elsewhere: 1 for an unreachable order URL and 2 for a refused config
(tests/integration/test_run_honest.py), 1 for a stage killed (test_engine_run.py).
Servers bind 127.0.0.1; every run is bounded by --duration and a subprocess timeout.
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from engine.ring.segment import list_segments
from tests.support.sim_thread import SimThread

pytestmark = pytest.mark.slow


def _env(**mm):
    base = {k: v for k, v in os.environ.items()
            if not k.startswith("MM_") or k == "MM_STATE_DIR"}
    return {**base, **mm}


def _run(tmp_path: Path, instance: str, env: dict, duration: float, *extra, timeout=150):
    out = subprocess.run([sys.executable, "-m", "engine.cli", "run", "--instance", instance,
                          "--duration", str(duration), "--run-dir", str(tmp_path / "run"),
                          *extra], env=env, capture_output=True, text=True, timeout=timeout)
    lines = out.stderr.strip().splitlines()
    out.last = lines[-1] if lines else ""
    return out


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _HttpRefuser:
    """A loopback TCP server answering every request (the WebSocket upgrade too) with one
    fixed HTTP status; bounded: serves until stopped, at most 1,000 connections."""

    def __init__(self, status: int = 404):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.status = status
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        for _ in range(1000):
            if self._stop.is_set():
                return
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(2.0)
                try:
                    conn.recv(65536)
                    conn.sendall(f"HTTP/1.1 {self.status} Not Found\r\nContent-Length: 0\r\n"
                                 f"Connection: close\r\n\r\n".encode())
                except OSError:
                    pass

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(5)
        self.sock.close()


def test_0_asked_for_stop_with_every_order_gone(tmp_path, instance):
    with SimThread() as sim:
        out = _run(tmp_path, instance, _env(MM_MD_URL=sim.md_url, MM_ORDER_URL=sim.api_url), 12)
        assert sim.open_orders() == []
    assert out.returncode == 0, out.stderr[-3000:]
    assert "every order confirmed gone" in out.last and out.last.endswith(
        "nothing resting (exit 0)"), out.last
    assert list_segments(instance) == []
    # every counter of the run, the gateway's too, has a meaning (item 6 of issue 20)
    rep = subprocess.run([sys.executable, "-m", "engine.cli", "report", "--explain",
                          str(tmp_path / "run")], capture_output=True, text=True, timeout=60)
    assert rep.returncode == 0, rep.stderr
    assert "what each number means" in rep.stdout and "no meaning written down" not in rep.stdout
    assert "rate_limited=" not in rep.stdout and "unknown_intents=" not in rep.stdout


# a run whose market data never connects ends with its --duration: long enough for the
# processes to start and the feed to try (numba's cache is warm by then in the suite)
MD_NEVER_S = 6


def test_1_market_data_refused_names_the_cause(tmp_path, instance):
    md = f"ws://127.0.0.1:{_closed_port()}"
    with SimThread() as sim:
        out = _run(tmp_path, instance, _env(MM_MD_URL=md, MM_ORDER_URL=sim.api_url), MD_NEVER_S)
    assert out.returncode == 1, out.stderr[-3000:]
    assert f"result: market data never connected to {md}: connection refused (" in out.last, \
        out.last
    assert out.last.endswith("nothing resting (exit 1)"), out.last


def test_1_market_data_upgrade_refused_names_the_http_status(tmp_path, instance):
    with _HttpRefuser(404) as http, SimThread() as sim:
        md = f"ws://127.0.0.1:{http.port}"
        out = _run(tmp_path, instance, _env(MM_MD_URL=md, MM_ORDER_URL=sim.api_url), MD_NEVER_S)
    assert out.returncode == 1, out.stderr[-3000:]
    assert (f"market data never connected to {md}: the WebSocket upgrade was answered with "
            f"HTTP 404 (") in out.last, out.last


def test_1_market_data_that_never_answers_is_timed_out(tmp_path, instance):
    silent = socket.socket()                   # accepts (the backlog does), never answers
    silent.bind(("127.0.0.1", 0))
    silent.listen(64)
    cfg = tmp_path / "mm.toml"
    cfg.write_text("[feed]\nconnect_timeout_s = 1.0\n")
    try:
        md = f"ws://127.0.0.1:{silent.getsockname()[1]}"
        with SimThread() as sim:
            out = _run(tmp_path, instance, _env(MM_MD_URL=md, MM_ORDER_URL=sim.api_url), MD_NEVER_S,
                       "--config", str(cfg))
    finally:
        silent.close()
    assert out.returncode == 1, out.stderr[-3000:]
    assert f"market data never connected to {md}: timed out (" in out.last, out.last


def test_2_a_key_the_venue_does_not_know(tmp_path, instance):
    with SimThread() as sim:                        # its account: the demo key pair
        out = _run(tmp_path, instance, _env(MM_MD_URL=sim.md_url, MM_ORDER_URL=sim.api_url,
                                            MM_API_KEY="not-a-key-the-venue-knows",
                                            MM_API_SECRET="not-its-secret-either"), 30)
        assert sim.open_orders() == []
    assert out.returncode == 2, out.stderr[-3000:]
    assert f"result: {sim.api_url} refused us (venue refused us" in out.last, out.last
    assert out.last.endswith("nothing was sent (exit 2)"), out.last


def test_3_orders_may_be_resting(tmp_path, instance):
    with SimThread(chaos={"refuse_cancel": 1.0}, trade_rate=0.0, volatility_bps=0.0) as sim:
        cfg = tmp_path / "mm.toml"
        cfg.write_text("[sender]\ncancel_confirm_timeout_s = 2\n")
        out = _run(tmp_path, instance, _env(MM_MD_URL=sim.md_url, MM_ORDER_URL=sim.api_url),
                   7, "--config", str(cfg), timeout=200)
    assert out.returncode == 3, out.stderr[-3000:]
    assert "result: ORDERS MAY BE RESTING" in out.last and out.last.endswith("(exit 3)"), out.last


@pytest.mark.skipif(not hasattr(os, "sched_getaffinity"), reason="Linux only")
def test_4_the_drawdown_limit(tmp_path, instance):
    cfg = tmp_path / "mm.toml"
    cfg.write_text('[quoter]\nmax_drawdown = "0.000001"\n')
    with SimThread(trade_rate=200.0, volatility_bps=20.0) as sim:
        out = _run(tmp_path, instance, _env(MM_MD_URL=sim.md_url, MM_ORDER_URL=sim.api_url),
                   40, "--config", str(cfg))
        assert sim.open_orders() == []
    assert out.returncode == 4, out.stderr[-3000:]
    assert out.last.endswith("stopped by the drawdown limit (exit 4)"), out.last


def test_refused_runs_leave_no_folder_and_mm_report_says_so(tmp_path, instance):
    """A run refused by the venue (a symbol it does not list) or that never reached it leaves no
    runs/<instance>-<time>/ behind; mm report on such a place says plainly there is no run."""
    url = f"ws://127.0.0.1:{_closed_port()}"
    for env in (_env(MM_SYMBOL="SOLUSDT"), _env(MM_MD_URL=url, MM_ORDER_URL=url)):
        out = subprocess.run([sys.executable, "-m", "engine.cli", "run", "--instance", instance,
                              "--duration", "3"], env=env, cwd=tmp_path, capture_output=True,
                             text=True, timeout=120)
        assert out.returncode in (1, 2), out.stderr[-2000:]
        assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir()), \
            list((tmp_path / "runs").iterdir())
    rep = subprocess.run([sys.executable, "-m", "engine.cli", "report"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=60)
    assert rep.returncode == 1 and "runs/latest does not exist" in rep.stderr, rep.stderr
    (tmp_path / "empty").mkdir()
    rep = subprocess.run([sys.executable, "-m", "engine.cli", "report", "empty"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=60)
    assert rep.returncode == 1 and "empty holds no run" in rep.stderr, rep.stderr
