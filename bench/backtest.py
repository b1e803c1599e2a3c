"""Backtest speed: book events per second through `mm backtest`'s compiled replay (venue fill
model + the quoter's core + the strategy, one core), target >= 1,000,000 for GLFT.

Market: seeded synthetic records for BTCUSDT and ETHUSDT (a random walk of the touch, 20%
trade prints at the touch, ~1,000 events per second of market time), so the run is long enough
to time; the corpus's live BTCUSDT capture (860 records) is replayed too, for its own figure.
The default configuration (rate limits included) runs, with the default latencies; the loop
is compiled (or loaded from numba's cache) by a warm-up run first, not timed.
"""
from __future__ import annotations

import time
from pathlib import Path

import msgspec

from bench.common import describe_machine, table
from engine import config
from engine.backtest import market_data, replay
from engine.instruments import DEFAULT_INSTRUMENTS
from engine.quoter.arrays import C_NEW, C_REPLACE
from tests.support.synthetic_ticks import random_market

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"
CAPTURE = CORPUS / "binance" / "hftbacktest_spot_btcusdt_20240808.head.txt"
TARGET = 1_000_000


def _cfg(strategy: str):
    cfg = config.load(env={})
    return msgspec.structs.replace(cfg, quoter=msgspec.structs.replace(cfg.quoter,
                                                                       strategy=strategy))


def time_replay(cfg, md, repeats: int = 3) -> dict:
    """Best of `repeats` replays of `md` (after one warm-up replay of its head)."""
    head = md[:2000]
    replay.run(replay.prepare(cfg, head), head)
    best = None
    for _ in range(repeats):
        r = replay.prepare(cfg, md)
        t0 = time.perf_counter()
        replay.run(r, md)
        wall = time.perf_counter() - t0
        if best is None or r.replay_s < best[0].replay_s:
            best = (r, wall)
    r, wall = best
    fills = int(sum(len(f) for f in r.fills))
    return {"events": len(md), "replay_s": r.replay_s, "wall_s": wall,
            "events_per_s": len(md) / r.replay_s,
            "orders": int(r.st.cnt[C_NEW] + r.st.cnt[C_REPLACE]), "fills": fills}


def main(args=None) -> dict:
    quick = bool(getattr(args, "quick", False))
    n = 300_000 if quick else 4_000_000   # quick: QUICK=1 stays under 2 minutes
    t0 = time.perf_counter()
    md = random_market(7, n, DEFAULT_INSTRUMENTS)
    gen_s = time.perf_counter() - t0
    rows, out = [], {}
    for strategy in ("glft", "fixed_spread"):
        res = time_replay(_cfg(strategy), md, 1 if quick else 3)
        out[f"synthetic_{strategy}"] = res
        rows.append({"name": f"{strategy}, synthetic market", **res})
    if CAPTURE.is_file():
        cfg = _cfg("glft")
        recs, _ = market_data.load([CAPTURE], cfg)
        res = time_replay(cfg, recs)
        out["corpus_glft"] = res
        rows.append({"name": "glft, corpus BTCUSDT capture", **res})
    print("\n== backtest: book events per second, compiled replay with the fill model "
          "(one core)")
    print(f"machine: {describe_machine()}")
    print(table(rows, [("name", "strategy, market", ""), ("events", "events", ",d"),
                       ("events_per_s", "events/s", ",.0f"),
                       ("replay_s", "replay s", ".3f"), ("orders", "orders", "d"),
                       ("fills", "fills", "d")]))
    glft = out["synthetic_glft"]["events_per_s"]
    print(f"target >= {TARGET:,} events/s for GLFT: {'met' if glft >= TARGET else 'MISSED'} "
          f"({glft:,.0f}); synthetic market generated in {gen_s:.1f} s (not timed)")
    out["target_met"] = glft >= TARGET
    from bench import backtest_hftbacktest
    out["vs_hftbacktest"] = backtest_hftbacktest.main(quick)
    return out
