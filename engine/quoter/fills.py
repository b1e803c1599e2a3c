"""The sender's records into the quoter (compiled, hot path; the contract is in model.py):
inventory, cash and counters, the strategy's on_fill, and the slot the record is about."""
from __future__ import annotations

from numba import njit

from engine.quoter import rate
from engine.quoter.arrays import (
    C_ACKS, C_CANCELED, C_CANCEL_REJECTS, C_FILLS, C_POSITIONS, C_POSITION_BASE, C_RATE_REFUNDS,
    C_REJECTS, C_RESETS, C_TRADES, C_UNKNOWNS, C_UNKNOWN_INSTRUMENT, C_UNKNOWN_ORDER,
    G_RESET_SEEN, G_RESUMED, G_WALL_OFFSET, Q_LIVE, Q_PENDING, Q_UNKNOWN,
)
from engine.quoter.slots import (_back_off, _clear, _clear_prev, _current_gone, _find,
                                 _lag_answered)
from engine.records import (
    FILL_ACK, FILL_CANCEL_REJECT, FILL_CANCELED, FILL_POSITION, FILL_REJECT, FILL_RESET,
    FILL_RESUME, FILL_TRADE, FILL_UNKNOWN, LOCAL_CODE_MAX, LOCAL_CODE_MIN, SIDE_BUY,
)
from engine.strategies import dispatch as strategy

# _nrt=False: these functions never allocate, so no reference counting of the state arrays
# (an atomic increment and decrement per array per call: most of the step time otherwise).
_jit = njit(cache=True, nogil=True, fastmath=False, _nrt=False)


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
                _lag_answered(q, p, g, now)
    elif kind == FILL_ACK:
        if q.state == Q_PENDING or q.state == Q_UNKNOWN:
            q.state = Q_LIVE
        q.fails = 0
        _lag_answered(q, p, g, now)
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
