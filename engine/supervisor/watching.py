"""`mm run` watching the running processes: progress for the last line, the kill switch, a
process that exits, lost heartbeats, the duration, a status line every 5 s, the metrics."""
from __future__ import annotations

import time

from engine.control import (KILL_HEARTBEAT, KILL_PROCESS_DIED, KILL_REASONS, KILL_SHUTDOWN,
                            Control)
from engine.supervisor.children import ROLES, log
from engine.units import POSITION_PREFIX


class Watching:
    """Supervisor's monitoring (engine/supervisor/__init__.py holds the state)."""

    def _start_metrics(self) -> None:
        if not self.cfg.metrics_port:
            return
        from engine import metrics

        try:
            self.metrics_server, self.metrics_view = metrics.start(
                self.cfg.instance, "127.0.0.1", self.cfg.metrics_port)
            log(f"metrics on http://127.0.0.1:{self.metrics_server.server_port}/metrics")
        except OSError as e:
            log(f"warning: metrics endpoint not started on port {self.cfg.metrics_port}: {e}")

    def _monitor(self) -> None:
        self._start_metrics()
        timeout_ns = self.cfg.heartbeat_timeout_ms * 1_000_000
        next_beat_report = time.monotonic() + 5.0
        while True:
            self.ctl.beat("supervisor")
            self._note_progress()
            self._keep_journal()
            if self._check_children() or self._kill_switch_set():
                return
            for role in ROLES:
                age = self.ctl.heartbeat_age_ns(role)
                if age > timeout_ns:
                    self.stop_reason = self.stop_reason or f"{role} heartbeat lost ({age / 1e6:.0f} ms)"
                    self.ctl.kill(KILL_HEARTBEAT)
                    return
            if self.stop_reason:
                self.ctl.kill(KILL_SHUTDOWN)
                return
            if self.deadline is not None and time.monotonic() >= self.deadline:
                self.stop_reason = f"duration {self.duration_s:g} s elapsed"
                self.ctl.kill(KILL_SHUTDOWN)
                return
            if time.monotonic() >= next_beat_report:
                next_beat_report += 5.0
                log(_one_line_status(self.ctl))
            time.sleep(0.05)

    def _note_progress(self) -> None:
        """What the last line needs to know: whether the sender ever connected (it is running
        only once connected), and the holdings at start (the quoter's positions as soon as every
        instrument's was reported, and stable over two looks: no fill can precede the first
        quote, which needs the feed, started last)."""
        if not self.sender_running and self.ctl.role_info("sender")["state"] == "running":
            self.sender_running = True
        if self.start_noted:
            return
        q = self.ctl.counter_values("quoter")
        symbols = [i.symbol for i in self.run_cfg.instruments]
        if q.get("positions", 0) < len(symbols):
            return
        now = {s: q.get(POSITION_PREFIX + s, 0) for s in symbols}
        if now == self._start_candidate:
            self.start_noted = now
            counters = self.ctl.counters("supervisor")
            for k, s in enumerate(symbols):
                counters[k] = now[s]
        self._start_candidate = now

    def _kill_switch_set(self) -> bool:
        """Whether the kill switch is set; its reason becomes the stop reason if none is yet."""
        killed = self.ctl.killed()
        if killed and not self.kill_seen:
            self.kill_seen = killed
        if killed and self.stop_reason is None:
            self.stop_reason = f"kill switch: {KILL_REASONS.get(killed, killed)}"
        return bool(killed)

    def _check_children(self) -> bool:
        """True (and the kill switch set) when a process has exited on its own."""
        self._kill_switch_set()  # processes that exit because of the switch: its reason
        for role, p in self.children.items():
            code = p.poll()
            if code is not None:
                self.stop_reason = self.stop_reason or f"{role} exited with status {code}"
                self.ctl.kill(KILL_PROCESS_DIED)
                return True
        if self.sim is not None and self.sim.poll() is not None:
            self.stop_reason = self.stop_reason or f"simulator exited with status {self.sim.returncode}"
            self.ctl.kill(KILL_PROCESS_DIED)
            return True
        return False


def _one_line_status(ctl: Control) -> str:
    from engine.glossary import display_name

    parts = []
    for role in ROLES:
        c = ctl.counter_values(role)
        keys = [k for k in ("records", "intents", "orders_sent", "fills") if k in c]
        parts.append(f"{role}: " + " ".join(f"{display_name(role, k)}={c[k]}" for k in keys))
    paused = ctl.paused()
    return "; ".join(parts) + ("; PAUSED (mm kill: mm resume quotes again)" if paused else "")
