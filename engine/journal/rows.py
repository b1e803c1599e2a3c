"""Journal rows: the journal ring's records -> rows of the SQLite file, one transaction per
batch (Journal), and pruning by age. Used on the journal agent's connection (engine/journal/
agent.py); tests and the bench use Journal directly."""
from __future__ import annotations

import os
import sqlite3
import time
from time import perf_counter_ns

from engine.instruments import format_fixed
from engine.records import (FILL_ACK, FILL_CANCEL_REJECT, FILL_CANCELED, FILL_POSITION,
                            FILL_REJECT, FILL_RESET, FILL_RESUME, FILL_TRADE, FILL_UNKNOWN,
                            JE_DIVERGENCE, JE_EXEC_TRADE, JE_FILL_BASE, JE_KILL, JE_PAUSE,
                            JE_POSITION_REPAIRED, JE_REQ_CANCEL, JE_REQ_CANCEL_ALL, JE_REQ_NEW,
                            JE_REQ_REPLACE, JE_RESUMED, JE_STRANGER_CANCELED,
                            JOURNAL_COMMISSION_EXP, SIDE_BUY)
from engine.journal.writer import asset_text

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


# The agent shares a core with trading processes on a small box. Measured there (perf sched
# timehist, kernel 6.18 preempt=none): a trading process woken on the agent's core waited for
# the agent's next system call, 0.3-1.2 ms every duty cycle, although the agent runs SCHED_IDLE:
# the kernel marks it for preemption but does not interrupt its user-mode run of Python and
# SQLite. So it makes one (sched_yield: a waiting trading process gets the core) whenever it has
# run GIVE_AFTER_NS since the last, and writes at most ROWS_PER_STATEMENT rows per SQLite call.
GIVE_AFTER_NS = 50_000
ROWS_PER_STATEMENT = 16


class CoreGiver:
    """`give()`: sched_yield when GIVE_AFTER_NS have passed since the last (a clock read else)."""

    def __init__(self, after_ns: int = GIVE_AFTER_NS):
        self.after_ns = after_ns
        self.last = perf_counter_ns()
        self.yields = 0

    def give(self) -> None:
        now = perf_counter_ns()
        if now - self.last >= self.after_ns:
            os.sched_yield()
            self.yields += 1
            self.last = perf_counter_ns()


def _side(side: int) -> str | None:
    return "BUY" if side == SIDE_BUY else "SELL" if side else None


class Journal:
    """Record -> row conversion and the writes, on one connection (the agent's; tests use it
    directly). `write(records)` writes one batch of JOURNAL_DTYPE field tuples (seq first) in
    one transaction and returns the fills it added (their keys)."""

    def __init__(self, con: sqlite3.Connection, instruments, tag: str, ring_id: int = 0,
                 giver: CoreGiver | None = None):
        self.con = con
        self.giver = giver or CoreGiver()
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
        # the exponents once: Instrument.pexp/qexp parse the tick and lot (Decimal) per call,
        # a quarter of the agent's CPU when read per record
        self._pexp = [i.pexp for i in instruments]
        self._qexp = [i.qexp for i in instruments]
        self.tag = tag
        self.cids: dict[int, str] = {}           # order_id -> client id (from its request)
        self.unknown: set[int] = set()           # orders whose last word was UNKNOWN
        self.last_seq = self.committed_seq
        self.gaps = 0                            # records the ring refused (seq jumps)
        self._wall = time.time_ns() - perf_counter_ns()

    def _px(self, inst: int, v: int) -> str:
        return format_fixed(v, self._pexp[inst])

    def _qty(self, inst: int, v: int) -> str:
        return format_fixed(v, self._qexp[inst])

    def _sym(self, inst: int) -> str | None:
        return self.instruments[inst].symbol if inst < len(self.instruments) else None

    def write(self, records) -> list[tuple]:
        self._wall = time.time_ns() - perf_counter_ns()
        give = self.giver.give
        reqs, events, fills, decisions = [], [], [], []
        for (seq, ts, ts_venue, order_id, ref, u, venue_oid, trade_id, price, qty, cum,
             leaves, code, commission, asset, inst, kind, side, maker) in records:
            give()                               # a trading process waiting here runs
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
            self._insert("INSERT INTO requests (ts_ns, kind, symbol, order_id, orig_order_id, "
                         "client_id, side, price, qty) VALUES (?,?,?,?,?,?,?,?,?)", reqs)
            self._insert("INSERT INTO events (ts_ns, ts_venue_ns, kind, symbol, order_id, "
                         "side, price, qty, cum_qty, leaves_qty, code) "
                         "VALUES (?,?,?,?,?,?,?,?,?,?,?)", events)
            self._insert("INSERT INTO decisions (ts_ns, kind, symbol, order_id, detail) "
                         "VALUES (?,?,?,?,?)", decisions)
            for f in fills:
                give()
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

    def _insert(self, sql: str, rows: list) -> None:
        """executemany in statements of ROWS_PER_STATEMENT rows, giving the core between them."""
        for i in range(0, len(rows), ROWS_PER_STATEMENT):
            self.giver.give()
            self.con.executemany(sql, rows[i:i + ROWS_PER_STATEMENT])


def prune(con: sqlite3.Connection, cut_ns: int) -> int:
    """Delete every row older than `cut_ns` (epoch ns), in one transaction; returns how many.
    The freed pages are reused by new rows, so the file stops growing at about
    retention_days of trading."""
    n = 0
    with con:
        for table in ("requests", "events", "decisions", "fills"):
            n += con.execute(f"DELETE FROM {table} WHERE ts_ns < ?", (cut_ns,)).rowcount
    return n
