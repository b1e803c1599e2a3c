"""The kill switch: the first reason wins (compare-and-swap), latched reasons stay set until
`mm resume`, transient ones (a lost peer, a shutdown) are cleared by a process that starts again
when no supervisor decides instead, and what a stopped process exits with follows the reason
it saw."""
import os
import subprocess
import sys
import threading

from engine.control import (KILL_DRAWDOWN, KILL_HEARTBEAT, KILL_OPERATOR, KILL_SHUTDOWN,
                            Control, exit_status_for)
from engine.exit_codes import EXIT_KILLED, EXIT_OK, EXIT_PEER_LOST


def test_first_reason_wins_even_when_pulled_at_once(instance):
    ctl = Control.create(instance)
    try:
        won = []
        barrier = threading.Barrier(8)

        def pull(reason):
            barrier.wait()
            if ctl.kill(reason):
                won.append(reason)
        threads = [threading.Thread(target=pull, args=(r,)) for r in
                   (KILL_OPERATOR, KILL_DRAWDOWN, KILL_HEARTBEAT, KILL_SHUTDOWN) * 2]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(won) == 1 and ctl.killed() == won[0]
    finally:
        ctl.close()
        ctl.unlink()


def test_latched_stays_transient_clears_resume_clears_all(instance):
    ctl = Control.create(instance)
    try:
        ctl.kill(KILL_HEARTBEAT)
        assert ctl.clear_transient_kill() == KILL_HEARTBEAT and ctl.killed() == 0
        ctl.kill(KILL_HEARTBEAT)
        ctl.register("supervisor")                     # a live supervisor decides instead
        assert ctl.clear_transient_kill() == 0 and ctl.killed() == KILL_HEARTBEAT
        ctl.words[ctl._base("supervisor")] = 0
        ctl.reset_kill()
        ctl.kill(KILL_OPERATOR)
        assert ctl.clear_transient_kill() == 0 and ctl.killed() == KILL_OPERATOR
        out = subprocess.run([sys.executable, "-m", "engine.cli", "resume", "--instance",
                              instance], capture_output=True, text=True, timeout=60,
                             env={**os.environ})
        assert out.returncode == 0 and "kill switch cleared" in out.stdout
        assert "operator kill switch" in out.stdout + out.stderr
        assert ctl.killed() == 0
    finally:
        ctl.close()
        ctl.unlink()


def test_exit_status_follows_the_reason_seen():
    assert exit_status_for(0) == exit_status_for(KILL_SHUTDOWN) == EXIT_OK
    assert exit_status_for(KILL_OPERATOR) == exit_status_for(KILL_DRAWDOWN) == EXIT_KILLED
    assert exit_status_for(KILL_HEARTBEAT) == EXIT_PEER_LOST
