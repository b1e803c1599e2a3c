"""The compiled quoter and the plain-Python reference produce identical intents (same prices,
sizes, actions, ids, stamps) on 100,000 seeded ticks with acks, fills, rejects, cancels,
refused cancels and replaces, unknown outcomes, sender resets, stale marks, crossed books,
timer passes, rate limits, risk limits and a final kill; and after every batch each order the
venue holds is held by exactly one quote slot."""
from __future__ import annotations

import random

import numpy as np
import pytest
from quoter_harness import Harness, ToyVenue

from engine.control import KILL_OPERATOR
from engine.instruments import DEFAULT_INSTRUMENTS, Instrument
from engine.quoter.config import QuoterConfig
from engine.quoter.arrays import (
    Q_NONE, C_RATE_LIMITED, C_RISK_BAND, C_RISK_NOTIONAL, C_RISK_POSITION, C_STALE_PULLS, G_DRAWDOWN_HIT,
    G_NEXT_ID,
)
from engine.records import FILL_POSITION, FILL_RESUME
from engine.strategies.fixed_spread.config import FixedSpreadConfig
from engine.strategies.glft.config import GlftConfig
from tests.support.synthetic_ticks import random_ticks

# a third instrument with a tick of 5 units and a coarse lot exercises the rounding paths
ODD = Instrument(symbol="SOLUSDT", base="SOL", quote="USDT", tick_size="0.05", lot_size="0.1",
                 price_exp=-3, qty_exp=-2)
INSTRUMENTS = DEFAULT_INSTRUMENTS + (ODD,)


def _config(strategy: str, fair_value: str) -> QuoterConfig:
    # small limits so every risk branch fires often in a short run
    return QuoterConfig(
        strategy=strategy, levels=3, level_spacing_ticks=4, requote_ticks=3,
        max_quote_age_ms=2000, stale_after_ms=150, order_size="0.002", max_position="0.006",
        order_size_by_symbol={"SOLUSDT": "0.3"}, max_position_by_symbol={"SOLUSDT": "1"},
        max_notional="300", price_band_bps=30, rate_per_10s=300, rate_per_day=6000,
        max_drawdown="40",
        glft=GlftConfig(fair_value=fair_value, gamma=0.05, k=0.3, A=2.0, vol_half_life_s=2.0),
        # a skew that pushes the quotes through the book now and then: the core's clamp acts
        fixed_spread=FixedSpreadConfig(fair_value=fair_value, half_spread_ticks=1.0,
                                       skew_ticks=1.5, max_skew_ticks=4))


def _assert_each_resting_order_held_once(h: Harness, venue: ToyVenue) -> None:
    """The invariant of order truth: every order the venue holds is held by exactly one slot
    (as its current order, or as the order a replace is taking the place of)."""
    q = h.st.quotes
    held = np.concatenate((q["order_id"][q["state"] != Q_NONE], q["prev_id"][q["prev_id"] != 0]))
    ids, counts = np.unique(held, return_counts=True)
    times = dict(zip(ids.tolist(), counts.tolist()))
    for oid in venue.orders:
        assert times.get(oid) == 1, (oid, times.get(oid), venue.orders[oid])


def _replay(seed: int, n_ticks: int, fair_value: str, strategy: str = "glft") -> Harness:
    rng = random.Random(seed)
    h = Harness(_config(strategy, fair_value), INSTRUMENTS, with_reference=True, first_id=7_000_001)
    venue = ToyVenue(rng)
    ticks = random_ticks(seed, n_ticks, INSTRUMENTS, stale_every=997, crossed_every=1499)
    now = 1_000_000_000
    for i in range(len(INSTRUMENTS)):
        h.fill(i, FILL_POSITION, qty=0)
    h.fill(0, FILL_RESUME)
    k = 0
    while k < n_ticks:
        now += rng.choice((0, 1_000, 200_000, 3_000_000, 20_000_000))
        if rng.random() < 0.002:
            now += 300_000_000                  # a gap longer than stale_after: timers pull
        r = rng.random()
        if r < 0.7:
            for _ in range(rng.randint(1, 4)):  # one ring batch
                if k < n_ticks:
                    h.md(ticks[k], now)
                    k += 1
        elif r < 0.95:
            for _ in range(rng.randint(1, 3)):
                ev = venue.event()
                if ev is not None:
                    h.fill(*ev)
        else:
            h.timers(now)
        venue.apply(h.end_batch(now))
        _assert_each_resting_order_held_once(h, venue)
    venue.apply(h.kill(KILL_OPERATOR, now + 1))
    assert h.end_batch(now + 2) == []           # killed: nothing more
    return h


@pytest.mark.parametrize("seed,n_ticks,fair_value,strategy", [
    pytest.param(11, 100_000, "mid", "glft", marks=pytest.mark.slow), (12, 10_000, "micro", "glft"),
    (13, 30_000, "mid", "fixed_spread"), (14, 5_000, "micro", "fixed_spread")])
def test_numba_and_reference_emit_identical_intents(seed, n_ticks, fair_value, strategy):
    h = _replay(seed, n_ticks, fair_value, strategy)
    cnt, ref = h.st.cnt, h.ref.counts
    for idx, name in ((C_RISK_BAND, "risk_band"), (C_RISK_POSITION, "risk_position"),
                      (C_RISK_NOTIONAL, "risk_notional"), (C_RATE_LIMITED, "rate_limited"),
                      (C_STALE_PULLS, "stale_pulls")):
        assert cnt[idx] == ref.get(name, 0), name
    assert int(h.st.g[G_NEXT_ID]) == h.ref.next_id
    assert bool(h.st.g[G_DRAWDOWN_HIT]) == h.ref.drawdown_hit
    # the run really exercised the model: every action and every risk branch happened
    from engine.quoter.arrays import C_CANCEL, C_NEW, C_REPLACE
    for idx in (C_NEW, C_REPLACE, C_CANCEL, C_RISK_BAND, C_RISK_POSITION, C_RATE_LIMITED,
                C_STALE_PULLS):
        assert cnt[idx] > 0, idx
    if n_ticks == 100_000:
        assert cnt[C_RISK_NOTIONAL] > 0
        # ... and every order-truth path: refused cancels and replaces, unknown outcomes,
        # a new sender's reset, back-offs, and rate charges given back for unsent orders
        from engine.quoter.arrays import (C_BACKOFFS, C_CANCEL_REJECTS, C_RATE_REFUNDS,
                                          C_RESETS, C_UNKNOWNS)
        for idx in (C_CANCEL_REJECTS, C_UNKNOWNS, C_RESETS, C_BACKOFFS, C_RATE_REFUNDS):
            assert cnt[idx] > 0, idx


def test_replays_are_seed_determined():
    """Guard against a harness that compares two empty or constant streams: the same seed gives
    the same counters, another seed different ones."""
    a = _replay(5, 3_000, "mid").st.cnt.copy()
    b = _replay(5, 3_000, "mid").st.cnt.copy()
    c = _replay(6, 3_000, "mid").st.cnt.copy()
    assert (a == b).all() and (a != c).any()
