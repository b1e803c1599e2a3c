"""The backtest's order and answer latencies: fixed (backtest.order_latency_us,
response_latency_us) or drawn from what a live `mm run` measured (`--latency-from runs/<run>`,
backtest.latency_from).

From a run, per order (independent draws, a table of SAMPLES values each, seeded):
  order latency   sender.tick_to_order (the frame's arrival -> the order's bytes written: the
                  feed, the ring, the quoter, the sender) + half a sender.order_round_trip
                  (the request on the wire to the venue)
  answer latency  half a sender.order_round_trip (the venue's answer back) +
                  quoter.fill_published_to_read (the sender -> quoter hand-off; 0 when the
                  run did not record it)
Half the round trip each way assumes a symmetric path: the venue's own processing time is in
the round trip, so it is counted once, split between the two.

A request reaches the venue no sooner than the one sent before it, and answers arrive in the
order the venue sent them (one connection each way): the replay keeps both FIFOs in order.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

SAMPLES = 1 << 16         # a power of two: the replay picks draws with a mask
SEED = 20261207


@dataclass
class Latencies:
    order_ns: np.ndarray          # one draw per request, used in turn (cyclically); 1 or
    answer_ns: np.ndarray         # SAMPLES long; one draw per answer, the same
    source: str                   # "fixed" or the run directory

    def describe(self) -> dict:
        """P50 / P99 / max of both, in µs, and where they came from (for the report)."""
        def q(a):
            return {"p50_us": round(float(np.percentile(a, 50)) / 1e3, 1),
                    "p99_us": round(float(np.percentile(a, 99)) / 1e3, 1),
                    "max_us": round(float(a.max()) / 1e3, 1)}
        return {"source": self.source, "order": q(self.order_ns), "answer": q(self.answer_ns)}


def fixed(order_us: float, answer_us: float) -> Latencies:
    return Latencies(np.array([int(order_us * 1000)], np.int64),
                     np.array([int(answer_us * 1000)], np.int64), "fixed")


def from_run(run: str | Path) -> Latencies:
    """Latency tables from a live run's histograms; ValueError naming what is missing."""
    from engine.latency.histogram import Histogram

    run = Path(run)
    if not run.is_dir():
        raise ValueError(f"--latency-from: {run} is not a run directory (runs/<run> of mm run)")

    def hist(role: str, name: str, required: bool = True) -> Histogram | None:
        f = run / f"{role}.hist.npz"
        if f.is_file():
            with np.load(f) as z:
                if name in z.files:
                    h = Histogram(f"{role}.{name}", z[name])
                    if h.count > 0:
                        return h
        if required:
            raise ValueError(f"--latency-from: {run} has no samples of {role}.{name} "
                             f"({f.name}; the venue round trip is recorded since the "
                             f"backtest reads it: take the run again)")
        return None

    t2o = hist("sender", "tick_to_order")
    rtt = hist("sender", "order_round_trip")
    back = hist("quoter", "fill_published_to_read", required=False)
    rng = np.random.default_rng(SEED)
    half_out = rtt.sample(SAMPLES, rng) // 2
    half_back = rtt.sample(SAMPLES, rng) // 2
    order = t2o.sample(SAMPLES, rng) + half_out
    answer = half_back + (back.sample(SAMPLES, rng) if back is not None else 0)
    return Latencies(order.astype(np.int64), answer.astype(np.int64), str(run))


def of(cfg, run: str | None = None) -> Latencies:
    """The latencies a backtest under cfg uses (`run` overrides backtest.latency_from)."""
    bt = cfg.backtest
    src = run or bt.latency_from
    if src:
        return from_run(src)
    return fixed(bt.order_latency_us, bt.response_latency_us)
