"""The backtest's event loop (compiled, hot path) and the set-up that drives it.

Time is the capture's. Four kinds of event, taken in time order (at equal times in this order):
  market   a captured record: the venue matches it against our resting orders (venue.on_book /
           on_trade) at its venue time, the quoter reads it (model.on_md) at its arrival
           time; the two are one unless backtest.feed_latency = "capture" (venue_times below)
  intent   an order intent reaches the venue an order latency after the quoter decided it
  answer   a venue record (ACK, TRADE, CANCELED, REJECT) reaches the quoter an answer latency
           after the venue made it (model.on_fill); both latencies fixed or drawn from a live
           run's histograms (engine/backtest/latency.py), each FIFO kept in order
  timer    the quoter's timer, when one of its deadlines is due (stale data, quote age, the end
           of a back-off, a rate-limited retry; every TIMER_NS when the strategy keeps a clock)
Each batch of the quoter runs what the live loop (engine/quoter/loop.py) runs: every market
record of that instant, then every answer due, then the timer when due, then one requote pass
(model.requote_dirty) and the kill switch when the drawdown limit fired. The quoter's `now` is
the event time: it reads market data the moment it arrives (the feed's decode and the ring are
part of order_latency).

`run_chunk` returns to Python every chunk of market records (a progress bar, and the fill log
and samples emptied into Python lists) and when its buffers fill up.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
from numba import njit

from engine.backtest import feed_depth, latency, queue, venue
from engine.backtest.latency import Latencies
from engine.backtest.venue import (
    ACCT_DTYPE, FILL_LOG_DTYPE, V_KEEP_NS, V_NLOG, V_NREQ, V_OVERFLOW, V_QMODEL, V_RESP_HEAD,
    V_RESP_LAT, V_RESP_TAIL, V_WORDS, VBOOK_DTYPE, VORDER_DTYPE,
)
from engine.control import KILL_DRAWDOWN
from engine.quoter import model
from engine.quoter.arrays import (
    G_DRAWDOWN_HIT, G_KILLED, G_WALL_OFFSET, Q_LIVE, RATE_BUCKET_10S_NS,
)
from engine.quoter.process import TIMER_NS
from engine.quoter.state import QuoterState
from engine.records import (
    FILL_DTYPE, FILL_POSITION, FILL_RESUME, MD_BBO, MD_DEPTH, MD_SNAPSHOT, MD_TRADE, ORDER_DTYPE,
    SIDE_BUY,
)
from engine.strategies import model as strategy_model

BIG = np.int64(1) << np.int64(62)

# replay words (rw)
R_K = 0             # next market record
R_INT_HEAD = 1      # intents in flight: next to reach the venue ...
R_INT_TAIL = 2      # ... next free
R_NEXT_TIMER = 3    # the quoter's timer may run again from here (the live loop's next_timer)
R_NEXT_SAMPLE = 4
R_SAMPLE_NS = 5
R_NSAMPLE = 6       # samples written (the caller empties them)
R_USES_TIMER = 8
R_KILL_NS = 9       # when the drawdown limit pulled the kill switch (0: never)
R_BATCHES = 10      # quoter batches
R_KV = 11           # next market record the venue sees (at its venue time; R_KV >= R_K)
R_NSENT = 12        # requests sent so far (the next one's latency draw)
R_LAST_INT_T = 13   # when the last request reached the venue (they arrive in order)
R_LAST_T = 14
R_NINTENT = 15      # intent log entries written (the caller empties the log)
R_LAST_ANS_T = 16   # when the last answer reached the quoter (they arrive in order)
R_WORDS = 17

# replay float words (fw)
F_PNL = 0           # marked PnL after fees at the venue's exact mid, common unit
F_PEAK = 1
F_MAX_DD = 2
F_WORDS = 3

DONE, CHUNK, FLUSH, OVERFLOW = 0, 1, 2, 3
INTENT_FIFO = 1 << 14
INTENT_LOG = 1 << 14
ANSWER_FIFO = 1 << 16
FILL_LOG = 1 << 16
SAMPLES = 1 << 14
ORDER_TABLE = 4096

_jit = njit(cache=True, nogil=True, fastmath=False, _nrt=False)


@_jit
def _deadline(inst, quotes, par, rw):
    """When the quoter's timer has something to do next (BIG: nothing), never before the live
    loop would run it again (R_NEXT_TIMER). An instrument still dirty after its pass was
    refused by the rate windows: they free an order only when a bucket ends, so the next
    attempt that can succeed is at the next 100 ms boundary (the live loop also tries, and is
    refused, every millisecond in between: only the rate_limited counter sees those)."""
    nxt = rw[R_NEXT_TIMER]
    if rw[R_USES_TIMER] != 0:
        return nxt
    due = BIG
    for i in range(inst.shape[0]):
        s = inst[i]
        p = par[i]
        if s.dirty != 0:
            due = min(due, (rw[R_LAST_T] // RATE_BUCKET_10S_NS + 1) * RATE_BUCKET_10S_NS)
        if s.stale == 0 and s.last_md_ns > 0:
            due = min(due, s.last_md_ns + p.stale_ns + 1)
        for side in range(2):
            for level in range(p.levels):
                q = quotes[i, side, level]
                if p.max_age_ns > 0 and q.state == Q_LIVE:
                    due = min(due, q.placed_ns + p.max_age_ns)
                if q.retry_ns != 0:
                    due = min(due, q.retry_ns)
    return max(due, nxt)


@_jit
def _mark(fw, book, acct, par):
    """Marked PnL after fees at the venue's exact mid (common unit), its peak and the deepest
    drawdown."""
    total = 0.0
    for i in range(acct.shape[0]):
        a = acct[i]
        total += (a.cash + a.pos * book[i].mark2 * 0.5 - a.fees) * par[i].pnl_scale
    fw[F_PNL] = total
    if total > fw[F_PEAK]:
        fw[F_PEAK] = total
    if fw[F_PEAK] - total > fw[F_MAX_DD]:
        fw[F_MAX_DD] = fw[F_PEAK] - total


@_jit
def _sample(rw, fw, t, book, acct, par, s_t, s_pnl, s_real, s_pos, s_mark):
    k = rw[R_NSAMPLE]
    s_t[k] = t
    s_pnl[k] = fw[F_PNL]
    real = 0.0
    for i in range(acct.shape[0]):
        real += acct[i].realized * par[i].pnl_scale
        s_pos[k, i] = acct[i].pos
        s_mark[k, i] = book[i].mark
    s_real[k] = real
    rw[R_NSAMPLE] = k + 1


@_jit
def _answer_due(vw, rw, resp_t, alat, cap_r):
    """When the oldest answer not yet read reaches the quoter (BIG: none): the venue's time
    plus its latency draw (the venue stamped the smallest draw, V_RESP_LAT), never before the
    answer ahead of it."""
    h = vw[V_RESP_HEAD]
    if h == vw[V_RESP_TAIL]:
        return BIG
    extra = alat[h & (alat.shape[0] - 1)] - vw[V_RESP_LAT]      # a power of two long
    return max(resp_t[h % cap_r] + extra, rw[R_LAST_ANS_T])


@_jit
def run_chunk(md, tv, k_end, rw, fw, vw, arrays, want, out, ints, ints_t, ilog, qlog, book,
              orders, acct, resp, resp_t, log, olat, alat, dq, s_t, s_pnl, s_real, s_pos,
              s_mark):
    """Replay until the next market record is md[k_end] (CHUNK), everything is done (DONE),
    the fill log or the samples need emptying (FLUSH), or a table overflowed (OVERFLOW).
    `arrays` is the quoter's state (QuoterArrays) and `want` its strategy's scratch, as the
    live loop holds them; tv[k] is when the venue sees md[k]; olat / alat the latency draws;
    dq[j] the feed's L2 book after the depth frame ending at md[j] (feed_depth.frames; empty
    when the feed keeps none)."""
    par, g = arrays.par, arrays.g
    n_md = md.shape[0]
    cap_i = ints.shape[0]
    cap_r = resp.shape[0]
    while True:
        if vw[V_OVERFLOW] != 0 or rw[R_INT_TAIL] - rw[R_INT_HEAD] > cap_i - out.shape[0]:
            return OVERFLOW
        if (vw[V_NLOG] > log.shape[0] - orders.shape[0] or rw[R_NSAMPLE] >= s_t.shape[0] - 1
                or rw[R_NINTENT] > ilog.shape[0] - out.shape[0]
                or vw[V_NREQ] > qlog.shape[0] - cap_i):
            return FLUSH
        k = rw[R_K]
        kv = rw[R_KV]
        t_md = md[k].ts if k < n_md else BIG
        t_mv = tv[kv] if kv < n_md else BIG
        t_int = ints_t[rw[R_INT_HEAD] % cap_i] if rw[R_INT_HEAD] != rw[R_INT_TAIL] else BIG
        t_ans = _answer_due(vw, rw, resp_t, alat, cap_r)
        t_tim = BIG
        if k < n_md and g[G_KILLED] == 0:
            t_tim = _deadline(arrays.inst, arrays.quotes, par, rw)
        t = min(min(min(t_md, t_mv), t_int), min(t_ans, t_tim))
        if t == BIG:
            return DONE
        if t == t_md and k >= k_end:
            return CHUNK
        while rw[R_NEXT_SAMPLE] <= t and rw[R_NSAMPLE] < s_t.shape[0]:
            _sample(rw, fw, rw[R_NEXT_SAMPLE], book, acct, par, s_t, s_pnl, s_real, s_pos, s_mark)
            rw[R_NEXT_SAMPLE] += rw[R_SAMPLE_NS]
        rw[R_LAST_T] = t
        # -- the venue: market records of this instant, then the intents arriving now
        if t == t_mv:
            while kv < n_md and tv[kv] == t:
                r = md[kv]
                if r.kind & MD_BBO:
                    venue.on_book(vw, book, orders, r.instrument, r.bid_px, r.bid_qty, r.ask_px,
                                  r.ask_qty, t, acct, resp, resp_t, log)
                if r.kind & MD_TRADE:
                    venue.on_trade(vw, book, orders, r.instrument, r.trade_side == SIDE_BUY,
                                   r.trade_px, r.trade_qty, t, acct, resp, resp_t, log)
                elif r.kind & MD_DEPTH:
                    venue.on_depth(vw, book, orders, r.instrument, r.trade_side, r.trade_px,
                                   r.trade_qty)
                kv += 1
            rw[R_KV] = kv
            _mark(fw, book, acct, par)
        while rw[R_INT_HEAD] != rw[R_INT_TAIL] and ints_t[rw[R_INT_HEAD] % cap_i] <= t:
            venue.on_intent(vw, book, orders, ints[rw[R_INT_HEAD] % cap_i], t, resp, resp_t,
                            qlog)
            rw[R_INT_HEAD] += 1
        # -- the quoter: one batch, as the live loop runs it
        if t != t_md and t != t_ans and t != t_tim:
            continue                      # only the venue acted
        k_md = k
        if t == t_md:
            while k < n_md and md[k].ts == t:
                k += 1
            rw[R_K] = k
        for j in range(k_md, k):
            r = md[j]
            if r.kind & MD_DEPTH:         # the venue's; the feed's book: its frame's sizes
                if dq.shape[0] != 0 and dq[j, 0] >= 0:
                    feed_depth.publish(arrays.inst[r.instrument], dq[j, 0], dq[j, 1],
                                       arrays.cnt)
                continue
            model.on_md(arrays, r.instrument, r.kind, r.update_id, r.bid_px, r.bid_qty, r.ask_px,
                        r.ask_qty, r.ts, r.ts, t)
        while True:
            due = _answer_due(vw, rw, resp_t, alat, cap_r)
            if due > t:
                break
            f = resp[vw[V_RESP_HEAD] % cap_r]
            model.on_fill(arrays, f.instrument, f.kind, f.order_id, f.side, f.price, f.qty,
                          f.leaves_qty, f.error_code, t)
            rw[R_LAST_ANS_T] = due
            vw[V_RESP_HEAD] += 1
        if t >= rw[R_NEXT_TIMER]:
            model.check_timers(arrays.inst, arrays.quotes, par, arrays.sst, arrays.spar, t)
            rw[R_NEXT_TIMER] = t + TIMER_NS
        n = model.requote_dirty(arrays, want, t, out, 0)
        rw[R_BATCHES] += 1
        if g[G_DRAWDOWN_HIT] != 0 and g[G_KILLED] == 0:
            n = model.kill_all(arrays.quotes, g, arrays.cnt, out, n, KILL_DRAWDOWN, t)
            rw[R_KILL_NS] = t
        for j in range(n):
            slot = rw[R_INT_TAIL] % cap_i
            ints[slot] = out[j]
            ints[slot].ts_published = t
            arrive = max(t + olat[rw[R_NSENT] & (olat.shape[0] - 1)], rw[R_LAST_INT_T])
            ints_t[slot] = arrive
            rw[R_LAST_INT_T] = arrive
            rw[R_NSENT] += 1
            rw[R_INT_TAIL] += 1
            ilog[rw[R_NINTENT]] = ints[slot]
            rw[R_NINTENT] += 1


@dataclass
class Replay:
    """Everything a backtest run holds: the quoter's state (the live arrays), the venue's, the
    queues between them, and what was collected so far."""
    cfg: object
    st: QuoterState
    rw: np.ndarray
    fw: np.ndarray
    vw: np.ndarray
    ints: np.ndarray
    ints_t: np.ndarray
    ilog: np.ndarray
    qlog: np.ndarray
    book: np.ndarray
    orders: np.ndarray
    acct: np.ndarray
    resp: np.ndarray
    resp_t: np.ndarray
    log: np.ndarray
    samples: tuple
    tv: np.ndarray                # when the venue sees each market record
    lat: Latencies
    dq: np.ndarray                # the feed's book per record (feed_depth.frames; empty
                                  # without a diff-depth stream)
    fills: list = field(default_factory=list)
    intents: list = field(default_factory=list)     # ORDER_DTYPE arrays, ts_published = when
    requests: list = field(default_factory=list)    # what reached the venue, ts_published = when
    series: list = field(default_factory=list)
    replay_s: float = 0.0         # wall time inside the compiled loop

    def args(self, md, k_end: int) -> tuple:
        return (md, self.tv, k_end, self.rw, self.fw, self.vw, self.st.arrays, self.st.want,
                self.st.out, self.ints, self.ints_t, self.ilog, self.qlog, self.book,
                self.orders, self.acct, self.resp, self.resp_t, self.log, self.lat.order_ns,
                self.lat.answer_ns, self.dq, *self.samples)


def venue_times(md: np.ndarray, mode: str) -> np.ndarray:
    """When the venue sees each record. "none": at its arrival. "capture": at the exchange's
    time in the frame (ts_venue), so the venue is ahead of the quoter by the feed's latency as
    the capture shows it. The exchange's clock and the capture's differ by an offset no frame
    tells: the smallest lag of the capture is taken as no latency (hftbacktest corrects its
    feeds the same way), so the lags are relative to the fastest frame. A record without an
    exchange time (Binance spot bookTicker) is taken to be as late as the last one of its
    instrument that had one. Kept in the capture's order and never after the arrival."""
    ts = np.ascontiguousarray(md["ts"])
    if mode == "none" or len(md) == 0:
        return ts.copy()
    tv = np.asarray(md["ts_venue"])
    known = tv > 0
    if not known.any():
        raise ValueError("backtest.feed_latency = \"capture\": no record of the captures "
                         "carries the exchange's time (or the capture's clock is not known: an "
                         "MMCAP1 file taken before mm capture wrote wall_minus_arrival_ns)")
    lag = np.where(known, ts - tv, 0)
    lag[known] -= lag[known].min()
    inst = np.asarray(md["instrument"])
    for i in np.unique(inst).tolist():        # carry each instrument's last lag forward
        sel = np.flatnonzero(inst == i)
        last = np.maximum.accumulate(np.where(known[sel], np.arange(len(sel)), -1))
        lag[sel] = np.where(last >= 0, lag[sel][np.maximum(last, 0)], 0)
    return np.maximum.accumulate(ts - lag)


def _feed_books(cfg, md: np.ndarray, depth_levels: np.ndarray) -> np.ndarray:
    """What the feed's L2 books give the quoter after each depth frame (feed_depth.frames),
    the best depth_levels[i] levels summed, when feed.streams keep them (else empty)."""
    if not cfg.feed.keeps_depth() or len(md) == 0:
        return np.zeros((0, 2), np.int64)
    dq = np.full((len(md), 2), -1, np.int64)
    n = len(cfg.instruments)
    books = np.zeros(n, feed_depth.FBOOK_DTYPE)
    books["tick"] = [inst.tick for inst in cfg.instruments]
    kind, inst = np.asarray(md["kind"]), np.asarray(md["instrument"])
    snap = ((kind & MD_DEPTH) != 0) & ((kind & MD_SNAPSHOT) != 0)
    for i in range(n):               # a capture without REST snapshots: synced from its start
        books["synced"][i] = not snap[inst == i].any()
    feed_depth.frames(md, books, depth_levels, dq, np.zeros(n, np.int64),
                      np.zeros(n, np.int64))
    return dq


def prepare(cfg, md: np.ndarray, lat: Latencies | None = None) -> Replay:
    """A replay of `md` (market_data.REC_DTYPE) for cfg: the quoter resumed, flat, at the first
    record's time; order ids from 1. `lat`: the latencies (default: latency.of(cfg))."""
    q, instruments, bt = cfg.quoter, cfg.instruments, cfg.backtest
    st = QuoterState(q, instruments, first_id=1)
    st.g[G_WALL_OFFSET] = 0           # rate windows run on the capture's clock
    n = len(instruments)
    t0 = int(md["ts"][0]) if len(md) else 0
    span = int(md["ts"][-1]) - t0 if len(md) else 0
    rw = np.zeros(R_WORDS, np.int64)
    rw[R_NEXT_TIMER] = t0
    rw[R_SAMPLE_NS] = max(span // bt.plot_points, 1_000_000)
    rw[R_NEXT_SAMPLE] = t0
    rw[R_USES_TIMER] = int(strategy_model(q.strategy).USES_TIMER)
    lat = lat or latency.of(cfg)
    vw = np.zeros(V_WORDS, np.int64)
    vw[V_RESP_LAT] = int(lat.answer_ns.min())       # answers are stamped with the least
    vw[V_KEEP_NS] = 2 * int(lat.answer_ns.max() + lat.order_ns.max()) + 1_000_000_000
    vw[V_QMODEL] = queue.MODELS[bt.queue_model]
    book = np.zeros(n, VBOOK_DTYPE)
    book["tick"] = [inst.tick for inst in instruments]
    book["qpow"] = bt.queue_power
    samples = (np.zeros(SAMPLES, np.int64), np.zeros(SAMPLES, np.float64),
               np.zeros(SAMPLES, np.float64), np.zeros((SAMPLES, n), np.int64),
               np.zeros((SAMPLES, n), np.int64))
    dq = _feed_books(cfg, md, np.ascontiguousarray(st.par["depth_levels"]))
    if cfg.feed.keeps_depth():        # as the live quoter: not quoted before the depth is known
        st.inst["depth_stale"] = 1
    acct = np.zeros(n, ACCT_DTYPE)
    acct["maker_fee"] = [inst.maker_fee for inst in instruments]
    acct["taker_fee"] = [inst.taker_fee for inst in instruments]
    r = Replay(cfg, st, rw, np.zeros(F_WORDS, np.float64), vw, np.zeros(INTENT_FIFO, ORDER_DTYPE),
               np.zeros(INTENT_FIFO, np.int64), np.zeros(INTENT_LOG, ORDER_DTYPE),
               np.zeros(INTENT_LOG + INTENT_FIFO, ORDER_DTYPE), book,
               np.zeros(ORDER_TABLE, VORDER_DTYPE), acct,
               np.zeros(ANSWER_FIFO, FILL_DTYPE),
               np.zeros(ANSWER_FIFO, np.int64), np.zeros(FILL_LOG, FILL_LOG_DTYPE), samples,
               venue_times(md, bt.feed_latency), lat, dq)
    for i in range(n):                # what the sender tells a starting quoter: flat, go
        model.on_fill(st.arrays, i, FILL_POSITION, 0, 0, 0, 0, 0, 0, t0)
    model.on_fill(st.arrays, 0, FILL_RESUME, 0, 0, 0, 0, 0, 0, t0)
    return r


def run(r: Replay, md: np.ndarray, chunk: int | None = None, progress=None) -> Replay:
    """Replay every record of `md`; `progress(done, total)` is called between chunks (of
    about 1/200 of the records: the bar moves, the loop stays compiled code)."""
    n = len(md)
    chunk = chunk or max(n // 200, 50_000)
    k_end = 0
    while True:
        k_end = min(k_end + chunk, n) if r.rw[R_K] >= k_end else k_end
        t0 = time.perf_counter()
        rc = run_chunk(*r.args(md, k_end))
        r.replay_s += time.perf_counter() - t0
        _collect(r)
        if progress is not None:
            progress(int(r.rw[R_K]), n)
        if rc == OVERFLOW:
            raise RuntimeError(f"backtest: a venue table or queue overflowed (code "
                               f"{int(r.vw[V_OVERFLOW])}, intents in flight "
                               f"{int(r.rw[R_INT_TAIL] - r.rw[R_INT_HEAD])}): the strategy "
                               f"sends more than the backtest holds")
        if rc == DONE:
            _sample(r.rw, r.fw, r.rw[R_LAST_T], r.book, r.acct, r.st.par, *r.samples)
            _collect(r)
            return r


def _collect(r: Replay) -> None:
    """Move the fill, intent and request logs and the samples out of the compiled loop's
    buffers (each with its count word)."""
    for words, at, buf, out in ((r.vw, V_NLOG, (r.log,), r.fills),
                                (r.rw, R_NINTENT, (r.ilog,), r.intents),
                                (r.vw, V_NREQ, (r.qlog,), r.requests),
                                (r.rw, R_NSAMPLE, r.samples, r.series)):
        k = int(words[at])
        if k:
            parts = tuple(a[:k].copy() for a in buf)
            out.append(parts if len(parts) > 1 else parts[0])
            words[at] = 0
