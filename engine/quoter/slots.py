"""A quote slot's order truth (compiled, hot path; the contract is in model.py): find the slot
holding an order, clear it, fall back to the order a replace was taking the place of, back off
after a refusal, and how long it lags the strategy's wish (quote lag)."""
from __future__ import annotations

from numba import njit

from engine.quoter.arrays import C_BACKOFFS, C_LAGS, C_LAGS_UNDONE, G_LAG_DONE, Q_LIVE, Q_NONE

# _nrt=False: these functions never allocate, so no reference counting of the state arrays
# (an atomic increment and decrement per array per call: most of the step time otherwise).
_jit = njit(cache=True, nogil=True, fastmath=False, _nrt=False)


@_jit
def _find(quotes, i, order_id):
    """(side, level, which) of the slot holding `order_id` as its current order (which = 0)
    or as the order it is replacing (which = 1); (-1, -1, -1) when no slot holds it."""
    if order_id == 0:
        return -1, -1, -1
    for side in range(2):
        for level in range(quotes.shape[2]):
            q = quotes[i, side, level]
            if q.state != Q_NONE and q.order_id == order_id:
                return side, level, 0
            if q.prev_id == order_id:
                return side, level, 1
    return -1, -1, -1


@_jit
def _clear_prev(q):
    q.prev_id = 0
    q.prev_price = 0
    q.prev_qty = 0
    q.prev_state = Q_NONE


@_jit
def _clear(q):
    q.state = Q_NONE
    q.order_id = 0
    q.price = 0
    q.qty = 0
    q.placed_ns = 0
    _clear_prev(q)


@_jit
def _current_gone(q):
    """The current order no longer rests: the order it was replacing (if any) is the slot's
    order again, in whatever state it is in; else the slot is empty."""
    if q.prev_id != 0:
        q.order_id = q.prev_id
        q.price = q.prev_price
        q.qty = q.prev_qty
        q.state = q.prev_state
        _clear_prev(q)
    else:
        _clear(q)


@_jit
def _back_off(q, p, cnt, now):
    """A refusal: no new request on this slot for backoff_ns * 2**(fails-1), capped."""
    q.fails += 1
    shift = q.fails - 1 if q.fails < 20 else 20
    wait = p.backoff_ns << shift
    if wait > p.backoff_cap_ns:
        wait = p.backoff_cap_ns
    q.retry_ns = now + wait
    cnt[C_BACKOFFS] += 1


@_jit
def _watch_lag(q, p, since, cnt):
    """Quote lag, after a requote pass's plan: a slot with a wish and no order resting within
    requote_ticks of it lags from `since` (the arrival of the book event this pass answers; a
    pass a fill or a timer caused passes its own time); one the book came back to stops
    lagging unanswered (counted in lags_undone)."""
    if q.want != 0 and not (q.state == Q_LIVE and
                            abs(q.want_px - q.price) < p.requote_ticks * p.tick):
        if q.lag_since == 0:
            q.lag_since = since
            cnt[C_LAGS] += 1
    elif q.lag_since != 0:
        q.lag_since = 0
        cnt[C_LAGS_UNDONE] += 1


@_jit
def _lag_answered(q, p, g, now):
    """An ACK made the slot's order rest: where the strategy wants it, the slot's lag ends, and
    its length goes to g[G_LAG_DONE] for the loop's quote_lag histogram."""
    if q.lag_since != 0 and q.want != 0 and abs(q.want_px - q.price) < p.requote_ticks * p.tick:
        g[G_LAG_DONE] = max(now - q.lag_since, 1)
        q.lag_since = 0
