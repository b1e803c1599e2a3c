"""The backtest venue's queue models (engine/backtest/queue.py) and its L2 book
(engine/backtest/depth.py): where an order joins the queue under each model, how trades and
size changes at its level move it, how the best bid/ask fuses with depth, and that the book's
window follows the market without losing a level."""
from __future__ import annotations

import math

import numpy as np
import pytest

from engine.backtest import depth, venue
from engine.backtest.queue import MODELS
from engine.backtest.venue import (
    ACCT_DTYPE, FILL_LOG_DTYPE, V_QMODEL, V_WORDS, VBOOK_DTYPE, VORDER_DTYPE,
)
from engine.records import ACTION_NEW, FILL_DTYPE, ORDER_DTYPE, SIDE_BUY, SIDE_SELL

TICK = 1


class Venue:
    """The compiled venue alone, one instrument, tick 1, driven by hand."""

    def __init__(self, model: str, power: float = 2.0):
        self.vw = np.zeros(V_WORDS, np.int64)
        self.vw[venue.V_KEEP_NS] = 10**12
        self.vw[V_QMODEL] = MODELS[model]
        self.book = np.zeros(1, VBOOK_DTYPE)
        self.book["tick"] = TICK
        self.book["qpow"] = power
        self.orders = np.zeros(64, VORDER_DTYPE)
        self.acct = np.zeros(1, ACCT_DTYPE)
        self.resp = np.zeros(1024, FILL_DTYPE)
        self.resp_t = np.zeros(1024, np.int64)
        self.log = np.zeros(1024, FILL_LOG_DTYPE)
        self.qlog = np.zeros(1024, ORDER_DTYPE)
        self.t = 0
        self.next_id = 1

    def bbo(self, bid, bid_qty, ask, ask_qty):
        self.t += 1
        venue.on_book(self.vw, self.book, self.orders, 0, bid, bid_qty, ask, ask_qty, self.t,
                      self.acct, self.resp, self.resp_t, self.log)

    def level(self, side, price, qty):
        venue.on_depth(self.vw, self.book, self.orders, 0, side, price, qty)

    def trade(self, taker_buys, price, qty) -> int:
        """The quantity it filled of ours."""
        self.t += 1
        n = self.vw[venue.V_NLOG]
        venue.on_trade(self.vw, self.book, self.orders, 0, taker_buys, price, qty, self.t,
                       self.acct, self.resp, self.resp_t, self.log)
        return int(self.log["qty"][n:self.vw[venue.V_NLOG]].sum())

    def buy(self, price, qty=1) -> int:
        it = np.zeros(1, ORDER_DTYPE)[0]
        it["order_id"], it["action"], it["instrument"] = self.next_id, ACTION_NEW, 0
        it["side"], it["price"], it["qty"] = SIDE_BUY, price, qty
        self.next_id += 1
        self.t += 1
        venue.on_intent(self.vw, self.book, self.orders, it, self.t, self.resp, self.resp_t,
                        self.qlog)
        return int(np.flatnonzero(self.orders["order_id"] == it["order_id"])[0])

    def ahead(self, row) -> float:
        return float(self.orders["queue"][row])

    def qty_at(self, side, price) -> int:
        return int(depth.qty_at(self.book[0], side, price))


def test_touch_queues_behind_the_touch_and_ignores_depth():
    v = Venue("touch")
    v.bbo(1000, 10, 1001, 10)
    v.level(SIDE_BUY, 999, 7)
    row = v.buy(999)
    assert v.ahead(row) == 10                 # behind the touch: what the touch shows
    v.level(SIDE_BUY, 999, 2)
    assert v.ahead(row) == 10                 # size changes do not move it
    assert v.trade(False, 999, 10) == 0
    assert v.trade(False, 999, 1) == 1


def test_risk_averse_queues_at_its_own_level_and_is_capped_when_it_shrinks():
    v = Venue("risk_averse")
    v.bbo(1000, 10, 1001, 10)
    v.level(SIDE_BUY, 999, 7)
    row = v.buy(999, 5)
    assert v.ahead(row) == 7                  # the size at its own price
    v.level(SIDE_BUY, 999, 9)
    assert v.ahead(row) == 7                  # growth joins behind
    v.level(SIDE_BUY, 999, 3)
    assert v.ahead(row) == 3                  # capped at the level
    assert v.trade(False, 999, 5) == 2        # 3 ahead, 2 of the print fill us
    assert v.ahead(row) == 0
    at_touch = v.buy(1000)
    assert v.ahead(at_touch) == 10            # at the touch: the touch's size


def test_an_order_improving_on_the_touch_is_first_under_every_model():
    for model in MODELS:
        v = Venue(model)
        v.bbo(1000, 10, 1005, 10)
        row = v.buy(1002)
        assert v.ahead(row) == 0, model


def test_the_best_bid_moving_away_empties_the_levels_it_left():
    v = Venue("risk_averse")
    v.bbo(1000, 10, 1001, 10)
    row = v.buy(1000)
    assert v.ahead(row) == 10
    v.bbo(998, 4, 1001, 10)                   # 1000 and 999 are gone
    assert v.qty_at(depth.BID, 1000) == 0 and v.qty_at(depth.BID, 998) == 4
    assert v.ahead(row) == 0
    v.bbo(998, 4, 1003, 6)                    # the ask moved up: 1001, 1002 gone
    assert v.qty_at(depth.ASK, 1001) == 0 and v.qty_at(depth.ASK, 1003) == 6


def test_depth_beyond_the_best_bid_ask_is_older_than_it_and_dropped():
    v = Venue("risk_averse")
    v.bbo(1000, 10, 1001, 10)
    v.level(SIDE_BUY, 1001, 5)                # a bid above the best bid
    v.level(SIDE_SELL, 1000, 5)               # an ask below the best ask
    assert v.qty_at(depth.BID, 1001) == 0 and v.qty_at(depth.ASK, 1000) == 0
    v.level(SIDE_BUY, 1000, 12)               # at the touch: taken
    assert v.qty_at(depth.BID, 1000) == 12


def _expected(model, n, front, prev, new):
    back = prev - front
    chg = prev - new
    f = {"power_prob": lambda: back**n / (back**n + front**n),
         "power_prob2": lambda: back**n / (back + front)**n,
         "power_prob3": lambda: 1 - (front / (front + back))**n,
         "log_prob": lambda: math.log1p(back) / (math.log1p(back) + math.log1p(front)),
         "log_prob2": lambda: math.log1p(back) / math.log1p(back + front)}[model]
    p = f()
    return min(front - (1 - p) * chg + min(back - p * chg, 0.0), new)


@pytest.mark.parametrize("model", ["power_prob", "power_prob2", "power_prob3", "log_prob",
                                   "log_prob2"])
def test_probabilistic_models_take_a_cancel_as_ahead_with_their_probability(model):
    v = Venue(model, power=3.0)
    v.bbo(1000, 10, 1001, 10)
    v.level(SIDE_BUY, 999, 10)
    row = v.buy(999)
    assert v.ahead(row) == 10
    assert v.trade(False, 999, 4) == 0        # 6 ahead; the level will show the 4 gone
    v.level(SIDE_BUY, 999, 15)                # 10 - 4 traded + 9 joined: only growth
    assert v.ahead(row) == 6
    v.level(SIDE_BUY, 999, 10)                # 5 cancelled: ahead of us or behind
    got = v.ahead(row)
    assert got == pytest.approx(_expected(model, 3.0, 6.0, 15.0, 10.0))
    assert 1.0 <= got < 6.0                   # somewhere between all ahead and all behind


def test_a_trade_explained_drop_is_not_counted_twice():
    v = Venue("power_prob")
    v.bbo(1000, 10, 1001, 10)
    v.level(SIDE_BUY, 999, 10)
    row = v.buy(999)
    v.trade(False, 999, 4)
    v.level(SIDE_BUY, 999, 6)                 # exactly what traded
    assert v.ahead(row) == 6


def test_the_window_follows_the_market_and_keeps_its_levels():
    v = Venue("risk_averse")
    mid = 1_000_000
    v.bbo(mid, 10, mid + 1, 10)
    v.level(SIDE_BUY, mid - 50, 7)
    base = int(v.book["base"][0])
    far = mid + depth.WINDOW // 2             # out of the middle half: the window moves
    v.bbo(far, 3, far + 1, 3)
    assert int(v.book["base"][0]) != base
    assert v.qty_at(depth.BID, far) == 3
    # what was left behind inside the new window is still there (the bid moved up: nothing
    # below it was emptied)
    if mid - 50 >= int(v.book["base"][0]) * TICK:
        assert v.qty_at(depth.BID, mid - 50) == 7


def test_risk_averse_never_queues_more_than_its_level_shows():
    rng = np.random.default_rng(3)
    v = Venue("risk_averse")
    v.bbo(1000, 10, 1001, 10)
    rows = [v.buy(p) for p in (1000, 999, 998, 997)]
    for _ in range(2000):
        p = int(rng.integers(996, 1001))
        v.level(SIDE_BUY, p, int(rng.integers(0, 30)))
        if rng.random() < 0.3:
            v.trade(False, p, int(rng.integers(1, 5)))
        for row in rows:
            o = v.orders[row]
            if o["active"]:
                assert o["queue"] <= v.qty_at(depth.BID, int(o["price"]))
