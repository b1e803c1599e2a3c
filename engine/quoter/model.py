"""The quoter's core, compiled by numba (hot path): the book, order truth in the quote slots, and
the rules every strategy quotes under. The strategy (engine/strategies/, chosen by
quoter.strategy) only says which quotes it wants; this module rounds them to the tick (bids
down, asks up) and the lot, keeps them off the other side of the book, withholds what the price
band, position and notional limits or the rate windows refuse, pulls everything on stale data,
and decides when a resting quote is worth replacing (requote_ticks, max_quote_age_ms).

Every function of the core is `@njit(cache=True)` with fastmath off, so float operations run
in the order written: tests/support/quoter_reference.py repeats core and strategies in plain Python
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

This module is the core's front: the entry points the loop, the backtest and the bench call.
The code sits beside it, one job a module:
  book.py      on_md, on_board: book records into instrument state; _aged (stale data);
               read_depth: the depth board's summary after MD_DEPTH_BOOK records
  fills.py     on_fill: the sender's records (slots.py: a slot's order truth, back-off)
  plan.py      _plan: the strategy's wish after the rules (tick, lot, post-only, band, limits)
  requote.py   requote_dirty, requote: the pass, rate windows (rate_take), pulls, PnL
  intents.py   _emit, _emit_all: intent records into `out`
  control.py   check_timers, ack_reset, kill_all, any_quote
numba's cache does not notice edits of callees in other modules: after changing one, delete
engine/quoter/__pycache__/*.nb[ci] (and the strategies' and the backtest's).
"""
from __future__ import annotations

from engine.quoter.book import on_board, on_md, read_depth
from engine.quoter.control import ack_reset, any_quote, check_timers, kill_all
from engine.quoter.fills import on_fill
from engine.quoter.requote import rate_take, requote, requote_dirty, update_pnl

__all__ = [
    "ack_reset", "any_quote", "check_timers", "kill_all", "on_board", "on_fill", "on_md",
    "read_depth",
    "rate_take", "requote", "requote_dirty", "update_pnl",
]
