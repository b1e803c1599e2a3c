"""The quoter's core, compiled by numba (hot path): the book, order truth in the quote slots, and
the rules every strategy quotes under. The strategy (engine/strategies/, chosen by
quoter.strategy) only says which quotes it wants; this module rounds them to the tick (bids
down, asks up) and the lot, keeps them off the other side of the book, withholds what the price
band, position and notional limits or the rate windows refuse, pulls everything on stale data,
and decides when a resting quote is worth replacing (requote_ticks, max_quote_age_ms).

Every function here is `@njit(cache=True)` with fastmath off, so float operations run in the
order written: tests/support/quoter_reference.py repeats core and strategies in plain Python
and must produce bit-identical intents (tests/quoter/test_quoter_reference.py). Change one,
change the other.

Time is an argument (`now`, perf_counter_ns) so the model is deterministic; only the loop (or
the backtest) reads the clock. State lives in the arrays described in arrays.py. The event
handlers and the requote (on_md, on_board, on_fill, requote_dirty, requote) take them whole, as
one QuoterArrays record (the requote also the strategy's scratch, want). Functions that touch
a few of them (check_timers, kill_all, ack_reset, _plan, ...) take just those: numba passes a
record field by field, and a call it does not inline would copy fields it never reads.
sst/spar/want are the strategy's state, parameters and wishes (engine/strategies/dispatch.py
routes the calls by the state's record type).
"""
from __future__ import annotations

import math

from numba import njit

from engine.quoter import rate
from engine.quoter.arrays import (
    ASK, BID, C_ACKS, C_BACKOFFS, C_BATCHES, C_CANCEL, C_CANCELED, C_CANCEL_ALL,
    C_CANCEL_REJECTS, C_CONFLATED, C_CROSSED_BOOK, C_DRAWDOWN, C_FILLS, C_INTENTS, C_NEW, C_PNL,
    C_POSITIONS, C_POSITION_BASE, C_RATE_LIMITED, C_RATE_REFUNDS, C_REJECTS, C_REPLACE,
    C_RESETS, C_RISK_BAND, C_RISK_NOTIONAL, C_RISK_POSITION, C_STALE_PULLS, C_SUPERSEDED,
    C_TICKS, C_TRADES, C_UNKNOWNS, C_UNKNOWN_INSTRUMENT, C_UNKNOWN_ORDER, G_DRAWDOWN_HIT,
    G_KILLED, G_MAX_DRAWDOWN, G_NEXT_ID, G_PEAK_PNL, G_RESET_SEEN, G_RESUMED, G_WALL_OFFSET,
    Q_CANCELING,
    Q_LIVE, Q_NONE, Q_PENDING, Q_UNKNOWN,
)
from engine.records import (
    ACTION_CANCEL, ACTION_CANCEL_ALL, ACTION_NEW, ACTION_REPLACE, ACTION_RESET_SEEN,
    ALL_INSTRUMENTS, FILL_ACK, FILL_CANCEL_REJECT, FILL_CANCELED, FILL_POSITION, FILL_REJECT, FILL_RESET, FILL_RESUME,
    FILL_TRADE, FILL_UNKNOWN, LOCAL_CODE_MAX, LOCAL_CODE_MIN, MD_BBO, MD_FRESH, MD_STALE,
    SIDE_BUY, SIDE_SELL,
)
from engine.strategies import dispatch as strategy

# _nrt=False: these functions never allocate, so no reference counting of the state arrays
# (an atomic increment and decrement per array per call: most of the step time otherwise).
_jit = njit(cache=True, nogil=True, fastmath=False, _nrt=False)


# ------------------------------------------------------------------ market data
@_jit
def on_md(arrays, i, kind, update_id, bid_px, bid_qty, ask_px, ask_qty, ts_arrival,
          ts_md_published, now):
    """Apply one book record read at `now`; marks the instrument for requoting. A good book
    (both sides, not crossed) sets the mid and goes to the strategy's on_book. Time is the
    record's arrival stamp (now when it has none): staleness is the data's age, not the time
    since the quoter read it, and the strategy's clock is the market's."""
    inst, par, cnt, sst, spar = arrays.inst, arrays.par, arrays.cnt, arrays.sst, arrays.spar
    cnt[C_TICKS] += 1
    if i >= inst.shape[0]:
        cnt[C_UNKNOWN_INSTRUMENT] += 1
        return
    if (kind & MD_BBO) != 0 and ts_arrival != 0 and ts_arrival <= inst[i].board_ts:
        cnt[C_SUPERSEDED] += 1             # the board already gave us this book or a newer one
        return
    _apply_md(inst[i], par[i], sst[i], spar[i], cnt, kind, update_id, bid_px, bid_qty, ask_px,
              ask_qty, ts_arrival, ts_md_published, now)


@_jit
def _apply_md(s, p, st, sp, cnt, kind, update_id, bid_px, bid_qty, ask_px, ask_qty, ts_arrival,
              ts_md_published, now):
    """One book record (or stale/fresh mark) into instrument state `s` (see on_md)."""
    t_md = ts_arrival if ts_arrival != 0 else now
    s.trig_update_id = update_id
    # the intents answer every tick since the last pass: timed from the oldest
    if s.trig_ts_arrival == 0 or (ts_arrival != 0 and ts_arrival < s.trig_ts_arrival):
        s.trig_ts_arrival = ts_arrival
        s.trig_ts_md_published = ts_md_published
    s.trig_ts_read = now
    s.dirty = 1
    if kind & MD_STALE:
        s.feed_stale = 1
        return
    if kind & MD_FRESH:
        s.feed_stale = 0
    if (kind & MD_BBO) == 0:
        return
    s.feed_stale = 0                      # a book update proves the stream alive
    s.last_md_ns = t_md
    s.bid_px = bid_px
    s.bid_qty = bid_qty
    s.ask_px = ask_px
    s.ask_qty = ask_qty
    if bid_px <= 0 or ask_px <= 0 or bid_qty <= 0 or ask_qty <= 0 or bid_px >= ask_px:
        s.book_ok = 0
        cnt[C_CROSSED_BOOK] += 1
        return
    s.book_ok = 1
    s.mark_px = (bid_px + ask_px) // 2        # the mark stays at the last good mid
    s.mid = (bid_px / p.tick + ask_px / p.tick) * 0.5
    strategy.on_book(st, sp, s, p, t_md)


@_jit
def on_board(arrays, i, kind, update_id, bid_px, bid_qty, ask_px, ask_qty, ts_arrival,
             ts_md_published, now):
    """The book board's record of instrument i, read after the feed counted ring records it
    could not publish: applied when newer than the last book applied (counted as conflated;
    returns True); ring records no newer than it are skipped later (on_md: superseded)."""
    inst, par, cnt, sst, spar = arrays.inst, arrays.par, arrays.cnt, arrays.sst, arrays.spar
    if i >= inst.shape[0] or ts_arrival == 0:
        return False
    s = inst[i]
    if ts_arrival <= s.last_md_ns:        # (board_ts <= last_md_ns: it is a book applied)
        return False
    _apply_md(s, par[i], sst[i], spar[i], cnt, kind, update_id, bid_px, bid_qty, ask_px,
              ask_qty, ts_arrival, ts_md_published, now)
    cnt[C_CONFLATED] += 1
    s.board_ts = ts_arrival
    return True


# ------------------------------------------------------------------ fills and acks
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
def on_fill(arrays, i, kind, order_id, side, price, qty, leaves_qty, error_code, now):
    """Apply one sender record (FILL_*; engine/sender/order_state.py says when each comes).
    Inventory moves on every TRADE, whether a slot still holds the order or not; then the
    strategy's on_fill sees every record about the instrument except POSITION."""
    inst, quotes, par, g, cnt = arrays.inst, arrays.quotes, arrays.par, arrays.g, arrays.cnt
    rl10, rlday = arrays.rl10, arrays.rlday
    cnt[C_FILLS] += 1
    if kind == FILL_RESUME:
        g[G_RESUMED] = 1
        for j in range(inst.shape[0]):
            inst[j].dirty = 1
        return
    if kind == FILL_RESET:                # a new sender: it cancels what it does not know
        cnt[C_RESETS] += 1
        g[G_RESUMED] = 0                  # no quoting until its POSITION and RESUME
        g[G_RESET_SEEN] = order_id if order_id != 0 else 1    # its token, echoed (ack_reset)
        for j in range(quotes.shape[0]):
            inst[j].dirty = 1
            for sd in range(2):
                for level in range(quotes.shape[2]):
                    _clear(quotes[j, sd, level])
        return
    if i >= inst.shape[0]:
        cnt[C_UNKNOWN_INSTRUMENT] += 1
        return
    s = inst[i]
    s.dirty = 1
    if kind == FILL_POSITION:
        cnt[C_POSITIONS] += 1
        s.pos_base += qty - s.inventory   # inherited inventory is not the quoter's PnL
        s.inventory = qty
        if s.has_target == 0:             # the account's holdings at start are the neutral
            s.target = qty                # point: quote around them, do not dump them
            s.has_target = 1
        cnt[C_POSITION_BASE + i] = s.inventory
        return
    if kind == FILL_TRADE:
        cnt[C_TRADES] += 1
        signed = qty if side == SIDE_BUY else -qty
        s.inventory += signed
        s.cash -= signed * price
        cnt[C_POSITION_BASE + i] = s.inventory
    elif kind == FILL_ACK:
        cnt[C_ACKS] += 1
    elif kind == FILL_REJECT:
        cnt[C_REJECTS] += 1
    elif kind == FILL_CANCELED:
        cnt[C_CANCELED] += 1
    elif kind == FILL_CANCEL_REJECT:
        cnt[C_CANCEL_REJECTS] += 1
    elif kind == FILL_UNKNOWN:
        cnt[C_UNKNOWNS] += 1
    p = par[i]
    strategy.on_fill(arrays.sst[i], arrays.spar[i], s, p, kind, side, price, qty, now)
    qs, ql, which = _find(quotes, i, order_id)
    if qs < 0:
        cnt[C_UNKNOWN_ORDER] += 1
        return
    q = quotes[i, qs, ql]
    if which == 1:                        # the order a replace is taking the place of
        if kind == FILL_TRADE:
            q.prev_qty = leaves_qty
            if leaves_qty <= 0:
                _clear_prev(q)
        elif kind == FILL_CANCELED or kind == FILL_REJECT:   # REJECT: replaced before its
            _clear_prev(q)                # ack, it never rested (else the slot kept it)
        elif kind == FILL_CANCEL_REJECT:  # the replace's cancel leg did not happen
            q.prev_state = Q_LIVE
            q.prev_qty = leaves_qty
            _back_off(q, p, cnt, now)
        elif kind == FILL_UNKNOWN:
            q.prev_state = Q_UNKNOWN
        elif kind == FILL_ACK:            # asked about, it rests
            q.prev_state = Q_LIVE
        return
    if kind == FILL_TRADE:
        if leaves_qty <= 0:
            _current_gone(q)
        else:
            q.qty = leaves_qty
            # a fill proves it rests; an UNKNOWN one stays UNKNOWN, as in the sender, which
            # still asks the venue and ends it with ACK / CANCEL_REJECT or its end: a slot
            # made live here would REPLACE an order the sender cannot touch yet
            if q.state == Q_PENDING:
                q.state = Q_LIVE
    elif kind == FILL_ACK:
        if q.state == Q_PENDING or q.state == Q_UNKNOWN:
            q.state = Q_LIVE
        q.fails = 0
    elif kind == FILL_CANCELED:
        q.fails = 0
        _current_gone(q)
    elif kind == FILL_REJECT:
        if error_code <= LOCAL_CODE_MAX and error_code >= LOCAL_CODE_MIN:
            # not sent by the sender: give its rate-window charge back
            t = q.placed_ns + g[G_WALL_OFFSET]
            if rate.refund(rl10, t):
                rate.refund(rlday, t)
                cnt[C_RATE_REFUNDS] += 1
        _back_off(q, p, cnt, now)
        _current_gone(q)
    elif kind == FILL_CANCEL_REJECT:      # it still rests: retry after a back-off
        q.state = Q_LIVE
        q.qty = leaves_qty
        _back_off(q, p, cnt, now)
    elif kind == FILL_UNKNOWN:
        q.state = Q_UNKNOWN


# ------------------------------------------------------------------ intents
@_jit
def _emit(out, n, cnt, action, i, side, level, order_id, orig_order_id, price, qty, s):
    o = out[n]
    o.seq = 0
    o.order_id = order_id
    o.orig_order_id = orig_order_id
    o.instrument = i
    o.action = action
    o.side = SIDE_BUY if side == BID else SIDE_SELL
    o.level = level
    o.post_only = 1 if action == ACTION_NEW or action == ACTION_REPLACE else 0
    o.price = price
    o.qty = qty
    o.update_id = s.trig_update_id
    o.ts_arrival = s.trig_ts_arrival
    o.ts_md_published = s.trig_ts_md_published
    o.ts_quoter_read = s.trig_ts_read
    o.ts_published = 0
    cnt[C_INTENTS] += 1
    if action == ACTION_NEW:
        cnt[C_NEW] += 1
    elif action == ACTION_REPLACE:
        cnt[C_REPLACE] += 1
    else:
        cnt[C_CANCEL] += 1
    return n + 1


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
def _aged(s, p, now):
    """The instrument's last book arrived longer than stale_after ago."""
    return s.last_md_ns > 0 and now - s.last_md_ns > p.stale_ns


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
    if s.feed_stale != 0 or _aged(s, p, now):
        if s.stale == 0:
            s.stale = 1
            cnt[C_STALE_PULLS] += 1
        return _pull(quotes, cnt, out, n, i, s, now)
    s.stale = 0
    if s.book_ok == 0:
        return _pull(quotes, cnt, out, n, i, s, now)
    _plan(arrays.inst, quotes, arrays.par, cnt, arrays.sst, arrays.spar, want, i)
    for side in range(2):
        for level in range(p.levels):
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


@_jit
def check_timers(inst, quotes, par, sst, spar, now):
    """Mark instruments whose data went stale, whose live quotes aged out, whose back-off
    ended or whose strategy asks (on_timer); returns how many are dirty now."""
    dirty = 0
    for i in range(inst.shape[0]):
        s = inst[i]
        p = par[i]
        if s.stale == 0 and _aged(s, p, now):
            s.dirty = 1
        if strategy.on_timer(sst[i], spar[i], s, p, now):
            s.dirty = 1
        for side in range(2):
            for level in range(p.levels):
                q = quotes[i, side, level]
                if p.max_age_ns > 0 and q.state == Q_LIVE and now - q.placed_ns >= p.max_age_ns:
                    s.dirty = 1
                if q.retry_ns != 0 and now >= q.retry_ns:   # a back-off ended: act again
                    q.retry_ns = 0
                    s.dirty = 1
        dirty += s.dirty
    return dirty


@_jit
def ack_reset(g, out, n, now):
    """After a RESET was read: stage RESET_SEEN before any intent decided from here on. The
    sender refuses new orders and replaces between its RESET and this intent (matched by the
    token the RESET carried, so a RESET of an earlier sender read late does not count): whatever the
    quoter published before reading the RESET belongs to slots the RESET then dropped, and an
    order placed for one would rest with no slot to manage it. Staged intents decided before
    the RESET stay ahead of it (refused as such). With no room in `out`, it waits: publish,
    then call again."""
    if g[G_RESET_SEEN] == 0 or n >= out.shape[0]:
        return n
    # order_id: the RESET's token (the sender waits for its own); no tick caused it
    _emit_all(out[n], ACTION_RESET_SEEN, g[G_RESET_SEEN], 0, now)
    g[G_RESET_SEEN] = 0
    return n + 1


@_jit
def _emit_all(o, action, order_id, ts_tick, now):
    """An intent about every instrument (CANCEL_ALL, RESET_SEEN) into the out record `o`."""
    o.seq = 0
    o.order_id = order_id
    o.orig_order_id = 0
    o.instrument = ALL_INSTRUMENTS
    o.action = action
    o.side = 0
    o.level = 0
    o.post_only = 0
    o.price = 0
    o.qty = 0
    o.update_id = 0
    o.ts_arrival = ts_tick
    o.ts_md_published = ts_tick
    o.ts_quoter_read = now
    o.ts_published = 0


@_jit
def kill_all(quotes, g, cnt, out, n, reason, now):
    """Kill switch: one CANCEL_ALL for every instrument, forget every quote, stop quoting.
    With no room left in `out` nothing happens: publish, then call again."""
    if g[G_KILLED] != 0 or n >= out.shape[0]:
        return n
    g[G_KILLED] = reason
    _emit_all(out[n], ACTION_CANCEL_ALL, 0, now, now)
    for i in range(quotes.shape[0]):
        for side in range(2):
            for level in range(quotes.shape[2]):
                _clear(quotes[i, side, level])
    cnt[C_INTENTS] += 1
    cnt[C_CANCEL_ALL] += 1
    return n + 1


@_jit
def any_quote(quotes):
    """True when some slot is not empty (a shutdown must cancel)."""
    for i in range(quotes.shape[0]):
        for side in range(2):
            for level in range(quotes.shape[2]):
                q = quotes[i, side, level]
                if q.state != Q_NONE or q.prev_id != 0:
                    return True
    return False

