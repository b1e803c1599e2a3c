"""Nothing lost: an instance run the systemd way (mm journal-agent, mm sender, mm quoter,
mm feed, each restarted when it fails) against the simulator; whatever is killed with SIGKILL
mid-run (the journal agent, the sender), and when the journal ring overflows, the journal
ends equal to the venue's own trade list: every fill exactly once, keyed by the venue's
trade id, with the venue's price, quantity and side."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from engine.control import Control
from engine.journal.schema import open_journal
from engine.ring.segment import SegmentError
from tests.support.sim_thread import SimThread

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

TAG = "jrn"
CONFIG = f"""
tag = "{TAG}"
heartbeat_timeout_ms = 1500
[quoter]
levels = 1
[sender]
heartbeat_timeout_ms = 1000
reconcile_interval_s = 1.0
[journal]
path = "{{path}}"
reconcile_interval_s = 2.0
{{extra}}
"""
TRADING = ("sender", "quoter", "feed")
NO_RESTART = (0, 2, 4)


class Units(threading.Thread):
    """A small systemd: one process per unit, restarted 0.3 s after it fails."""

    def __init__(self, env, cfg, log_dir, units):
        super().__init__(daemon=True)
        self.env, self.cfg, self.log_dir = env, cfg, log_dir
        self.procs: dict[str, subprocess.Popen] = {}
        self.starts = dict.fromkeys(units, 0)
        self.wanted = set()
        self.stopping = threading.Event()
        self.lock = threading.Lock()

    def start_unit(self, unit: str) -> None:
        with open(self.log_dir / f"{unit}.log", "ab") as log:
            self.procs[unit] = subprocess.Popen(
                [sys.executable, "-m", "engine.cli", unit, "--config", self.cfg], env=self.env,
                stdout=log, stderr=subprocess.STDOUT)
        self.starts[unit] += 1
        self.wanted.add(unit)

    def run(self) -> None:
        while not self.stopping.wait(0.1):
            with self.lock:
                for unit, p in list(self.procs.items()):
                    code = p.poll()
                    if code is not None and unit in self.wanted and code not in NO_RESTART:
                        time.sleep(0.3)                          # RestartSec=
                        self.start_unit(unit)

    def kill(self, unit: str) -> None:
        with self.lock:
            self.procs[unit].send_signal(signal.SIGKILL)

    def stop(self, units) -> dict[str, int]:
        """SIGTERM to `units` together, then wait for each (SIGKILL after 60 s)."""
        with self.lock:
            self.wanted -= set(units)
            for u in units:
                if u in self.procs and self.procs[u].poll() is None:
                    self.procs[u].send_signal(signal.SIGTERM)
        codes = {}
        for u in units:
            p = self.procs.get(u)
            if p is None:
                continue
            try:
                codes[u] = p.wait(60)
            except subprocess.TimeoutExpired:
                p.kill()
                codes[u] = p.wait(10)
        return codes

    def stop_all(self) -> dict[str, int]:
        codes = self.stop([u for u in TRADING if u in self.procs])
        codes.update(self.stop([u for u in self.procs if u not in TRADING]))
        self.stopping.set()
        return codes


def wait_until(cond, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def _running(instance, roles) -> bool:
    try:
        ctl = Control.attach(instance)
    except SegmentError:
        return False
    try:
        return all(ctl.role_info(r)["state"] == "running" for r in roles)
    finally:
        ctl.close()


def _counter(instance, role, name) -> int:
    try:
        ctl = Control.attach(instance)
    except SegmentError:
        return 0
    try:
        return ctl.counter_values(role).get(name, 0)
    finally:
        ctl.close()


def _venue(sim) -> set[tuple]:
    return {(t["symbol"], t["id"], t["orderId"], "BUY" if t["isBuyer"] else "SELL", t["price"],
             t["qty"]) for t in sim.my_trades()}


def _journal(path) -> tuple[set[tuple], list[tuple]]:
    con = open_journal(path, readonly=True)
    try:
        rows = con.execute("SELECT symbol, trade_id, venue_order_id, side, price, qty, source, "
                           "confirmed FROM fills").fetchall()
        decisions = con.execute("SELECT kind, detail FROM decisions").fetchall()
    finally:
        con.close()
    assert all(r[7] == 1 for r in rows), "a fill the venue's list did not confirm"
    keys = [r[:3] for r in rows]
    assert len(keys) == len(set(keys))
    return {r[:6] for r in rows}, rows, decisions


def _setup(instance, tmp_path, sim, extra=""):
    path = tmp_path / "journal.sqlite"
    cfg = tmp_path / "mm.toml"
    cfg.write_text(CONFIG.format(path=path, extra=extra))
    env = {**os.environ, "MM_MD_URL": sim.md_url, "MM_ORDER_URL": sim.api_url,
           "MM_INSTANCE": instance}
    return path, Units(env, str(cfg), tmp_path, ("journal-agent", *TRADING))


def _more_fills(sim, n, timeout, what):
    have = len(sim.my_trades())
    wait_until(lambda: len(sim.my_trades()) >= have + n, timeout, what)


def _logs(tmp_path) -> str:
    return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-1500:]}"
                     for p in sorted(tmp_path.glob("*.log")))


def test_journal_equals_the_venue_after_the_agent_and_the_sender_are_killed(instance,
                                                                            tmp_path):
    with SimThread(event_rate=100, seed=41) as sim:
        path, units = _setup(instance, tmp_path, sim)
        units.start()
        try:
            for u in ("journal-agent", *TRADING):
                units.start_unit(u)
            wait_until(lambda: _running(instance, ("journal", *TRADING)), 120, "all running")
            _more_fills(sim, 3, 90, "first fills")
            units.kill("journal-agent")
            _more_fills(sim, 2, 60, "fills while the agent restarts")
            wait_until(lambda: units.starts["journal-agent"] == 2 and
                       _running(instance, ("journal",)), 30, "the agent back")
            units.kill("sender")
            wait_until(lambda: units.starts["sender"] == 2 and _running(instance, TRADING),
                       60, "the sender back")
            _more_fills(sim, 2, 60, "fills after the sender came back")
        finally:
            codes = units.stop_all()
        assert codes["journal-agent"] == 0, _logs(tmp_path)
        venue = _venue(sim)
        journal, rows, decisions = _journal(path)
        assert journal == venue, (f"missing {venue - journal}, extra {journal - venue}\n"
                                  + _logs(tmp_path))
        assert any(r[6] == "report" for r in rows)           # the hot path's own reports
        assert sum(k == "journal_start" for k, _ in decisions) == 2
        print(f"\n{len(rows)} fills; from the venue's list: "
              f"{sum(r[6] == 'mytrades' for r in rows)}")


def test_a_full_journal_ring_is_counted_and_filled_from_the_venue(instance, tmp_path):
    with SimThread(event_rate=100, seed=43) as sim:
        path, units = _setup(instance, tmp_path, sim, extra="[rings.journal]\ncapacity = 16\n"
                                                             "policy = \"drop\"")
        units.start()
        try:
            for u in TRADING:                        # no journal agent yet: the ring fills
                units.start_unit(u)
            wait_until(lambda: _running(instance, TRADING), 120, "all running")
            _more_fills(sim, 3, 90, "fills with no journal agent")
            wait_until(lambda: _counter(instance, "sender", "journal_full") > 0, 30,
                       "the sender counting a full journal ring")
            units.start_unit("journal-agent")
            wait_until(lambda: _running(instance, ("journal",)), 30, "the agent running")
            _more_fills(sim, 1, 60, "a fill with the agent running")
            full = _counter(instance, "sender", "journal_full")
        finally:
            codes = units.stop_all()
        assert codes["journal-agent"] == 0, _logs(tmp_path)
        venue = _venue(sim)
        journal, rows, decisions = _journal(path)
        assert journal == venue, (f"missing {venue - journal}, extra {journal - venue}\n"
                                  + _logs(tmp_path))
        assert full > 0
        assert any(r[6] == "mytrades" for r in rows)         # the gap, filled from the venue
        assert any(k == "ring_gap" for k, _ in decisions), decisions
        print(f"\njournal records dropped by the sender: {full}; fills {len(rows)}, from the "
              f"venue's list {sum(r[6] == 'mytrades' for r in rows)}")
