"""`mm run` stopping: the kill switch, the processes stopped in order (the sender first, while
the venue link is up), a rescue sender when nobody confirmed that no order rests, the journal
agent last; then the instance's shared memory and an empty run folder go."""
from __future__ import annotations

from engine.control import KILL_SHUTDOWN, STATE_STOPPED
from engine.exit_codes import EXIT_CONFIG, EXIT_ORDERS_LEFT, ORDERS_CONFIRMED_GONE
from engine.ring.segment import list_segments, unlink
from engine.supervisor.children import ROLES, STOP_WAIT_S, _stop, log
from engine.supervisor.journal import JOURNAL_STOP_WAIT_S


class Stopping:
    """Supervisor's stop (engine/supervisor/__init__.py holds the state)."""

    def _stop_all(self) -> dict[str, int | None]:
        if self.ctl is not None and not self.ctl.killed():
            self.ctl.kill(KILL_SHUTDOWN)
        codes: dict[str, int | None] = {}
        for role in ROLES:  # sender first: it must confirm cancels while the venue link is up
            p = self.children.get(role)
            if p is None:
                continue
            codes[role] = _stop(p, STOP_WAIT_S[role])
        # A sender that exited with 2 never held credentials: no rescue can do better; 3 tried
        # twice; the others confirmed every order gone.
        if codes.get("sender") not in (None, EXIT_CONFIG, EXIT_ORDERS_LEFT, *ORDERS_CONFIRMED_GONE) \
                and getattr(self, "cfg_path", None):
            codes["sender"] = self._rescue_cancel(codes["sender"])
        if getattr(self, "journal", None) is not None:   # last: it drains what the sender
            _stop(self.journal, JOURNAL_STOP_WAIT_S)       # wrote, asks the venue once more
        if self.sim is not None:        # not bound to the kill switch: told to stop at once
            _stop(self.sim, 0.0)
        if self.ctl is not None:
            self._note_progress()
            self.sender_counters = self.ctl.counter_values("sender")
            self.feed_counters = self.ctl.counter_values("feed")
            self.kill_seen = self.kill_seen or self.ctl.killed()
            self.ctl.set_state("supervisor", STATE_STOPPED)
        if codes or self.sim is not None:
            log(f"stopped ({self.stop_reason}); exit statuses {codes}")
        return codes

    def _rescue_cancel(self, died_with: int) -> int:
        """The sender died (crash, SIGKILL) and nobody has confirmed that no order rests: start
        a fresh sender with the kill switch already set. It connects, cancels everything,
        confirms and exits with the same status contract (0 = nothing left resting)."""
        log(f"sender died (status {died_with}): starting a rescue sender to cancel everything")
        self.children.pop("sender", None)
        self._spawn("sender", self.cfg_path)
        code = _stop(self.children["sender"], STOP_WAIT_S["sender"] + 10.0)
        log(f"rescue sender exit status {code}")
        return code if code is not None else EXIT_ORDERS_LEFT

    def _drop_empty_run_dir(self) -> None:
        """A run that never started its processes has no report: the folder this run created
        (the simulator's scratch files at most) goes, so runs/ lists only runs."""
        import shutil

        if self.ctl is None and getattr(self, "_created_run_dir", False):
            shutil.rmtree(self.run_dir, ignore_errors=True)

    def _cleanup(self) -> None:
        if self.ctl is None:
            return  # we never owned the instance (e.g. it is already running): touch nothing
        if getattr(self, "metrics_server", None) is not None:
            self.metrics_server.shutdown()
            self.metrics_view.close()
        for r in self.rings:
            r.close()
        if self.ctl is not None:
            self.ctl.close()
        for name in list_segments(self.cfg.instance):
            unlink(name)
