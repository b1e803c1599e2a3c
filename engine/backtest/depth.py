"""The backtest venue's L2 book: the displayed size at every price near the market, per side,
from the capture's depth frames fused with its best bid/ask. Hot path (compiled).

Layout: each instrument's venue book record (venue.VBOOK_DTYPE) holds `levels[side, k]`, the
size at price (base + k) * tick, for WINDOW ticks around the market (bid side 0, ask side 1).
Sizes further away are not kept: the queue models only ask about prices near the touch. The
window re-centres on the mid when the mid leaves its middle half (rare; a copy of the window).

Fusing (the best bid/ask stream is real time, depth frames come every 100 ms): a best bid/ask
sets the size at its prices and empties the levels it moved away from (a bid that fell from
b0 to b1 leaves nothing in (b1, b0]; the first one empties every level through it); a depth level beyond the current best bid/ask (a bid above
the best bid, an ask below the best ask) is older than the best bid/ask and is dropped.
"""
from __future__ import annotations

from numba import njit

WINDOW = 1 << 14        # ticks kept per side: $163 of BTCUSDT at a 0.01 tick
BID, ASK = 0, 1

_jit = njit(cache=True, nogil=True, fastmath=False, _nrt=False)


@_jit
def enabled(b):
    """Whether this book keeps levels (the instrument's tick is known)."""
    return b.tick > 0


@_jit
def recentre(b, price):
    """Keep `price` (a price near the market) in the middle half of the window."""
    c = price // b.tick
    if b.base == 0:
        b.base = c - WINDOW // 2
        return
    k = c - b.base
    if WINDOW // 4 <= k < 3 * WINDOW // 4:
        return
    shift = k - WINDOW // 2
    for s in range(2):
        if shift > 0:
            for j in range(WINDOW):
                src = j + shift
                b.levels[s, j] = b.levels[s, src] if src < WINDOW else 0
        else:
            for j in range(WINDOW - 1, -1, -1):
                src = j + shift
                b.levels[s, j] = b.levels[s, src] if src >= 0 else 0
    b.base += shift


@_jit
def qty_at(b, side, price):
    """The displayed size at `price` on `side` (BID/ASK); 0 when outside the window."""
    k = price // b.tick - b.base
    if k < 0 or k >= WINDOW:
        return 0
    return b.levels[side, k]


@_jit
def set_qty(b, side, price, qty):
    """Set the size at `price`; the size before, -1 when the price is outside the window."""
    k = price // b.tick - b.base
    if k < 0 or k >= WINDOW:
        return -1
    prev = b.levels[side, k]
    b.levels[side, k] = qty
    return prev
