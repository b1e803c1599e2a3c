"""Set-up: allocate the quoter's state arrays (layout.py) for an instrument table."""
from __future__ import annotations

import time

import numpy as np

from engine.instruments import Instrument
from engine.quoter.config import QuoterConfig
from engine.quoter.layout import (
    G_MAX_DRAWDOWN, G_NEXT_ID, G_WORDS, INST_DTYPE, N_COUNTERS, QUOTE_DTYPE,
)
from engine.quoter.params import build_params, max_drawdown_units
from engine.records import ORDER_DTYPE

# A send-log entry that never blocks: "sent" long before any perf_counter_ns() value.
RATE_LOG_EMPTY = -(1 << 62)


def first_order_id(epoch_s: int | None = None) -> int:
    """Order ids start at (epoch seconds mod 10**8) * 10**5 and count up by one: a restart at
    least a second later starts above every id of the previous run (a run never sends 10**5
    orders per second of its life: the rate limits allow 4), and ids stay 13 digits, so the
    client id <tag>-<u>-<n> fits Binance's 36 characters with a short tag."""
    epoch_s = int(time.time()) if epoch_s is None else epoch_s
    return (epoch_s % 10**8) * 10**5 + 1


class QuoterState:
    """The arrays the numba model works on. `args` is the tuple the model functions take first
    (inst, quotes, par, g, cnt, rl10, rlday); `out` is the staging area for intents."""

    def __init__(self, q: QuoterConfig, instruments: tuple[Instrument, ...],
                 counters: np.ndarray | None = None, first_id: int | None = None):
        n = len(instruments)
        self.symbols = [i.symbol for i in instruments]
        self.par = build_params(q, instruments)
        self.inst = np.zeros(n, INST_DTYPE)
        self.quotes = np.zeros((n, 2, q.levels), QUOTE_DTYPE)
        self.g = np.zeros(G_WORDS, np.int64)
        self.g[G_NEXT_ID] = first_order_id() if first_id is None else first_id
        self.g[G_MAX_DRAWDOWN] = max_drawdown_units(q, instruments)
        self.cnt = np.zeros(N_COUNTERS, np.int64) if counters is None else counters
        self.rl10 = np.full(q.rate_per_10s, RATE_LOG_EMPTY, np.int64)
        self.rlday = np.full(q.rate_per_day, RATE_LOG_EMPTY, np.int64)
        # room for two full passes (every slot acts) plus a cancel-all, while the ring is full
        self.out = np.zeros(4 * n * 2 * q.levels + 8, ORDER_DTYPE)

    @property
    def args(self) -> tuple:
        return self.inst, self.quotes, self.par, self.g, self.cnt, self.rl10, self.rlday
