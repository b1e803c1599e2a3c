"""Order truth under the races a live venue produces, judged from the venue's own book.

The whole engine (`mm run`, three processes) trades the simulator while its seeded chaos mode
refuses cancels, answers "unknown order" for orders that rest, carries out requests whose
answers it then drops, fills orders while a replace is on the wire, delivers reports late and
twice, fills orders partly, drops the order connection, lets it go silent without closing
(frames read and dropped, no answers, reports or pongs), carries out order.place requests 1-3 s
after leaving them unanswered, and hides new resting orders from order.status for 1-3 s.
Over at least 100,000 book events:
  - a sampler compares the venue's open orders with the quoter's published belief (its slot
    table) every 100 ms: no order may rest unmanaged for a second;
  - after every quiet period (market paused) the engine's belief converges to the venue's book:
    the same resting orders, each held by exactly one slot as live (no order id in two slots),
    the same base position per instrument
    and the same quote-currency balance (every fill counted exactly once, at its price);
  - at the end SIGTERM leaves nothing resting and exits 0.
  - every silent connection is replaced within 5 s and reconciled within 5 s after that, and
    quoting resumes (an order request on the new connection).
The closing figures (races by kind, divergences found and repaired, longest unmanaged time,
convergence times, detection / replacement / reconcile / resume times of every silent
connection) are printed for the issue's closing note (`pytest -s`).
"""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from decimal import Decimal

import numpy as np
import pytest

from engine.control import Control
from engine.quoter.arrays import Q_NONE
from engine.quoter.belief import Belief
from tests.support.sim_thread import SimThread

pytestmark = [pytest.mark.slow, pytest.mark.timeout(420)]

# MM_SOAK_CHAOS='{"silent_api": 0.0003}' and MM_SOAK_EVENTS=50000 run one mix by hand (figures
# for one kind alone); the default mix is every kind at once
CHAOS = {"fill_during_replace": 0.03, "refuse_cancel": 0.03, "phantom_unknown": 0.03,
         "lost_answer": 0.01, "late_report": 0.03, "duplicate_report": 0.03,
         "partial_fill": 0.002, "drop_api": 0.00002, "silent_api": 0.00005,
         "late_execution": 0.01, "status_lag": 0.02}
CHAOS = json.loads(os.environ.get("MM_SOAK_CHAOS", "null")) or CHAOS
EVENTS = int(os.environ.get("MM_SOAK_EVENTS", 100_000))
EVENT_RATE = 1250                 # per symbol: 2,500 book events per second in all
PHASE_S = 4.0
TAG = "chaos"
START_USDT = Decimal("1000000")
CONFIG = f"""
duration_s = 0
tag = "{TAG}"
metrics_port = 0
heartbeat_timeout_ms = 8000
[feed]
stale_after_ms = 60000
[quoter]
levels = 1
requote_ticks = 60
order_size = "0.001"
order_size_by_symbol = {{ETHUSDT = "0.01"}}
max_position = "0.02"
max_position_by_symbol = {{ETHUSDT = "0.2"}}
max_notional = "100000"
max_drawdown = "0"
max_quote_age_ms = 0
stale_after_ms = 60000
rate_per_10s = 100000
rate_per_day = 10000000
retry_backoff_ms = 20
[sender]
heartbeat_timeout_ms = 8000
order_timeout_ms = 400
not_found_confirm_ms = 300
recv_window_ms = 2000
backend_timeout_ms = 3000
reconcile_interval_s = 1.0
quiet_ms = 150
max_intent_age_ms = 1000
"""


def _units(text: str, exp: int) -> int:
    return int(Decimal(text).scaleb(-exp))


class Sampler(threading.Thread):
    """Every 100 ms: which of our orders rest at the venue without a slot holding them."""

    def __init__(self, sim: SimThread, belief: Belief):
        super().__init__(daemon=True)
        self.sim, self.belief = sim, belief
        self.stop = threading.Event()
        self.since: dict[int, float] = {}
        self.longest = 0.0
        self.samples = 0

    def run(self) -> None:
        prefix = TAG + "-"
        while not self.stop.wait(0.1):
            try:
                venue = {int(o["clientOrderId"].rsplit("-", 1)[1])
                         for o in self.sim.open_orders() if o["clientOrderId"].startswith(prefix)}
            except Exception:
                continue
            held = self.belief.orders()       # read after the venue: a new order is held first
            now = time.monotonic()
            for n in venue - set(held):
                self.since.setdefault(n, now)
            for n in list(self.since):
                if n not in venue or n in held:
                    self.longest = max(self.longest, now - self.since.pop(n))
            self.samples += 1

    def finish(self) -> float:
        self.stop.set()
        self.join(5)
        now = time.monotonic()
        return max([self.longest] + [now - t for t in self.since.values()])


def _belief_vs_book(sim: SimThread, belief: Belief, instruments) -> list[str]:
    """What differs between the engine's belief and the venue's book (empty: they agree)."""
    prefix = TAG + "-"
    venue = {int(o["clientOrderId"].rsplit("-", 1)[1]): o for o in sim.open_orders()
             if o["clientOrderId"].startswith(prefix)}
    held = belief.orders()
    q = belief.quotes
    slots = np.concatenate((q["order_id"][q["state"] != Q_NONE], q["prev_id"][q["prev_id"] != 0]))
    ids, times = np.unique(slots, return_counts=True)
    bad = [f"order {n} held by {c} slots" for n, c in zip(ids.tolist(), times.tolist()) if c > 1]
    if set(venue) != set(held):
        bad.append(f"orders: venue-only {sorted(set(venue) - set(held))[:5]}, "
                   f"belief-only {sorted(set(held) - set(venue))[:5]}")
    bad += [f"order {n} is {v[3]}/{v[6]} in the belief" for n, v in held.items()
            if (v[3], v[6]) != ("live", "current")]
    bal = sim.balances()
    cash = Decimal(0)
    for i, inst in enumerate(instruments):
        b = bal[inst["base"]]
        venue_pos = _units(b["free"], inst["qexp"]) + _units(b["locked"], inst["qexp"])
        pos = int(belief.inst[i]["inventory"])
        if pos != venue_pos:
            bad.append(f"{inst['symbol']} position: belief {pos}, venue {venue_pos}")
        cash += Decimal(int(belief.inst[i]["cash"])).scaleb(inst["pexp"] + inst["qexp"])
    usdt = Decimal(bal["USDT"]["free"]) + Decimal(bal["USDT"]["locked"])
    if START_USDT + cash != usdt:
        bad.append(f"USDT: belief {START_USDT + cash}, venue {usdt}")
    return bad


_REPLACED = re.compile(rb"order connection replaced in (\d+) ms and reconciled in (\d+) ms")


def _silent_figures(sim: SimThread, log: bytes) -> dict:
    """Every silent_api injection: seconds until a new order connection opened (found and
    replaced: the simulator's clock on both ends), and seconds from there to the first order
    request (quoting resumed; this includes any quiet period the soak paused the market for);
    the sender's own figures for the replacements it logged (a silence that struck while the
    sender was already reconnecting is handled by the reconnect loop and not logged there):
    replacing (connect + logon) and reconciling until RESUME, in ms."""
    opened = sim.api_connected_at()
    requests = [t for m, _f, _c, t in sim.order_requests()
                if m in ("order.place", "order.cancelReplace")]
    found, resumed = [], []
    for t in sim.silenced_at():
        new = next((o for o in opened if o > t), None)
        first = next((r for r in requests if new is not None and r > new), None)
        found.append(None if new is None else round((new - t) / 1e9, 2))
        resumed.append(None if first is None else round((first - new) / 1e9, 2))
    told = [(int(a), int(b)) for a, b in _REPLACED.findall(log)]
    return {"injected": len(found), "found_and_replaced_s": found,
            "first_order_after_s": resumed,
            "sender_replace_ms": [a for a, _ in told], "sender_reconcile_ms": [b for _, b in told]}


def test_belief_equals_the_venue_book_through_chaos(instance, tmp_path):
    cfg = tmp_path / "mm.toml"
    cfg.write_text(CONFIG)
    instruments = [{"symbol": "BTCUSDT", "base": "BTC", "pexp": -2, "qexp": -5},
                   {"symbol": "ETHUSDT", "base": "ETH", "pexp": -2, "qexp": -4}]
    with SimThread(event_rate=EVENT_RATE, trade_rate=60, seed=11, chaos=CHAOS, chaos_seed=5,
                   orders_per_10s=1_000_000, weight_per_minute=10_000_000) as sim:
        env = {**os.environ, "MM_MD_URL": sim.md_url, "MM_ORDER_URL": sim.api_url,
               "MM_INSTANCE": instance, "MM_STATE_DIR": str(tmp_path / "state")}
        log_path = tmp_path / "engine.log"
        with open(log_path, "wb") as log:
            p = subprocess.Popen([sys.executable, "-m", "engine.cli", "run", "--config", str(cfg),
                                  "--run-dir", str(tmp_path / "run")], env=env, stdout=log,
                                 stderr=subprocess.STDOUT)
        belief = sampler = None
        try:
            deadline = time.monotonic() + 120
            while not sim.open_orders():
                assert p.poll() is None, log_path.read_text()[-3000:]
                assert time.monotonic() < deadline, "no quotes within 120 s"
                time.sleep(0.2)
            belief = Belief.attach(instance)
            sampler = Sampler(sim, belief)
            sampler.start()
            converge = []
            while sim.stats()["book_events"] < EVENTS:
                sim.resume_market()
                time.sleep(PHASE_S)
                sim.pause_market()                    # a quiet period: the engine settles
                t0 = time.monotonic()
                while True:
                    bad = _belief_vs_book(sim, belief, instruments)
                    if not bad:
                        break
                    if time.monotonic() - t0 > 20:
                        ctl = Control.attach(instance)
                        raise AssertionError(
                            f"belief != venue 20 s after the market went quiet: {bad}\n"
                            f"sender {ctl.counter_values('sender')}\n"
                            f"{log_path.read_text()[-3000:]}")
                    time.sleep(0.1)
                converge.append(time.monotonic() - t0)
                assert p.poll() is None, log_path.read_text()[-3000:]
            longest = sampler.finish()
            ctl = Control.attach(instance)
            sender, quoter = ctl.counter_values("sender"), ctl.counter_values("quoter")
            ctl.close()
            stats = sim.stats()
            silent = _silent_figures(sim, log_path.read_bytes())
            p.send_signal(signal.SIGTERM)
            assert p.wait(60) == 0, log_path.read_text()[-3000:]
            left = sim.open_orders()
        finally:
            if sampler is not None:
                sampler.stop.set()
            if belief is not None:
                belief.close()
            if p.poll() is None:
                p.kill()
                p.wait(30)
        races = {k[6:]: v for k, v in stats.items() if k.startswith("chaos_")}
        figures = {
            "book_events": stats["book_events"], "orders_received": stats["orders_received"],
            "fills": stats["fills"], "races_injected": races,
            "unknown_outcomes": sender["unknowns"], "resolved_by_asking": sender["resolved"],
            "timeouts": sender["timeouts"], "late_answers": sender["late_answers"],
            "cancels_refused": sender["cancel_refused"], "late_fills": sender["late_fills"],
            "duplicate_reports": sender["duplicates"], "reconnects": sender["reconnects"],
            "reconciles": sender["reconciles"], "divergences_found": sender["divergences"],
            "position_repairs": sender["position_repairs"],
            "strangers_canceled": sender["strangers_canceled"],
            "quoter_cancel_rejects": quoter["cancel_rejects"], "quoter_unknowns": quoter["unknowns"],
            "quiet_periods": len(converge), "converged_within_s": round(max(converge), 2),
            "longest_unmanaged_s": round(longest, 3), "sampler_samples": sampler.samples,
            "orders_resting_at_end": len(left),
            "late_executions": stats["late_executions"],
            "dead_connections_replaced": sender["dead_connections"],
            "orders_revived": sender["revived"], "silent_connections": silent}
        print("\nchaos soak figures:", json.dumps(figures, indent=1))
        assert left == []
        assert stats["book_events"] >= EVENTS
        assert longest < 1.0, f"an order rested unmanaged for {longest:.2f} s"
        for kind, n in races.items():
            assert n > 0 or kind not in CHAOS, \
                f"chaos kind {kind} never happened: the soak proved nothing about it"
        assert all(s is not None and s < 5.0 for s in silent["found_and_replaced_s"]), silent
        assert all(s is not None for s in silent["first_order_after_s"]), silent
        assert silent["sender_reconcile_ms"] and max(silent["sender_reconcile_ms"]) < 5000, silent
