"""The backtest's venue (engine/backtest/venue.py, compiled) fills, refuses and cancels exactly
as the simulator's exchange (engine/sim/exchange.py) does with a replayed book, on seeded
random sequences of book moves, trade prints at, through and away from our prices, post-only
orders at, behind and inside the touch (some crossing), and cancels: the same fills (order,
quantity, price) in the same order, the same refusals, the same orders left resting."""
from __future__ import annotations

import random

import numpy as np
import pytest

from engine.backtest import venue
from engine.backtest.venue import (
    ACCT_DTYPE, FILL_LOG_DTYPE, V_RESP_HEAD, V_RESP_TAIL, V_WORDS, VBOOK_DTYPE, VORDER_DTYPE,
)
from engine.instruments import DEFAULT_INSTRUMENTS
from engine.records import (
    ACTION_CANCEL, ACTION_NEW, FILL_DTYPE, FILL_REJECT, FILL_TRADE, ORDER_DTYPE, SIDE_BUY,
    SIDE_SELL,
)
from engine.sim.exchange import ApiError, Exchange
from engine.sim.market import Book

BTC = DEFAULT_INSTRUMENTS[0]


class Both:
    """The simulator's exchange and the compiled venue, driven with the same events."""

    def __init__(self):
        self.book = Book(BTC, 0, "60000", random.Random(1), event_rate=100, volatility_bps=1,
                         trade_rate=1, spread_ticks_max=3, top_size_notional=50_000,
                         trade_size_notional=2_000)
        self.book.replayed = True
        self.events: list[dict] = []
        self.ex = Exchange([self.book], {"BTC": "1000000", "USDT": "100000000000"},
                           self.events.append, lambda: 0)
        self.by_client: dict[str, object] = {}
        self.vw = np.zeros(V_WORDS, np.int64)
        self.vw[venue.V_KEEP_NS] = 10**12
        self.vbook = np.zeros(1, VBOOK_DTYPE)
        self.orders = np.zeros(4096, VORDER_DTYPE)
        self.acct = np.zeros(1, ACCT_DTYPE)
        self.resp = np.zeros(1 << 14, FILL_DTYPE)
        self.resp_t = np.zeros(1 << 14, np.int64)
        self.log = np.zeros(1 << 14, FILL_LOG_DTYPE)
        self.qlog = np.zeros(1 << 14, ORDER_DTYPE)
        self.it = np.zeros(1, ORDER_DTYPE)
        self.t = 0
        self.next_id = 1

    def _sim_fills(self) -> list[tuple]:
        out = [(int(e["c"].rsplit("-", 1)[1]), e["l"], e["L"]) for e in self.events
               if e.get("e") == "executionReport" and e["x"] == "TRADE"]
        self.events.clear()
        return out

    def _venue_records(self, kind) -> list[tuple]:
        out = []
        for k in range(self.vw[V_RESP_HEAD], self.vw[V_RESP_TAIL]):
            r = self.resp[k % self.resp.shape[0]]
            if r["kind"] == kind:
                out.append((int(r["order_id"]), int(r["qty"]), int(r["price"]),
                            int(r["error_code"])))
        self.vw[V_RESP_HEAD] = self.vw[V_RESP_TAIL]
        return out

    def _wire(self, fills):
        from engine.sim.market import wire_decimal
        return [(n, wire_decimal(q, BTC.qexp), wire_decimal(p, BTC.pexp))
                for n, q, p, _ in fills]

    def book_move(self, bid, bid_qty, ask, ask_qty):
        self.t += 1
        b = self.book
        b.bid, b.bid_qty, b.ask, b.ask_qty = bid, bid_qty, ask, ask_qty
        self.ex.on_book(b)
        venue.on_book(self.vw, self.vbook, self.orders, 0, bid, bid_qty, ask, ask_qty, self.t,
                      self.acct, self.resp, self.resp_t, self.log)
        return self._compare_fills()

    def trade(self, taker_buys, price, qty):
        self.t += 1
        self.book.trade_id += 1
        self.ex.on_trade(self.book, taker_buys, price, qty, self.book.trade_id)
        venue.on_trade(self.vw, self.vbook, self.orders, 0, taker_buys, price, qty, self.t,
                       self.acct, self.resp, self.resp_t, self.log)
        return self._compare_fills()

    def _compare_fills(self) -> int:
        sim, ven = self._sim_fills(), self._wire(self._venue_records(FILL_TRADE))
        assert sim == ven
        return len(sim)

    def place(self, is_buy, price, qty) -> bool:
        n = self.next_id
        self.next_id += 1
        self.t += 1
        refused = False
        try:
            o, _ = self.ex.place(self.book, is_buy, "LIMIT_MAKER", "GTC", price, qty, f"x-0-{n}")
            self.by_client[n] = o
        except ApiError as e:
            assert e.code == -2010
            refused = True
        self.events.clear()
        it = self.it[0]
        it["order_id"], it["action"], it["instrument"] = n, ACTION_NEW, 0
        it["side"], it["price"], it["qty"] = SIDE_BUY if is_buy else SIDE_SELL, price, qty
        it["ts_published"] = self.t
        venue.on_intent(self.vw, self.vbook, self.orders, it, self.t, self.resp, self.resp_t,
                        self.qlog)
        rejects = self._venue_records(FILL_REJECT)
        assert bool(rejects) == refused and all(r[3] == venue.WOULD_CROSS for r in rejects)
        return not refused

    def cancel(self, n):
        self.t += 1
        o = self.by_client.pop(n)
        if o.status in ("NEW", "PARTIALLY_FILLED"):
            self.ex.cancel(o)
        self.events.clear()
        it = self.it[0]
        it["order_id"], it["orig_order_id"], it["action"] = 0, n, ACTION_CANCEL
        it["ts_published"] = self.t + 10**13       # the sender knows everything by now
        venue.on_intent(self.vw, self.vbook, self.orders, it, self.t, self.resp, self.resp_t,
                        self.qlog)
        self.vw[V_RESP_HEAD] = self.vw[V_RESP_TAIL]

    def resting(self) -> tuple[list, list]:
        sim = sorted((int(o.client_id.rsplit("-", 1)[1]), o.qty - o.filled)
                     for o in self.ex.open[BTC.symbol].values())
        k = self.vw[venue.V_USED]
        ven = sorted((int(o["order_id"]), int(o["qty"] - o["filled"]))
                     for o in self.orders[:k] if o["active"])
        return sim, ven


@pytest.mark.parametrize("seed", range(6))
def test_fills_refusals_and_resting_orders_match(seed):
    rng = random.Random(seed)
    w = Both()
    tick, lot = BTC.tick, BTC.lot
    bid = 6_000_000
    w.book_move(bid, 50 * lot, bid + tick, 40 * lot)
    fills = refusals = 0
    for _ in range(3000):
        r = rng.random()
        ask = w.book.ask
        if r < 0.35:                                  # the book moves (sometimes far)
            step = rng.choice((-1, 1)) * rng.choice((0, 1, 1, 2, 3, 8))
            bid = max(bid + step * tick, 100 * tick)
            spread = rng.choice((1, 1, 1, 2, 4))
            fills += w.book_move(bid, rng.randint(1, 80) * lot, bid + spread * tick,
                                 rng.randint(1, 80) * lot)
        elif r < 0.65:                                # a print at, through or away from us
            taker_buys = rng.random() < 0.5
            px = (ask if taker_buys else bid) + rng.choice((-2, -1, 0, 0, 0, 1, 2)) * tick
            fills += w.trade(taker_buys, px, rng.randint(1, 60) * lot)
        elif r < 0.9:                                 # a post-only order around the touch
            is_buy = rng.random() < 0.5
            off = rng.choice((-3, -1, 0, 0, 0, 1, 2, 5))
            px = (bid - off * tick) if is_buy else (ask + off * tick)
            refusals += not w.place(is_buy, max(px, tick), rng.randint(1, 30) * lot)
        elif w.by_client:
            w.cancel(rng.choice(list(w.by_client)))
        sim, ven = w.resting()
        assert sim == ven
    assert fills > 100 and refusals > 20       # the run exercised every rule
