"""Simulator cost: what `mm sim` takes from the shared box while the engine runs against it.

1. CPU of the simulator process (psutil, user+system) for 2 symbols at several book-event
   rates, with the market subscribed by 2 raw connections (bookTicker + trade each) — the
   baseline in the same run is the same process with no subscriber (book generation only).
2. Order API round trips: order.place (ACK) then order.cancel over one websockets
   connection, round-trip percentiles and the simulator's CPU per request.

    python -m bench --only sim [--quick]
"""
from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from decimal import Decimal

import numpy as np
import psutil
import websockets

from bench.baselines.asyncio_bot import signed_request
from bench.common import describe_machine, pct, table


def _start(rate: float) -> tuple[subprocess.Popen, dict]:
    proc = subprocess.Popen([sys.executable, "-m", "engine.sim.cli", "--port", "0",
                             "--event-rate", str(rate)], stdout=subprocess.PIPE, text=True)
    return proc, json.loads(proc.stdout.readline())


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)
    proc.stdout.close()


def _cpu_s(p: psutil.Process) -> float:
    t = p.cpu_times()
    return t.user + t.system


async def _market_cpu(info: dict, pid: int, subscribers: int, seconds: float) -> dict:
    url = info["md_url"] + "/ws/btcusdt@bookTicker/btcusdt@trade/ethusdt@bookTicker/ethusdt@trade"
    conns = [await websockets.connect(url, max_queue=None) for _ in range(subscribers)]
    frames = [0] * subscribers

    async def drain(i, ws):
        async for _ in ws:
            frames[i] += 1
    tasks = [asyncio.create_task(drain(i, ws)) for i, ws in enumerate(conns)]
    await asyncio.sleep(0.5)                        # warm up
    p = psutil.Process(pid)
    c0, f0, t0 = _cpu_s(p), sum(frames), time.monotonic()
    await asyncio.sleep(seconds)
    c1, f1, t1 = _cpu_s(p), sum(frames), time.monotonic()
    for t in tasks:
        t.cancel()
    for ws in conns:
        await ws.close()
    wall = t1 - t0
    return {"cpu_pct": 100 * (c1 - c0) / wall, "frames_per_s": (f1 - f0) / wall,
            "us_per_frame": 1e6 * (c1 - c0) / (f1 - f0) if f1 > f0 else float("nan")}


async def _api_rtt(info: dict, pid: int, n: int) -> dict:
    async with websockets.connect(info["md_url"] + "/ws/btcusdt@bookTicker") as md:
        bid = Decimal(json.loads(await md.recv())["b"])
    far = str(bid - 1000)
    rtt = np.empty(2 * n, dtype=np.int64)
    p = psutil.Process(pid)
    async with websockets.connect(info["api_url"] + "?returnRateLimits=false") as ws:
        c0 = _cpu_s(p)
        for i in range(n):
            for j, (method, params) in enumerate((
                    ("order.place", {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT_MAKER",
                                     "price": far, "quantity": "0.00100",
                                     "newClientOrderId": f"b-1-{i}"}),
                    ("order.cancel", {"symbol": "BTCUSDT", "origClientOrderId": f"b-1-{i}"}))):
                msg = signed_request(i, method, params)
                t = time.perf_counter_ns()
                await ws.send(msg)
                await ws.recv()
                rtt[2 * i + j] = time.perf_counter_ns() - t
        c1 = _cpu_s(p)
    return {**pct(rtt), "sim_us_per_request": 1e6 * (c1 - c0) / (2 * n)}


def main(args) -> dict:
    quick = getattr(args, "quick", False)
    seconds = 1.5 if quick else 5.0
    rates = (200, 1000) if quick else (200, 500, 1000)
    rows, out = [], {"machine": describe_machine(), "market": [], "api": {}}
    for rate in rates:
        proc, info = _start(rate)
        try:
            base = asyncio.run(_market_cpu(info, proc.pid, 0, seconds))
            sub = asyncio.run(_market_cpu(info, proc.pid, 2, seconds))
        finally:
            _stop(proc)
        row = {"case": f"{rate}/s x 2 symbols", "base_cpu": base["cpu_pct"],
               "cpu": sub["cpu_pct"], "ratio": sub["cpu_pct"] / max(base["cpu_pct"], 1e-9),
               "frames": sub["frames_per_s"], "us_frame": sub["us_per_frame"]}
        rows.append(row)
        out["market"].append(row)
    proc, info = _start(50)
    try:
        api = asyncio.run(_api_rtt(info, proc.pid, 300 if quick else 1000))
    finally:
        _stop(proc)
    out["api"] = api
    print(f"\nsim — {out['machine']}")
    print(table(rows, [("case", "market (events/s)", ""), ("base_cpu", "no-sub CPU%", ".1f"),
                       ("cpu", "2-sub CPU%", ".1f"), ("ratio", "x base", ".2f"),
                       ("frames", "frames/s", ".0f"), ("us_frame", "CPU us/frame", ".1f")]))
    print(f"order.place/cancel round trip (websockets client, loopback): "
          f"p50 {api['p50'] / 1e3:.0f} us, p99 {api['p99'] / 1e3:.0f} us, "
          f"max {api['max'] / 1e3:.0f} us; "
          f"simulator CPU {api['sim_us_per_request']:.0f} us/request")
    return out


if __name__ == "__main__":
    import argparse
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    main(ap.parse_args())
