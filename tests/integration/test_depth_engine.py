"""Never quoted through a depth gap: `mm run` with a diff-depth stream and fair_value =
"depth_imbalance" against the simulator. A gap in BTCUSDT's diff stream while the simulator
refuses snapshots keeps BTCUSDT's L2 book unsynced: the quoter pulls BTCUSDT's quotes and sends
no new or replacing BTCUSDT order while it lasts (bookTicker keeps flowing), ETHUSDT keeps
quoting; once snapshots are served again the book resyncs and BTCUSDT quotes again. Judged from
the venue's own record of requests and from the engine's counters."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from engine.control import Control
from tests.support.sim_thread import SimThread

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

CONFIG = """duration_s = 0
metrics_port = 0
heartbeat_timeout_ms = 5000
[feed]
streams = ["bookTicker", "trade", "depth@100ms"]
[quoter.glft]
fair_value = "depth_imbalance"
depth_levels = 5
"""
PLACING = ("order.place", "order.cancelReplace")


def _wait(cond, timeout, what):
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def _ours(sim, symbol):
    return [o for o in sim.open_orders(symbol) if not o["clientOrderId"].startswith("manual")]


def test_quotes_are_pulled_for_the_gap_and_come_back_after_the_resync(instance, tmp_path):
    cfg = tmp_path / "mm.toml"
    cfg.write_text(CONFIG)
    with SimThread(event_rate=60, trade_rate=6, seed=31) as sim:
        env = {**os.environ, "MM_MD_URL": sim.md_url, "MM_ORDER_URL": sim.api_url,
               "MM_INSTANCE": instance}
        log = open(tmp_path / "run.log", "wb")
        p = subprocess.Popen([sys.executable, "-m", "engine.cli", "run", "--config", str(cfg),
                              "--run-dir", str(tmp_path / "run")], env=env, stdout=log,
                             stderr=subprocess.STDOUT)
        ctl = None
        try:
            _wait(lambda: _ours(sim, "BTCUSDT") and _ours(sim, "ETHUSDT"), 120, "quoting")
            ctl = Control.attach(instance)
            pulls0 = ctl.counter_values("quoter")["depth_pulls"]
            sim.refuse_depth_snapshots(True)
            sim.drop_depth_events(1, "BTCUSDT")
            # the gap seen and acted on (the feed's counters are copied every 100 ms), and
            # nothing of BTCUSDT resting; requests decided before the pull get 0.3 s to land
            _wait(lambda: ctl.counter_values("feed")["depth_unsynced"] >= 1
                  and ctl.counter_values("quoter")["depth_pulls"] > pulls0
                  and not _ours(sim, "BTCUSDT"), 10, "BTCUSDT's quotes pulled for the gap")
            time.sleep(0.3)
            n0 = len(sim.order_requests())
            time.sleep(1.5)                                   # the gap stays open
            during = sim.order_requests()[n0:]
            feed = ctl.counter_values("feed")
            quoter = ctl.counter_values("quoter")
            assert feed["depth_gaps"] >= 1 and feed["depth_unsynced"] >= 1
            assert feed["depth_fetch_errors"] >= 1
            assert quoter["depth_pulls"] > pulls0
            assert not [r for r in during if r[0] in PLACING and r[1].get("symbol") == "BTCUSDT"]
            assert not _ours(sim, "BTCUSDT") and _ours(sim, "ETHUSDT")   # ETH quotes on
            resyncs = feed["depth_resyncs"]
            sim.refuse_depth_snapshots(False)
            _wait(lambda: _ours(sim, "BTCUSDT"), 15, "BTCUSDT quoted again")
            feed = ctl.counter_values("feed")
            assert feed["depth_resyncs"] > resyncs and feed["depth_unsynced"] == 0
        finally:
            if ctl is not None:
                ctl.close()
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
            try:
                assert p.wait(60) == 0
            finally:
                if p.poll() is None:
                    p.kill()
                    p.wait(10)
                log.close()
        assert not _ours(sim, "BTCUSDT") and not _ours(sim, "ETHUSDT")
