"""With one answer in 200 lost, the engine answers at least 90% of the book events it answers
without losses, in the same run (issue 18's target; before it, 33%: each lost answer froze a
side for the 2 s deadline plus the question).

The whole engine (`mm run`) quotes one level per side against the simulator, requoting on every
price change. Two phases of the same run, the same market: without losses, then with the
simulator dropping 1 in 200 order answers (place, cancelReplace, cancel, status; the request is
carried out). "Answered" is the venue's count: book events for which an order carrying that
update id arrived, over book events."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from tests.support.sim_thread import SimThread

# A measurement (a share of events answered), not a behaviour: out of the default suite (speed
# lives in benchmarks), run with MM_MEASURE=1. On this simulator it does not tell the engine
# before issue 18 from the one after (the reports still arrive when an answer is lost).
pytestmark = [pytest.mark.timeout(240),
              pytest.mark.skipif(not os.environ.get("MM_MEASURE"),
                                 reason="a measurement: MM_MEASURE=1 runs it")]

PHASE_S = 10.0
CONFIG = """
duration_s = 0
tag = "lost"
metrics_port = 0
heartbeat_timeout_ms = 8000
[feed]
stale_after_ms = 60000
[quoter]
levels = 1
requote_ticks = 1
order_size = "0.001"
order_size_by_symbol = {ETHUSDT = "0.01"}
max_position = "10"
max_notional = "10000000"
max_drawdown = "0"
max_quote_age_ms = 0
stale_after_ms = 60000
rate_per_10s = 100000
rate_per_day = 10000000
[sender]
heartbeat_timeout_ms = 8000
"""


def _phase(sim: SimThread) -> dict:
    s0 = sim.stats()
    time.sleep(PHASE_S)
    s1 = sim.stats()
    events = s1["book_events"] - s0["book_events"]
    answered = s1["latency_samples"] - s0["latency_samples"]
    return {"book_events": events, "answered": answered,
            "answered_share": round(answered / max(events, 1), 3),
            "answers_lost": s1["chaos_lost_answer"] - s0["chaos_lost_answer"],
            "orders": s1["orders_received"] - s0["orders_received"]}


def test_one_answer_in_200_lost_costs_under_10_percent_of_the_answers(instance, tmp_path):
    cfg = tmp_path / "mm.toml"
    cfg.write_text(CONFIG)
    with SimThread(event_rate=100, trade_rate=0, seed=21, chaos={"lost_answer": 0.0},
                   chaos_seed=3, orders_per_10s=1_000_000, weight_per_minute=10_000_000) as sim:
        env = {**os.environ, "MM_MD_URL": sim.md_url, "MM_ORDER_URL": sim.api_url,
               "MM_INSTANCE": instance, "MM_STATE_DIR": str(tmp_path / "state")}
        log_path = tmp_path / "engine.log"
        with open(log_path, "wb") as log:
            p = subprocess.Popen([sys.executable, "-m", "engine.cli", "run", "--config", str(cfg),
                                  "--run-dir", str(tmp_path / "run")], env=env, stdout=log,
                                 stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 120
            while not sim.open_orders():
                assert p.poll() is None, log_path.read_text()[-3000:]
                assert time.monotonic() < deadline, "no quotes within 120 s"
                time.sleep(0.2)
            time.sleep(2.0)                                    # warm: caches, first requotes
            clean = _phase(sim)
            sim.set_chaos(lost_answer=0.005)
            lossy = _phase(sim)
            sim.set_chaos(lost_answer=0.0)
            p.send_signal(signal.SIGTERM)
            rc = p.wait(60)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait(30)
        left = sim.open_orders()
    ratio = lossy["answered_share"] / max(clean["answered_share"], 1e-9)
    print("\nlost answers:", json.dumps({"no_losses": clean, "one_in_200_lost": lossy,
                                         "ratio": round(ratio, 3)}, indent=1))
    assert rc == 0 and left == [], log_path.read_text()[-3000:]
    assert clean["answered_share"] > 0.5, clean               # the measurement means something
    assert lossy["answers_lost"] >= 3, lossy
    assert ratio >= 0.9, f"with 1 answer in 200 lost: {ratio:.0%} of the answers without losses"
