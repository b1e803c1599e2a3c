"""The journal agent process (`mm journal-agent`, started by `mm run`): journal ring ->
SQLite transactions, markouts, the venue's trade list, pruning. `run(cfg) -> exit status`.

Duty cycle: take up to journal.batch_max records, write them in one transaction, then the due
markouts, then (when due) a reconcile with the venue's trade list and pruning by age. When the
ring is empty it sleeps LINGER_S and looks again: it never parks on the ring's futex, so the
sender's commit never has a sleeper to wake (no system call on the hot path for the journal),
and records gather into transactions of tens of milliseconds (one per order was the heaviest
process of the engine on 2 cores: 434 us of CPU per book event at 500/s). It runs on a core the
trading processes do not use (journal.core, else every core but theirs); where it must share
one it runs SCHED_IDLE, so it never stands between a trading process and its core.

Stop: SIGTERM/SIGINT, or (under mm run) the kill switch with the sender gone: the ring is
drained, the venue asked once more, the file closed. A kill -9 loses nothing: records are
released from the ring only after their transaction commits, a successor reads what is unread
and skips what was committed (the ring's identity and last seq are kept in the file). While
no agent runs the ring holds rings.journal.capacity records; beyond that the sender drops them
(counted): requests and answers of that stretch are lost, its fills come back from the venue's
trade list.
"""
from __future__ import annotations

import os
import signal
import sqlite3
import time
import traceback
from time import perf_counter_ns

from engine import proc
from engine.exit_codes import EXIT_CONFIG, EXIT_ERROR, EXIT_OK
from engine.instruments import format_fixed
from engine.records import (FILL_ACK, FILL_CANCEL_REJECT, FILL_CANCELED, FILL_POSITION,
                            FILL_REJECT, FILL_RESET, FILL_RESUME, FILL_TRADE, FILL_UNKNOWN,
                            JE_DIVERGENCE, JE_EXEC_TRADE, JE_FILL_BASE, JE_KILL, JE_PAUSE,
                            JE_POSITION_REPAIRED, JE_REQ_CANCEL, JE_REQ_CANCEL_ALL, JE_REQ_NEW,
                            JE_REQ_REPLACE, JE_RESUMED, JE_STRANGER_CANCELED,
                            JOURNAL_COMMISSION_EXP, SIDE_BUY)
from engine.journal.writer import asset_text

LINGER_S = 0.02               # records wait this long at most (the ring holds them meanwhile)
PRUNE_EVERY_S = 3600.0
RETRY_RECONCILE_S = 5.0
GAP_RECONCILE_S = 1.0        # a ring gap: ask the venue this soon
COUNTERS = ("records", "batches", "fills", "fills_from_venue", "gaps", "reconciles",
            "reconcile_errors", "markouts", "pruned", "lag_ms")

REQUEST_KINDS = {JE_REQ_NEW: "new", JE_REQ_REPLACE: "replace", JE_REQ_CANCEL: "cancel",
                 JE_REQ_CANCEL_ALL: "cancel_all"}
EVENT_KINDS = {JE_FILL_BASE + k: n for k, n in (
    (FILL_ACK, "ack"), (FILL_TRADE, "trade"), (FILL_REJECT, "reject"),
    (FILL_CANCELED, "canceled"), (FILL_POSITION, "position"), (FILL_RESUME, "resume"),
    (FILL_CANCEL_REJECT, "cancel_reject"), (FILL_UNKNOWN, "unknown"), (FILL_RESET, "reset"))}
DECISION_KINDS = {JE_STRANGER_CANCELED: "stranger_canceled", JE_DIVERGENCE: "divergence",
                  JE_POSITION_REPAIRED: "position_repaired", JE_KILL: "kill",
                  JE_PAUSE: "pause", JE_RESUMED: "resumed"}
# answers that settle an order whose outcome was unknown
SETTLING = frozenset(JE_FILL_BASE + k for k in (FILL_ACK, FILL_TRADE, FILL_REJECT,
                                                 FILL_CANCELED, FILL_CANCEL_REJECT))
CID_KEPT = 1 << 16


def _log(msg: str) -> None:
    proc.log("journal", msg)


def _side(side: int) -> str | None:
    return "BUY" if side == SIDE_BUY else "SELL" if side else None


class Journal:
    """Record -> row conversion and the writes, on one connection (the agent's; tests use it
    directly). `write(records)` writes one batch of JOURNAL_DTYPE field tuples (seq first) in
    one transaction and returns the fills it added (their keys)."""

    def __init__(self, con: sqlite3.Connection, instruments, tag: str, ring_id: int = 0):
        self.con = con
        # the ring this journal last read (its creation stamp) and the last seq committed
        # from it: records a killed agent committed but did not release are read again by its
        # successor, and skipped here (events and requests once, not only fills)
        self.ring_id = ring_id
        self.committed_seq = -1                  # ring seqs start at 0
        if ring_id:
            row = con.execute("SELECT value FROM meta WHERE key = 'ring'").fetchone()
            if row is not None:
                rid, _, seq = row[0].partition(":")
                if int(rid) == ring_id:
                    self.committed_seq = int(seq)
        self.instruments = instruments
        self.tag = tag
        self.cids: dict[int, str] = {}           # order_id -> client id (from its request)
        self.unknown: set[int] = set()           # orders whose last word was UNKNOWN
        self.last_seq = self.committed_seq
        self.gaps = 0                            # records the ring refused (seq jumps)
        self._wall = time.time_ns() - perf_counter_ns()

    def _px(self, inst: int, v: int) -> str:
        return format_fixed(v, self.instruments[inst].pexp)

    def _qty(self, inst: int, v: int) -> str:
        return format_fixed(v, self.instruments[inst].qexp)

    def _sym(self, inst: int) -> str | None:
        return self.instruments[inst].symbol if inst < len(self.instruments) else None

    def write(self, records) -> list[tuple]:
        self._wall = time.time_ns() - perf_counter_ns()
        reqs, events, fills, decisions = [], [], [], []
        for (seq, ts, ts_venue, order_id, ref, u, venue_oid, trade_id, price, qty, cum, leaves,
             code, commission, asset, inst, kind, side, maker) in records:
            if seq <= self.committed_seq:
                continue                         # written before a kill -9, read again
            if self.last_seq >= 0 and seq > self.last_seq + 1:
                self.gaps += seq - self.last_seq - 1
                decisions.append((ts + self._wall, "ring_gap", None, None,
                                  f"{seq - self.last_seq - 1} records lost (ring full)"))
            self.last_seq = seq
            wall = ts + self._wall
            sym = self._sym(inst)
            if kind in REQUEST_KINDS:
                cid = None
                if kind == JE_REQ_NEW or kind == JE_REQ_REPLACE:
                    cid = f"{self.tag}-{u}-{order_id}"
                    if len(cid) > 36:
                        cid = f"{self.tag}-0-{order_id}"
                    if len(self.cids) >= CID_KEPT:
                        self.cids.pop(next(iter(self.cids)))
                    self.cids[order_id] = cid
                elif kind == JE_REQ_CANCEL:
                    cid = self.cids.get(order_id)
                reqs.append((wall, REQUEST_KINDS[kind], sym, order_id or None,
                             ref if kind == JE_REQ_REPLACE else None, cid, _side(side),
                             self._px(inst, price) if price else None,
                             self._qty(inst, qty) if qty else None))
            elif kind in EVENT_KINDS:
                name = EVENT_KINDS[kind]
                if name in ("resume", "reset"):
                    sym = None
                events.append((wall, ts_venue or None, name, sym, order_id or None, _side(side),
                               self._px(inst, price) if sym and price else None,
                               self._qty(inst, qty) if sym and (qty or name == "position")
                               else None,
                               self._qty(inst, cum) if sym else None,
                               self._qty(inst, leaves) if sym else None, code or None))
                if name == "unknown":
                    self.unknown.add(order_id)
                elif kind in SETTLING and order_id in self.unknown:
                    self.unknown.discard(order_id)
                    decisions.append((wall, "unknown_resolved", sym, order_id, name))
                if name == "reset":
                    decisions.append((wall, "reset", None, None, "a new sender process"))
            elif kind == JE_EXEC_TRADE:
                a = asset_text(asset)
                fills.append((sym, trade_id, venue_oid, order_id, self.cids.get(order_id),
                              _side(side), self._px(inst, price), self._qty(inst, qty),
                              format_fixed(commission, JOURNAL_COMMISSION_EXP) if a else None,
                              a or None, maker, ts_venue or wall, wall, ts))
            elif kind in DECISION_KINDS:
                detail = {JE_DIVERGENCE: f"venue position {self._qty(inst, qty)}",
                          JE_POSITION_REPAIRED: f"position set to {self._qty(inst, qty)}",
                          JE_STRANGER_CANCELED: f"venue order {venue_oid}"}.get(kind, "")
                if kind in (JE_KILL, JE_PAUSE):
                    detail = f"reason {code}"
                decisions.append((wall, DECISION_KINDS[kind],
                                  sym if kind not in (JE_KILL, JE_PAUSE, JE_RESUMED) else None,
                                  order_id or None, detail))
        added = []
        con = self.con
        with con:
            con.executemany("INSERT INTO requests (ts_ns, kind, symbol, order_id, orig_order_id, "
                            "client_id, side, price, qty) VALUES (?,?,?,?,?,?,?,?,?)", reqs)
            con.executemany("INSERT INTO events (ts_ns, ts_venue_ns, kind, symbol, order_id, "
                            "side, price, qty, cum_qty, leaves_qty, code) "
                            "VALUES (?,?,?,?,?,?,?,?,?,?,?)", events)
            con.executemany("INSERT INTO decisions (ts_ns, kind, symbol, order_id, detail) "
                            "VALUES (?,?,?,?,?)", decisions)
            for f in fills:
                cur = con.execute(
                    "INSERT INTO fills (symbol, trade_id, venue_order_id, order_id, client_id, "
                    "side, price, qty, commission, commission_asset, is_maker, ts_ns, source) "
                    "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,'report') ON CONFLICT DO NOTHING", f[:12])
                if cur.rowcount:
                    added.append(((f[0], f[1], f[2]), f[13]))
            if self.ring_id and self.last_seq > self.committed_seq:
                con.execute("INSERT OR REPLACE INTO meta VALUES ('ring', ?)",
                            (f"{self.ring_id}:{self.last_seq}",))
                self.committed_seq = self.last_seq
        return added


class Agent:
    """One journal agent run (see the module docstring)."""

    def __init__(self, cfg, ctl, ring, con, board, venue):
        from engine.journal.markouts import Markouts

        self.cfg, self.jcfg, self.ctl, self.ring = cfg, cfg.journal, ctl, ring
        from engine.ring import header as L
        self.journal = Journal(con, cfg.instruments, cfg.tag,
                               ring_id=int(ring.seg.words[L.OFF_CREATED_NS // 8]))
        self.con = con
        self.venue = venue
        self.reader = ring.reader()
        self.markouts = Markouts(board, cfg.instruments) if cfg.journal.markouts else None
        self.counts = dict.fromkeys(COUNTERS, 0)
        self.stop = False
        self.next_reconcile = 0.0              # at once
        self.next_prune = 0.0
        self._last_commit = time.monotonic()

    def do_work(self) -> int:
        """One duty cycle; returns the records written (0: idle)."""
        recs = list(self.reader.take(self.jcfg.batch_max))
        if recs:
            gaps = self.journal.gaps
            added = self.journal.write(recs)
            self.ring.release()              # only now: a crash before the commit re-reads
            self.counts["records"] += len(recs)
            self.counts["batches"] += 1
            self.counts["fills"] += len(added)
            self.counts["lag_ms"] = (perf_counter_ns() - recs[-1][1]) // 1_000_000
            if self.journal.gaps != gaps:
                self.counts["gaps"] = self.journal.gaps
                self.next_reconcile = min(self.next_reconcile,
                                          time.monotonic() + GAP_RECONCILE_S)
            if self.markouts is not None:
                self._mark_now(added)
        if self.markouts is not None and self.markouts.pending:
            self._markouts_due()
        now = time.monotonic()
        if self.venue is not None and now >= self.next_reconcile:
            self.reconcile()
        if now >= self.next_prune:
            self.prune()
        return len(recs)

    def _mark_now(self, added) -> None:
        m = self.markouts
        rows = []
        for key, t_fill in added:
            inst = next((i for i, x in enumerate(self.cfg.instruments) if x.symbol == key[0]), 0)
            mid = m.mid(inst)
            if mid is not None:
                rows.append((mid, *key))
            m.add(key, inst, t_fill)
        if rows:
            with self.con:
                self.con.executemany("UPDATE fills SET mid_at_fill=? WHERE symbol=? AND "
                                     "trade_id=? AND venue_order_id=?", rows)

    def _markouts_due(self) -> None:
        due = self.markouts.due(perf_counter_ns())
        if due:
            with self.con:
                for col, mid, key in due:
                    self.con.execute(f"UPDATE fills SET {col}=? WHERE symbol=? AND trade_id=? "
                                     f"AND venue_order_id=?", (mid, *key))
            self.counts["markouts"] += len(due)

    def reconcile(self) -> bool:
        """Ask the venue's trade list for every instrument; True when it answered."""
        from engine.journal.reconcile import VenueError, reconcile_symbol

        lookback_ms = int(self.jcfg.reconcile_lookback_h * 3_600_000)
        try:
            for inst in self.cfg.instruments:
                seen, added = reconcile_symbol(self.con, self.venue, inst.symbol, lookback_ms)
                self.counts["fills_from_venue"] += added
                if added:
                    _log(f"{inst.symbol}: {added} fills the journal lacked came from the "
                         f"venue's trade list")
            self.counts["reconciles"] += 1
            every = self.jcfg.reconcile_interval_s
            self.next_reconcile = time.monotonic() + every if every else float("inf")
            return True
        except (VenueError, sqlite3.Error) as e:
            self.counts["reconcile_errors"] += 1
            if self.counts["reconcile_errors"] <= 3 or self.counts["reconcile_errors"] % 100 == 0:
                _log(f"reconcile with the venue's trade list failed: {e}; trying again")
            self.next_reconcile = time.monotonic() + RETRY_RECONCILE_S
            return False
        finally:
            # one connection per pass: between passes nobody would answer the venue's pings
            self.venue.close()

    def prune(self) -> None:
        """Rows older than journal.retention_days go (the file stays bounded)."""
        self.next_prune = time.monotonic() + PRUNE_EVERY_S
        days = self.jcfg.retention_days
        if not days:
            return
        self.counts["pruned"] += prune(self.con, time.time_ns() - int(days * 86_400e9))

    def publish(self) -> None:
        c = self.ctl.counters("journal")
        for i, name in enumerate(COUNTERS):
            c[i] = self.counts[name]

    def sender_gone(self) -> bool:
        from engine.ring.segment import pid_alive

        pid = self.ctl.pid("sender")
        return not pid or not pid_alive(pid)

    def run_is_over(self) -> bool:
        """Under mm run: the kill switch is set and the sender has exited (nothing more will
        come). Alone (systemd) the agent outlives the sender's restarts: SIGTERM stops it."""
        from engine.ring.segment import pid_alive

        sup = self.ctl.pid("supervisor")
        return bool(sup and pid_alive(sup) and self.ctl.killed() and self.sender_gone())

    def main(self) -> int:
        ring = self.ring
        last_beat = 0.0
        stopping_since = None
        while True:
            n = self.do_work()
            now = time.monotonic()
            if now - last_beat > 0.1:
                last_beat = now
                self.ctl.beat("journal")
                ring.beat()
                self.publish()
            if self.stop or self.run_is_over():
                stopping_since = stopping_since or now
                if n == 0 or now - stopping_since > 5.0:
                    break
                continue
            if n == 0:
                time.sleep(LINGER_S)
        while self.do_work():                # whatever came last
            pass
        if self.venue is not None:
            self.reconcile()
        self.publish()
        return EXIT_OK


def prune(con: sqlite3.Connection, cut_ns: int) -> int:
    """Delete every row older than `cut_ns` (epoch ns), in one transaction; returns how many.
    The freed pages are reused by new rows, so the file stops growing at about
    retention_days of trading."""
    n = 0
    with con:
        for table in ("requests", "events", "decisions", "fills"):
            n += con.execute(f"DELETE FROM {table} WHERE ts_ns < ?", (cut_ns,)).rowcount
    return n


def _pin_off_trading_cores(cfg) -> list[str]:
    """journal.core, else every allowed core the trading processes were not given. Where it
    still shares a core with one of them (no core is left, or one of them is not pinned), it
    runs SCHED_IDLE: a waking trading process then preempts it by rule, not by the scheduler's
    weighing of nice values (measured here, a nice-10 and a SCHED_IDLE CPU hog delay a wake-up
    beside them alike, so this is a guarantee rather than a gain); the ring holds what waits."""
    notes = []
    trading = [c for c in (cfg.feed.core, cfg.quoter.core, cfg.sender.core)]
    pinned = {c for c in trading if c >= 0}
    if cfg.journal.core >= 0:
        notes += proc.pin("journal", cfg.journal.core)
    else:
        rest = os.sched_getaffinity(0) - pinned
        if pinned and rest:
            os.sched_setaffinity(0, rest)
            notes.append(f"on cores {sorted(rest)} (not the trading cores {sorted(pinned)})")
    shares = any(c < 0 for c in trading) or bool(os.sched_getaffinity(0) & pinned)
    if shares:
        try:
            os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
            notes.append("shares a core with the trading processes: SCHED_IDLE (they preempt "
                         "it whenever they wake)")
        except OSError as e:                 # a sandbox may refuse it: nice is what is left
            notes.append(f"shares a core with the trading processes; SCHED_IDLE refused ({e})")
    return notes


def run(cfg) -> int:
    """Run the journal agent until stopped; returns the exit status."""
    import msgspec

    from engine.control import STATE_FAILED, STATE_RUNNING, STATE_STOPPED, Control
    from engine.journal.reconcile import BinanceTrades, VenueError
    from engine.journal.schema import JournalError, journal_path, open_journal
    from engine.records import MD_DTYPE
    from engine.ring.board import Board
    from engine.ring.table import JOURNAL
    from engine.state_dir import resolve_tag

    try:
        cfg.journal.validate()
        cfg = msgspec.structs.replace(cfg, tag=resolve_tag(cfg))
        path = journal_path(cfg)
        con = open_journal(path)
    except (ValueError, OSError, JournalError) as e:
        _log(f"error: {e}")
        return EXIT_CONFIG
    venue = None
    if cfg.sender.venue != "binance":
        _log(f"the venue's trade list is read for Binance only; {cfg.sender.venue}: fills come "
             f"from execution reports alone")
    elif cfg.sender.url and not cfg.sender.dry_run:
        try:
            venue = BinanceTrades.from_config(cfg)
        except (ValueError, VenueError) as e:
            _log(f"no venue trade list: {e}")
    ctl = Control.open(cfg.instance)
    ctl.register("journal")
    ctl.name_counters("journal", list(COUNTERS))
    ring = board = None
    rc = EXIT_ERROR
    agent = None
    try:
        ring = JOURNAL.open(cfg, "consumer", keep_unread=True)   # history: read it all
        try:
            board = Board.open(cfg.instance, len(cfg.instruments), MD_DTYPE)
        except Exception as e:          # markouts need it; the journal does not
            _log(f"no book board (markouts off): {e}")
        for w in _pin_off_trading_cores(cfg):
            _log(w)
        con.execute("INSERT OR REPLACE INTO meta VALUES ('instance', ?), ('tag', ?), "
                    "('venue', ?)", (cfg.instance, cfg.tag, cfg.sender.venue))
        con.execute("INSERT INTO decisions (ts_ns, kind, detail) VALUES (?, 'journal_start', ?)",
                    (time.time_ns(), f"pid {os.getpid()}"))
        con.commit()
        agent = Agent(cfg, ctl, ring, con, board, venue)

        def on_signal(signum, frame):
            agent.stop = True
        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        ctl.set_state("journal", STATE_RUNNING)
        _log(f"journal {path} (instance {cfg.instance}); venue trade list "
             f"{'from ' + cfg.sender.url if venue else 'not read'}")
        rc = agent.main()
        c = agent.counts
        _log(f"stopped: {c['records']} records in {c['batches']} transactions, {c['fills']} "
             f"fills from reports, {c['fills_from_venue']} from the venue's trade list, "
             f"{c['gaps']} records lost to a full ring")
    except Exception as e:
        _log(f"fatal: {type(e).__name__}: {e}\n{traceback.format_exc(limit=5)}")
        rc = EXIT_ERROR
    finally:
        ctl.deregister("journal", STATE_STOPPED if rc == EXIT_OK else STATE_FAILED)
        if venue is not None:
            venue.close()
        for x in (ring, board):
            if x is not None:
                x.close()
        con.close()
        ctl.close()
    return rc
