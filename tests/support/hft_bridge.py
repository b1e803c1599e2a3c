"""hftbacktest (2.4.4, the field's reference backtester) beside `mm backtest`, for the
equality test and the benchmark. Needs `pip install 'mm-engine[test]'`; callers skip without it.

Two things:
- `events(md, inst)`: the market the backtest's venue sees, as hftbacktest events. The same
  decoded records (engine/backtest/market_data), with the venue's fusing of the best bid/ask
  with depth (engine/backtest/depth.py) written out as depth events: a best bid/ask sets its
  two levels and empties the levels it moved away from; a depth level beyond the best bid/ask
  is dropped. Exchange and local timestamps are both the arrival time (no feed latency, as in
  the backtest). hftbacktest's book then holds what the venue's L2 book holds near the market.
- `replay_orders(...)`: the requests the backtest's quoter sent, submitted to hftbacktest at
  the moments the quoter decided them (its constant order latency brings them to its
  exchange when they reached the backtest's venue), and hftbacktest's fills per order. A
  cancelReplace is a cancel then a new order; one the venue refused (its order had ended:
  STOP_ON_FAILURE places nothing) is the cancel alone.
- `fixed_spread(...)`: hftbacktest running a plain fixed-spread quoter of its own, for timing.
"""
from __future__ import annotations

import numpy as np

try:
    import hftbacktest as hbt_mod
    from hftbacktest import (
        BacktestAsset, HashMapMarketDepthBacktest,
    )
    from hftbacktest.order import GTX, LIMIT
    from hftbacktest.types import (
        BUY_EVENT, DEPTH_EVENT, EXCH_EVENT, LOCAL_EVENT, SELL_EVENT, TRADE_EVENT, event_dtype,
    )
except ImportError:          # the callers skip
    hbt_mod = None

from numba import njit

from engine.records import (
    ACTION_CANCEL, ACTION_NEW, ACTION_REPLACE, MD_BBO, MD_DEPTH, MD_TRADE, SIDE_BUY,
)

VERSION = getattr(hbt_mod, "__version__", None)

# The instrument of the backtest configs (fees appended by each): BTCUSDT at Binance's filters
BTCUSDT_TOML = """[[instruments]]
symbol = "BTCUSDT"
base = "BTC"
quote = "USDT"
tick_size = "0.01"
lot_size = "0.00001"
"""

# The engine side of the same-orders comparisons (tests/backtest, bench/backtest_hftbacktest.py):
# one quote per side 5 ticks out, requoted every tick, limits out of the way; {model} is the
# backtest's queue model
ENGINE_CONFIG = """
[quoter]
strategy = "fixed_spread"
levels = 1
requote_ticks = 1
max_quote_age_ms = 0
max_position = "10"
max_notional = "10000000"
rate_per_10s = 100000
rate_per_day = 10000000
[quoter.fixed_spread]
half_spread_ticks = 5
skew_ticks = 0
[backtest]
queue_model = "{model}"
order_latency_us = 1000
response_latency_us = 1000
""" + BTCUSDT_TOML + "maker_fee = -0.0001\n"


def events(md: np.ndarray, inst, instrument: int = 0) -> np.ndarray:
    """hftbacktest events for instrument `instrument` of `md` (see the module docstring)."""
    px_unit = 10.0 ** inst.pexp                 # price mantissa -> price
    tick = inst.tick * px_unit                  # ticks -> price
    t_of, q_of = inst.tick, 10.0 ** inst.qexp
    both = EXCH_EVENT | LOCAL_EVENT
    out = []
    bids: dict[int, int] = {}
    asks: dict[int, int] = {}
    bb = ba = 0

    def level(ts, side, p, q):
        book = bids if side == BUY_EVENT else asks
        if book.get(p, 0) == q:
            return
        if q:
            book[p] = q
        else:
            book.pop(p, None)
        out.append((DEPTH_EVENT | side | both, ts, ts, p * tick, q * q_of, 0, 0, 0.0))

    sel = md[md["instrument"] == instrument]
    for r in sel:
        ts = int(r["ts"])
        kind = int(r["kind"])
        if kind & MD_BBO:
            b, a = int(r["bid_px"]) // t_of, int(r["ask_px"]) // t_of
            bq, aq = int(r["bid_qty"]), int(r["ask_qty"])
            sides = []
            if b > 0:
                gone = [p for p in bids if p > b and (bb == 0 or p <= bb)]
                sides.append((BUY_EVENT, gone, b, bq))
            if a > 0:
                gone = [p for p in asks if p < a and (ba == 0 or p >= ba)]
                sides.append((SELL_EVENT, gone, a, aq))
            if b > 0 and ba > 0 and b >= ba:
                sides.reverse()               # moving up through the old ask: asks first
            for side, gone, p, q in sides:
                for g in sorted(gone):
                    level(ts, side, g, 0)
                level(ts, side, p, q)
            bb, ba = (b if b > 0 else bb), (a if a > 0 else ba)
        elif kind & MD_TRADE:
            side = BUY_EVENT if r["trade_side"] == SIDE_BUY else SELL_EVENT
            out.append((TRADE_EVENT | side | both, ts, ts, int(r["trade_px"]) * px_unit,
                        int(r["trade_qty"]) * q_of, 0, 0, 0.0))
        elif kind & MD_DEPTH:
            p = int(r["trade_px"]) // t_of
            if r["trade_side"] == SIDE_BUY:
                if bb and p > bb:
                    continue
                level(ts, BUY_EVENT, p, int(r["trade_qty"]))
            else:
                if ba and p < ba:
                    continue
                level(ts, SELL_EVENT, p, int(r["trade_qty"]))
    return np.array(out, dtype=event_dtype)


def asset(ev: np.ndarray, inst, latency_ns: int, queue: str = "risk_averse",
          maker_fee: float = 0.0, taker_fee: float = 0.0, power: float = 2.0):
    """A hftbacktest asset over `ev`: linear, constant order latency both ways, partial fills
    (the backtest's venue fills what a print leaves, not the whole order), the queue model."""
    a = (BacktestAsset().data([ev]).linear_asset(1.0)
         .constant_order_latency(latency_ns, latency_ns)
         .partial_fill_exchange()
         .trading_value_fee_model(maker_fee, taker_fee)
         .tick_size(10.0 ** inst.pexp * inst.tick).lot_size(10.0 ** inst.qexp * inst.lot)
         .last_trades_capacity(0))
    if queue == "risk_averse":
        a.risk_adverse_queue_model()
    elif queue.startswith("power_prob"):
        getattr(a, "power_prob_queue_model" + queue[len("power_prob"):])(power)
    else:                                          # log_prob, log_prob2
        getattr(a, "log_prob_queue_model" + queue[len("log_prob"):])()
    return a


K_NEW, K_CANCEL, K_REPLACE, K_REPLACE_REFUSED = 0, 1, 2, 3


def requests_of(requests: np.ndarray, fills: np.ndarray, latency_ns: int) -> np.ndarray:
    """The backtest's requests (what reached its venue, report.requests_of) as the driver's
    table: when the quoter decided each, and what to do in hftbacktest."""
    ended = {}                        # order id -> when it filled completely
    for f in fills:
        if f["leaves"] == 0:
            ended[int(f["order_id"])] = int(f["ts"])
    dt = np.dtype([("t", "i8"), ("kind", "i8"), ("order_id", "i8"), ("orig", "i8"),
                   ("buy", "i8"), ("price", "i8"), ("qty", "i8")])
    out = np.zeros(len(requests), dt)
    gone = set()                      # canceled or refused by us
    for k, q in enumerate(requests):
        t = int(q["ts_published"])
        action, oid, orig = int(q["action"]), int(q["order_id"]), int(q["orig_order_id"])
        if action == ACTION_NEW:
            kind = K_NEW
        elif action == ACTION_CANCEL:
            kind = K_CANCEL
            gone.add(orig)
        elif action == ACTION_REPLACE:
            refused = orig in gone or ended.get(orig, 1 << 62) <= t
            kind = K_REPLACE_REFUSED if refused else K_REPLACE
            gone.add(orig)
        else:
            raise ValueError(f"request action {action} has no hftbacktest counterpart")
        out[k] = (t - latency_ns, kind, oid, orig, q["side"] == SIDE_BUY, q["price"], q["qty"])
    return out


@njit
def _drive(hbt, req, tick, lot, end_ns, out_id, out_filled, out_status):
    hbt.wait_next_feed(False, 1)          # the clock starts at the first event
    for k in range(len(req)):
        t = req[k].t
        now = hbt.current_timestamp
        if t > now:
            hbt.elapse(t - now)
        r = req[k]
        kind = r.kind
        if kind == 1 or kind == 2 or kind == 3:
            hbt.cancel(0, r.orig, False)
        if kind == 0 or kind == 2:
            if r.buy:
                hbt.submit_buy_order(0, r.order_id, r.price * tick, r.qty * lot, 1, 0, False)
            else:
                hbt.submit_sell_order(0, r.order_id, r.price * tick, r.qty * lot, 1, 0, False)
    now = hbt.current_timestamp
    if end_ns > now:
        hbt.elapse(end_ns - now)
    n = 0
    values = hbt.orders(0).values()
    while values.has_next():
        o = values.get()
        out_id[n] = o.order_id
        out_filled[n] = o.qty - o.leaves_qty
        out_status[n] = o.status
        n += 1
    return n


def replay_orders(ev, inst, req, latency_ns: int, queue: str = "risk_averse",
                  maker_fee: float = 0.0, power: float = 2.0) -> dict:
    """Run hftbacktest over `ev` with the requests `req` (requests_of); per order id its filled
    quantity (in lots of the instrument's qty units) and status, and the account's totals."""
    bt = HashMapMarketDepthBacktest([asset(ev, inst, latency_ns, queue, maker_fee,
                                           power=power)])
    n = len(req) + 16
    ids, filled, status = np.zeros(n, np.int64), np.zeros(n, np.float64), np.zeros(n, np.int64)
    tick_units = 10.0 ** inst.pexp          # our price mantissa -> price
    qty_units = 10.0 ** inst.qexp
    end = int(ev["local_ts"][-1]) + 10 * latency_ns
    k = _drive(bt, req, tick_units, qty_units, end, ids, filled, status)
    sv = bt.state_values(0)
    res = {"filled": {int(i): int(round(f / qty_units)) for i, f in zip(ids[:k], filled[:k])},
           "status": {int(i): int(s) for i, s in zip(ids[:k], status[:k])},
           "fills": int(sv.num_trades), "position": float(sv.position),
           "volume": float(sv.trading_volume), "value": float(sv.trading_value),
           "fee": float(sv.fee), "balance": float(sv.balance)}
    bt.close()
    return res


@njit
def _ended(status):
    return status == 2 or status == 3 or status == 4 or status == 6   # expired, filled,
                                                                     # canceled, rejected


@njit
def _fixed_spread(hbt, half_ticks, qty, max_pos, max_orders):
    """hftbacktest's own loop quoting +-half_ticks around the mid, one order a side, requoted
    when the mid moves a tick: the strategy of the comparison, in hftbacktest's idiom."""
    tick = hbt.depth(0).tick_size
    next_id = 1
    bid_id = 0
    ask_id = 0
    bid_px = 0
    ask_px = 0
    while hbt.wait_next_feed(True, 1_000_000_000_000) != 1:      # 1: the end of the data
        if next_id > max_orders:
            return -next_id                 # runaway (a bug here): stop before the box suffers
        d = hbt.depth(0)
        if d.best_bid_tick <= 0 or d.best_ask_tick <= 0 or d.best_ask_tick <= d.best_bid_tick:
            continue
        mid2 = d.best_bid_tick + d.best_ask_tick
        want_bid = (mid2 - 2 * half_ticks) // 2
        want_ask = -((-(mid2 + 2 * half_ticks)) // 2)
        pos = hbt.position(0)
        orders = hbt.orders(0)
        if bid_id != 0:
            o = orders.get(bid_id)
            if o is None or _ended(o.status):
                bid_id = 0
            elif o.req == 0 and o.price_tick != want_bid and (o.status == 1 or o.status == 5):
                hbt.cancel(0, bid_id, False)
        if ask_id != 0:
            o = orders.get(ask_id)
            if o is None or _ended(o.status):
                ask_id = 0
            elif o.req == 0 and o.price_tick != want_ask and (o.status == 1 or o.status == 5):
                hbt.cancel(0, ask_id, False)
        if bid_id == 0 and pos < max_pos:
            bid_id = next_id
            next_id += 1
            bid_px = want_bid
            hbt.submit_buy_order(0, bid_id, bid_px * tick, qty, 1, 0, False)
        if ask_id == 0 and pos > -max_pos:
            ask_id = next_id
            next_id += 1
            ask_px = want_ask
            hbt.submit_sell_order(0, ask_id, ask_px * tick, qty, 1, 0, False)
        hbt.clear_inactive_orders(0)
    return next_id


def fixed_spread(ev, inst, latency_ns: int, half_ticks: int, qty: float, max_pos: float):
    """Run hftbacktest's own fixed-spread loop over `ev`; its totals."""
    bt = HashMapMarketDepthBacktest([asset(ev, inst, latency_ns)])
    orders = _fixed_spread(bt, half_ticks, qty, max_pos, 2 * len(ev) + 1000)
    sv = bt.state_values(0)
    res = {"orders": int(orders - 1), "fills": int(sv.num_trades),
           "position": float(sv.position)}
    bt.close()
    return res


__all__ = ["VERSION", "events", "asset", "requests_of", "replay_orders", "fixed_spread",
           "LIMIT", "GTX"]
