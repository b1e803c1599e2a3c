"""A small systemd for tests and the soak (bench/soak.py): an instance run the systemd way, one
process per unit (mm journal-agent, mm sender, mm quoter, mm feed), each restarted 0.3 s after
it fails; the configuration such a run uses (unit_config); and what a run is judged by: the
venue's trade list against the journal's fills. Also wait_until, for every test that runs the
engine as a user does."""
from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time

from engine.control import Control
from engine.journal.schema import open_journal
from engine.ring.segment import SegmentError

TRADING = ("sender", "quoter", "feed")
# what the systemd-way runs share: quick heartbeats and reconciles, one level a side
UNIT_CONFIG = """
tag = "{tag}"
heartbeat_timeout_ms = 1500
[quoter]
levels = 1
[sender]
heartbeat_timeout_ms = 1000
reconcile_interval_s = 1.0
"""


def unit_config(tag: str, journal_path=None, journal_extra: str = "", extra: str = "") -> str:
    """UNIT_CONFIG with `tag`, and a [journal] section writing to `journal_path` when given."""
    text = UNIT_CONFIG.format(tag=tag)
    if journal_path is not None:
        text += f'[journal]\npath = "{journal_path}"\n{journal_extra}\n'
    return text + extra


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
    """Poll `cond` every 0.1 s; AssertionError naming `what` after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def running(instance, roles) -> bool:
    try:
        ctl = Control.attach(instance)
    except SegmentError:
        return False
    try:
        return all(ctl.role_info(r)["state"] == "running" for r in roles)
    finally:
        ctl.close()


def counter(instance, role, name) -> int:
    try:
        ctl = Control.attach(instance)
    except SegmentError:
        return 0
    try:
        return ctl.counter_values(role).get(name, 0)
    finally:
        ctl.close()


def venue_fills(sim) -> set[tuple]:
    return {(t["symbol"], t["id"], t["orderId"], "BUY" if t["isBuyer"] else "SELL", t["price"],
             t["qty"]) for t in sim.my_trades()}


def journal_fills(path) -> tuple[set[tuple], list[tuple]]:
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


