"""`mm run` as a user meets it: the keys users hold, a bad config refused before anything
starts, an unreachable venue bounded by --duration, instruments the venue does not list, and a
last line that says what is true."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from engine.instruments import Instrument
from engine.ring.segment import list_segments
from tests.support.sim_thread import SimThread
from tests.support.units import wait_until

pytestmark = pytest.mark.slow


def _env(**mm):
    """The environment of a user who set only the given MM_* variables (and the tests' own
    state directory: never the checkout's ./state)."""
    base = {k: v for k, v in os.environ.items()
            if not k.startswith("MM_") or k == "MM_STATE_DIR"}
    return {**base, **mm}


def _run(args, env, timeout=120):
    t0 = time.monotonic()
    out = subprocess.run([sys.executable, "-m", "engine.cli", "run", *args], env=env,
                         capture_output=True, text=True, timeout=timeout)
    out.seconds = time.monotonic() - t0
    out.last = out.stderr.strip().splitlines()[-1] if out.stderr.strip() else ""
    return out


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]




def test_hmac_keys_from_the_environment_trade_the_venue(tmp_path, instance, monkeypatch):
    """Only MM_API_KEY, MM_API_SECRET, MM_MD_URL and MM_ORDER_URL: auto picks HMAC, orders rest
    at the venue (which accepts only that key pair for signed requests), SIGTERM exits 0."""
    monkeypatch.setenv("MM_API_KEY", "user-key-not-the-demo-one")
    monkeypatch.setenv("MM_API_SECRET", "user-secret-not-the-demo-one")
    with SimThread() as sim:                       # its account: the key pair above
        env = _env(MM_API_KEY="user-key-not-the-demo-one",
                   MM_API_SECRET="user-secret-not-the-demo-one",
                   MM_MD_URL=sim.md_url, MM_ORDER_URL=sim.api_url)
        log = tmp_path / "mm.log"
        with open(log, "w") as f:
            p = subprocess.Popen([sys.executable, "-m", "engine.cli", "run", "--instance",
                                  instance, "--duration", "0", "--run-dir",
                                  str(tmp_path / "run")], env=env, stdout=f, stderr=f)
        try:
            wait_until(lambda: sim.open_orders() or p.poll() is not None, 90, "orders resting")
            assert sim.open_orders(), log.read_text()
            p.send_signal(signal.SIGTERM)
            assert p.wait(60) == 0, log.read_text()
        finally:
            if p.poll() is None:
                p.kill()
                p.wait(30)
        text = log.read_text()
        assert "auth hmac (auto: an API secret (MM_API_SECRET) and no Ed25519 key)" in text
        assert "credentials from env" in text and "user-secret" not in text
        assert sim.open_orders() == []
        last = text.strip().splitlines()[-1]
        assert "result:" in last and "nothing resting (exit 0)" in last
        assert list_segments(instance) == []


def test_unreachable_venue_ends_within_the_duration_with_the_true_message(tmp_path, instance):
    url = f"ws://127.0.0.1:{_closed_port()}"
    out = _run(["--instance", instance, "--duration", "3", "--run-dir", str(tmp_path / "r")],
               _env(MM_MD_URL=url, MM_ORDER_URL=url + "/ws-api/v3"))
    assert out.returncode == 1, out.stderr
    assert out.seconds < 3 + 5, out.stderr          # the duration, plus start-up and stop
    assert out.last.endswith(f"result: never connected to {url}/ws-api/v3: nothing was sent; "
                             f"duration 3 s elapsed (exit 1)"), out.stderr
    assert "(attempt 1)" in out.stderr              # one line per back-off step, counted
    assert list_segments(instance) == []


def test_unknown_symbol_is_refused_before_anything_trades(tmp_path, instance):
    out = _run(["--instance", instance, "--duration", "30", "--run-dir", str(tmp_path / "r")],
               _env(MM_SYMBOL="SOLUSDT"))
    assert out.returncode == 2, out.stderr
    assert "SOLUSDT is not listed by the venue" in out.stderr
    assert "mm[sender]" not in out.stderr and "mm[quoter]" not in out.stderr
    assert out.last.endswith("result: the venue refused the configuration: nothing was sent "
                             "(exit 2)")
    assert out.seconds < 20
    assert list_segments(instance) == []


def test_config_that_disagrees_with_the_venues_filters_is_refused(tmp_path, instance):
    coarse = Instrument(symbol="BTCUSDT", base="BTC", quote="USDT", tick_size="0.10",
                        lot_size="0.00001", min_notional="5")
    cfg = tmp_path / "mm.toml"
    cfg.write_text("[[instruments]]\nsymbol = 'BTCUSDT'\ntick_size = '0.01'\n")
    with SimThread(instruments=(coarse,)) as sim:
        out = _run(["--config", str(cfg), "--instance", instance, "--run-dir",
                    str(tmp_path / "r")], _env(MM_MD_URL=sim.md_url, MM_ORDER_URL=sim.api_url))
    assert out.returncode == 2, out.stderr
    assert "instruments[0].tick_size: config 0.01, venue BTCUSDT tickSize 0.1" in out.stderr
    assert "mm[sender]" not in out.stderr
    assert list_segments(instance) == []


@pytest.mark.parametrize("args, toml, message", [
    (["--instance", "a/b"], "", "instance: expected 1-40 of"),
    ([], "[quoter]\ncore = 4096\n", "quoter.core: CPU 4096 is not online here"),
    ([], "[sender]\nurl = 'ws://127.0.0.1:9/ws-api/v3'\n", "set both MM_MD_URL and MM_ORDER_URL"),
])
def test_a_bad_config_is_refused_before_anything_is_created(tmp_path, instance, args, toml,
                                                            message):
    cfg = tmp_path / "mm.toml"
    cfg.write_text(toml)
    run_dir = tmp_path / "run"
    out = _run(["--config", str(cfg), "--instance", instance, *args, "--run-dir",
                str(run_dir)], _env())
    assert out.returncode == 2 and message in out.stderr, out.stderr
    assert not run_dir.exists() and list_segments(instance) == []
    assert "embedded simulator: market" not in out.stderr    # the simulator never started


def test_help_lists_the_environment_and_version_is_known():
    out = subprocess.run([sys.executable, "-m", "engine.cli", "run", "--help"],
                         capture_output=True, text=True, timeout=60)
    for var in ("MM_API_KEY", "MM_API_SECRET", "MM_ED25519_KEY_FILE", "MM_AUTH", "MM_MD_URL",
                "MM_ORDER_URL", "MM_SYMBOL", "MM_INSTANCE", "MM_STATE_DIR"):
        assert sum(line.lstrip().startswith(var + " ") for line in out.stdout.splitlines()) == 1
    from importlib.metadata import version
    out = subprocess.run([sys.executable, "-m", "engine.cli", "--version"],
                         capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == f"mm {version('mm-engine')}"


def test_a_process_started_alone_asks_the_venue_too(tmp_path, instance):
    """`mm feed` under systemd: no supervisor checked the instruments, the process does."""
    with SimThread() as sim:
        cfg = tmp_path / "mm.toml"
        cfg.write_text(f"instance = '{instance}'\n")
        out = subprocess.run([sys.executable, "-m", "engine.cli", "feed", "--config", str(cfg)],
                             env=_env(MM_SYMBOL="BTCUSDT,DOGEUSDT", MM_MD_URL=sim.md_url,
                                      MM_ORDER_URL=sim.api_url),
                             capture_output=True, text=True, timeout=60)
    assert out.returncode == 2, out.stderr
    assert "mm[feed]" in out.stderr and "DOGEUSDT is not listed by the venue" in out.stderr
    assert list_segments(instance) == []


def test_the_embedded_simulator_is_a_new_venue_every_run(tmp_path, instance):
    """An earlier run's anchor (here a drawdown peak far above anything this run can mark) is
    forgotten when mm run starts the embedded simulator, a new account and market every run:
    repeated `make run`s once added up to a drawdown that stopped the next one at start."""
    from engine.instruments import DEFAULT_INSTRUMENTS
    from engine.quoter.state import (A_MAGIC, A_PEAK, A_PRINT, ANCHOR_MAGIC, anchor_print,
                                     anchor_words)
    from engine.state_dir import PersistentWords

    state = tmp_path / "state"
    words = PersistentWords(state / f"{instance}.anchor", anchor_words(len(DEFAULT_INSTRUMENTS)))
    words.array[A_MAGIC] = ANCHOR_MAGIC
    words.array[A_PRINT] = anchor_print(DEFAULT_INSTRUMENTS)
    words.array[A_PEAK] = 10 ** 15
    words.close()
    out = _run(["--instance", instance, "--duration", "4", "--run-dir", str(tmp_path / "r")],
               _env(MM_STATE_DIR=str(state)))
    assert "position references and drawdown start afresh" in out.stderr, out.stderr[-3000:]
    assert out.returncode == 0, out.stderr[-3000:]
    assert "drawdown limit" not in out.stderr
