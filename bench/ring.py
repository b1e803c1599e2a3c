"""Ring benchmarks: OneToOne latency (paced ping, one-way) and throughput, from Python and from
numba, side by side with multiprocessing.Queue, multiprocessing.Pipe and faster-fifo measured in
the same run. Producer and consumer are pinned to different cores; the ring's consumer spins
(the hand-off a box with a free core can afford) unless the row says park."""
from __future__ import annotations

import multiprocessing as mp
import os
import time

import numpy as np

from bench.common import describe_machine, pct, table
from engine.proc import pin
from tests.support.ring_exercise import run_pair, warm

PAYLOAD = 64


def _baseline_consumer(kind, chan, n, core, out):
    pin("bench", core)
    lat = np.empty(n, np.int64)
    if kind == "mp.Pipe":
        get = chan.recv_bytes
    elif kind == "faster-fifo":
        get = lambda: chan.get(timeout=30)  # noqa: E731
    else:
        get = chan.get
    out.put("ready")
    for i in range(n):
        msg = get()
        lat[i] = time.perf_counter_ns() - int.from_bytes(msg[:8], "little")
    out.put((lat, time.perf_counter_ns()))


def _baseline_producer(kind, chan, n, pace_ns, core, out):
    pin("bench", core)
    pad = bytes(PAYLOAD - 8)
    put = chan.send_bytes if kind == "mp.Pipe" else chan.put
    t0 = time.perf_counter_ns()
    nxt = t0
    for _ in range(n):
        if pace_ns:
            nxt += pace_ns
            while time.perf_counter_ns() < nxt:
                time.sleep(0)  # let mp.Queue's feeder thread have the GIL while we wait
        put(time.perf_counter_ns().to_bytes(8, "little") + pad)
    out.put(t0)


def run_baseline(kind: str, n: int, pace_ns: int, cores) -> dict:
    ctx = mp.get_context("spawn")
    if kind == "mp.Queue":
        send = recv = ctx.Queue()
    elif kind == "mp.Pipe":
        recv, send = ctx.Pipe(duplex=False)
    else:
        import faster_fifo

        send = recv = faster_fifo.Queue(max_size_bytes=16 * 1024 * 1024)
    out = ctx.Queue()
    c = ctx.Process(target=_baseline_consumer, args=(kind, recv, n, cores[1], out))
    c.start()
    assert out.get(timeout=60) == "ready"
    p = ctx.Process(target=_baseline_producer, args=(kind, send, n, pace_ns, cores[0], out))
    p.start()
    first = out.get(timeout=120)
    second = out.get(timeout=120)
    t0, (lat, done) = (first, second) if isinstance(first, int) else (second, first)
    p.join(10)
    c.join(10)
    return {"lat": lat, "elapsed_ns": done - t0, "n": n}


def main(args=None) -> dict:
    quick = bool(getattr(args, "quick", False))
    cpus = sorted(os.sched_getaffinity(0))
    cores = (cpus[0], cpus[-1]) if len(cpus) > 1 else (-1, -1)
    warm()
    inst = f"bench{os.getpid()}"
    n_lat = 5_000 if quick else 20_000
    # quick: mp.Pipe left out (two process pairs fewer; mp.Queue and faster-fifo stay)
    baselines = ("mp.Queue", "faster-fifo") if quick else ("mp.Queue", "mp.Pipe", "faster-fifo")
    pace = 50_000  # 20,000 records/s: latency, not queueing, is measured
    rows = []

    def ring_row(label, face, idle, n, pace_ns, batch, cap=1024):
        r = run_pair(inst, n, cap, "block", idle, face=face, pace_ns=pace_ns, batch=batch,
                     cores=cores)
        lat = r["lat"]
        row = {"name": label, **pct(lat), "n": r["received"]}
        if not pace_ns and r.get("elapsed_ns"):
            row["mps"] = r["received"] / (r["elapsed_ns"] / 1e9) / 1e6
        rows.append(row)
        return row

    # ---- latency (paced) ----
    lat_rows = [
        ring_row("ring numba->numba spin", "numba", "busy-spin", n_lat, pace, 1),
        ring_row("ring python->python spin", "python", "busy-spin", n_lat, pace, 1),
        ring_row("ring numba->numba park @20k/s", "numba", "park", n_lat, pace, 1),
        ring_row("ring python->python park @20k/s", "python", "park", n_lat, pace, 1),
    ]
    for kind in baselines:
        try:
            r = run_baseline(kind, n_lat, pace, cores)
        except ImportError:
            continue
        row = {"name": f"{kind} (blocking get)", **pct(r["lat"]), "n": r["n"]}
        rows.append(row)
        lat_rows.append(row)
    base = next((r for r in lat_rows if r["name"].startswith("mp.Queue")), None)
    for r in lat_rows:
        r["x_queue"] = base["p50"] / r["p50"] if base and r["p50"] else float("nan")

    # ---- throughput (unpaced, block policy: nothing dropped) ----
    n_nb = 1_000_000 if quick else 10_000_000
    n_py = 100_000 if quick else 1_000_000
    tp_rows = [
        ring_row("ring numba->numba throughput", "numba", "busy-spin", n_nb, 0, 256, cap=4096),
        ring_row("ring python push/pop_many", "python", "busy-spin", n_py, 0, 1, cap=4096),
        ring_row("ring python push_many(256)", "python", "busy-spin", n_py * 3, 0, 256, cap=4096),
    ]
    n_q = 30_000 if quick else 300_000
    for kind in baselines:
        try:
            r = run_baseline(kind, n_q, 0, cores)
        except ImportError:
            continue
        tp_rows.append({"name": f"{kind} throughput", "mps": r["n"] / (r["elapsed_ns"] / 1e9) / 1e6,
                        "n": r["n"], **pct(r["lat"])})
    q_tp = next((r for r in tp_rows if r["name"] == "mp.Queue throughput"), None)
    for r in tp_rows:
        r["x_queue"] = r["mps"] / q_tp["mps"] if q_tp else float("nan")

    print(f"\n== ring: one-way latency, paced at 20,000 records/s, producer core {cores[0]} -> "
          f"consumer core {cores[1]}")
    print(f"machine: {describe_machine()}")
    print(table(lat_rows, [("name", "transport", ""), ("p50", "P50 ns", ".0f"),
                           ("p99", "P99 ns", ".0f"), ("p999", "P99.9 ns", ".0f"),
                           ("max", "max ns", ".0f"), ("x_queue", "P50 x lower than Queue", ".1f")]))
    print(f"\n== ring: throughput of {PAYLOAD}-byte records (block policy, nothing dropped)")
    print(table(tp_rows, [("name", "transport", ""), ("mps", "M records/s", ".2f"),
                          ("n", "records", "d"), ("x_queue", "x mp.Queue", ".1f")]))
    return {"latency": {r["name"]: {k: v for k, v in r.items() if k != "name"} for r in lat_rows},
            "throughput": {r["name"]: {k: v for k, v in r.items() if k != "name"} for r in tp_rows}}


if __name__ == "__main__":
    main()
