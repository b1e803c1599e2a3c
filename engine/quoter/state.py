"""Set-up: allocate the quoter's state arrays (arrays.py) and its strategy's for an instrument
table."""
from __future__ import annotations

import time

import numpy as np

from engine.instruments import Instrument
from engine.quoter import rate
from engine.quoter.config import QuoterConfig
from engine.quoter.arrays import (
    DESIRED_DTYPE, G_MAX_DRAWDOWN, G_NEXT_ID, G_WALL_OFFSET, G_WORDS, INST_DTYPE, N_COUNTERS,
    QUOTE_DTYPE, RATE_BUCKET_10S_NS, RATE_BUCKET_DAY_NS, RATE_WINDOW_10S_NS, RATE_WINDOW_DAY_NS,
)
from engine.quoter.params import build_params, max_drawdown_units
from engine.records import ORDER_DTYPE
from engine.strategies import build as build_strategy

ID_EPOCH_NS = 1_735_689_600_000_000_000     # 2025-01-01T00:00:00Z


def first_order_id(now_ns: int | None = None) -> int:
    """Order ids start at the microseconds since 2025-01-01 and count up by one. A process
    started later starts above every id an earlier one used, even within the same second,
    as long as no process takes more than one id per microsecond of its life (the rate limits
    allow thousands per second, not a million); and the id stays at 14-15 digits, so
    <tag>-<u>-<n> fits the venue's 36 characters with a 6-character tag and a 13-digit u."""
    now_ns = time.time_ns() if now_ns is None else now_ns
    return (now_ns - ID_EPOCH_NS) // 1000


def rate_window_words() -> tuple[int, int]:
    return (rate.window_words(RATE_WINDOW_10S_NS, RATE_BUCKET_10S_NS),
            rate.window_words(RATE_WINDOW_DAY_NS, RATE_BUCKET_DAY_NS))


class QuoterState:
    """The arrays the numba model works on. `args` is the tuple the model functions take first
    (inst, quotes, par, g, cnt, rl10, rlday, sst, spar, want: sst and spar are the strategy's
    state and parameters, q.strategy names it); `out` is the staging area for intents.

    `rate_words` (optional): an int64 array of sum(rate_window_words()) words that holds the
    rate windows, e.g. a file that survives restarts (engine/state_dir.py); kept when its
    limits match the configuration, reset otherwise. `quotes`/`inst` may likewise be given
    (the shared-memory belief table the quoter publishes)."""

    def __init__(self, q: QuoterConfig, instruments: tuple[Instrument, ...],
                 counters: np.ndarray | None = None, first_id: int | None = None,
                 rate_words: np.ndarray | None = None, inst: np.ndarray | None = None,
                 quotes: np.ndarray | None = None):
        n = len(instruments)
        self.symbols = [i.symbol for i in instruments]
        self.par = build_params(q, instruments)
        self.sst, self.spar = build_strategy(q, instruments)
        self.want = np.zeros((n, 2, q.levels), DESIRED_DTYPE)
        self.inst = np.zeros(n, INST_DTYPE) if inst is None else inst
        self.quotes = np.zeros((n, 2, q.levels), QUOTE_DTYPE) if quotes is None else quotes
        self.g = np.zeros(G_WORDS, np.int64)
        self.g[G_NEXT_ID] = first_order_id() if first_id is None else first_id
        self.g[G_MAX_DRAWDOWN] = max_drawdown_units(q, instruments)
        self.g[G_WALL_OFFSET] = time.time_ns() - time.perf_counter_ns()
        self.cnt = np.zeros(N_COUNTERS, np.int64) if counters is None else counters
        w10, wday = rate_window_words()
        words = np.zeros(w10 + wday, np.int64) if rate_words is None else rate_words
        self.rl10, self.rlday = words[:w10], words[w10:w10 + wday]
        for w, limit, window, width in (
                (self.rl10, q.rate_per_10s, RATE_WINDOW_10S_NS, RATE_BUCKET_10S_NS),
                (self.rlday, q.rate_per_day, RATE_WINDOW_DAY_NS, RATE_BUCKET_DAY_NS)):
            buckets = rate.bucket_count(window, width)
            if not rate.matches(w, limit, width, buckets):
                rate.init_window(w, limit, width, buckets)
        # room for two full passes (every slot acts twice) plus a cancel-all, while the ring
        # is full
        self.out = np.zeros(8 * n * q.levels + 8, ORDER_DTYPE)

    @property
    def args(self) -> tuple:
        return (self.inst, self.quotes, self.par, self.g, self.cnt, self.rl10, self.rlday,
                self.sst, self.spar, self.want)
