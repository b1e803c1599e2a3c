"""The feed's L2 book in the backtest (compiled, hot path): what the live feed's depth board
gives the quoter (engine/feed/depth_feed.py -> model.read_depth), rebuilt from the capture's
depth records, so a strategy that reads depth (fair_value = "depth_imbalance") backtests on
the depth it will trade on.

One book per instrument (FBOOK_DTYPE: engine/backtest/depth.py's window around the market)
from the depth records alone, as the live feed keeps it: not fused with the best bid/ask,
unlike the venue's book. Like the live feed it waits for a REST snapshot (a capture's
`{"lastUpdateId"...}` line: MD_DEPTH | MD_SNAPSHOT records), which replaces the book; diffs
before it are dropped (live, they are buffered and those the snapshot already holds dropped:
the records carry no update ids, so the ones after the snapshot are all applied). A capture
with no snapshot (mm capture records the streams only) is taken as synced from its first
diff. No gap detection: the live feed's rules are tested on the same frames
(tests/feed/test_depth_corpus.py).
"""
from __future__ import annotations

import numpy as np
from numba import njit

from engine.backtest import depth
from engine.quoter.arrays import C_DEPTH_READS
from engine.records import DEPTH_LEVELS, MD_BBO, MD_DEPTH, MD_SNAPSHOT, SIDE_BUY

FBOOK_DTYPE = np.dtype([
    ("bid", "i8"), ("ask", "i8"),   # the best price with a size on each side (0: none)
    ("tick", "i8"),                 # price units
    ("base", "i8"),                 # levels[s, k] is the size at (base + k) * tick
    ("synced", "i8"),               # 1: a snapshot came (or the capture has none)
    ("levels", "i8", (2, depth.WINDOW)),
], align=True)

_jit = njit(cache=True, nogil=True, fastmath=False, _nrt=False)


@_jit
def begin(b, bid, ask, price, snapshot):
    """A depth frame of the instrument starts with a level at `price`: a snapshot empties the
    book; the window follows the best bid/ask (or, before there is one, the frame's first
    level: a snapshot's best bid)."""
    if snapshot:
        for s in range(2):
            for k in range(depth.WINDOW):
                b.levels[s, k] = 0
        b.bid = 0
        b.ask = 0
        b.synced = 1
    if 0 < bid < ask:
        centre = (bid + ask) // 2
    elif b.base == 0 or snapshot:
        centre = price
    else:
        return
    before = b.base
    depth.recentre(b, centre)
    if b.base != before and before != 0:        # levels shifted: find the best ones again
        b.bid = _next(b, depth.BID, (b.base + depth.WINDOW - 1) * b.tick)
        b.ask = _next(b, depth.ASK, b.base * b.tick)


@_jit
def apply(b, side, price, qty):
    """One level of a depth frame (side SIDE_*; qty 0: the level is gone)."""
    if b.synced == 0:
        return                                   # before the snapshot: the live feed waits
    s = depth.BID if side == SIDE_BUY else depth.ASK
    if depth.set_qty(b, s, price, qty) < 0:
        return                                   # outside the window: far from the touch
    if qty > 0:
        if s == depth.BID and (b.bid == 0 or price > b.bid):
            b.bid = price
        elif s == depth.ASK and (b.ask == 0 or price < b.ask):
            b.ask = price
    elif s == depth.BID and price == b.bid:
        b.bid = _next(b, s, price)
    elif s == depth.ASK and price == b.ask:
        b.ask = _next(b, s, price)


@_jit
def _next(b, s, price):
    """The best price with a size at or beyond `price` on side s (0: none in the window)."""
    lo = b.base * b.tick
    hi = (b.base + depth.WINDOW - 1) * b.tick
    step = -b.tick if s == depth.BID else b.tick
    p = price
    while lo <= p <= hi:
        if depth.qty_at(b, s, p) > 0:
            return p
        p += step
    return 0


@_jit
def _sum(b, s, best, levels):
    """The sizes of the best `levels` levels of side s from `best` (as the depth board's
    DEPTH_LEVELS best levels give them to read_depth)."""
    if best == 0:
        return 0
    lo = b.base * b.tick
    hi = (b.base + depth.WINDOW - 1) * b.tick
    step = -b.tick if s == depth.BID else b.tick
    total = 0
    got = 0
    p = best
    while got < levels and lo <= p <= hi:
        q = depth.qty_at(b, s, p)
        if q > 0:
            total += q
            got += 1
        p += step
    return total


@_jit
def frames(md, books, levels, out, bid, ask):
    """Every depth frame of md through the feed's books (the market alone decides them, so
    this runs once before the replay): out[j] = the summed sizes of the best levels[i] bid and
    ask levels after the frame that ends at record j, (-1, -1) for every other record and
    before the book is synced. bid / ask: scratch, the best bid/ask per instrument."""
    for j in range(md.shape[0]):
        out[j, 0] = -1
        out[j, 1] = -1
        r = md[j]
        i = r.instrument
        if (r.kind & MD_BBO) != 0:
            bid[i] = r.bid_px
            ask[i] = r.ask_px
        if (r.kind & MD_DEPTH) == 0:
            continue
        b = books[i]
        if j == 0 or (md[j - 1].kind & MD_DEPTH) == 0 or md[j - 1].instrument != i \
                or md[j - 1].ts != r.ts:
            begin(b, bid[i], ask[i], r.trade_px, (r.kind & MD_SNAPSHOT) != 0)
        apply(b, r.trade_side, r.trade_px, r.trade_qty)
        last = (j + 1 == md.shape[0] or (md[j + 1].kind & MD_DEPTH) == 0
                or md[j + 1].instrument != i or md[j + 1].ts != r.ts)
        if last and b.synced != 0:
            k = min(levels[i], DEPTH_LEVELS)
            out[j, 0] = _sum(b, depth.BID, b.bid, k)
            out[j, 1] = _sum(b, depth.ASK, b.ask, k)


@_jit
def publish(st, bq, aq, cnt):
    """A frame's sizes into the quoter's instrument row `st`, as read_depth puts the depth
    board's record there."""
    st.depth_bid_qty = bq
    st.depth_ask_qty = aq
    st.depth_stale = 0
    st.dirty = 1
    cnt[C_DEPTH_READS] += 1
