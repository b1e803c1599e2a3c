"""The quoter's duty cycle in nopython mode (hot path).

One call of `run_loop` spins the Disruptor-style cycle for at most `slice_ns`, then returns so
Python can run signal handlers; the caller re-enters it until it reports STOPPED or KILLED:

  read every available md record (endOfBatch), then every fill record
  -> requote each instrument touched, once per batch (model.requote_dirty)
  -> every `timer_ns`: stale-data and quote-age timers
  -> kill word set (or drawdown hit, which sets it): CANCEL_ALL, publish, return KILLED
  -> pause word set (`mm kill`): CANCEL_ALL, stop quoting, keep running (books, fills, timers);
     pause cleared: quote again once the sender's reconcile has sent RESUME
  -> publish staged intents: claim slots, copy, stamp ts_published, one commit per batch
  -> the book board, when the feed counted md records the full ring could not take: the
     freshest book of every instrument (model.on_board; conflated, never lost)
  -> the depth board (when the feed keeps L2 books), once per burst, for the instruments whose
     MD_DEPTH_BOOK records came (every instrument after records were lost): model.read_depth
  -> heartbeat every 10 ms; idle (nb_idle_warm: spin, yield while events came recently, then
     park on both rings at once through the shared wake word, so a fill wakes it as a tick
     does; the park timeout serves the timers)

The state arrays travel as one record (QuoterArrays, engine/quoter/arrays.py) to the model,
the strategy's scratch (want) beside it; numba compiles (and caches) one specialisation of the
loop per strategy, chosen by the types of the strategy's arrays (sst, spar, want).

Note on numba's cache: it does not notice edits of callees in other modules (model.py, the
strategies, engine/native.py); delete engine/quoter/__pycache__/*.nb[ci] after changing them.
"""
from __future__ import annotations

from numba import njit

from engine.control import KILL_DRAWDOWN, KILL_SHUTDOWN
from engine import _native as C
from engine.native import (
    nb_board_get, nb_cas64, nb_hist_record, nb_load_acquire, nb_now_ns, nb_ring_available,
    nb_ring_commit, nb_ring_read_index, nb_ring_release, nb_ring_try_claim, nb_store_release,
)
from engine.quoter.arrays import (
    C_RING_FULL, G_DEPTH_DIRTY, G_DRAWDOWN_HIT, G_KILLED, G_LAG_DONE, G_RESUMED,
)
from engine.quoter.model import (
    ack_reset, any_quote, check_timers, kill_all, on_board, on_fill, on_md, read_depth,
    requote_dirty,
)
from engine.records import FILL_POSITION, FILL_RESET, FILL_RESUME
from engine.ring.idle import nb_idle_warm

LOOP_SLICE, LOOP_STOPPED, LOOP_KILLED = 0, 1, 2
# words: what the loop keeps across calls
W_STAGED = 0        # intents waiting in `out`
W_LOST_SEEN = 1     # the board's lost count when last read (-1: read it on the first pass)
LOOP_WORDS = 2
_BOARD_OFF_LOST = C.MM_BOARD_OFF_LOST
# hist: addresses of the histograms (0 = not recorded)
H_MD_TO_READ, H_QUOTE_STEP, H_READ_TO_PUBLISHED, H_QUOTE_LAG, H_FILL_TO_READ = 0, 1, 2, 3, 4
HISTOGRAMS = ["md_published_to_read", "quote_step", "read_to_intent_published", "quote_lag",
              "fill_published_to_read"]
BEAT_NS = 10_000_000
PAUSED = -1         # g[G_KILLED] while paused: everything pulled, the process stays up


@njit(cache=True, nogil=True, _nrt=False)
def publish(ord_hdr, ord_slots, out, n, batch_read_ns, hist_addr, cnt):
    """Copy the first n staged intents into the order ring (as many as fit), stamp them, commit
    once. Returns how many stay staged (moved to the front of `out`)."""
    t = nb_now_ns()
    k = 0
    while k < n:
        idx = nb_ring_try_claim(ord_hdr)
        if idx < 0:
            cnt[C_RING_FULL] += 1
            break
        seq = ord_slots[idx].seq            # stamped by the claim
        ord_slots[idx] = out[k]
        d = ord_slots[idx]
        d.seq = seq
        d.ts_published = t
        k += 1
    if k == 0:
        return n
    nb_ring_commit(ord_hdr)
    if hist_addr != 0 and batch_read_ns != 0:
        for j in range(k):
            if out[j].ts_quoter_read == batch_read_ns:
                nb_hist_record(hist_addr, t - batch_read_ns)
    for j in range(k, n):
        out[j - k] = out[j]
    return n - k


@njit(cache=True, nogil=True, _nrt=False)
def read_board(board, scratch, arrays, now):
    """Apply the board's book of every instrument newer than what the quoter has; returns how
    many it applied. `scratch` is a one-record MD array the board copies into."""
    applied = 0
    addr = scratch.ctypes.data
    for i in range(arrays.inst.shape[0]):
        if nb_board_get(board, i, addr) == 0:
            continue                           # never written
        r = scratch[0]
        applied += on_board(arrays, i, r.kind, r.update_id, r.bid_px, r.bid_qty, r.ask_px,
                            r.ask_qty, r.ts_arrival, r.ts_published, now)
    return applied


@njit(cache=True, nogil=True, _nrt=False)
def run_loop(md_hdr, md_slots, fill_hdr, fill_slots, ord_hdr, ord_slots, board, md_scratch,
             depth_board, depth_scratch, kill_addr, pause_addr, hb_addr, wake_addr, stop, hist,
             arrays, want, out, words, idle_kind, idle_state, park_ns, warm_ns, slice_ns,
             timer_ns):
    """Run the duty cycle for up to `slice_ns`; returns LOOP_SLICE, LOOP_STOPPED (stop[0] set:
    quotes canceled) or LOOP_KILLED (kill word set: CANCEL_ALL published); a pause (the word at
    `pause_addr`, 0: none) publishes CANCEL_ALL and keeps the loop running. `board` is the book
    board's address (0: none), `depth_board` the depth board's (0: no depth; `depth_scratch` a
    one-record DEPTH array); `wake_addr` this process's shared wake word (0: park on the md
    ring alone); `arrays` is the quoter's state (QuoterArrays), `want` the strategy's scratch;
    `words` (W_*) keep the loop's state across calls."""
    quotes, g, cnt = arrays.quotes, arrays.g, arrays.cnt
    start = nb_now_ns()
    next_timer = start
    last_beat = 0
    n = words[W_STAGED]
    while True:
        now = nb_now_ns()
        work = 0
        batch_read = 0
        avail = nb_ring_available(md_hdr)
        if avail > 0:
            for k in range(avail):
                r = md_slots[nb_ring_read_index(md_hdr, k)]
                if hist[H_MD_TO_READ] != 0:
                    nb_hist_record(hist[H_MD_TO_READ], now - r.ts_published)
                on_md(arrays, r.instrument, r.kind, r.update_id, r.bid_px, r.bid_qty, r.ask_px,
                      r.ask_qty, r.ts_arrival, r.ts_published, now)
            nb_ring_release(md_hdr, avail)
            work += avail
            batch_read = now
        avail = nb_ring_available(fill_hdr)
        if avail > 0:
            for k in range(avail):
                f = fill_slots[nb_ring_read_index(fill_hdr, k)]
                # the hand-off of answers to orders (stamped at the put): not the start-up's
                # position and resume records, published before the quoter runs
                if hist[H_FILL_TO_READ] != 0 and f.ts_received != 0 and \
                        f.kind != FILL_POSITION and f.kind != FILL_RESUME and f.kind != FILL_RESET:
                    nb_hist_record(hist[H_FILL_TO_READ], now - f.ts_received)
                on_fill(arrays, f.instrument, f.kind, f.order_id, f.side, f.price, f.qty,
                        f.leaves_qty, f.error_code, now)
                if g[G_LAG_DONE] != 0:         # an ACK ended a quote lag
                    if hist[H_QUOTE_LAG] != 0:
                        nb_hist_record(hist[H_QUOTE_LAG], g[G_LAG_DONE])
                    g[G_LAG_DONE] = 0
            nb_ring_release(fill_hdr, avail)
            work += avail
        if board != 0:
            lost = nb_load_acquire(board + _BOARD_OFF_LOST)
            if lost != words[W_LOST_SEEN]:
                words[W_LOST_SEEN] = lost
                if read_board(board, md_scratch, arrays, now) > 0:
                    work += 1
                    batch_read = now
                if depth_board != 0:           # a lost MD_DEPTH_BOOK mark: read every one
                    for i in range(arrays.inst.shape[0]):
                        arrays.inst[i].depth_dirty = 1
                    g[G_DEPTH_DIRTY] = 1
        if depth_board != 0 and g[G_DEPTH_DIRTY] != 0:
            if read_depth(depth_board, depth_scratch, arrays) > 0:
                work += 1
        n = ack_reset(g, out, n, now)          # ahead of every intent decided after a RESET
        timer = now >= next_timer
        if timer:
            check_timers(arrays.inst, quotes, arrays.par, arrays.sst, arrays.spar, now)
            next_timer = now + timer_ns
        if work > 0 or timer:
            t0 = nb_now_ns()
            n = requote_dirty(arrays, want, now, out, n)
            if batch_read != 0 and hist[H_QUOTE_STEP] != 0:
                nb_hist_record(hist[H_QUOTE_STEP], nb_now_ns() - t0)
            if g[G_DRAWDOWN_HIT] != 0:
                nb_cas64(kill_addr, 0, KILL_DRAWDOWN)     # first reason wins
        kill = nb_load_acquire(kill_addr)
        pause = nb_load_acquire(pause_addr) if pause_addr != 0 else 0
        stopping = stop[0] != 0
        if kill != 0 and g[G_KILLED] == PAUSED:
            g[G_KILLED] = kill                 # paused, then stopped: already pulled
        if g[G_KILLED] == 0 and (kill != 0 or (stopping and any_quote(quotes))):
            n = kill_all(quotes, g, cnt, out, n, kill if kill != 0 else KILL_SHUTDOWN, now)
        elif g[G_KILLED] == 0 and pause != 0 and not stopping:
            n = kill_all(quotes, g, cnt, out, n, PAUSED, now)
            if g[G_KILLED] == PAUSED:
                g[G_RESUMED] = 0               # quote again only after the sender's RESUME
        elif g[G_KILLED] == PAUSED and pause == 0 and kill == 0:
            g[G_KILLED] = 0                    # resumed: quotes wait for G_RESUMED
        if n > 0:
            n = publish(ord_hdr, ord_slots, out, n, batch_read, hist[H_READ_TO_PUBLISHED], cnt)
        words[W_STAGED] = n
        if now - last_beat >= BEAT_NS:
            nb_store_release(hb_addr, now)
            last_beat = now
        if n == 0:
            if g[G_KILLED] != 0 and kill != 0:
                return LOOP_KILLED
            if stopping:
                return LOOP_STOPPED
        if now - start >= slice_ns:
            return LOOP_SLICE
        nb_idle_warm(idle_kind, idle_state, md_hdr, fill_hdr, wake_addr, work + n, park_ns,
                     warm_ns, now)
