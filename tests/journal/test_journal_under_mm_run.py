"""`mm run` starts the journal agent, starts it again when it is killed (SIGKILL) mid-run, and
stops it last: at the end the journal holds every fill the venue (the embedded simulator)
made, each once and each confirmed by the venue's trade list; the run's report shows the
journal's part and writes journal.png."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import psutil
import pytest

from engine.control import Control
from engine.journal.schema import open_journal
from engine.supervisor.journal import JOURNAL_NICE
from engine.ring.segment import SegmentError, pid_alive

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]


def _journal_pid(instance) -> int:
    try:
        ctl = Control.attach(instance)
    except SegmentError:
        return 0
    try:
        pid = ctl.pid("journal")
        running = ctl.role_info("quoter")["state"] == "running"
        return pid if running and pid_alive(pid) else 0
    finally:
        ctl.close()


def test_mm_run_restarts_a_killed_journal_agent_and_the_journal_equals_the_venue(instance,
                                                                                   tmp_path):
    state = tmp_path / "state"
    run_dir = tmp_path / "run"
    env = {**os.environ, "MM_STATE_DIR": str(state)}
    p = subprocess.Popen([sys.executable, "-m", "engine.cli", "run", "--instance", instance,
                          "--duration", "15", "--run-dir", str(run_dir)], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 90
        pid = 0
        while not pid and time.monotonic() < deadline and p.poll() is None:
            time.sleep(0.2)
            pid = _journal_pid(instance)
        assert pid, "the journal agent never ran beside a running quoter"
        assert psutil.Process(pid).nice() == JOURNAL_NICE   # trading wake-ups preempt it:
        assert os.sched_getscheduler(pid) == os.SCHED_IDLE  # it shares their cores here
        sims = [c for c in psutil.Process(p.pid).children() if "sim" in c.cmdline()]
        assert len(sims) == 1 and os.sched_getscheduler(sims[0].pid) == os.SCHED_IDLE  # same
        time.sleep(4.0)                                  # some fills first
        os.kill(pid, signal.SIGKILL)
        out, _ = p.communicate(timeout=150)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait(10)
    assert p.returncode == 0, out[-3000:]
    assert "journal agent exited with status -9; starting it again" in out, out[-3000:]
    venue_fills = json.loads((run_dir / "sim-report.json").read_text())["stats"]["fills"]
    con = open_journal(state / f"{instance}.journal.sqlite", readonly=True)
    try:
        n, confirmed = con.execute("SELECT count(*), sum(confirmed) FROM fills").fetchone()
        starts = con.execute("SELECT count(*) FROM decisions WHERE kind = 'journal_start'"
                             ).fetchone()[0]
    finally:
        con.close()
    assert venue_fills > 0 and n == venue_fills and confirmed == n, (venue_fills, n, confirmed)
    assert starts == 2
    assert f"{n} fills this run" in out and (run_dir / "journal.png").exists()
