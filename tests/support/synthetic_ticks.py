"""Seeded synthetic book updates for tests, warm-up and the benchmark (not for production)."""
from __future__ import annotations

from decimal import Decimal

import numpy as np

from engine.instruments import Instrument
from engine.records import MD_BBO, MD_DTYPE, MD_FRESH, MD_STALE

START_MID = {"BTCUSDT": "60000", "ETHUSDT": "3000"}


def random_ticks(seed: int, n: int, instruments: tuple[Instrument, ...], stale_every: int = 0,
                 crossed_every: int = 0, start_ns: int = 1_000_000_000) -> np.ndarray:
    """`n` MD records: a random walk of the mid per instrument (a few ticks per update, jumps
    now and then), spreads of 1-5 ticks, random sizes; every `stale_every`-th record marks the
    stream stale (the next one is MD_FRESH), every `crossed_every`-th has a crossed book.
    ts_arrival / ts_published advance 0-2 ms per record from `start_ns`."""
    rng = np.random.default_rng(seed)
    recs = np.zeros(n, MD_DTYPE)
    n_inst = len(instruments)
    mids = [int(Decimal(START_MID.get(i.symbol, "100")).scaleb(-i.pexp)) // i.tick
            for i in instruments]
    which = rng.integers(0, n_inst, n)
    steps = rng.integers(-3, 4, n) * (1 + 20 * (rng.random(n) < 0.02))
    spreads = rng.integers(1, 6, n)
    bid_lots = rng.integers(1, 5000, n)
    ask_lots = rng.integers(1, 5000, n)
    gaps = rng.integers(0, 2_000_000, n)
    ts = start_ns + np.cumsum(gaps)
    for k in range(n):
        i = int(which[k])
        inst = instruments[i]
        mids[i] = max(mids[i] + int(steps[k]), 10)
        bid_t = mids[i]
        ask_t = bid_t + int(spreads[k])
        kind = MD_BBO
        if stale_every and k % stale_every == stale_every - 1:
            kind = MD_STALE
        elif stale_every and k % stale_every == 0 and k > 0:
            kind = MD_BBO | MD_FRESH
        if crossed_every and k % crossed_every == crossed_every - 1:
            ask_t = bid_t - 1
        r = recs[k]
        r["update_id"] = 1000 + k
        r["instrument"] = i
        r["kind"] = kind
        r["bid_px"] = bid_t * inst.tick
        r["ask_px"] = ask_t * inst.tick
        r["bid_qty"] = int(bid_lots[k]) * inst.lot
        r["ask_qty"] = int(ask_lots[k]) * inst.lot
        r["ts_arrival"] = int(ts[k])
        r["ts_decoded"] = int(ts[k]) + 1000
        r["ts_published"] = int(ts[k]) + 2000
    return recs
