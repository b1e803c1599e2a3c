"""Queue models of the backtest's venue: how much displayed quantity is ahead of a resting order
at its own price, and how trades and size changes at that price move it. Hot path (compiled).

Selected by name in [backtest] queue_model:
  touch          the simulator's model (engine/sim/exchange.py): an order joining at or behind
                 the touch queues behind the size the touch shows, one improving on it at 0;
                 only trades at its price move it (the default: backtest == live holds with it)
  risk_averse    hftbacktest's RiskAdverseQueueModel: ahead = the size at the order's own level
                 when it joined; trades at its price shrink it; when the level shrinks below
                 it, it is capped at the level (a cancel is assumed to be behind us only when
                 it cannot have been)
  power_prob     hftbacktest's ProbQueueModel family: a size drop at the level that trades do
  power_prob2    not explain was ahead of us with probability p(front, back) (front: ahead of
  power_prob3    us, back: behind); with f(x) = x**n (power) or log(1 + x) (log):
  log_prob         power_prob, log_prob    p = f(back) / (f(back) + f(front))
  log_prob2        power_prob2, log_prob2  p = f(back) / f(back + front)
                   power_prob3             p = 1 - (front / (front + back)) ** n
                 n is [backtest] queue_power.
The size at a level comes from the venue's L2 book (engine/backtest/depth.py): depth frames of
the capture fused with the best bid/ask; without depth frames only the touch is known (0
elsewhere, as hftbacktest's book would show it).
Quantities are float64 in qty units (exact below 2**53), as the probabilities need fractions.
"""
from __future__ import annotations

import math

from numba import njit

from engine.backtest.config import QUEUE_MODELS

TOUCH, RISK_AVERSE, POWER_PROB, POWER_PROB2, POWER_PROB3, LOG_PROB, LOG_PROB2 = range(7)
MODELS = {name: k for k, name in enumerate(QUEUE_MODELS)}     # config name -> V_QMODEL

_jit = njit(cache=True, nogil=True, fastmath=False, _nrt=False)


@_jit
def ahead_when_joining(model, improves, touch_qty, level_qty):
    """The queue ahead of an order joining the book: `improves` when its price is better than
    the touch of its side, `touch_qty` the size the touch shows, `level_qty` the size at its own
    price (the L2 book)."""
    if improves:
        return 0.0
    if model == TOUCH:
        return float(touch_qty)
    return float(level_qty)


@_jit
def on_trade(o, qty):
    """A trade of `qty` at the order's price: what of it is left after the queue ahead, which
    fills the order (the caller caps it at the order's leaves)."""
    o.traded += qty
    if o.queue >= qty:
        o.queue -= qty
        return 0
    left = qty - o.queue
    o.queue = 0.0
    return int(math.floor(left + 0.5))   # the probabilistic models leave fractions


@_jit
def _prob(model, n, front, back):
    if model == POWER_PROB:
        fb, ff = back ** n, front ** n
        return fb / (fb + ff)
    if model == POWER_PROB2:
        return back ** n / (back + front) ** n
    if model == POWER_PROB3:
        return 1.0 - (front / (front + back)) ** n
    if model == LOG_PROB:
        fb, ff = math.log1p(back), math.log1p(front)
        return fb / (fb + ff)
    return math.log1p(back) / math.log1p(back + front)      # LOG_PROB2


@_jit
def on_level_change(model, n, o, prev_qty, new_qty):
    """The displayed size at the order's price went from prev_qty to new_qty."""
    if model == TOUCH:
        return
    if model == RISK_AVERSE:
        o.queue = min(o.queue, float(new_qty))
        return
    # a drop the trades since the last change do not explain is a cancel, ahead or behind
    chg = float(prev_qty - new_qty) - o.traded
    o.traded = 0.0
    if chg < 0.0:                        # the level grew: newcomers join behind us
        o.queue = min(o.queue, float(new_qty))
        return
    front = o.queue
    back = float(prev_qty) - front
    p = _prob(model, n, front, back)
    if not math.isfinite(p):
        p = 1.0
    est = front - (1.0 - p) * chg + min(back - p * chg, 0.0)
    o.queue = min(est, float(new_qty))
