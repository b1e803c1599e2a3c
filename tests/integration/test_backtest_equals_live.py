"""Same code, same decisions: for a real capture (the corpus's live Binance BTCUSDT streams),
the order requests `mm backtest` sends to its venue equal, one for one, the order requests the
live engine (`mm run`: feed, quoter, sender) sends to the simulator when the simulator replays
that capture and fills our orders by the same queue-position rules. (Requests rather than the
quoter's intents because the simulator sees requests: both sides drop the replaces and cancels
of orders that had already filled, which the sender knows of before the quoter does.)

Only what timing cannot change is compared, so timing is taken out of the quoter's inputs:
- the simulator replays in lockstep with the engine: a frame at most every GAP_MS, and only
  once the order API has been quiet for QUIET_MS (every answer, and what it caused, came
  first); the backtest reads the same frames paced BT_GAP_MS apart, longer than any chain of
  answers it models;
- the simulator answers (and reports fills) ANSWER_MS late, the backtest's response latency:
  a fill caused by a frame reaches the quoter after that frame, and after the intents the
  frame caused reached the sender (so both sides send the replace of an order that has just
  filled, and the venue refuses it), with a margin for a loaded box;
- the fixed_spread strategy (no clock in its model), one level (a fill's answer finds every
  slot busy or alone), a back-off after a refusal (BACKOFF_MS) longer than the spread of the
  answers to one frame, no quote expiry, no stale timers, no rate or position limit in reach
  (a limit reached by a fill cancels an order whose replace may be coming back refused:
  whether the sender hears that first is a race).
What remains decides everything: the book, the fills (the simulator's matching against the
backtest's compiled copy of it), the inventory skew, the order truth of acks, replaces and
refusals. Order ids are compared relative to each run's first.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from decimal import Decimal

import pytest
from tests.support.units import wait_until
from tests.support.sim_thread import SimThread

from engine.backtest import market_data, replay
from engine.backtest.report import requests_of
from engine.config import load
from engine.control import Control
from engine.feed.capture import MAGIC, RECORD
from engine.records import ACTION_CANCEL, ACTION_CANCEL_ALL, ACTION_NEW, ACTION_REPLACE, SIDE_BUY

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

CAPTURE = "binance/hftbacktest_spot_btcusdt_20240808.head.txt"
GAP_MS = 10
QUIET_MS = 30
BT_GAP_MS = 200
ANSWER_MS = 20
BACKOFF_MS = 10
TAG = "eq"
CONFIG = f"""
duration_s = 0
tag = "{TAG}"
metrics_port = 0
heartbeat_timeout_ms = 10000
[feed]
stale_after_ms = 600000
[quoter]
strategy = "fixed_spread"
levels = 1
requote_ticks = 1
retry_backoff_ms = {BACKOFF_MS}
retry_backoff_cap_ms = {BACKOFF_MS}
order_size = "0.002"
max_position = "1"
max_notional = "100000"
max_quote_age_ms = 0
stale_after_ms = 600000
max_drawdown = "0"
rate_per_10s = 100000
rate_per_day = 10000000
[quoter.fixed_spread]
half_spread_ticks = 1.5
skew_ticks = 4.0
[sender]
heartbeat_timeout_ms = 10000
max_intent_age_ms = 10000
reconcile_interval_s = 0
[backtest]
order_latency_us = 250
response_latency_us = {ANSWER_MS * 1000}
"""
ACTIONS = {ACTION_NEW: "NEW", ACTION_REPLACE: "REPLACE", ACTION_CANCEL: "CANCEL",
           ACTION_CANCEL_ALL: "CANCEL_ALL"}
METHODS = {"order.place": "NEW", "order.cancelReplace": "REPLACE", "order.cancel": "CANCEL",
           "openOrders.cancelAll": "CANCEL_ALL"}


def _paced_mmcap(text_capture, path) -> int:
    """The capture's book-ticker and trade frames as MMCAP1 (what both replay), BT_GAP_MS
    apart (its depth frames move neither the engine nor the simulator: left out to keep the
    test short); returns the frame count."""
    n = 0
    with open(path, "wb") as f:
        f.write(MAGIC)
        for ts, opcode, payload in market_data.frames(text_capture):
            if b"@bookTicker" not in payload and b"@trade" not in payload:
                continue
            f.write(RECORD.pack(10**12 + n * BT_GAP_MS * 1_000_000, len(payload), opcode))
            f.write(payload)
            n += 1
    return n


def _n(client_id: str) -> int:
    return int(client_id.rsplit("-", 1)[1])


def _live_intents(requests, instruments) -> list[tuple]:
    """The simulator's record of order requests as (action, side, price, qty, update id, n,
    replaced/canceled n), prices and quantities as decimals."""
    out = []
    for method, p, target, _ in requests:
        action = METHODS[method]
        if action == "CANCEL_ALL":
            out.append((action,))
            continue
        orig = _n(target) if target else None
        if action == "CANCEL":
            out.append((action, orig))
            continue
        _, u, n = p["newClientOrderId"].rsplit("-", 2)
        out.append((action, p["side"], Decimal(p["price"]), Decimal(p["quantity"]), int(u),
                    int(n), orig if action == "REPLACE" else None))
    return out


def _backtest_intents(intents, instruments) -> list[tuple]:
    out = []
    for it in intents:
        action = ACTIONS[int(it["action"])]
        if action == "CANCEL_ALL":
            out.append((action,))
            continue
        if action == "CANCEL":
            out.append((action, int(it["orig_order_id"])))
            continue
        inst = instruments[int(it["instrument"])]
        out.append((action, "BUY" if it["side"] == SIDE_BUY else "SELL",
                    Decimal(int(it["price"])).scaleb(inst.pexp),
                    Decimal(int(it["qty"])).scaleb(inst.qexp), int(it["update_id"]),
                    int(it["order_id"]), int(it["orig_order_id"]) if action == "REPLACE"
                    else None))
    return out


def _relative(intents: list[tuple]) -> list[tuple]:
    """Order ids counted from the run's first (each run numbers from its own start)."""
    first = next(t[5] for t in intents if t[0] == "NEW")

    def rel(x):
        return None if x is None else x - first
    out = []
    for t in intents:
        if t[0] == "CANCEL":
            out.append((t[0], rel(t[1])))
        elif t[0] in ("NEW", "REPLACE"):
            out.append((*t[:5], rel(t[5]), rel(t[6])))
        else:
            out.append(t)
    return out


def test_backtest_intents_equal_the_live_engines(instance, tmp_path, corpus):
    text = corpus / CAPTURE
    mmcap = tmp_path / "capture.mmcap"
    frames = _paced_mmcap(text, mmcap)
    cfg_path = tmp_path / "mm.toml"
    cfg_path.write_text(CONFIG)

    # -- the backtest
    cfg = load(cfg_path, env={})
    md, _ = market_data.load([mmcap], cfg)
    r = replay.prepare(cfg, md)
    replay.run(r, md)
    expected = _relative(_backtest_intents(requests_of(r), cfg.instruments))
    assert int(r.acct["fills"].sum()) >= 5, "the capture must fill some of our orders"

    # -- the live engine against the simulator replaying the same capture
    with SimThread(replay_file=str(mmcap), replay_speed=0, replay_min_gap_ms=GAP_MS,
                   replay_quiet_ms=QUIET_MS, replay_hold=True, orders_per_10s=1_000_000,
                   weight_per_minute=10_000_000) as sim:
        env = {**os.environ, "MM_MD_URL": sim.md_url, "MM_ORDER_URL": sim.api_url,
               "MM_INSTANCE": instance, "MM_STATE_DIR": str(tmp_path / "state")}
        log_path = tmp_path / "engine.log"
        with open(log_path, "wb") as log:
            p = subprocess.Popen([sys.executable, "-m", "engine.cli", "run", "--config",
                                  str(cfg_path), "--run-dir", str(tmp_path / "run")], env=env,
                                 stdout=log, stderr=subprocess.STDOUT)
        try:
            def resumed() -> bool:      # the quoter read its positions and RESUME
                assert p.poll() is None, log_path.read_text()[-3000:]
                try:
                    ctl = Control.attach(instance)
                except Exception:
                    return False
                try:
                    c = ctl.counter_values("quoter")
                finally:
                    ctl.close()
                return c.get("positions", 0) >= 2 and \
                    c.get("fills", 0) > c.get("positions", 0) + c.get("resets", 0)
            wait_until(resumed, 120, "the quoter to resume")
            sim.delay_responses(ANSWER_MS)
            sim.start_replay()
            wait_until(lambda: sim.stats()["replay_frames"] >= frames,
                       frames * (GAP_MS + QUIET_MS) / 1000 * 2 + 30, "the replay to end")
            seen = -1
            while len(sim.order_requests()) != seen:     # the last answers settle
                seen = len(sim.order_requests())
                time.sleep(1.0)
            requests = sim.order_requests()
            fills = sim.stats()["fills"]
            p.send_signal(signal.SIGTERM)
            assert p.wait(60) == 0, log_path.read_text()[-3000:]
        finally:
            if p.poll() is None:
                p.kill()
                p.wait(30)
    live = _relative(_live_intents(requests, cfg.instruments))
    assert fills >= 5
    first_diff = next((k for k, (a, b) in enumerate(zip(live, expected)) if a != b),
                      min(len(live), len(expected)))
    assert live == expected, (
        f"{len(live)} live intents, {len(expected)} backtest intents; first difference at "
        f"{first_diff}:\n live     {live[max(first_diff - 3, 0):first_diff + 3]}\n backtest "
        f"{expected[max(first_diff - 3, 0):first_diff + 3]}")
    assert len(live) >= 50
    kinds = {k: sum(1 for t in live if t[0] == k) for k in ("NEW", "REPLACE", "CANCEL")}
    print(f"\nbacktest == live: {len(live)} order requests {kinds}, {fills} fills, "
          f"{frames} frames")
