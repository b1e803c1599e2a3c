"""Intent records into the quoter's `out` scratch (compiled, hot path; the contract is in
model.py): one about a slot (_emit, counted) or one about every instrument (_emit_all)."""
from __future__ import annotations

from numba import njit

from engine.quoter.arrays import BID, C_CANCEL, C_INTENTS, C_NEW, C_REPLACE
from engine.records import ACTION_NEW, ACTION_REPLACE, ALL_INSTRUMENTS, SIDE_BUY, SIDE_SELL

# _nrt=False: these functions never allocate, so no reference counting of the state arrays
# (an atomic increment and decrement per array per call: most of the step time otherwise).
_jit = njit(cache=True, nogil=True, fastmath=False, _nrt=False)


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
