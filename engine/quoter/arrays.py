"""The quoter's state arrays: their dtypes, columns and word indices, named in one place so the
compiled core (model.py), the loop (loop.py), the set-up code (state.py), the backtest
(engine/backtest/) and the Python reference (tests/support/quoter_reference.py) agree:

  inst    INST_DTYPE[n_inst]          book, inventory, PnL per instrument
  quotes  QUOTE_DTYPE[n_inst, 2, L]   our quote per instrument, side (BID/ASK) and level
  par     PARAM_DTYPE[n_inst]         risk and requote parameters (fixed at start)
  g       int64[G_WORDS]              engine-wide words (order id counter, resumed, killed, ...)
  cnt     int64[56]                   counters: the control segment's `quoter` slot in production
  rl10    int64[...]                  order-rate window of 10 s (engine/quoter/rate.py)
  rlday   int64[...]                  order-rate window of a day
  sst     <strategy>.STATE_DTYPE[n]   the strategy's own state (engine/strategies/)
  spar    <strategy>.PARAM_DTYPE[n]   the strategy's parameters

They travel together as one record, QuoterArrays (built once: QuoterState.arrays). Beside it
travels the strategy's scratch, which each pass fills before reading (as `out` stages intents):

  want    DESIRED_DTYPE[n_inst, 2, L] what the strategy asks for on its last pass

A quote slot (one per instrument, side and level) manages at most two venue orders: the
current one (order_id, state) and, while a cancelReplace is on the wire, the one it replaces
(prev_id, prev_state). Every order resting at the venue is held by exactly one slot; the slot
learns each order's fate from the sender's records (engine/sender/order_state.py):

  state      Q_NONE --NEW--> Q_PENDING --ACK--> Q_LIVE --CANCEL--> Q_CANCELING --CANCELED--> Q_NONE
             Q_LIVE --REPLACE--> Q_PENDING (new order) with prev = the old one (Q_CANCELING)
             UNKNOWN record --> Q_UNKNOWN (the sender asks the venue; the slot waits, fills
             included, for ACK or CANCEL_REJECT: it rests, or for the order's end)
             CANCEL_REJECT --> Q_LIVE again, retried after a back-off (retry_ns, fails)
             REJECT / CANCELED / last fill of the current order --> the previous order, if
             any, becomes the current one with its own state; else Q_NONE
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from engine.control import COUNTERS

BID, ASK = 0, 1                      # side index in `quotes` (SIDE_BUY / SIDE_SELL on the wire)

# quote slot order states (current order: `state`; replaced order: `prev_state`)
Q_NONE = 0            # no order
Q_PENDING = 1         # NEW / REPLACE sent, not acknowledged yet (not replaced until ACK)
Q_LIVE = 2            # acknowledged, resting
Q_CANCELING = 3       # CANCEL (or a replace's cancel leg) sent: its qty still counts as exposure
Q_UNKNOWN = 4         # the sender is asking the venue what became of it: the slot waits

INST_DTYPE = np.dtype([
    ("bid_px", "i8"), ("bid_qty", "i8"), ("ask_px", "i8"), ("ask_qty", "i8"),
    ("book_ok", "i8"),          # 1 when both sides present and not crossed
    ("mid", "f8"),              # mid of the last good book, ticks (the price band's centre)
    ("last_md_ns", "i8"),       # read time of the last book update (stale guard)
    ("stale", "i8"),            # 1: quotes pulled until a fresh book update
    ("feed_stale", "i8"),       # 1: the feed marked the stream stale (MD_STALE)
    ("dirty", "i8"),            # 1: re-evaluate quotes at the end of this batch
    ("inventory", "i8"),        # base position, qty units
    ("pos_base", "i8"),         # inventory inherited via POSITION (not marked in PnL)
    ("target", "i8"),           # neutral inventory: the venue position before quoting began;
                                # the skew and the position limits measure from it
    ("has_target", "i8"),       # 1 once the start-up POSITION set `target`
    ("cash", "i8"),             # sum of -signed fill notional, px*qty units
    ("trig_update_id", "i8"),   # the last book update: stamped on intents it triggers
    ("trig_ts_arrival", "i8"),  # arrival of the OLDEST tick not yet answered (tick-to-order
    ("trig_ts_md_published", "i8"),   # of a batch is timed from its first tick), its publish
    ("trig_ts_read", "i8"),
    ("mark_px", "i8"),          # last good mid (price units): marks the position when the
                                # book is one-sided or crossed
    ("board_ts", "i8"),         # arrival of the last book taken from the book board: ring
                                # records no newer than it are superseded (engine/ring/board.py)
    # depth (only when the feed keeps L2 books: engine/feed/depth_feed.py)
    ("depth_stale", "i8"),      # 1: the feed's L2 book lost sync (a gap) or never synced:
                                # quotes pulled until the depth board says synced
    ("depth_dirty", "i8"),      # 1: an MD_DEPTH_BOOK record came; read the depth board
    ("depth_id", "i8"),         # update id of the depth book last read
    ("depth_bid_qty", "i8"),    # summed size of the best `depth_levels` bid levels
    ("depth_ask_qty", "i8"),    # ... and ask levels (0: none)
], align=True)

QUOTE_DTYPE = np.dtype([
    ("order_id", "i8"), ("price", "i8"), ("qty", "i8"), ("state", "i8"),   # current order
    ("placed_ns", "i8"),        # when it was asked for (its rate-window charge)
    ("prev_id", "i8"), ("prev_price", "i8"), ("prev_qty", "i8"), ("prev_state", "i8"),
    ("retry_ns", "i8"),         # no new request on this slot before this (back-off)
    ("fails", "i8"),            # refusals in a row (reset by an ACK or a CANCELED)
    ("want", "i8"), ("want_px", "i8"), ("want_qty", "i8"),   # scratch of the current requote
                                # pass: the strategy's wish after rounding and risk
    ("lag_since", "i8"),        # quote lag: since when the slot has no order resting within
                                # requote_ticks of the wish (the arrival of the book event that
                                # moved the wish; 0 = not lagging); an ACK at the wish ends it
], align=True)

# What a strategy asks for, per instrument, side and level (engine/strategies/): a price in
# ticks (rounded by the core: bids down, asks up) and a size in quantity units (rounded down
# to lots; 0 = no quote at this level).
DESIRED_DTYPE = np.dtype([("px", "f8"), ("qty", "i8")], align=True)

PARAM_DTYPE = np.dtype([
    ("tick", "i8"),             # price mantissa units per tick
    ("lot", "i8"),              # qty units per lot
    ("size", "i8"),             # order size, qty units (a whole number of lots)
    ("max_position", "i8"),     # qty units
    ("max_notional", "i8"),     # px*qty units
    ("pnl_scale", "i8"),        # px*qty units -> the common PnL unit (10**(exp_i - exp_min))
    ("levels", "i8"),
    ("spacing", "i8"),          # ticks between levels (for strategies that ladder)
    ("requote_ticks", "i8"),
    ("max_age_ns", "i8"),       # 0 = quotes never expire
    ("stale_ns", "i8"),
    ("band", "f8"),             # price band as a fraction of the mid (bps / 1e4)
    ("backoff_ns", "i8"),       # first back-off after a refusal; doubles per refusal in a row
    ("backoff_cap_ns", "i8"),
    ("cancel_after", "i8"),     # refusals in a row after which a move is cancel-then-new
    ("depth_levels", "i8"),     # levels per side summed into depth_bid_qty / depth_ask_qty
], align=True)


class QuoterArrays(NamedTuple):
    """The nine state arrays (the table above) as one record, passed whole to compiled code. In
    nopython mode a field is resolved at compile time and the record is passed field by field:
    `arrays.inst` costs what a separate argument did. (From Python a call with it dispatches
    about a microsecond slower than with loose arrays: numba types a namedtuple in Python; the
    hot path calls from compiled code.)"""
    inst: np.ndarray
    quotes: np.ndarray
    par: np.ndarray
    g: np.ndarray
    cnt: np.ndarray
    rl10: np.ndarray
    rlday: np.ndarray
    sst: np.ndarray
    spar: np.ndarray


# engine-wide words
G_NEXT_ID = 0          # next order id (ORDER_DTYPE.order_id = the n of <tag>-<u>-<n>)
G_RESUMED = 1          # 1 after FILL_RESUME: quoting allowed
G_KILLED = 2           # kill reason once the quoter has pulled everything (0 = running)
G_PEAK_PNL = 3         # peak of total mark-to-market PnL (common unit)
G_MAX_DRAWDOWN = 4     # 0 = off
G_DRAWDOWN_HIT = 5     # 1 when the drawdown limit fired (the loop pulls the kill switch)
G_WALL_OFFSET = 6      # wall-clock ns minus perf_counter_ns (rate windows use wall time)
G_RESET_SEEN = 7       # the last FILL_RESET's token until its RESET_SEEN intent is staged
G_LAG_DONE = 8         # a quote lag an ACK has just ended (ns), for the loop's histogram
G_DEPTH_DIRTY = 9      # 1: some instrument's depth_dirty is set (the loop reads the depth board)
G_WORDS = 10

RATE_WINDOW_10S_NS = 10_000_000_000
RATE_WINDOW_DAY_NS = 86_400_000_000_000
RATE_BUCKET_10S_NS = 100_000_000           # 101 buckets of 100 ms
RATE_BUCKET_DAY_NS = 600_000_000_000       # 145 buckets of 10 min

# counters, in the control segment's `quoter` slot (names published with name_counters)
COUNTER_NAMES = [
    "ticks", "batches", "intents", "new", "replace", "cancel", "cancel_all",
    "fills", "acks", "trades", "rejects", "canceled", "unknown_order", "positions",
    "risk_position", "risk_notional", "risk_band", "rate_limited", "stale_pulls",
    "crossed_book", "ring_full", "pnl", "drawdown", "unknown_instrument",
    "cancel_rejects", "unknowns", "resets", "backoffs", "rate_refunds",
    "conflated", "superseded", "lags", "lags_undone", "depth_reads", "depth_pulls",
]
(C_TICKS, C_BATCHES, C_INTENTS, C_NEW, C_REPLACE, C_CANCEL, C_CANCEL_ALL,
 C_FILLS, C_ACKS, C_TRADES, C_REJECTS, C_CANCELED, C_UNKNOWN_ORDER, C_POSITIONS,
 C_RISK_POSITION, C_RISK_NOTIONAL, C_RISK_BAND, C_RATE_LIMITED, C_STALE_PULLS,
 C_CROSSED_BOOK, C_RING_FULL, C_PNL, C_DRAWDOWN, C_UNKNOWN_INSTRUMENT,
 C_CANCEL_REJECTS, C_UNKNOWNS, C_RESETS, C_BACKOFFS, C_RATE_REFUNDS,
 C_CONFLATED, C_SUPERSEDED, C_LAGS, C_LAGS_UNDONE, C_DEPTH_READS,
 C_DEPTH_PULLS) = range(len(COUNTER_NAMES))
C_POSITION_BASE = len(COUNTER_NAMES)   # position_<symbol>, one per instrument
# The quoter's slot of the control segment: its counters, then one position per instrument
# (room for engine.control.MAX_INSTRUMENTS; the config's max_instruments is checked at load).
N_COUNTERS = COUNTERS


def counter_names(symbols: list[str], pnl_exp: int) -> list[str]:
    """All counter names for an instrument table. PnL and drawdown carry their unit in the name
    (`pnl_e-7`: units of 10**-7 quote currency); positions come last, one per symbol, in the
    instrument's quantity units (10**qty_exp base currency)."""
    names = [f"{n}_e{pnl_exp}" if n in ("pnl", "drawdown") else n for n in COUNTER_NAMES]
    names += [f"position_{s}" for s in symbols]
    if len(names) > N_COUNTERS:      # config.check refuses this first (max_instruments)
        raise ValueError(f"quoter: at most {N_COUNTERS - len(COUNTER_NAMES)} instruments")
    return names
