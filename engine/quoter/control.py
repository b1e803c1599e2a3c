"""The quoter's timers, the sender's reset and the kill switch (compiled; the contract is in
model.py): which instruments a timer makes dirty, the RESET_SEEN answer to a RESET, one
CANCEL_ALL that forgets every quote, and whether any quote is left."""
from __future__ import annotations

from numba import njit

from engine.quoter.arrays import C_CANCEL_ALL, C_INTENTS, G_KILLED, G_RESET_SEEN, Q_LIVE, Q_NONE
from engine.quoter.book import _aged
from engine.quoter.intents import _emit_all
from engine.quoter.slots import _clear
from engine.records import ACTION_CANCEL_ALL, ACTION_RESET_SEEN
from engine.strategies import dispatch as strategy

# _nrt=False: these functions never allocate, so no reference counting of the state arrays
# (an atomic increment and decrement per array per call: most of the step time otherwise).
_jit = njit(cache=True, nogil=True, fastmath=False, _nrt=False)


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
