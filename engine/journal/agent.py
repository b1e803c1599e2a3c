"""The journal agent process (`mm journal-agent`, started by `mm run`): journal ring ->
SQLite transactions, markouts, the venue's trade list, pruning. `run(cfg) -> exit status`.
JournalAgent is the duty cycle; the life around it (registration, signals, gc, the final state)
is engine/agent.py's, its rows engine/journal/rows.py's, its placement placement.py's.

Duty cycle: every COMMIT_EVERY_S (sooner when the ring is a quarter full) take up to
journal.batch_max records and write them in one transaction; then the due markouts, then (when
due) a reconcile with the venue's trade list and pruning by age. Between turns it sleeps
LINGER_S: it never parks on the ring's futex, so the sender's commit never has a sleeper to wake
(no system call on the hot path for the journal), and records gather into transactions of a
tenth of a second (one per order was the heaviest process of the engine on 2 cores: 434 us of
CPU per book event at 500/s; one per 20 ms still 89 us at 2,000/s, most of it SQLite's commit
and index pages, which a transaction writes once however many rows it holds). It runs on a
core the trading processes do not use (journal.core, else every core but theirs); where it must share
one it runs SCHED_IDLE, so it never stands between a trading process and its core. A file or
configuration it refuses exits EXIT_CONFIG (mm run then goes on without a journal).

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
import sqlite3
import time
from time import perf_counter_ns

from engine import agent, proc
from engine.exit_codes import EXIT_OK
from engine.journal.placement import pin_off_trading_cores
from engine.journal.rows import CoreGiver, Journal, prune
from engine.ring.table import JOURNAL

LINGER_S = 0.02               # sleep between turns (markouts are looked at this often)
COMMIT_EVERY_S = 0.1          # records wait this long at most (the ring holds them meanwhile)
PRUNE_EVERY_S = 3600.0
RETRY_RECONCILE_S = 5.0
GAP_RECONCILE_S = 1.0        # a ring gap: ask the venue this soon
DRAIN_S = 5.0                # a stop: turns go on this long at most before the last drain
BEAT_S = 0.1                 # heartbeat and counters
COUNTERS = ("records", "batches", "fills", "fills_from_venue", "gaps", "reconciles",
            "reconcile_errors", "markouts", "pruned", "lag_ms")
ROLE = "journal"


def _log(msg: str) -> None:
    proc.log(ROLE, msg)


def run(cfg) -> int:
    """Run the journal agent until stopped; returns the exit status."""
    return agent.run(JournalAgent, cfg)


def trade_list(venue: str):
    """(client class, reconcile_symbol) of the venue's own trade list, from the order venue's
    registry entry (OrderVenue.trade_list: Binance's myTrades in engine/journal/reconcile.py,
    Bybit's execution list in engine/journal/bybit_trades.py); None for a venue without one."""
    from engine.sender.venues import venue as order_venue

    return order_venue(venue).trade_list_parts()


class JournalAgent(agent.WorkAgent):
    """One journal agent life (see the module docstring)."""
    role = ROLE
    counters = COUNTERS
    linger_s = LINGER_S
    beat_s = BEAT_S
    drain_s = DRAIN_S
    # core -1: placed by pin_off_trading_cores in on_start (journal.core, else off the
    # trading cores), as it always was
    rings = (agent.RingEnd(JOURNAL, "consumer", keep_unread=True),)   # history: read it all

    def __init__(self, cfg):
        """Check the configuration and open the file: refused -> ValueError (EXIT_CONFIG)."""
        import msgspec

        from engine.journal.reconcile import VenueError
        from engine.journal.schema import JournalError, journal_path, open_journal
        from engine.state_dir import resolve_tag

        try:
            cfg.journal.validate()
            cfg = msgspec.structs.replace(cfg, tag=resolve_tag(cfg))
            self.path = journal_path(cfg)
            self.con = open_journal(self.path)
        except JournalError as e:             # corrupt or foreign: refused, as a config is
            raise ValueError(str(e)) from None
        self.cfg, self.jcfg = cfg, cfg.journal
        self.venue = self.reconcile_symbol = None
        parts = trade_list(cfg.sender.venue) if cfg.sender.url and not cfg.sender.dry_run \
            else None
        if parts is not None:
            client, self.reconcile_symbol = parts
            try:
                self.venue = client.from_config(cfg)
            except (ValueError, VenueError) as e:
                _log(f"no venue trade list: {e}")
        self.counts = dict.fromkeys(COUNTERS, 0)
        self.next_reconcile = 0.0              # at once
        self.next_prune = 0.0
        self.markouts = None
        self.last_write = 0.0                  # monotonic time of the last batch taken

    def on_start(self, life: agent.Life) -> None:
        from engine.journal.markouts import Markouts
        from engine.records import MD_DTYPE
        from engine.ring import header as L
        from engine.ring.board import Board

        super().on_start(life)
        cfg, con = self.cfg, self.con
        self.ctl = life.control
        self.ring = ring = life.rings[JOURNAL.name]
        board = None
        try:
            board = Board.open(cfg.instance, len(cfg.instruments), MD_DTYPE)
            life.closing.callback(board.close)
        except Exception as e:          # markouts need it; the journal does not
            _log(f"no book board (markouts off): {e}")
        for w in pin_off_trading_cores(cfg):
            _log(w)
        con.execute("INSERT OR REPLACE INTO meta VALUES ('instance', ?), ('tag', ?), "
                    "('venue', ?)", (cfg.instance, cfg.tag, cfg.sender.venue))
        con.execute("INSERT INTO decisions (ts_ns, kind, detail) VALUES (?, 'journal_start', ?)",
                    (time.time_ns(), f"pid {os.getpid()}"))
        con.commit()
        self.giver = CoreGiver()
        self.journal = Journal(con, cfg.instruments, cfg.tag,
                               ring_id=int(ring.seg.words[L.OFF_CREATED_NS // 8]),
                               giver=self.giver)
        self.reader = ring.reader()
        self.markouts = Markouts(board, cfg.instruments) if cfg.journal.markouts else None
        source = getattr(self.venue, "base", None) or cfg.sender.url   # Bybit: its REST host
        _log(f"journal {self.path} (instance {cfg.instance}); venue trade list "
             f"{'from ' + source if self.venue else 'not read'}")

    def do_work(self, drain: bool = False) -> int:
        """One duty cycle; returns the records written (0: idle). Records are taken every
        COMMIT_EVERY_S, when the ring is a quarter full, or (drain) at once."""
        now = time.monotonic()
        due = drain or now - self.last_write >= COMMIT_EVERY_S or \
            self.ring.available() * 4 >= self.ring.capacity
        recs = list(self.reader.take(self.jcfg.batch_max)) if due else []
        if recs:
            self.last_write = now
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
            self.giver.give()                # between stages too (rows.py says why)
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
        from engine.journal.reconcile import VenueError

        reconcile_symbol = self.reconcile_symbol
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

    def on_beat(self) -> None:
        """Publish the counters."""
        c = self.life.counters
        for i, name in enumerate(COUNTERS):
            c[i] = self.counts[name]

    def sender_gone(self) -> bool:
        from engine.ring.segment import pid_alive

        pid = self.ctl.pid("sender")
        return not pid or not pid_alive(pid)

    def stop_due(self) -> bool:
        """Under mm run: the kill switch is set and the sender has exited (nothing more will
        come). Alone (systemd) the agent outlives the sender's restarts: SIGTERM stops it."""
        from engine.ring.segment import pid_alive

        sup = self.ctl.pid("supervisor")
        return bool(sup and pid_alive(sup) and self.ctl.killed() and self.sender_gone())

    def finish(self) -> int:
        """The stop rule: drain whatever came last, ask the venue once more, publish."""
        while self.do_work(drain=True):
            pass
        if self.venue is not None:
            self.reconcile()
        self.on_beat()
        c = self.counts
        _log(f"stopped: {c['records']} records in {c['batches']} transactions, {c['fills']} "
             f"fills from reports, {c['fills_from_venue']} from the venue's trade list, "
             f"{c['gaps']} records lost to a full ring")
        return EXIT_OK

    def on_close(self) -> None:
        if self.venue is not None:
            self.venue.close()
        self.con.close()
