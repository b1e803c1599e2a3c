"""The journal agent under `mm run`: started off the trading cores and niced, started again
when it dies (never when it refused its file), stopped last; never part of the trading verdict."""
from __future__ import annotations

import os
import subprocess
import sys
import time

from engine.exit_codes import EXIT_CONFIG
from engine.supervisor.children import _child_env, _die_with_parent, log

JOURNAL_ROLE = "journal"      # the journal agent: not trading; restarted when it dies, stopped last
JOURNAL_RESTART_S = 1.0
JOURNAL_STOP_WAIT_S = 15.0    # it drains the ring and asks the venue's trade list once more
JOURNAL_NICE = 10             # the journal agent beside the trading processes (its unit: 5 to
                              # their -5): a wake-up of theirs preempts its SQLite batch


class JournalKeeping:
    """Supervisor's journal agent (engine/supervisor/__init__.py holds the state)."""

    def _spawn_journal(self) -> None:
        """The journal agent (mm journal-agent): off the trading cores, niced like the
        simulator; never part of the trading verdict."""
        cmd = [sys.executable, "-m", "engine.cli", "journal-agent", "--config",
               str(self.cfg_path), "--venue-checked"]
        self.journal = subprocess.Popen(cmd, start_new_session=True, env=_child_env(),
                                        preexec_fn=_die_with_parent)
        try:
            os.setpriority(os.PRIO_PROCESS, self.journal.pid, JOURNAL_NICE)
        except OSError:                     # gone already: _keep_journal sees to it
            pass
        self._journal_started = time.monotonic()

    def _keep_journal(self) -> None:
        """A journal agent that died is started again (it re-reads what the ring holds and
        the venue's trade list fills any gap); it never stops trading."""
        p = getattr(self, "journal", None)
        if p is None or p.poll() is None:
            return
        if p.returncode == EXIT_CONFIG:       # it refused its file or config: not again
            log("warning: the journal agent refused to start (its log says why); the run goes "
                "on without a journal (mm journal-agent can be started by hand)")
            self.journal = None
            return
        if time.monotonic() - self._journal_started < JOURNAL_RESTART_S:
            return
        log(f"journal agent exited with status {p.returncode}; starting it again")
        self.journal_restarts = getattr(self, "journal_restarts", 0) + 1
        self._spawn_journal()
