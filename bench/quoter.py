"""Quoter benchmarks.

1. quote step: ns per book update (on_md + end-of-batch requote, quotes acked at once) for the
   numba model vs the plain-Python reference on the same 1-tick batches; the two intent streams
   are checked to be identical.
2. start-up: a quoter process started with an empty numba cache (cold: JIT of everything) and
   again with the cache filled (warm), time from spawn to the first intent in the order ring.
3. in-process latency: md record published -> read, the quote step, and md read -> intent
   published, from the quoter's own shared-memory histograms, with a producer feeding the md
   ring and a consumer acking every intent (park and busy-spin idle).
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from numba import njit

from bench.common import describe_machine, table
from engine.control import Control
from engine.instruments import DEFAULT_INSTRUMENTS
from engine.latency.histogram import HistogramSet
from engine.quoter import model
from engine.quoter.config import QuoterConfig
from engine.quoter.arrays import G_MAX_DRAWDOWN
from tests.support.quoter_reference import INTENT_FIELDS, ReferenceQuoter
from engine.quoter.state import QuoterState
from tests.support.synthetic_ticks import random_ticks
from engine.records import (
    ACTION_NEW, ACTION_REPLACE, FILL_ACK, FILL_CANCELED, FILL_DTYPE, FILL_POSITION, FILL_RESUME,
)
from engine.ring.table import FILLS, MD, ORDERS
from engine.ring.segment import list_segments, unlink

ROOT = Path(__file__).resolve().parents[1]
# requote on every tick and no rate limit in the way: every update costs a full quote pass
BENCH_QUOTER = dict(requote_ticks=1, rate_per_10s=100_000, rate_per_day=1_000_000,
                    stale_after_ms=60_000, max_drawdown="0", max_position="1",
                    max_notional="1000000")


# ------------------------------------------------------------------ 1. quote step
@njit(cache=True, nogil=True, _nrt=False)
def _replay_numba(ticks, arrays, want, out, acks):
    """One tick per batch; every NEW/REPLACE is acked before the next tick, a replaced order
    reported canceled first (as the sender reports a replace). Returns intents."""
    total = 0
    for k in range(ticks.shape[0]):
        r = ticks[k]
        now = r.ts_published + 1000
        model.on_md(arrays, r.instrument, r.kind, r.update_id, r.bid_px, r.bid_qty, r.ask_px,
                    r.ask_qty, r.ts_arrival, r.ts_published, now)
        n = model.requote_dirty(arrays, want, now, out, 0)
        for j in range(n):
            o = out[j]
            if o.action == ACTION_REPLACE:
                model.on_fill(arrays, o.instrument, FILL_CANCELED, o.orig_order_id, 0, 0, 0, 0,
                              0, now)
            if o.action == ACTION_NEW or o.action == ACTION_REPLACE:
                model.on_fill(arrays, o.instrument, FILL_ACK, o.order_id, 0, 0, 0, 0, 0, now)
        acks[0] += n
        total += n
    return total


def _replay_reference(ticks: np.ndarray, ref: ReferenceQuoter) -> list[tuple]:
    rows = ticks[["instrument", "kind", "update_id", "bid_px", "bid_qty", "ask_px", "ask_qty",
                  "ts_arrival", "ts_published"]].tolist()
    intents: list[tuple] = []
    for row in rows:
        now = row[8] + 1000
        ref.on_md(*row, now)
        out = ref.requote_dirty(now)
        for it in out:
            if it[3] == ACTION_REPLACE:
                ref.on_fill(it[2], FILL_CANCELED, it[1], 0, 0, 0, 0)
            if it[3] == ACTION_NEW or it[3] == ACTION_REPLACE:
                ref.on_fill(it[2], FILL_ACK, it[0], 0, 0, 0, 0)
        intents += out
    return intents


def _numba_intents(ticks, q) -> tuple[float, int]:
    st = QuoterState(q, DEFAULT_INSTRUMENTS, first_id=1)
    _resume_state(st)
    acks = np.zeros(1, np.int64)
    t0 = time.perf_counter_ns()
    n = _replay_numba(ticks, st.arrays, st.want, st.out, acks)
    return (time.perf_counter_ns() - t0) / len(ticks), n


def _resume_state(st: QuoterState) -> None:
    for i in range(len(DEFAULT_INSTRUMENTS)):
        model.on_fill(st.arrays, i, FILL_POSITION, 0, 0, 0, 0, 0, 0, 0)
    model.on_fill(st.arrays, 0, FILL_RESUME, 0, 0, 0, 0, 0, 0, 0)


def bench_step(n_ticks: int) -> dict:
    q = QuoterConfig(**BENCH_QUOTER)
    ticks = random_ticks(3, n_ticks, DEFAULT_INSTRUMENTS)
    _numba_intents(ticks[:100], q)                         # compile / load from cache
    best_nb, n_nb = min(_numba_intents(ticks, q) for _ in range(5))
    ref = ReferenceQuoter(q, DEFAULT_INSTRUMENTS, first_id=1,
                          max_drawdown=int(QuoterState(q, DEFAULT_INSTRUMENTS).g[G_MAX_DRAWDOWN]))
    for i in range(len(DEFAULT_INSTRUMENTS)):
        ref.on_fill(i, FILL_POSITION, 0, 0, 0, 0, 0)
    ref.on_fill(0, FILL_RESUME, 0, 0, 0, 0, 0)
    t0 = time.perf_counter_ns()
    ref_intents = _replay_reference(ticks, ref)
    py_ns = (time.perf_counter_ns() - t0) / n_ticks
    same = _check_same(ticks, q, ref_intents)
    return {"numba_ns": best_nb, "python_ns": py_ns, "ratio": py_ns / best_nb,
            "intents": n_nb, "identical": same and n_nb == len(ref_intents), "ticks": n_ticks}


def _check_same(ticks, q, ref_intents) -> bool:
    """Replay once more through the numba model one tick at a time and compare streams."""
    st = QuoterState(q, DEFAULT_INSTRUMENTS, first_id=1)
    _resume_state(st)
    got: list[tuple] = []
    acks = np.zeros(1, np.int64)
    for k in range(len(ticks)):
        n = _replay_numba(ticks[k:k + 1], st.arrays, st.want, st.out, acks)
        got += st.out[:n][list(INTENT_FIELDS)].tolist()
    return got == ref_intents


# ------------------------------------------------------------------ 2 + 3. quoter process
def _write_config(path: Path, instance: str, idle: str) -> None:
    lines = [f'instance = "{instance}"', "[quoter]", f'idle = "{idle}"']
    lines += [f"{k} = {v!r}".replace("'", '"') for k, v in BENCH_QUOTER.items()]
    path.write_text("\n".join(lines) + "\n")


class _Feeder:
    """The test side of the rings: md producer, fills producer (acks), orders consumer."""

    def __init__(self, instance: str):
        from engine.config import EngineConfig

        cfg = EngineConfig(instance=instance)
        self.md = MD.open(cfg, "producer")
        self.fills = FILLS.open(cfg, "producer")
        self.orders = ORDERS.open(cfg, "consumer")
        # wake the quoter through its shared wake word, as the feed and the sender do
        from engine.control import Control
        self.ctl = Control.open(instance)
        for ring in (self.md, self.fills):
            ring.set_wake_target(self.ctl.wake_addr("quoter"))
        self.ticks = random_ticks(4, 4096, DEFAULT_INSTRUMENTS)
        self.k = 0
        self.fill = np.zeros(1, FILL_DTYPE)
        self.resumed = False

    def _resume_when_attached(self) -> None:
        """As the sender does: POSITION + RESUME once the quoter's end of the fills ring is
        registered (a starting consumer skips what was written before it)."""
        if not self.resumed and self.fills.consumer_pid():
            for i in range(len(DEFAULT_INSTRUMENTS)):
                self._send_fill(i, FILL_POSITION, 0)
            self._send_fill(0, FILL_RESUME, 0)
            self.resumed = True

    def _send_fill(self, i, kind, order_id):
        f = self.fill
        f["instrument"], f["kind"], f["order_id"] = i, kind, order_id
        self.fills.push(f)

    def tick(self) -> None:
        self._resume_when_attached()
        rec = self.ticks[self.k % len(self.ticks): self.k % len(self.ticks) + 1].copy()
        now = time.perf_counter_ns()
        rec["update_id"] = self.k + 1
        rec["ts_arrival"], rec["ts_decoded"], rec["ts_published"] = now, now, now
        self.md.push(rec)
        self.k += 1

    def drain(self) -> int:
        recs = self.orders.pop_many()
        for r in recs:
            if r["action"] == ACTION_REPLACE:
                self._send_fill(int(r["instrument"]), FILL_CANCELED, int(r["orig_order_id"]))
            if r["action"] in (ACTION_NEW, ACTION_REPLACE):
                self._send_fill(int(r["instrument"]), FILL_ACK, int(r["order_id"]))
        return len(recs)

    def close(self) -> None:
        for ring in (self.md, self.fills, self.orders):
            ring.close()
        self.ctl.close()


def _spawn(cfg_path: Path, cache_dir: str) -> subprocess.Popen:
    """cache_dir "": numba's own cache beside the sources (what `mm run` uses)."""
    env = dict(os.environ, NUMBA_CACHE_DIR=cache_dir) if cache_dir else dict(os.environ)
    code = ("import sys; from engine.cli import main; "
            f"sys.exit(main(['quoter', '--config', {str(cfg_path)!r}]))")
    return subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, env=env,
                            stderr=subprocess.PIPE, text=True)


def _stop(proc: subprocess.Popen) -> str:
    if proc.poll() is None:
        proc.terminate()
    try:
        _, err = proc.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
    return err or ""


def _cleanup(instance: str) -> None:
    for name in list_segments(instance):
        unlink(name)


def start_time(cache_dir: str, tmp: Path, label: str) -> dict:
    """Spawn -> first intent in the order ring, ticking every 0.5 ms meanwhile."""
    instance = f"bq{os.getpid()}{label}"
    _cleanup(instance)
    cfg = tmp / f"{label}.toml"
    _write_config(cfg, instance, "park")
    feeder = _Feeder(instance)
    t0 = time.perf_counter()
    proc = _spawn(cfg, cache_dir)
    first = None
    try:
        while time.perf_counter() - t0 < 180 and proc.poll() is None:
            feeder.tick()
            if feeder.drain():
                first = time.perf_counter() - t0
                break
            time.sleep(0.0005)
    finally:
        err = _stop(proc)
        feeder.close()
        _cleanup(instance)
    warm_line = next((ln for ln in err.splitlines() if "warm in" in ln), "")
    return {"name": label, "first_intent_s": first if first is not None else float("nan"),
            "log": warm_line.strip()}


def loop_latency(cache_dir: str, tmp: Path, idle: str, seconds: float, rate_hz: float) -> dict:
    instance = f"bq{os.getpid()}{idle.replace('-', '')}"
    _cleanup(instance)
    cfg = tmp / f"lat-{idle}.toml"
    _write_config(cfg, instance, idle)
    feeder = _Feeder(instance)
    proc = _spawn(cfg, cache_dir)
    out = {"name": f"quoter process, idle={idle}, {rate_hz:.0f} ticks/s"}
    try:
        ctl = Control.open(instance)
        deadline = time.monotonic() + 120
        while ctl.role_info("quoter")["state"] != "running":
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"quoter did not start: {_stop(proc)}")
            time.sleep(0.01)
        period = 1e9 / rate_hz
        t_next = time.perf_counter_ns()
        t_end = t_next + int(seconds * 1e9)
        intents = 0
        while t_next < t_end:
            # sleep most of the gap: a spinning feeder would take the core the quoter needs
            gap = t_next - time.perf_counter_ns()
            if gap > 150_000:
                time.sleep((gap - 100_000) / 1e9)
            intents += feeder.drain()
            while time.perf_counter_ns() < t_next:
                pass
            feeder.tick()
            t_next += period
        time.sleep(0.05)
        intents += feeder.drain()
        hs = HistogramSet.attach(instance, "quoter")
        for name, h in hs.snapshots().items():
            out[name] = {"n": h.count, **{f"p{q:g}": h.percentile(q) for q in (50, 99, 99.9)},
                         "max": h.max}
        hs.close()
        out["ticks"] = feeder.k
        out["intents"] = intents
        out["counters"] = ctl.counter_values("quoter")
        ctl.close()
    finally:
        _stop(proc)
        feeder.close()
        _cleanup(instance)
    return out


def main(args=None) -> dict:
    quick = bool(getattr(args, "quick", False))
    step = bench_step(20_000 if quick else 100_000)
    print("\n== quoter: quote step per book update (on_md + requote + acks), same ticks")
    print(f"machine: {describe_machine()}")
    print(table([{"name": "numba model", "ns": step["numba_ns"], "x": step["ratio"]},
                 {"name": "Python reference", "ns": step["python_ns"], "x": 1.0}],
                [("name", "implementation", ""), ("ns", "ns/tick", ".0f"),
                 ("x", "x faster than reference", ".1f")]))
    print(f"{step['ticks']} ticks, {step['intents']} intents, streams identical: "
          f"{step['identical']}")

    with tempfile.TemporaryDirectory(prefix="mm-numba-cache-") as cache, \
            tempfile.TemporaryDirectory(prefix="mm-bench-quoter-") as tmpdir:
        tmp = Path(tmpdir)
        # quick: no cold start (a numba compile of tens of seconds): numba's own cache, as
        # mm run finds it, warm after any earlier run
        if quick:
            cache = ""
        starts = ([] if quick else [start_time(cache, tmp, "cold")]) + [
            start_time(cache, tmp, "warm"), start_time(cache, tmp, "warm2")]
        print("\n== quoter: start-up, spawn -> first intent in the order ring "
              "(cold = empty numba cache)")
        print(table(starts, [("name", "start", ""), ("first_intent_s", "seconds", ".2f"),
                             ("log", "quoter log", "")]))
        secs = 1.0 if quick else 3.0
        lat = [loop_latency(cache, tmp, idle, secs, 2000.0) for idle in ("park", "busy-spin")]
    rows = []
    for r in lat:
        for name in ("md_published_to_read", "quote_step", "read_to_intent_published"):
            h = r.get(name, {})
            rows.append({"name": f"{r['name'].split(',')[1].strip()} {name}", **h})
    print("\n== quoter process: in-process histograms (producer 2000 ticks/s, every intent acked)")
    print(table(rows, [("name", "idle / hop", ""), ("n", "samples", "d"), ("p50", "P50 ns", ".0f"),
                       ("p99", "P99 ns", ".0f"), ("p99.9", "P99.9 ns", ".0f"),
                       ("max", "max ns", ".0f")]))
    return {"step": step, "start": starts,
            "latency": [{k: v for k, v in r.items() if k != "counters"} | {
                "counters": {k: v for k, v in r["counters"].items() if v}} for r in lat]}


if __name__ == "__main__":
    main()
