"""The requote pass (compiled, hot path; the contract is in model.py): bring each dirty
instrument's quotes to the plan (plan.py) within the rate windows, pull them on stale data,
then mark PnL."""
from __future__ import annotations

from numba import njit

from engine.quoter import rate
from engine.quoter.arrays import (
    C_BATCHES, C_DEPTH_PULLS, C_DRAWDOWN, C_PNL, C_RATE_LIMITED, C_STALE_PULLS, G_DRAWDOWN_HIT,
    G_KILLED,
    G_MAX_DRAWDOWN, G_NEXT_ID, G_PEAK_PNL, G_RESUMED, G_WALL_OFFSET, Q_CANCELING, Q_LIVE,
    Q_NONE, Q_PENDING,
)
from engine.quoter.book import _aged
from engine.quoter.intents import _emit
from engine.quoter.plan import _plan
from engine.quoter.slots import _watch_lag
from engine.records import ACTION_CANCEL, ACTION_NEW, ACTION_REPLACE

# _nrt=False: these functions never allocate, so no reference counting of the state arrays
# (an atomic increment and decrement per array per call: most of the step time otherwise).
_jit = njit(cache=True, nogil=True, fastmath=False, _nrt=False)


@_jit
def rate_take(g, rl10, rlday, now):
    """Charge one order to both rate windows, or refuse (nothing charged)."""
    t = now + g[G_WALL_OFFSET]
    if not rate.take(rl10, t):
        return False
    if not rate.take(rlday, t):
        rate.refund(rl10, t)
        return False
    return True


@_jit
def _cancel_current(quotes, cnt, out, n, i, side, level, s, now):
    """CANCEL the slot's current order if it is pending, or live and not backing off."""
    q = quotes[i, side, level]
    if q.state == Q_PENDING or (q.state == Q_LIVE and now >= q.retry_ns):
        n = _emit(out, n, cnt, ACTION_CANCEL, i, side, level, 0, q.order_id, q.price, q.qty, s)
        q.state = Q_CANCELING
    return n


@_jit
def _cancel_stray_prev(quotes, cnt, out, n, i, side, level, s, now):
    """A replaced order that still rests beside a settled current one (ALLOW_FAILURE, or the
    venue's answers crossing): CANCEL it."""
    q = quotes[i, side, level]
    if q.prev_state == Q_LIVE and q.state != Q_PENDING and now >= q.retry_ns:
        n = _emit(out, n, cnt, ACTION_CANCEL, i, side, level, 0, q.prev_id, q.prev_price,
                  q.prev_qty, s)
        q.prev_state = Q_CANCELING
    return n


@_jit
def _pull(quotes, cnt, out, n, i, s, now):
    """Cancel every quote of instrument i that is pending or live."""
    for side in range(2):
        for level in range(quotes.shape[2]):
            n = _cancel_current(quotes, cnt, out, n, i, side, level, s, now)
            n = _cancel_stray_prev(quotes, cnt, out, n, i, side, level, s, now)
    return n


@_jit
def requote(arrays, want, i, now, out, n):
    """One requote pass of instrument i (see _requote_pass). The pass consumes the tick that
    triggered it: a later pass (after a fill, a timer, or a rate-limit token freeing up) was not
    caused by a book event, so its intents carry update id 0 and no arrival stamp, and count
    neither in tick-to-order nor in the venue's wire-to-wire figure."""
    n = _requote_pass(arrays, want, i, now, out, n)
    g = arrays.g
    s = arrays.inst[i]
    s.trig_ts_arrival = 0
    s.trig_ts_md_published = 0
    if g[G_KILLED] == 0 and g[G_RESUMED] != 0:
        s.trig_update_id = 0
        s.trig_ts_read = 0
    # (else nothing was decided: the tick stays pending, but time spent waiting to be allowed
    # to quote is not tick-to-order)
    return n


@_jit
def _requote_pass(arrays, want, i, now, out, n):
    """Bring instrument i's quotes to the strategy's wish (after the rules of _plan); append
    intents to `out` from index `n`, cancels first. Returns the new count. A refused (rate-limited) order keeps the instrument
    dirty so a later pass retries it. A slot acts only when its orders are settled: nothing
    pending, canceling or asked about, no replaced order still resting, not backing off."""
    quotes, g, cnt, rl10, rlday = arrays.quotes, arrays.g, arrays.cnt, arrays.rl10, arrays.rlday
    s = arrays.inst[i]
    s.dirty = 0
    if g[G_KILLED] != 0 or g[G_RESUMED] == 0:
        return n
    p = arrays.par[i]
    if n + 4 * p.levels > out.shape[0]:     # per slot: a stray cancel and one more
        s.dirty = 1                          # no room for this pass's intents: retry later
        return n
    if s.feed_stale != 0 or s.depth_stale != 0 or _aged(s, p, now):
        if s.stale == 0:
            s.stale = 1
            cnt[C_STALE_PULLS] += 1
            if s.depth_stale != 0:
                cnt[C_DEPTH_PULLS] += 1
        return _pull(quotes, cnt, out, n, i, s, now)
    s.stale = 0
    if s.book_ok == 0:
        return _pull(quotes, cnt, out, n, i, s, now)
    _plan(arrays.inst, quotes, arrays.par, cnt, arrays.sst, arrays.spar, want, i)
    since = s.trig_ts_arrival if s.trig_ts_arrival != 0 else now
    for side in range(2):
        for level in range(p.levels):
            _watch_lag(quotes[i, side, level], p, since, cnt)
            n = _cancel_stray_prev(quotes, cnt, out, n, i, side, level, s, now)
            if quotes[i, side, level].want == 0:
                n = _cancel_current(quotes, cnt, out, n, i, side, level, s, now)
    for side in range(2):
        for level in range(p.levels):
            q = quotes[i, side, level]
            if q.want == 0 or q.prev_id != 0 or now < q.retry_ns:
                continue
            if q.state == Q_NONE:
                action = ACTION_NEW
            elif q.state == Q_LIVE and (abs(q.want_px - q.price) >= p.requote_ticks * p.tick or
                                        (p.max_age_ns > 0 and now - q.placed_ns >= p.max_age_ns)):
                if q.fails >= p.cancel_after:    # replaces keep failing: cancel, then new
                    n = _cancel_current(quotes, cnt, out, n, i, side, level, s, now)
                    continue
                action = ACTION_REPLACE
            else:
                continue
            if not rate_take(g, rl10, rlday, now):
                cnt[C_RATE_LIMITED] += 1
                s.dirty = 1
                continue
            order_id = g[G_NEXT_ID]
            g[G_NEXT_ID] = order_id + 1
            orig = 0
            if action == ACTION_REPLACE:
                orig = q.order_id
                q.prev_id = q.order_id
                q.prev_price = q.price
                q.prev_qty = q.qty
                q.prev_state = Q_CANCELING
            n = _emit(out, n, cnt, action, i, side, level, order_id, orig, q.want_px,
                      q.want_qty, s)
            q.order_id = order_id
            q.price = q.want_px
            q.qty = q.want_qty
            q.state = Q_PENDING
            q.placed_ns = now
    return n


@_jit
def update_pnl(inst, par, g, cnt):
    """Mark-to-market PnL of the quoter's own trading (cash + traded inventory at the mid), in
    the common unit; sets G_DRAWDOWN_HIT when peak-to-trough reaches the limit."""
    total = 0
    for i in range(inst.shape[0]):
        s = inst[i]
        total += (s.cash + (s.inventory - s.pos_base) * s.mark_px) * par[i].pnl_scale
    if total > g[G_PEAK_PNL]:
        g[G_PEAK_PNL] = total
    drawdown = g[G_PEAK_PNL] - total
    cnt[C_PNL] = total
    cnt[C_DRAWDOWN] = drawdown
    if g[G_MAX_DRAWDOWN] > 0 and drawdown >= g[G_MAX_DRAWDOWN]:
        g[G_DRAWDOWN_HIT] = 1


@_jit
def requote_dirty(arrays, want, now, out, n):
    """End of batch: requote every instrument touched since the last pass, then mark PnL."""
    inst = arrays.inst
    arrays.cnt[C_BATCHES] += 1
    for i in range(inst.shape[0]):
        if inst[i].dirty:
            n = requote(arrays, want, i, now, out, n)
    update_pnl(inst, arrays.par, arrays.g, arrays.cnt)
    return n
