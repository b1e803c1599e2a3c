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


def random_market(seed: int, n: int, instruments: tuple[Instrument, ...], trade_share=0.2,
                  mean_gap_ns: int = 1_000_000, start_ns: int = 1_000_000_000) -> np.ndarray:
    """`n` backtest records (engine/backtest/market_data.REC_DTYPE), vectorised: per instrument
    a random walk of the best bid (-2..+2 ticks per update), a spread of 1 tick (2-4 now and
    then), random sizes; a `trade_share` of the records are trades at the touch (the taker side
    at random); arrival gaps exponential with mean `mean_gap_ns`."""
    from engine.backtest.market_data import REC_DTYPE
    from engine.records import MD_TRADE, SIDE_BUY, SIDE_SELL

    rng = np.random.default_rng(seed)
    recs = np.zeros(n, REC_DTYPE)
    which = rng.integers(0, len(instruments), n)
    recs["instrument"] = which
    recs["ts"] = start_ns + np.cumsum(rng.exponential(mean_gap_ns, n).astype(np.int64))
    recs["update_id"] = np.arange(1, n + 1)
    trade = rng.random(n) < trade_share
    for i, inst in enumerate(instruments):
        mine = which == i
        m = int(mine.sum())
        start = int(Decimal(START_MID.get(inst.symbol, "100")).scaleb(-inst.pexp)) // inst.tick
        steps = np.where(trade[mine], 0, rng.integers(-2, 3, m))
        bid_t = np.maximum(start + np.cumsum(steps), 10)
        spread = np.where(rng.random(m) < 0.9, 1, rng.integers(2, 5, m))
        recs["bid_px"][mine] = bid_t * inst.tick
        recs["ask_px"][mine] = (bid_t + spread) * inst.tick
        recs["bid_qty"][mine] = rng.integers(1, 50_000, m) * inst.lot
        recs["ask_qty"][mine] = rng.integers(1, 50_000, m) * inst.lot
        buys = rng.random(m) < 0.5
        recs["trade_side"][mine] = np.where(buys, SIDE_BUY, SIDE_SELL)
        recs["trade_px"][mine] = np.where(buys, recs["ask_px"][mine], recs["bid_px"][mine])
        recs["trade_qty"][mine] = rng.integers(1, 20_000, m) * inst.lot
    recs["kind"] = np.where(trade, MD_TRADE, MD_BBO)
    recs["trade_px"][~trade] = 0
    recs["trade_qty"][~trade] = 0
    recs["trade_side"][~trade] = 0
    book = ~trade
    recs["bid_px"][trade] = recs["bid_qty"][trade] = 0
    recs["ask_px"][trade] = recs["ask_qty"][trade] = 0
    del book
    return recs
