"""The venue of the backtest: the simulator's matching rules (engine/sim/exchange.py, replay
mode) compiled, and the fill records the sender would emit for what the venue does
(engine/sender/venues/binance/gateway.py with cancelReplaceMode STOP_ON_FAILURE). Hot path.

Matching, as in the simulator:
- A post-only order that would cross the venue's book is refused (-2010). Otherwise it rests;
  its queue position comes from the queue model ([backtest] queue_model, engine/backtest/
  queue.py). The default, `touch`, is the simulator's: the displayed size at the touch of its
  side when it joined, or 0 when it improves on the touch (a book-ticker capture shows nothing
  behind the touch: an order behind it queues behind what the touch shows). The others read
  the size at the order's own level from the L2 book (engine/backtest/depth.py), which the
  capture's depth frames and the best bid/ask keep (on_depth, on_book), and move with it.
- A trade print at the order's price consumes the queue ahead first, what is left fills the
  order; each order sees the whole print. A print through the order's price fills it fully.
- A book that moves through a resting order (best ask <= our bid, best bid >= our ask) fills
  it fully at its own price.
- Orders are matched in the order they were placed. No balance limits. Fees: every fill is a
  maker fill, charged the instrument's maker_fee rate on its notional (negative: a rebate).
What the sender emits for it, in the order the venue reports:
  NEW       -> ACK, or REJECT(-2010) when it would cross
  REPLACE   -> CANCELED(old), then ACK(new) or REJECT(new, -2010)
  CANCEL    -> CANCELED
  CANCEL_ALL -> CANCELED for every resting order
  fills     -> TRADE(last price, qty, leaves)
A REPLACE or CANCEL of an order that is no longer at the venue (filled, canceled or refused
before the intent arrived): when the sender had heard of its end as the intent reached it
(the end plus the response latency, the venue-to-us delay, is not after the quoter's decision:
quoter and sender share a box) it does not send it: a REPLACE is refused by the
sender itself (REJECT with LOCAL_UNKNOWN_ORDER: the quoter gives its rate charge back), a
CANCEL just ends. Otherwise the venue gets it and refuses: a REPLACE with -2022 (its cancel
leg found nothing; STOP_ON_FAILURE places nothing), a CANCEL with -2011 (the sender then
waits for the report of the end, already on its way).
Each record reaches the quoter `response latency` after the venue made it. Every request that
does reach the venue is logged (qlog), as the simulator logs the requests it receives.

Money is counted here too, from the venue's side (acct): position, cash, average-cost
realised PnL, spread captured against the exact mid before the event that filled us, fees.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from engine.backtest import depth, queue
from engine.records import (
    ACTION_CANCEL, ACTION_CANCEL_ALL, ACTION_NEW, ACTION_REPLACE, ALL_INSTRUMENTS, FILL_ACK,
    FILL_CANCELED, FILL_REJECT, FILL_TRADE, SIDE_BUY, SIDE_SELL,
)
from engine.sender.fills import LOCAL_UNKNOWN_ORDER

WOULD_CROSS = -2010             # LIMIT_MAKER that would take: refused
REPLACE_FAILED = -2022          # cancelReplace whose cancel leg found no order (nothing done)

VBOOK_DTYPE = np.dtype([
    ("bid", "i8"), ("bid_qty", "i8"), ("ask", "i8"), ("ask_qty", "i8"),
    ("mark", "i8"),             # (bid + ask) // 2 of the last book with both sides
    ("mark2", "i8"),            # bid + ask of that book: twice the mid, exact
    ("tick", "i8"),             # price units; 0: no L2 book (only the touch is known)
    ("base", "i8"),             # levels[s, k] is the size at (base + k) * tick
    ("qpow", "f8"),             # the probabilistic queue models' exponent
    ("levels", "i8", (2, depth.WINDOW)),    # engine/backtest/depth.py
], align=True)

VORDER_DTYPE = np.dtype([
    ("active", "i8"),           # 1: resting; 0: ended (kept a while: see _compact)
    ("order_id", "i8"), ("instrument", "i8"), ("side", "i8"),
    ("price", "i8"), ("qty", "i8"), ("filled", "i8"),
    ("queue", "f8"),            # displayed quantity still ahead of it at its price
    ("traded", "f8"),           # traded at its price since the level last changed (queue.py)
    ("ended_ns", "i8"),         # when it filled or was canceled
], align=True)

ACCT_DTYPE = np.dtype([
    ("pos", "i8"), ("cash", "i8"),        # qty units; px*qty units
    ("avg_px", "f8"),           # average cost of the open position, price units
    ("realized", "f8"),         # px*qty units
    ("spread", "f8"),           # sum of (mid before - price) * qty for buys (sells: reversed)
    ("fees", "f8"),             # commission paid, px*qty units (negative: rebates received)
    ("maker_fee", "f8"), ("taker_fee", "f8"),     # rates (fractions of notional), set once
    ("fills", "i8"), ("bought", "i8"), ("sold", "i8"),
    ("notional", "f8"),         # sum of price * qty, px*qty units
    ("max_pos", "i8"), ("min_pos", "i8"),
], align=True)

FILL_LOG_DTYPE = np.dtype([
    ("ts", "i8"), ("order_id", "i8"), ("price", "i8"), ("qty", "i8"),
    ("mid2_before", "i8"),      # twice the venue's mid before the event that filled us (exact)
    ("fee", "f8"),              # commission of this fill, px*qty units (negative: rebate)
    ("leaves", "i8"), ("instrument", "i4"), ("side", "i4"),
], align=True)

# venue words (vw)
V_USED = 0          # order table high-water mark (placement order below it)
V_ACTIVE = 1        # resting orders
V_RESP_HEAD = 2     # response FIFO: next to deliver ...
V_RESP_TAIL = 3     # ... next free
V_NLOG = 4          # fill log entries written (the caller empties the log)
V_REJECTS = 5       # orders the venue refused (would cross)
V_OVERFLOW = 6      # a table or FIFO was full: the run is wrong, the caller stops
V_RESP_LAT = 7      # response latency, ns
V_NREQ = 8          # request log entries written (the caller empties the log)
V_UNSENT = 9        # replaces the sender refused (the order had ended) and cancels it dropped
V_KEEP_NS = 10      # ended orders stay findable this long (longer than any latency)
V_QMODEL = 11       # the queue model (queue.MODELS)
V_FIRST = 12        # the first row that rests (rows before it have ended: loops start here)
V_KEPT = 13         # rows kept by the last compaction (the next one when twice as many)
V_WORDS = 14

_jit = njit(cache=True, nogil=True, fastmath=False, _nrt=False)


@_jit
def _respond(vw, resp, resp_t, t, kind, order_id, i, side, price, qty, cum, leaves, code):
    """Queue the fill record the sender would write; it reaches the quoter after the response
    latency (constant: the FIFO stays in time order)."""
    tail = vw[V_RESP_TAIL]
    if tail - vw[V_RESP_HEAD] >= resp.shape[0]:
        vw[V_OVERFLOW] = 1
        return
    k = tail % resp.shape[0]
    r = resp[k]
    r.seq = 0
    r.order_id = order_id
    r.instrument = i
    r.kind = kind
    r.side = side
    r.price = price
    r.qty = qty
    r.cum_qty = cum
    r.leaves_qty = leaves
    r.error_code = code
    r.ts_venue = t
    r.ts_received = t
    resp_t[k] = t + vw[V_RESP_LAT]
    vw[V_RESP_TAIL] = tail + 1


@_jit
def _account(a, side, price, qty):
    """Position, cash and average-cost realised PnL after one fill."""
    signed = qty if side == SIDE_BUY else -qty
    pos = a.pos
    new = pos + signed
    if pos == 0 or (pos > 0) == (signed > 0):
        a.avg_px = (a.avg_px * abs(pos) + price * qty) / abs(new)
    else:
        closed = min(qty, abs(pos))
        a.realized += (price - a.avg_px) * closed * (1.0 if pos > 0 else -1.0)
        if qty > closed:
            a.avg_px = float(price)           # flipped: the rest opens at this price
        elif new == 0:
            a.avg_px = 0.0
    a.pos = new
    a.cash -= signed * price
    if new > a.max_pos:
        a.max_pos = new
    if new < a.min_pos:
        a.min_pos = new
    a.fills += 1
    a.notional += float(price) * qty
    if side == SIDE_BUY:
        a.bought += qty
    else:
        a.sold += qty


@_jit
def _fill(vw, orders, j, qty, price, mid2_before, t, acct, resp, resp_t, log):
    """Our resting order j fills `qty` at `price` (always as the maker: post-only orders)."""
    o = orders[j]
    o.filled += qty
    leaves = o.qty - o.filled
    a = acct[o.instrument]
    _account(a, o.side, price, qty)
    edge2 = (mid2_before - 2 * price) if o.side == SIDE_BUY else (2 * price - mid2_before)
    a.spread += float(edge2) * qty * 0.5
    fee = a.maker_fee * float(price) * qty
    a.fees += fee
    n = vw[V_NLOG]
    if n < log.shape[0]:
        e = log[n]
        e.ts = t
        e.order_id = o.order_id
        e.price = price
        e.qty = qty
        e.mid2_before = mid2_before
        e.fee = fee
        e.leaves = leaves
        e.instrument = o.instrument
        e.side = o.side
        vw[V_NLOG] = n + 1
    else:
        vw[V_OVERFLOW] = 2
    _respond(vw, resp, resp_t, t, FILL_TRADE, o.order_id, o.instrument, o.side, price, qty,
             o.filled, leaves, 0)
    if leaves <= 0:
        _end(vw, orders, j, t)


@_jit
def _end(vw, orders, j, t):
    """Order j stops resting at t (filled or canceled)."""
    o = orders[j]
    o.active = 0
    o.ended_ns = t
    vw[V_ACTIVE] -= 1
    if j == vw[V_FIRST]:
        k = j + 1
        while k < vw[V_USED] and orders[k].active == 0:
            k += 1
        vw[V_FIRST] = k


@_jit
def on_book(vw, book, orders, i, bid, bid_qty, ask, ask_qty, t, acct, resp, resp_t, log):
    """A book update of instrument i: orders it moved through fill at their own price."""
    b = book[i]
    mid2_before = b.mark2
    old_bid, old_ask = b.bid, b.ask
    b.bid = bid
    b.bid_qty = bid_qty
    b.ask = ask
    b.ask_qty = ask_qty
    if bid > 0 and ask > 0:
        b.mark = (bid + ask) // 2
        b.mark2 = bid + ask
    if mid2_before == 0:
        mid2_before = b.mark2
    if depth.enabled(b) and vw[V_QMODEL] != queue.TOUCH:
        if bid > 0 and ask > 0:
            depth.recentre(b, b.mark)
        top = (b.base + depth.WINDOW - 1) * b.tick
        if bid > 0:
            if old_bid > bid or old_bid == 0:   # the bids it moved away from are gone (the
                _clear(vw, b, orders, i, depth.BID, bid + b.tick,   # first: any depth above)
                       old_bid if old_bid > 0 else top)
            _level(vw, b, orders, i, depth.BID, bid, bid_qty)
        if ask > 0:
            if 0 < old_ask < ask or old_ask == 0:
                _clear(vw, b, orders, i, depth.ASK, old_ask if old_ask > 0 else b.base * b.tick,
                       ask - b.tick)
            _level(vw, b, orders, i, depth.ASK, ask, ask_qty)
    for j in range(vw[V_FIRST], vw[V_USED]):
        o = orders[j]
        if o.active == 0 or o.instrument != i:
            continue
        if (ask > 0 and ask <= o.price) if o.side == SIDE_BUY else (bid > 0 and bid >= o.price):
            _fill(vw, orders, j, o.qty - o.filled, o.price, mid2_before, t, acct, resp,
                  resp_t, log)


@_jit
def _level(vw, b, orders, i, side, price, qty):
    """The size at one level of instrument i changed: the queue model moves our orders there."""
    prev = depth.set_qty(b, side, price, qty)
    if prev < 0 or prev == qty:
        return
    model = vw[V_QMODEL]
    our_side = SIDE_BUY if side == depth.BID else SIDE_SELL
    for j in range(vw[V_FIRST], vw[V_USED]):
        o = orders[j]
        if o.active != 0 and o.instrument == i and o.side == our_side and o.price == price:
            queue.on_level_change(model, b.qpow, o, prev, qty)


@_jit
def _clear(vw, b, orders, i, side, lo, hi):
    """Empty the levels lo..hi (prices) of one side, within the window."""
    lo = max(lo, (b.base) * b.tick)
    hi = min(hi, (b.base + depth.WINDOW - 1) * b.tick)
    for p in range(lo, hi + 1, b.tick):
        if depth.qty_at(b, side, p) != 0:
            _level(vw, b, orders, i, side, p, 0)


@_jit
def on_depth(vw, book, orders, i, side, price, qty):
    """A depth frame's level of instrument i (side SIDE_*; qty 0: the level is gone). Levels
    beyond the best bid/ask are older than it and dropped (depth.py: fusing)."""
    b = book[i]
    if not depth.enabled(b) or vw[V_QMODEL] == queue.TOUCH:
        return
    if side == SIDE_BUY:
        if b.bid > 0 and price > b.bid:
            return
        if b.base == 0:
            depth.recentre(b, price)
        _level(vw, b, orders, i, depth.BID, price, qty)
    else:
        if b.ask > 0 and price < b.ask:
            return
        if b.base == 0:
            depth.recentre(b, price)
        _level(vw, b, orders, i, depth.ASK, price, qty)


@_jit
def on_trade(vw, book, orders, i, taker_buys, price, qty, t, acct, resp, resp_t, log):
    """A market trade print: it hits our orders on the other side at or through its price."""
    mid2 = book[i].mark2
    for j in range(vw[V_FIRST], vw[V_USED]):
        o = orders[j]
        if o.active == 0 or o.instrument != i or (o.side == SIDE_BUY) == taker_buys:
            continue
        left = o.qty - o.filled
        through = price < o.price if o.side == SIDE_BUY else price > o.price
        if through:
            take = left
        elif price == o.price:
            take = min(left, queue.on_trade(o, qty))
        else:
            continue
        if take > 0:
            _fill(vw, orders, j, take, o.price, mid2, t, acct, resp, resp_t, log)


@_jit
def _find(vw, orders, order_id):
    """The row of `order_id`, resting or recently ended; -1 when none. From the newest row:
    a replace or cancel names a recent order (ids are unique: the direction changes nothing)."""
    for j in range(vw[V_USED] - 1, -1, -1):
        if orders[j].order_id == order_id:
            return j
    return -1


@_jit
def _compact(vw, orders, t):
    """Drop orders that ended more than V_KEEP_NS ago, keeping placement order."""
    k = 0
    first = -1
    for j in range(vw[V_USED]):
        o = orders[j]
        if o.active != 0 or t - o.ended_ns < vw[V_KEEP_NS]:
            if k != j:
                orders[k] = orders[j]
            if first < 0 and orders[k].active != 0:
                first = k
            k += 1
    vw[V_USED] = k
    vw[V_KEPT] = k
    vw[V_FIRST] = k if first < 0 else first


@_jit
def _add(vw, orders, it, t, active, ahead):
    """A row for the order `it` names: resting (active) or refused at once (kept, ended at t,
    so a cancel sent for it before its refusal came back is recognised)."""
    if vw[V_USED] >= orders.shape[0] or vw[V_USED] > 2 * vw[V_KEPT] + 64:
        _compact(vw, orders, t)       # amortised: the table at least doubled since the last
    if vw[V_USED] >= orders.shape[0]:
        vw[V_OVERFLOW] = 3
        return
    o = orders[vw[V_USED]]
    o.active = active
    o.order_id = it.order_id
    o.instrument = it.instrument
    o.side = it.side
    o.price = it.price
    o.qty = it.qty
    o.filled = 0
    o.queue = ahead
    o.traded = 0.0
    o.ended_ns = 0 if active else t
    if active and vw[V_ACTIVE] == 0:
        vw[V_FIRST] = vw[V_USED]
    vw[V_USED] += 1
    vw[V_ACTIVE] += active


@_jit
def _place(vw, book, orders, it, t, resp, resp_t):
    """A post-only order arrives: refused if it would cross, else it rests and is acked."""
    b = book[it.instrument]
    model = vw[V_QMODEL]
    if it.side == SIDE_BUY:
        crosses = b.ask > 0 and it.price >= b.ask
        improves, touch, side = it.price > b.bid, b.bid_qty, depth.BID
    else:
        crosses = b.bid > 0 and it.price <= b.bid
        improves, touch, side = it.price < b.ask, b.ask_qty, depth.ASK
    if model == queue.TOUCH:
        level = touch
    elif depth.enabled(b):
        level = depth.qty_at(b, side, it.price)
    else:                                # no L2 book: only the touch is known
        level = touch if it.price == (b.bid if side == depth.BID else b.ask) else 0
    ahead = queue.ahead_when_joining(model, improves, touch, level)
    if crosses:
        vw[V_REJECTS] += 1
        _add(vw, orders, it, t, 0, 0.0)
        _respond(vw, resp, resp_t, t, FILL_REJECT, it.order_id, it.instrument, it.side,
                 it.price, it.qty, 0, 0, WOULD_CROSS)
        return
    _add(vw, orders, it, t, 1, ahead)
    _respond(vw, resp, resp_t, t, FILL_ACK, it.order_id, it.instrument, it.side, it.price,
             it.qty, 0, it.qty, 0)


@_jit
def _cancel(vw, orders, j, t, resp, resp_t):
    o = orders[j]
    _end(vw, orders, j, t)
    _respond(vw, resp, resp_t, t, FILL_CANCELED, o.order_id, o.instrument, o.side, o.price, 0,
             o.filled, 0, 0)


@_jit
def _request(vw, qlog, it, t):
    n = vw[V_NREQ]
    if n >= qlog.shape[0]:
        vw[V_OVERFLOW] = 4
        return
    qlog[n] = it
    qlog[n].ts_published = t
    vw[V_NREQ] = n + 1


@_jit
def on_intent(vw, book, orders, it, t, resp, resp_t, qlog):
    """An intent reaches the sender and, unless it names an order that has ended, the venue
    at t (the feed-to-order latency after the quoter decided it)."""
    action = it.action
    if action == ACTION_REPLACE or action == ACTION_CANCEL:
        j = _find(vw, orders, it.orig_order_id)
        if j < 0 or orders[j].active == 0:     # it ended (filled, canceled, refused)
            # ... and the sender knew when the intent reached it (the quoter decided it: the
            # two share a box, the sender hears from the venue when the quoter does)
            if j < 0 or orders[j].ended_ns + vw[V_RESP_LAT] <= it.ts_published:
                vw[V_UNSENT] += 1
                if action == ACTION_REPLACE:
                    _respond(vw, resp, resp_t, t, FILL_REJECT, it.order_id, it.instrument,
                             it.side, it.price, it.qty, 0, 0, LOCAL_UNKNOWN_ORDER)
                return
            _request(vw, qlog, it, t)      # and the venue refuses it (-2022 / -2011)
            if action == ACTION_REPLACE:
                vw[V_REJECTS] += 1
                _add(vw, orders, it, t, 0, 0.0)
                _respond(vw, resp, resp_t, t, FILL_REJECT, it.order_id, it.instrument,
                         it.side, it.price, it.qty, 0, 0, REPLACE_FAILED)
            return
        _request(vw, qlog, it, t)
        _cancel(vw, orders, j, t, resp, resp_t)
        if action == ACTION_REPLACE:
            _place(vw, book, orders, it, t, resp, resp_t)
        return
    _request(vw, qlog, it, t)
    if action == ACTION_NEW:
        _place(vw, book, orders, it, t, resp, resp_t)
    elif action == ACTION_CANCEL_ALL:
        for j in range(vw[V_FIRST], vw[V_USED]):
            o = orders[j]
            if o.active != 0 and (it.instrument == ALL_INSTRUMENTS or
                                  o.instrument == it.instrument):
                _cancel(vw, orders, j, t, resp, resp_t)
