"""What the quoter wants on each slot (compiled, hot path; the contract is in model.py): the
strategy's wish after the rules every strategy quotes under (tick and lot, post-only, price
band, position and notional limits)."""
from __future__ import annotations

import math

from numba import njit

from engine.quoter.arrays import (
    ASK, BID, C_RISK_BAND, C_RISK_NOTIONAL, C_RISK_POSITION, Q_CANCELING, Q_LIVE, Q_PENDING,
    Q_UNKNOWN,
)
from engine.strategies import dispatch as strategy

# _nrt=False: these functions never allocate, so no reference counting of the state arrays
# (an atomic increment and decrement per array per call: most of the step time otherwise).
_jit = njit(cache=True, nogil=True, fastmath=False, _nrt=False)


@_jit
def _plan(inst, quotes, par, cnt, sst, spar, want, i):
    """Fill the want/want_px/want_qty scratch of instrument i's slots: the strategy's wish,
    rounded to the tick (bids down, asks up) and the lot, each side's ladder moved as a whole
    off the other side of the book (post-only), then the price band and the position/notional
    limits (a level the strategy leaves empty, qty 0, is simply not wanted)."""
    s = inst[i]
    p = par[i]
    w = want[i]
    for side in range(2):
        for level in range(p.levels):
            w[side, level].px = 0.0
            w[side, level].qty = 0
    strategy.quote(sst[i], spar[i], s, p, w)
    best_ask_t = -((-s.ask_px) // p.tick)     # ceil: our bid must stay below the best ask
    best_bid_t = s.bid_px // p.tick
    shift_bid = 0
    shift_ask = 0
    for side in range(2):
        have = False
        top = 0                                # the side's best level, ticks
        for level in range(p.levels):
            q = quotes[i, side, level]
            d = w[side, level]
            size = d.qty - d.qty % p.lot if d.qty > 0 else 0
            if size <= 0 or not (d.px > -1e15 and d.px < 1e15):    # none (or not a price)
                q.want_qty = 0
                q.want_px = 0
                continue
            t = math.floor(d.px) if side == BID else math.ceil(d.px)
            q.want_px = t
            q.want_qty = size
            if not have or (t > top if side == BID else t < top):
                top = t
                have = True
        if have and side == BID and top > best_ask_t - 1:
            shift_bid = top - (best_ask_t - 1)
        if have and side == ASK and top < best_bid_t + 1:
            shift_ask = top - (best_bid_t + 1)
    band = s.mid * p.band
    lo = s.mid - band
    hi = s.mid + band
    for side in range(2):
        # exposure if every order on this side filled: orders being canceled, asked about or
        # replaced count until their end is known
        exposure = s.inventory - s.target
        for level in range(p.levels):
            q = quotes[i, side, level]
            held = q.prev_qty if q.prev_id != 0 else 0
            if q.state == Q_CANCELING or q.state == Q_UNKNOWN:
                held += q.qty
            exposure += held if side == BID else -held
        shift = shift_bid if side == BID else shift_ask
        for level in range(p.levels):
            q = quotes[i, side, level]
            size = q.want_qty
            want = 1
            px_t = q.want_px - shift
            if size == 0:
                want = 0
            elif px_t <= 0 or px_t < lo or px_t > hi:
                want = 0
                cnt[C_RISK_BAND] += 1
            else:
                price = px_t * p.tick
                if side == BID:
                    new_pos = exposure + size
                    over_pos = new_pos > p.max_position
                    over_notional = new_pos > 0 and new_pos * price > p.max_notional
                else:
                    new_pos = exposure - size
                    over_pos = -new_pos > p.max_position
                    over_notional = new_pos < 0 and -new_pos * price > p.max_notional
                if over_pos:
                    want = 0
                    cnt[C_RISK_POSITION] += 1
                elif over_notional:
                    want = 0
                    cnt[C_RISK_NOTIONAL] += 1
                else:
                    exposure = new_pos
            q.want = want
            q.want_px = px_t * p.tick
            if want == 0 and (q.state == Q_PENDING or q.state == Q_LIVE):
                exposure += q.qty if side == BID else -q.qty   # canceled below, still open
