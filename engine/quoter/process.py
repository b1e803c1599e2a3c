"""The quoter process: `run(cfg)` attaches the rings, warms the compiled code, then runs the
numba duty cycle (loop.run_loop) until SIGTERM/SIGINT or the kill switch. QuoterAgent is that
duty cycle; the life around it (registration, pinning, signals, gc, the final state) is
engine/agent.py's.

Start-up contract with the sender (fills ring): the quoter sends nothing until it has read a
FILL_RESUME; the sender first sends one FILL_POSITION per instrument (qty = signed base position
from the venue), then FILL_RESUME. Quoting without that would trade on a guessed inventory.
"""
from __future__ import annotations

import time

import numba
import numpy as np

from engine import agent
from engine.control import KILL_REASONS, exit_status_for
from engine.proc import log
from engine.quoter import loop, model
from engine.quoter.arrays import G_DEPTH_DIRTY, G_KILLED, counter_names
from engine.quoter.params import pnl_exponent
from engine.quoter.belief import Belief
from engine.quoter.state import (QuoterState, anchor_words, rate_window_words, restore_anchor,
                                 save_anchor)
from engine.state_dir import PersistentWords, anchor_path, state_dir
from engine.records import (
    FILL_ACK, FILL_CANCEL_REJECT, FILL_CANCELED, FILL_POSITION, FILL_REJECT, FILL_RESET,
    DEPTH_DTYPE, FILL_RESUME, FILL_TRADE, FILL_UNKNOWN, MD_BBO, MD_DTYPE, MD_STALE, SIDE_BUY,
)
from engine.ring.board import Board
from engine.ring.idle import STRATEGIES, nb_idle_state
from engine.ring.table import FILLS, MD, ORDERS

ROLE = "quoter"
SLICE_NS = 50_000_000      # run_loop returns this often so Python can run signal handlers
TIMER_NS = 1_000_000       # stale/age timers and retries of rate-limited quotes


def idle_name(q) -> str:
    """The idle strategy to run: "" means park (a small box cannot spin beside other busy roles)."""
    return q.idle or "park"


def warm_up(q, instruments) -> float:
    """Compile (or load from numba's cache) every hot function for q's strategy and run each
    model path once on scratch state, so the first real tick meets no JIT. Returns the seconds
    it took."""
    t0 = time.perf_counter()
    st = QuoterState(q, instruments, first_id=1)
    arrays = st.arrays
    now = 1_000_000_000

    def fill(i, kind, order_id=0, side=0, price=0, qty=0, leaves=0, code=0):
        model.on_fill(arrays, i, kind, order_id, side, price, qty, leaves, code, now)
    fill(0, FILL_RESET)
    fill(0, FILL_POSITION)
    fill(0, FILL_RESUME)
    for i in range(len(instruments)):
        tick = int(st.par[i]["tick"])
        for k in range(3):
            model.on_md(arrays, i, MD_BBO, k + 1, (1000 + k) * tick, 5, (1001 + k) * tick, 7, now,
                        now, now + k)
    n = model.requote_dirty(arrays, st.want, now + 3, st.out, 0)
    for k in range(n):
        o = st.out[k]
        fill(int(o["instrument"]), FILL_ACK, int(o["order_id"]))
    o = st.out[0]
    fill(int(o["instrument"]), FILL_TRADE, int(o["order_id"]), SIDE_BUY, int(o["price"]),
         int(o["qty"]))
    for kind in (FILL_UNKNOWN, FILL_CANCEL_REJECT, FILL_CANCELED, FILL_REJECT):
        fill(int(st.out[1]["instrument"]), kind, int(st.out[1]["order_id"]), code=-90001)
    model.on_md(arrays, 0, MD_STALE, 9, 0, 0, 0, 0, now, now, now + 5)
    model.check_timers(st.inst, st.quotes, st.par, st.sst, st.spar, now + 10**12)
    model.requote_dirty(arrays, st.want, now + 10**12, st.out, 0)
    model.kill_all(st.quotes, st.g, st.cnt, st.out, 0, 1, now)
    model.any_quote(st.quotes)
    return time.perf_counter() - t0


def compile_loop(args: tuple) -> None:
    """Compile run_loop for the real argument types (a cache hit after the first run)."""
    loop.run_loop.compile(tuple(numba.typeof(a) for a in args))


def run(cfg) -> int:
    """Run the quoter until stopped; returns the exit status (engine/exit_codes.py: 0 = a clean
    stop; 4 or 5 when the kill switch stopped it, latched or for a lost peer)."""
    return agent.run(QuoterAgent, cfg)


class QuoterAgent(agent.Agent):
    """The md and fills rings -> the model -> the orders ring, in one compiled loop."""
    role = ROLE
    histograms = loop.HISTOGRAMS

    def __init__(self, cfg):
        q = cfg.quoter
        self.cfg, self.q, self.core = cfg, q, q.core
        self.idle = idle_name(q)
        # a consumer that never parks spares its producers the fence and the wake-up check
        spins = self.idle != "park"
        self.rings = (agent.RingEnd(MD, "consumer", spins),
                      agent.RingEnd(ORDERS, "producer"),
                      agent.RingEnd(FILLS, "consumer", spins))
        self.counters = counter_names([i.symbol for i in cfg.instruments],
                                      pnl_exponent(cfg.instruments))
        # SIGTERM/SIGINT only set the stop word: a stop during warm-up still closes the rings,
        # and the running loop sees it within SLICE_NS.
        self.stop = np.zeros(1, np.int64)
        self.st = self.anchor_file = None

    def request_stop(self, reason: str) -> None:
        self.stop[0] = 1

    def on_start(self, life: agent.Life) -> None:
        self.life = life
        cfg, q, closing = self.cfg, self.q, life.closing
        md, orders, fills = (life.rings[r.name] for r in (MD, ORDERS, FILLS))
        ctl = life.control
        board = Board.open(cfg.instance, len(cfg.instruments), MD_DTYPE)
        closing.callback(board.close)
        depth_board = None
        if cfg.feed.keeps_depth():       # the feed keeps L2 books: their summaries are read
            depth_board = Board.open(cfg.instance, len(cfg.instruments), DEPTH_DTYPE, "depth")
            closing.callback(depth_board.close)
        # what must outlive this process (rate windows: the venue's counters do not reset
        # when we restart; the anchor: a restart must not re-centre the position limit or the
        # drawdown) and what others read (the belief table)
        rate_file = PersistentWords(state_dir(cfg) / f"{cfg.instance}.rate",
                                    sum(rate_window_words()))
        closing.callback(rate_file.close)
        self.anchor_file = anchor_file = PersistentWords(
            anchor_path(cfg), anchor_words(len(cfg.instruments)))
        closing.callback(anchor_file.close)
        belief = Belief.create(cfg.instance, len(cfg.instruments), q.levels)
        closing.callback(belief.close)
        closing.callback(belief.unlink)
        self.st = st = QuoterState(q, cfg.instruments, counters=life.counters,
                                   rate_words=rate_file.array, inst=belief.inst,
                                   quotes=belief.quotes)
        if restore_anchor(st, anchor_file.array, cfg.instruments):
            log(ROLE, "position references and drawdown kept from the previous run "
                      f"({anchor_file.path})")
        depth_addr = depth_board.addr if depth_board is not None else 0
        if depth_board is not None:      # not quoted until the depth is synced; read it once
            st.inst["depth_stale"] = 1
            st.inst["depth_dirty"] = 1
            st.g[G_DEPTH_DIRTY] = 1
        words = np.zeros(loop.LOOP_WORDS, np.int64)
        words[loop.W_LOST_SEEN] = -1           # read the board once at start: the freshest books
        hs = life.histograms
        hist = np.array([hs.addr(n) for n in loop.HISTOGRAMS], np.int64)
        self.args = (md.hdr, md.slots, fills.hdr, fills.slots, orders.hdr, orders.slots,
                     board.addr, np.zeros(1, MD_DTYPE), depth_addr, np.zeros(1, DEPTH_DTYPE),
                     ctl.kill_addr, ctl.pause_addr,
                     ctl.heartbeat_addr(ROLE), ctl.wake_addr(ROLE), self.stop, hist, st.arrays,
                     st.want, st.out, words, STRATEGIES[self.idle], nb_idle_state(),
                     q.park_timeout_us * 1000, q.warm_us * 1000, SLICE_NS, TIMER_NS)
        t0 = time.perf_counter()
        t_model = warm_up(q, cfg.instruments)
        compile_loop(self.args)
        log(ROLE, f"strategy {q.strategy}: warm in {time.perf_counter() - t0:.2f} s (model "
                  f"{t_model:.2f} s), idle={self.idle}; waiting for POSITION + RESUME on the "
                  f"fills ring")

    def run(self) -> int:
        """The compiled loop, in slices of SLICE_NS (between them Python runs the signal
        handlers and saves the anchor): no Python per loop turn."""
        args, st = self.args, self.st
        self.life.running()
        rc = loop.LOOP_SLICE
        while rc == loop.LOOP_SLICE:
            rc = loop.run_loop(*args)
            save_anchor(st, self.anchor_file.array)
        if rc == loop.LOOP_KILLED:
            reason = int(st.g[G_KILLED])            # the reason the loop saw
            log(ROLE, f"kill switch ({KILL_REASONS.get(reason, '?')}): cancel-all sent, "
                      f"stopped quoting")
            return exit_status_for(reason)
        log(ROLE, "stopped")
        return 0

    def on_close(self) -> None:
        if self.st is not None:                     # the anchor as the last slice left it
            save_anchor(self.st, self.anchor_file.array)
