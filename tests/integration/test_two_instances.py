"""Two engine instances trading one account, and a person's manual order beside them: judged
from the venue's own record of who placed and who canceled what, no instance ever touches an
order that is not its own, and no client order id is ever used twice (the second instance
starts while the first trades; each picked its own tag)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import pytest
from tests.support.sim_client import ApiClient, order

from tests.support.sim_thread import SimThread

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

CONFIG = "duration_s = 0\nmetrics_port = 0\nheartbeat_timeout_ms = 5000\n"


def _start(sim, instance, tmp_path):
    cfg = tmp_path / f"{instance}.toml"
    cfg.write_text(CONFIG)
    env = {**os.environ, "MM_MD_URL": sim.md_url, "MM_ORDER_URL": sim.api_url,
           "MM_INSTANCE": instance}
    log = open(tmp_path / f"{instance}.log", "wb")
    p = subprocess.Popen([sys.executable, "-m", "engine.cli", "run", "--config", str(cfg),
                          "--run-dir", str(tmp_path / instance)], env=env, stdout=log,
                         stderr=subprocess.STDOUT)
    p.log_file = log
    return p


def _tag(instance):
    return (Path(os.environ["MM_STATE_DIR"]) / f"{instance}.tag").read_text().strip()


def _wait(cond, timeout, what):
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def _stop(p):
    if p.poll() is None:
        p.send_signal(signal.SIGTERM)
    try:
        return p.wait(60)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait(10)
        p.log_file.close()


def test_two_instances_and_a_person_share_an_account(instance, tmp_path):
    import asyncio

    a_name, b_name = instance + "a", instance + "b"
    with SimThread(event_rate=50, seed=21) as sim:
        async def manual():
            c = await ApiClient.connect(sim.api_url)
            px = str(Decimal(sim.book("BTCUSDT")["bid"]) - Decimal("500"))
            r = await c.request("order.place", order("BTCUSDT", "BUY", px, "0.00100",
                                                     "manual-order-1"))
            assert r["status"] == 200, r
            await c.close()
        asyncio.run(asyncio.wait_for(manual(), 30))
        a = _start(sim, a_name, tmp_path)
        b = None
        try:
            _wait(lambda: os.path.exists(Path(os.environ["MM_STATE_DIR"]) / f"{a_name}.tag")
                  and any(o["clientOrderId"].startswith(_tag(a_name) + "-")
                          for o in sim.open_orders()), 120, "A quoting")
            b = _start(sim, b_name, tmp_path)
            _wait(lambda: os.path.exists(Path(os.environ["MM_STATE_DIR"]) / f"{b_name}.tag")
                  and any(o["clientOrderId"].startswith(_tag(b_name) + "-")
                          for o in sim.open_orders()), 120, "B quoting")
            ta, tb = _tag(a_name), _tag(b_name)
            assert ta != tb
            time.sleep(3)                             # both trade, both reconcile
            assert _stop(b) == 0
            b = None
            resting = [o["clientOrderId"] for o in sim.open_orders()]
            assert "manual-order-1" in resting        # B's stop canceled only its own ...
            _wait(lambda: any(o["clientOrderId"].startswith(ta + "-")
                              for o in sim.open_orders()), 20, "A still quoting")
            assert not any(c.startswith(tb + "-") for c in resting)
            assert _stop(a) == 0
            a = None
        finally:
            for p in (a, b):
                if p is not None:
                    _stop(p)
        resting = [o["clientOrderId"] for o in sim.open_orders()]
        assert resting == ["manual-order-1"]          # the person's order survived both
        places, cancels = sim.place_log(), sim.cancel_log()
        stats = sim.stats()
    tag_of_conn: dict[int, set] = {}
    for conn, cid in places:
        tag_of_conn.setdefault(conn, set()).add(cid.split("-")[0])
    assert all(len(tags) == 1 for tags in tag_of_conn.values())    # one instance per connection
    for conn, cid in cancels:
        if conn in tag_of_conn:                                     # a trading connection
            assert {cid.split("-")[0]} == tag_of_conn[conn], (conn, cid)
        assert not cid.startswith("manual")
    assert stats["client_ids_reused"] == 0
    assert {ta, tb} <= {t for tags in tag_of_conn.values() for t in tags}
