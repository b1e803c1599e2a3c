"""Properties of the compiled quoter under arbitrary event sequences (hypothesis): quotes never
cross the book, sit on tick and lot, never take the position past its limit even if every
resting order fills, never exceed a rate limit in any window; the stale guard and the kill
switch each pull every quote."""
from __future__ import annotations

import random

import msgspec
import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from quoter_harness import Harness, ToyVenue, signed

from engine.control import KILL_OPERATOR
from engine.instruments import DEFAULT_INSTRUMENTS, Instrument
from engine.quoter.config import QuoterConfig
from engine.quoter.arrays import (
    C_STALE_PULLS, Q_CANCELING, Q_LIVE, Q_NONE, Q_PENDING, RATE_WINDOW_10S_NS, RATE_WINDOW_DAY_NS,
)
from engine.strategies.fixed_spread.config import FixedSpreadConfig
from engine.strategies.glft.config import GlftConfig
from tests.support.synthetic_ticks import START_MID
from engine.records import (
    ACTION_NEW, ACTION_REPLACE, FILL_CANCELED, FILL_POSITION, FILL_RESUME, MD_BBO, MD_DTYPE,
    MD_STALE, SIDE_BUY,
)

ODD = Instrument(symbol="XYZUSDT", tick_size="0.05", lot_size="0.1", price_exp=-3, qty_exp=-2)
INSTRUMENTS = DEFAULT_INSTRUMENTS + (ODD,)
COL = {name: k for k, name in enumerate(
    ("order_id", "orig_order_id", "instrument", "action", "side", "level", "post_only", "price",
     "qty", "update_id", "ts_arrival", "ts_md_published", "ts_quoter_read"))}

configs = st.builds(
    lambda levels, spacing, rq, fair, size_lots, pos_sizes, rate, day, band, floor, strategy:
    QuoterConfig(
        strategy=strategy, levels=levels, level_spacing_ticks=spacing, requote_ticks=rq,
        order_size=str(size_lots * 0.001)[:8], order_size_by_symbol={"XYZUSDT": "0.5"},
        max_position=str(pos_sizes * size_lots * 0.001)[:8],
        max_position_by_symbol={"XYZUSDT": str(pos_sizes * 0.5)},
        max_notional="100000", rate_per_10s=rate, rate_per_day=day, price_band_bps=band,
        stale_after_ms=50, max_quote_age_ms=300, max_drawdown="0",
        glft=GlftConfig(fair_value=fair, floor_spread_ticks=floor, gamma=0.05, k=0.3, A=2.0,
                        vol_half_life_s=1.0),
        fixed_spread=FixedSpreadConfig(fair_value=fair, half_spread_ticks=floor / 2,
                                       skew_ticks=floor / 3)),
    st.integers(1, 3), st.integers(1, 5), st.integers(1, 4), st.sampled_from(["mid", "micro"]),
    st.integers(1, 5), st.integers(0, 4), st.integers(1, 12), st.integers(5, 60),
    st.sampled_from([1.0, 5.0, 50.0]), st.integers(1, 6),
    st.sampled_from(["glft", "fixed_spread"]))

ops = st.lists(st.one_of(
    st.tuples(st.just("md"), st.integers(0, 2), st.integers(-40, 40), st.integers(1, 6),
              st.integers(1, 3000), st.integers(1, 3000)),
    st.tuples(st.just("fills"), st.integers(1, 6)),
    st.tuples(st.just("timer"), st.integers(0, 3_000_000_000)),
    st.tuples(st.just("stale"), st.integers(0, 2)),
), min_size=20, max_size=250)


class World:
    """The quoter under test, a venue that fills only resting orders (cancels take effect at
    once), and the book each instrument shows."""

    def __init__(self, q: QuoterConfig, seed: int):
        self.q = q
        self.h = Harness(q, INSTRUMENTS, with_reference=False)
        self.venue = ToyVenue(random.Random(seed), cancel_races=False, chaos=False)
        self.now = 1_000_000_000
        self.mid_t = [int(float(START_MID.get(i.symbol, "100")) * 10 ** -i.pexp) // i.tick
                      for i in INSTRUMENTS]
        self.book = [(0, 0)] * len(INSTRUMENTS)
        self.inventory = [0] * len(INSTRUMENTS)
        self.sends: list[int] = []
        self.update_id = 0
        for i in range(len(INSTRUMENTS)):
            self.h.fill(i, FILL_POSITION, qty=0)
        self.h.fill(0, FILL_RESUME)

    def md(self, i, step, spread, bid_lots, ask_lots, kind=MD_BBO):
        inst = INSTRUMENTS[i]
        self.mid_t[i] = max(self.mid_t[i] + step, 50)
        r = np.zeros(1, MD_DTYPE)[0]
        self.update_id += 1
        r["instrument"], r["kind"], r["update_id"] = i, kind, self.update_id
        r["bid_px"], r["ask_px"] = self.mid_t[i] * inst.tick, (self.mid_t[i] + spread) * inst.tick
        r["bid_qty"], r["ask_qty"] = bid_lots * inst.lot, ask_lots * inst.lot
        if kind & MD_BBO:
            self.book[i] = (int(r["bid_px"]), int(r["ask_px"]))
        self.h.md(r, self.now)

    def fills(self, n):
        for _ in range(n):
            ev = self.venue.event()
            if ev is None:
                return
            i, kind, oid, side, price, qty, leaves, code = ev
            if kind == 2:   # FILL_TRADE
                self.inventory[i] += signed(side, qty)
            self.h.fill(*ev)

    def end_batch(self) -> list[tuple]:
        intents = self.h.end_batch(self.now)
        self.check_intents(intents)
        self.venue.apply(intents)
        self.check_exposure()
        return intents

    def check_intents(self, intents):
        for it in intents:
            if it[COL["action"]] not in (ACTION_NEW, ACTION_REPLACE):
                continue
            i = it[COL["instrument"]]
            inst = INSTRUMENTS[i]
            price, qty = it[COL["price"]], it[COL["qty"]]
            best_bid, best_ask = self.book[i]
            assert price > 0 and price % inst.tick == 0, it
            assert qty > 0 and qty % inst.lot == 0, it
            assert it[COL["post_only"]] == 1
            if it[COL["side"]] == SIDE_BUY:
                assert price < best_ask, (it, self.book[i])
            else:
                assert price > best_bid, (it, self.book[i])
            self.sends.append(self.now)

    def check_exposure(self):
        """Inventory plus every resting order on one side, as if all of them filled, stays
        within max_position (the quoter starts flat)."""
        st_ = self.h.st
        for i in range(len(INSTRUMENTS)):
            limit = int(st_.par[i]["max_position"])
            assert int(st_.inst[i]["inventory"]) == self.inventory[i]
            bids = sum(o[3] for o in self.venue.orders.values() if o[0] == i and o[1] == SIDE_BUY)
            asks = sum(o[3] for o in self.venue.orders.values() if o[0] == i and o[1] != SIDE_BUY)
            assert self.inventory[i] + bids <= limit, (i, self.inventory[i], bids, limit)
            assert self.inventory[i] - asks >= -limit, (i, self.inventory[i], asks, limit)

    def open_quotes(self, i) -> int:
        s = self.h.st.quotes[i]["state"]
        return int(((s == Q_PENDING) | (s == Q_LIVE)).sum())


def _check_rate(sends, limit, window):
    sends = sorted(sends)
    for k in range(len(sends) - limit):
        assert sends[k + limit] - sends[k] >= window, (k, limit, sends[k:k + limit + 1])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(q=configs, events=ops, seed=st.integers(0, 2**32))
def test_quotes_respect_book_tick_lot_position_and_rate(q, events, seed):
    w = World(q, seed)
    for ev in events:
        w.now += 1_000_000
        if ev[0] == "md":
            w.md(*ev[1:])
        elif ev[0] == "fills":
            w.fills(ev[1])
        elif ev[0] == "timer":
            w.now += ev[1]
            w.h.timers(w.now)
        else:
            w.md(ev[1], 0, 1, 1, 1, kind=MD_STALE)
            w.end_batch()
            assert w.open_quotes(ev[1]) == 0, "a stale mark must pull every quote"
            assert not any(o[0] == ev[1] for o in w.venue.orders.values())
            continue
        w.end_batch()
    _check_rate(w.sends, q.rate_per_10s, RATE_WINDOW_10S_NS)
    _check_rate(w.sends, q.rate_per_day, RATE_WINDOW_DAY_NS)
    # kill switch: everything goes, nothing comes back
    assert w.h.kill(KILL_OPERATOR, w.now) != []
    w.venue.apply([(0, 0, 0, 4, 0, 0, 0, 0, 0)])
    assert (w.h.st.quotes["state"] == Q_NONE).all()
    w.md(0, 5, 1, 10, 10)
    w.h.fill(0, FILL_RESUME)
    assert w.end_batch() == []


@settings(max_examples=30, deadline=None)
@given(q=configs, seed=st.integers(0, 2**32), gap_ms=st.integers(51, 5000))
def test_stale_guard_pulls_every_quote_until_fresh_data(q, seed, gap_ms):
    q = msgspec.structs.replace(q, rate_per_10s=1000, rate_per_day=10_000)
    w = World(q, seed)
    for k in range(30):                     # quotes on every instrument, some acked
        w.now += 1_000_000
        w.md(k % 3, 0, 1, 100, 100)
        w.fills(3)
        w.end_batch()
    quoted = [i for i in range(3) if w.open_quotes(i)]
    w.now += gap_ms * 1_000_000             # no book update for longer than stale_after_ms
    w.h.timers(w.now)
    w.end_batch()
    assert all(w.open_quotes(i) == 0 for i in range(3))
    assert not w.venue.orders
    assert w.h.st.cnt[C_STALE_PULLS] >= len(quoted)
    quotes = w.h.st.quotes                  # the venue confirms every cancel, a replace's too
    gone = [(i, quotes[i, side, level][col]) for col, held in (("order_id", "state"),
                                                                ("prev_id", "prev_state"))
            for i, side, level in zip(*np.nonzero(quotes[held] == Q_CANCELING))]
    for i, order_id in gone:
        w.h.fill(int(i), FILL_CANCELED, int(order_id))
    w.now += 1_000_000
    w.md(0, 0, 1, 100, 100)                 # fresh data on one instrument: it quotes again
    out = w.end_batch()
    wanted = int(quotes[0]["want"].sum())
    assert len(out) == wanted and {it[COL["instrument"]] for it in out} <= {0}
    assert all(it[COL["action"]] == ACTION_NEW for it in out)
    assert w.end_batch() == []              # the others stay pulled: their data is still old

