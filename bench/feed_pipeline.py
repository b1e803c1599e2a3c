"""Feed pipeline benchmark: frame arrival -> record published in the md ring, live against the
simulator, plus the per-frame decode+publish cost replayed in-process next to a stdlib
`json.loads` baseline on the same captured frames.

Topology: the simulator runs on a thread of this process; the feed runs as its own process
(`mm feed`), exactly as in `mm run`; a drain thread here consumes the md ring so it never fills.
The feed records its hops into its shared-memory histograms (hist-feed), read after it stops.

    python -m bench.feed_pipeline [--seconds 5] [--rate 2000] [--connections 2]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from time import perf_counter_ns

import msgspec
import numpy as np

from bench.common import describe_machine, table
from engine.config import EngineConfig, dump_json
from engine.control import KILL_OPERATOR, Control
from engine.feed.capture import read_capture
from engine.feed.publish import RingSink
from engine.latency.histogram import HistogramSet
from engine.records import MD_DTYPE
from engine.ring import Ring
from engine.ring.segment import list_segments, unlink


def _drain(ring: Ring, stop: threading.Event, seen: list) -> None:
    n = 0
    while not stop.is_set():
        got = ring.pop_many()
        n += len(got)
        if not len(got):
            time.sleep(0.0005)
    seen.append(n + len(ring.pop_many()))


def _replay_cost(path: Path, cfg: EngineConfig, instance: str) -> dict:
    """Per-frame cost of decode + emit (into a real ring) vs json.loads, same frames, in-process."""
    from engine.feed.venues import make_adapter

    frames = [bytes(p) for _, op, p in read_capture(path, strict=False) if op == 1][:20000]
    if not frames:
        return {}
    adapter = make_adapter(cfg.feed.venue, cfg.instruments, cfg.feed.streams, log_skipped=False)
    ring = Ring.create(instance, "md", MD_DTYPE, 1 << 16, "drop", role="producer")
    try:
        sink = RingSink(ring, None, len(cfg.instruments), adapter.venue)
        rounds = max(1, 20000 // len(frames))

        n_ins = len(cfg.instruments)

        def fresh_ids() -> None:
            # Each round replays the same ids: forget them, or they are refused as duplicates
            # (the sink) and as going backwards (the adapter; its ids are shared with its C
            # fast path, so they are reset in place).
            sink.forget_ids()
            for i in range(n_ins):
                adapter._last_book_id[i] = adapter._last_trade_id[i] = -1

        def timed(fn) -> np.ndarray:
            out = np.empty(len(frames) * rounds, np.int64)
            k = 0
            for _ in range(rounds):
                fresh_ids()
                ring.pop_many()              # keep the ring from filling (no timing inside)
                ring.release()
                for f in frames:
                    t = perf_counter_ns()
                    fn(f)
                    out[k] = perf_counter_ns() - t
                    k += 1
            return out

        def decode(f: bytes) -> None:
            sink.ts_arrival = perf_counter_ns()
            adapter.decode(memoryview(f), False, sink)

        baseline = timed(json.loads)
        ours = timed(decode)
    finally:
        ring.close()
        ring.unlink()
    return {"frames": len(frames), "baseline": baseline, "ours": ours}


def _live(sim, a, instance: str, tmp: Path, capture: Path | None) -> dict:
    """One run of `mm feed` against the sim: its histograms, counter rates and exit status."""
    cfg = EngineConfig(instance=instance)
    cfg = msgspec.structs.replace(cfg, feed=msgspec.structs.replace(
        cfg.feed, url=sim.md_url, connections=a.connections, core=a.core,
        capture_path=str(capture) if capture else ""))
    cfg_path = tmp / f"{instance}.json"
    cfg_path.write_bytes(dump_json(cfg))
    ring = Ring.open(instance, "md", MD_DTYPE, cfg.rings.md.capacity, cfg.rings.md.policy,
                     role="consumer")
    ctl = Control.open(instance)
    stop, seen = threading.Event(), []
    drain = threading.Thread(target=_drain, args=(ring, stop, seen), daemon=True)
    drain.start()
    feed = subprocess.Popen([sys.executable, "-m", "engine.cli", "feed", "--config", str(cfg_path)])
    try:
        deadline = time.monotonic() + 30
        while ctl.role_info("feed")["state"] != "running" and time.monotonic() < deadline:
            if feed.poll() is not None:
                raise RuntimeError(f"feed exited with {feed.returncode} before running")
            time.sleep(0.05)
        c0, t0 = ctl.counter_values("feed"), time.monotonic()
        time.sleep(a.seconds)
        c1, t1 = ctl.counter_values("feed"), time.monotonic()
        ctl.kill(KILL_OPERATOR)
        rc = feed.wait(timeout=15)
    finally:
        if feed.poll() is None:
            feed.kill()
            feed.wait()
        stop.set()
        drain.join(timeout=5)
        hs = HistogramSet.attach(instance, "feed")
        hists = hs.snapshots()
        hs.close()
        ring.close()
        ctl.close()
        for name in list_segments(instance):
            unlink(name)
    elapsed = t1 - t0
    return {"cfg": cfg, "hists": hists, "exit": rc, "seconds": elapsed, "drained": seen[0] if seen else -1,
            "rates": {k: (c1.get(k, 0) - c0.get(k, 0)) / elapsed for k in ("frames", "records", "dupes")},
            "counters": c1}


def _hist_rows(label: str, hists: dict) -> list[dict]:
    rows = []
    for name in ("arrival_to_decoded", "decoded_to_published", "arrival_to_published"):
        h = hists[name]
        pc = h.percentiles((50, 90, 99, 99.9, 100))
        rows.append({"name": f"{label} {name}", "n": h.count, "p50": pc[50] / 1e3,
                     "p90": pc[90] / 1e3, "p99": pc[99] / 1e3, "p999": pc[99.9] / 1e3,
                     "max": pc[100] / 1e3})
    return rows


def main(args=None) -> dict:
    p = argparse.ArgumentParser(prog="bench.feed_pipeline", description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--rate", type=float, default=1000.0, help="sim book events/s per symbol")
    p.add_argument("--connections", type=int, default=2)
    p.add_argument("--core", type=int, default=-1, help="pin the feed to this CPU")
    if isinstance(args, argparse.Namespace):  # called by `python -m bench`
        args = ["--seconds", "3"] if getattr(args, "quick", False) else []
    a = p.parse_args(args)

    from tests.support.sim_thread import SimThread

    instance = f"bfeed{os.getpid()}"
    tmp = Path(tempfile.mkdtemp(prefix="mm-bench-feed-"))
    capture = tmp / "md.cap"
    result: dict = {"machine": describe_machine()}
    try:
        with SimThread(event_rate=a.rate, trade_rate=min(a.rate / 10, 100.0)) as sim:
            plain = _live(sim, a, instance, tmp, None)
            captured = _live(sim, a, instance + "c", tmp, capture)
        replay = _replay_cost(capture, plain["cfg"], instance + "r")
    finally:
        for name in list_segments(instance + "r"):
            unlink(name)
        for f in tmp.iterdir():
            f.unlink()
        tmp.rmdir()

    rows = _hist_rows("live", plain["hists"]) + _hist_rows("live+capture", captured["hists"])
    if replay:
        for label, arr in (("replay json.loads (baseline)", replay["baseline"]),
                           ("replay decode+publish", replay["ours"])):
            q = np.percentile(arr, [50, 90, 99, 99.9])
            rows.append({"name": label, "n": len(arr), "p50": q[0] / 1e3, "p90": q[1] / 1e3,
                         "p99": q[2] / 1e3, "p999": q[3] / 1e3, "max": arr.max() / 1e3})
    r = plain["rates"]
    print(f"feed pipeline | {result['machine']}")
    print(f"sim {a.rate:g} book events/s per symbol x {len(plain['cfg'].instruments)} symbols, "
          f"{a.connections} connection(s), {plain['seconds']:.1f} s measured per run, feed exits "
          f"{plain['exit']}/{captured['exit']}; sim and ring drain share the other process")
    print(f"frames/s {r['frames']:.0f}  records/s {r['records']:.0f}  dupes/s {r['dupes']:.0f}")
    c = plain["counters"]
    print(f"arrival stamps: {c.get('reads_kernel_stamped', 0)} of {c.get('reads', 0)} socket reads "
          f"stamped by the kernel (the wait in the socket counts in arrival_to_decoded); "
          f"{c.get('unstamped_connections', 0)} connection(s) on pick-up stamps")
    print(table(rows, [("name", "metric (us)", ""), ("n", "n", "d"), ("p50", "p50", ".2f"),
                       ("p90", "p90", ".2f"), ("p99", "p99", ".2f"), ("p999", "p99.9", ".2f"),
                       ("max", "max", ".1f")]))
    a2p = plain["hists"]["arrival_to_published"].percentile(50)
    a2p_cap = captured["hists"]["arrival_to_published"].percentile(50)
    print(f"capture on / off, arrival_to_published p50: {a2p_cap / a2p:.2f}x")
    result.update({"rows": rows, "rates_per_s": r, "counters_end": plain["counters"],
                   "feed_exit": plain["exit"], "capture_ratio_p50": a2p_cap / a2p})
    if replay:
        ratio = float(np.median(replay["ours"]) / np.median(replay["baseline"]))
        print(f"replay decode+publish / json.loads, p50: {ratio:.2f}x ({replay['frames']} frames)")
        result["decode_vs_json_loads_p50_ratio"] = ratio
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
