"""Where the journal agent runs: off the cores of the trading processes, SCHED_IDLE where it
must share one."""
from __future__ import annotations

import os

from engine import proc
from engine.box.core_layout import Layout


def pin_off_trading_cores(cfg) -> list[str]:
    """journal.core, else every allowed core the trading processes were not given (none left:
    every core but a spinner's). Where it still shares a core with one of them (no core is left, or one of them is not pinned), it
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
        elif spinners := {c for c in Layout.of_config(cfg).spinning_cores().values() if c >= 0}:
            # no core of its own: share a parked stage's, never a spinner's (even SCHED_IDLE
            # takes a time slice from a spinner now and then)
            notes.append(f"on cores {sorted(proc.stay_off(spinners))} (not the spinning "
                         f"stages' {sorted(spinners)})")
    shares = any(c < 0 for c in trading) or bool(os.sched_getaffinity(0) & pinned)
    if shares:
        try:
            os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
            notes.append("shares a core with the trading processes: SCHED_IDLE (they preempt "
                         "it whenever they wake)")
        except OSError as e:                 # a sandbox may refuse it: nice is what is left
            notes.append(f"shares a core with the trading processes; SCHED_IDLE refused ({e})")
    return notes
