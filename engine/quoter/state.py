"""Set-up: allocate the quoter's state arrays (arrays.py) and its strategy's for an instrument
table; keep what must outlive a quoter process (restore_anchor / save_anchor)."""
from __future__ import annotations

import time
import zlib

import numpy as np

from engine.instruments import Instrument
from engine.quoter import rate
from engine.quoter.config import QuoterConfig
from engine.quoter.arrays import (
    C_POSITION_BASE, DESIRED_DTYPE, G_DRAWDOWN_HIT, G_MAX_DRAWDOWN, G_NEXT_ID, G_PEAK_PNL,
    G_WALL_OFFSET, G_WORDS, INST_DTYPE, N_COUNTERS, QUOTE_DTYPE, RATE_BUCKET_10S_NS,
    RATE_BUCKET_DAY_NS, RATE_WINDOW_10S_NS, RATE_WINDOW_DAY_NS, QuoterArrays,
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
    """The arrays the numba model works on. `arrays` is the record the model functions take
    first (QuoterArrays: inst, quotes, par, g, cnt, rl10, rlday, sst, spar; sst and spar are
    the strategy's state and parameters, q.strategy names it), and each array is also an
    attribute of its own; `want` is the strategy's scratch and `out` the staging area for
    intents.

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
        self.arrays = QuoterArrays(self.inst, self.quotes, self.par, self.g, self.cnt,
                                   self.rl10, self.rlday, self.sst, self.spar)


# The anchor: <state_dir>/<instance>.anchor (engine/state_dir.py), int64 words. The position
# reference (`target`: the holdings before the instance first quoted; max_position measures
# from it) and the drawdown measure (the peak, and the books the PnL is marked from: cash,
# inventory, inherited inventory) belong to the instance, not to one quoter process: a crash
# restart under systemd must not re-centre them.
A_MAGIC, A_PRINT, A_PEAK, A_HIT = range(4)
A_HEAD = 8                          # then per instrument A_INST words:
A_HAS_TARGET, A_TARGET, A_CASH, A_INVENTORY, A_POS_BASE = range(5)
A_INST = 5
ANCHOR_MAGIC = 0x6D6D_616E_6368_02  # "mmanch" v2
_BOOKS = (("target", A_TARGET), ("cash", A_CASH), ("inventory", A_INVENTORY),
          ("pos_base", A_POS_BASE))


def anchor_words(n_inst: int) -> int:
    return A_HEAD + A_INST * n_inst


def anchor_print(instruments: tuple[Instrument, ...]) -> int:
    """What the words' units depend on: the symbols and their exponents, in order."""
    text = ";".join(f"{i.symbol}:{i.pexp}:{i.qexp}" for i in instruments)
    return zlib.crc32(text.encode())


def restore_anchor(st: QuoterState, words: np.ndarray, instruments) -> bool:
    """Take an earlier life's anchor from `words` (False, and `words` reset, when they hold none
    for this instrument table). The position references always; the peak and the books unless
    that life's drawdown limit fired: quoting again after it means an operator cleared the kill
    switch (mm resume), which starts the measure afresh. The first POSITION then books a
    difference from the kept inventory (fills while no quoter ran, transfers) as inherited."""
    if words[A_MAGIC] != ANCHOR_MAGIC or words[A_PRINT] != anchor_print(instruments):
        words[:] = 0
        words[A_MAGIC], words[A_PRINT] = ANCHOR_MAGIC, anchor_print(instruments)
        return False
    fresh = words[A_HIT] != 0
    for i in range(len(instruments)):
        w = words[A_HEAD + A_INST * i:A_HEAD + A_INST * (i + 1)]
        if not w[A_HAS_TARGET]:
            continue
        s = st.inst[i]
        s["has_target"] = 1
        for name, k in _BOOKS[:1] if fresh else _BOOKS:
            s[name] = w[k]
        st.cnt[C_POSITION_BASE + i] = s["inventory"]
    if not fresh:
        st.g[G_PEAK_PNL] = words[A_PEAK]
    return True


def save_anchor(st: QuoterState, words: np.ndarray) -> None:
    """Write the anchor (the loop's caller does, every slice and at the end: a crash loses at
    most one slice of fills and peak, which the next POSITION books as inherited)."""
    for i in range(st.inst.shape[0]):
        s = st.inst[i]
        w = words[A_HEAD + A_INST * i:A_HEAD + A_INST * (i + 1)]
        w[A_HAS_TARGET] = s["has_target"]
        for name, k in _BOOKS:
            w[k] = s[name]
    words[A_PEAK] = st.g[G_PEAK_PNL]
    words[A_HIT] = st.g[G_DRAWDOWN_HIT]
