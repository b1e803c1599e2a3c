"""`mm sim` as a subprocess: the URL line, env credentials, SIGTERM, and the latency report."""
from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from decimal import Decimal

import websockets
from tests.support.sim_client import ApiClient, order, signed

KEY, SECRET = "cliTestKey123", "cliTestSecret456"


def test_standalone_run_report_and_env_keys(tmp_path):
    report = tmp_path / "report.json"
    env = dict(os.environ, MM_API_KEY=KEY, MM_API_SECRET=SECRET)
    proc = subprocess.Popen(
        [sys.executable, "-m", "engine.sim.cli", "--port", "0", "--seed", "5",
         "--event-rate", "100", "--report", str(report)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)
    try:
        line = proc.stdout.readline()
        info = json.loads(line)
        assert info["pid"] == proc.pid
        assert info["api_url"] == info["md_url"] + "/ws-api/v3"
        assert info["md_url"].startswith("ws://127.0.0.1:")

        async def trade():
            async with websockets.connect(info["md_url"] + "/ws/btcusdt@bookTicker") as md:
                tick = json.loads(await asyncio.wait_for(md.recv(), 5))
            c = await ApiClient.connect(info["api_url"])
            far = str(Decimal(tick["b"]) - 500)
            # the demo key is not trusted when MM_API_KEY is set
            r = await c.request("order.place", order("BTCUSDT", "BUY", far, "0.01000"))
            assert r["status"] == 401 and r["error"]["code"] == -2015
            p = signed(order("BTCUSDT", "BUY", far, "0.01000", f"mm-{tick['u']}-1"),
                       api_key=KEY, secret=SECRET)
            r = await c.request("order.place", p, sign=False)
            assert r["status"] == 200, r
            await c.close()
        asyncio.run(asyncio.wait_for(trade(), 20))
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
        proc.stdout.close()
        proc.stderr.close()
    rep = json.loads(report.read_text())
    assert rep["latency"]["count"] == 1 == len(rep["samples_ns"])
    assert rep["samples_ns"][0] > 0
    assert rep["stats"]["orders_received"] == 2 and rep["stats"]["open_orders"] == 1
    assert SECRET not in report.read_text()


def test_bad_arguments_exit_2():
    r = subprocess.run([sys.executable, "-m", "engine.sim.cli", "--event-rate", "-1"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 2 and "sim.event_rate" in r.stderr
