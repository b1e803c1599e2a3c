"""The quoter's book (compiled, hot path; the contract is in model.py): a book record or a
stale/fresh mark into an instrument's state, from the ring (on_md) or the board (on_board),
whether that data has aged out, and the L2 book's summary from the depth board (read_depth,
after MD_DEPTH_BOOK records)."""
from __future__ import annotations

from numba import njit

from engine.native import nb_board_get
from engine.quoter.arrays import (
    C_CONFLATED, C_CROSSED_BOOK, C_DEPTH_READS, C_SUPERSEDED, C_TICKS, C_UNKNOWN_INSTRUMENT,
    G_DEPTH_DIRTY,
)
from engine.records import MD_BBO, MD_DEPTH_BOOK, MD_FRESH, MD_STALE
from engine.strategies import dispatch as strategy

# _nrt=False: these functions never allocate, so no reference counting of the state arrays
# (an atomic increment and decrement per array per call: most of the step time otherwise).
_jit = njit(cache=True, nogil=True, fastmath=False, _nrt=False)


@_jit
def on_md(arrays, i, kind, update_id, bid_px, bid_qty, ask_px, ask_qty, ts_arrival,
          ts_md_published, now):
    """Apply one book record read at `now`; marks the instrument for requoting. A good book
    (both sides, not crossed) sets the mid and goes to the strategy's on_book. Time is the
    record's arrival stamp (now when it has none): staleness is the data's age, not the time
    since the quoter read it, and the strategy's clock is the market's."""
    inst, par, cnt, sst, spar = arrays.inst, arrays.par, arrays.cnt, arrays.sst, arrays.spar
    cnt[C_TICKS] += 1
    if i >= inst.shape[0]:
        cnt[C_UNKNOWN_INSTRUMENT] += 1
        return
    if (kind & MD_DEPTH_BOOK) != 0:       # the depth board changed: read once per burst
        s = inst[i]
        s.depth_dirty = 1
        arrays.g[G_DEPTH_DIRTY] = 1
        if (kind & MD_STALE) != 0:       # a gap: pull now, not after the board read
            s.depth_stale = 1
            s.dirty = 1
        return
    if (kind & MD_BBO) != 0 and ts_arrival != 0 and ts_arrival <= inst[i].board_ts:
        cnt[C_SUPERSEDED] += 1             # the board already gave us this book or a newer one
        return
    _apply_md(inst[i], par[i], sst[i], spar[i], cnt, kind, update_id, bid_px, bid_qty, ask_px,
              ask_qty, ts_arrival, ts_md_published, now)


@_jit
def _apply_md(s, p, st, sp, cnt, kind, update_id, bid_px, bid_qty, ask_px, ask_qty, ts_arrival,
              ts_md_published, now):
    """One book record (or stale/fresh mark) into instrument state `s` (see on_md)."""
    t_md = ts_arrival if ts_arrival != 0 else now
    s.trig_update_id = update_id
    # the intents answer every tick since the last pass: timed from the oldest
    if s.trig_ts_arrival == 0 or (ts_arrival != 0 and ts_arrival < s.trig_ts_arrival):
        s.trig_ts_arrival = ts_arrival
        s.trig_ts_md_published = ts_md_published
    s.trig_ts_read = now
    s.dirty = 1
    if kind & MD_STALE:
        s.feed_stale = 1
        return
    if kind & MD_FRESH:
        s.feed_stale = 0
    if (kind & MD_BBO) == 0:
        return
    s.feed_stale = 0                      # a book update proves the stream alive
    s.last_md_ns = t_md
    s.bid_px = bid_px
    s.bid_qty = bid_qty
    s.ask_px = ask_px
    s.ask_qty = ask_qty
    if bid_px <= 0 or ask_px <= 0 or bid_qty <= 0 or ask_qty <= 0 or bid_px >= ask_px:
        s.book_ok = 0
        cnt[C_CROSSED_BOOK] += 1
        return
    s.book_ok = 1
    s.mark_px = (bid_px + ask_px) // 2        # the mark stays at the last good mid
    s.mid = (bid_px / p.tick + ask_px / p.tick) * 0.5
    strategy.on_book(st, sp, s, p, t_md)


@_jit
def on_board(arrays, i, kind, update_id, bid_px, bid_qty, ask_px, ask_qty, ts_arrival,
             ts_md_published, now):
    """The book board's record of instrument i, read after the feed counted ring records it
    could not publish: applied when newer than the last book applied (counted as conflated;
    returns True); ring records no newer than it are skipped later (on_md: superseded)."""
    inst, par, cnt, sst, spar = arrays.inst, arrays.par, arrays.cnt, arrays.sst, arrays.spar
    if i >= inst.shape[0] or ts_arrival == 0:
        return False
    s = inst[i]
    if ts_arrival <= s.last_md_ns:        # (board_ts <= last_md_ns: it is a book applied)
        return False
    _apply_md(s, par[i], sst[i], spar[i], cnt, kind, update_id, bid_px, bid_qty, ask_px,
              ask_qty, ts_arrival, ts_md_published, now)
    cnt[C_CONFLATED] += 1
    s.board_ts = ts_arrival
    return True


@_jit
def _aged(s, p, now):
    """The instrument's last book arrived longer than stale_after ago."""
    return s.last_md_ns > 0 and now - s.last_md_ns > p.stale_ns


@_jit
def read_depth(board, scratch, arrays):
    """Read the depth board (records.DEPTH_DTYPE; `scratch` a one-record array) for every
    instrument marked depth_dirty (the loop marks all of them after lost ring records): its
    sync state and the sizes of its best depth_levels levels per side. Returns how many it
    read."""
    inst, par, cnt = arrays.inst, arrays.par, arrays.cnt
    arrays.g[G_DEPTH_DIRTY] = 0
    addr = scratch.ctypes.data
    n = 0
    for i in range(inst.shape[0]):
        s = inst[i]
        if s.depth_dirty == 0:
            continue
        s.depth_dirty = 0
        if nb_board_get(board, i, addr) == 0:
            continue                           # never written: stays as it was
        r = scratch[0]
        levels = par[i].depth_levels
        bq = 0
        for k in range(min(levels, r.n_bids)):
            bq += r.bid_qty[k]
        aq = 0
        for k in range(min(levels, r.n_asks)):
            aq += r.ask_qty[k]
        s.depth_bid_qty = bq
        s.depth_ask_qty = aq
        s.depth_id = r.update_id
        s.depth_stale = 0 if r.synced != 0 else 1
        s.dirty = 1
        cnt[C_DEPTH_READS] += 1
        n += 1
    return n
