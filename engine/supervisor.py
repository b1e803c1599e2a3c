"""`mm run`: create the instance's shared memory, start feed, quoter and sender (and the embedded
simulator when no venue URLs are configured), watch them, stop them, report.

Stopping is one mechanism whatever the cause: the supervisor sets the kill switch with a reason;
the quoter emits cancel-all and stops; the sender cancels every open order, confirms with the
venue and exits 0 only if nothing is left resting; the feed stops. Duration elapsed and SIGTERM
are orderly (exit 0 when the sender confirmed); a dead or silent process is not (exit 1).
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import msgspec

from engine import config as config_mod
from engine import layout as layout_mod
from engine.control import (KILL_HEARTBEAT, KILL_OPERATOR, KILL_PROCESS_DIED, KILL_REASONS,
                            KILL_SHUTDOWN,
                            STATE_RUNNING, STATE_STOPPED, Control)
from engine.exit_codes import EXIT_ORDERS_LEFT, ORDERS_CONFIRMED_GONE
from engine.records import FILL_DTYPE, MD_DTYPE, ORDER_DTYPE
from engine.ring import Ring
from engine.ring.segment import list_segments, unlink

ROLES = ("sender", "quoter", "feed")   # start order: the order gateway first, data last
STOP_WAIT_S = {"sender": 20.0, "quoter": 5.0, "feed": 5.0}
START_TIMEOUT_S = 120.0
SIM_NICE = 10                 # a cold numba cache compiles for tens of seconds


def log(msg: str) -> None:
    print(f"mm[supervisor] {msg}", file=sys.stderr, flush=True)


class Supervisor:
    def __init__(self, cfg: config_mod.EngineConfig, duration_s: float | None = None,
                 run_dir: str | None = None):
        self.cfg = cfg
        self.duration_s = cfg.duration_s if duration_s is None else duration_s
        stamp = time.strftime("%Y%m%d-%H%M%S")
        self.run_dir = Path(run_dir or f"runs/{cfg.instance}-{stamp}")
        self.children: dict[str, subprocess.Popen] = {}
        self.sim: subprocess.Popen | None = None
        self.stop_reason: str | None = None
        self.rings: list[Ring] = []
        self.ctl: Control | None = None

    # ------------------------------------------------------------------ the whole life
    def run(self) -> int:
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        status = 1
        try:
            self._create_shared_memory()
            cfg = self._start_sim_if_needed(self.cfg)
            lay = layout_mod.choose(cfg, with_sim=self.sim is not None)
            log(f"layout ({len(os.sched_getaffinity(0))} cores): {lay.describe()}")
            for w in lay.warnings:
                log(f"warning: {w}")
            if self.sim is not None:
                # The simulator stands in for a remote venue: it must not steal the engine's CPU
                # on a shared core, so it runs niced (the engine's processes preempt it).
                os.setpriority(os.PRIO_PROCESS, self.sim.pid, SIM_NICE)
                if lay.cores.get("sim", -1) >= 0:
                    os.sched_setaffinity(self.sim.pid, {lay.cores["sim"]})
            cfg = _apply_layout(cfg, lay)
            cfg_path = self.run_dir / "config.json"
            cfg_path.write_bytes(config_mod.dump_json(cfg))
            self.cfg_path = cfg_path
            self.layout = lay
            if self._start_in_order(cfg_path):
                self._monitor()
            exit_codes = self._stop_all()
            status = self._exit_status(exit_codes)
        except (ValueError, RuntimeError, OSError) as e:
            log(f"error: {e}")
            self._stop_all()
            status = 2
        finally:
            if self.ctl is not None:
                self._report()
            self._cleanup()
        return status

    def _on_signal(self, signum, frame) -> None:
        if self.stop_reason is None:
            self.stop_reason = f"signal {signal.Signals(signum).name}"

    # ------------------------------------------------------------------ set-up
    def _create_shared_memory(self) -> None:
        cfg = self.cfg
        self.ctl = Control.create(cfg.instance)
        self.ctl.register("supervisor")
        self.ctl.set_state("supervisor", STATE_RUNNING)
        for name, dtype, rc in (("md", MD_DTYPE, cfg.rings.md),
                                ("orders", ORDER_DTYPE, cfg.rings.orders),
                                ("fills", FILL_DTYPE, cfg.rings.fills)):
            self.rings.append(Ring.create(cfg.instance, name, dtype, rc.capacity, rc.policy))

    def _start_sim_if_needed(self, cfg):
        if cfg.feed.url and cfg.sender.url:
            log(f"trading against {cfg.sender.url} (market data {cfg.feed.url})")
            return cfg
        if cfg.feed.url or cfg.sender.url:
            raise ValueError("set both MM_MD_URL and MM_ORDER_URL (feed.url and sender.url), "
                             "or neither to run against the embedded simulator")
        sim_cfg = self.run_dir / "sim-config.json"
        sim_cfg.write_bytes(config_mod.dump_json(cfg))
        cmd = [sys.executable, "-m", "engine.cli", "sim", "--config", str(sim_cfg),
               "--port", str(cfg.sim.port), "--report", str(self.run_dir / "sim-report.json")]
        self.sim = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True,
                                    start_new_session=True, preexec_fn=_die_with_parent)
        line = _readline_with_timeout(self.sim, 30.0)
        try:
            urls = json.loads(line)
        except (json.JSONDecodeError, TypeError):
            raise RuntimeError(f"simulator did not start (first line: {line!r})") from None
        log(f"embedded simulator: market {urls['md_url']}, orders {urls['api_url']}")
        threading.Thread(target=_forward, args=(self.sim.stdout,), daemon=True).start()
        return msgspec.structs.replace(
            cfg, feed=msgspec.structs.replace(cfg.feed, url=urls["md_url"]),
            sender=msgspec.structs.replace(cfg.sender, url=urls["api_url"]))

    def _start_in_order(self, cfg_path: Path) -> bool:
        """Start each process and wait until it is running before the next: the gateway is
        connected before anyone quotes, and the quoter is warm before the first tick arrives
        (no start-up backlog in the md ring)."""
        for role in ROLES:
            self._spawn(role, cfg_path)
            if not self._wait_running(role):
                return False
        log("all processes running")
        return True

    def _spawn(self, role: str, cfg_path: Path) -> None:
        cmd = [sys.executable, "-m", "engine.cli", role, "--config", str(cfg_path)]
        # Own session: a Ctrl-C on the terminal reaches the supervisor only, which then stops
        # the others in order (cancel first).
        self.children[role] = subprocess.Popen(cmd, start_new_session=True,
                                               preexec_fn=_die_with_parent)
        prio = self.cfg.realtime_priority
        if prio and self.layout.idle.get(role) != layout_mod.SPIN:
            try:
                os.sched_setscheduler(self.children[role].pid, os.SCHED_FIFO,
                                      os.sched_param(prio))
            except PermissionError:
                log(f"warning: SCHED_FIFO for {role} refused (needs CAP_SYS_NICE or "
                    f"LimitRTPRIO=); running at normal priority")

    def _wait_running(self, role: str) -> bool:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._check_children() or self.stop_reason:
                return False
            if self.ctl.role_info(role)["state"] == "running":
                return True
            time.sleep(0.02)
        self.stop_reason = f"{role} did not reach running state in {START_TIMEOUT_S:g} s"
        self.ctl.kill(KILL_PROCESS_DIED)
        return False

    # ------------------------------------------------------------------ watching
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
        start = time.monotonic()
        timeout_ns = self.cfg.heartbeat_timeout_ms * 1_000_000
        next_beat_report = start + 5.0
        while True:
            self.ctl.beat("supervisor")
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
            if self.duration_s and time.monotonic() - start >= self.duration_s:
                self.stop_reason = f"duration {self.duration_s:g} s elapsed"
                self.ctl.kill(KILL_SHUTDOWN)
                return
            if time.monotonic() >= next_beat_report:
                next_beat_report += 5.0
                log(_one_line_status(self.ctl))
            time.sleep(0.05)

    def _kill_switch_set(self) -> bool:
        """Whether the kill switch is set; its reason becomes the stop reason if none is yet."""
        killed = self.ctl.killed()
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

    # ------------------------------------------------------------------ stopping
    def _stop_all(self) -> dict[str, int | None]:
        if self.ctl is not None and not self.ctl.killed():
            self.ctl.kill(KILL_SHUTDOWN)
        codes: dict[str, int | None] = {}
        for role in ROLES:  # sender first: it must confirm cancels while the venue link is up
            p = self.children.get(role)
            if p is None:
                continue
            codes[role] = _stop(p, STOP_WAIT_S[role])
        if codes.get("sender") not in (None, EXIT_ORDERS_LEFT, *ORDERS_CONFIRMED_GONE) \
                and getattr(self, "cfg_path", None):
            codes["sender"] = self._rescue_cancel(codes["sender"])
        if self.sim is not None:
            _stop(self.sim, 10.0)
        if self.ctl is not None:
            self.ctl.set_state("supervisor", STATE_STOPPED)
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
        return code if code is not None else 3

    def _exit_status(self, codes: dict[str, int | None]) -> int:
        # Asked-for stops are orderly: duration over, SIGTERM/SIGINT, the operator's kill switch.
        orderly = self.stop_reason is not None and self.stop_reason.startswith(
            ("duration", "signal", f"kill switch: {KILL_REASONS[KILL_OPERATOR]}"))
        sender = codes.get("sender")
        if sender is not None and sender not in ORDERS_CONFIRMED_GONE:
            log(f"sender exit status {sender}: open orders were NOT all confirmed canceled")
            return 3
        return 0 if orderly else 1

    def _report(self) -> None:
        from engine.report import print_summary, snapshot_run

        try:
            summary = snapshot_run(self.cfg.instance, self.run_dir, self.ctl, self.rings,
                                   stop_reason=self.stop_reason,
                                   layout=getattr(self, "layout", None))
            print_summary(summary)
            latest = self.run_dir.parent / "latest"
            if latest.is_symlink() or not latest.exists():
                latest.unlink(missing_ok=True)
                latest.symlink_to(self.run_dir.name)
        except Exception as e:  # reporting must never mask the exit status
            log(f"report failed: {e!r}")

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


def _apply_layout(cfg, lay):
    rep = msgspec.structs.replace
    return rep(cfg,
               feed=rep(cfg.feed, core=lay.cores["feed"]),
               quoter=rep(cfg.quoter, core=lay.cores["quoter"], idle=lay.idle["quoter"]),
               sender=rep(cfg.sender, core=lay.cores["sender"], idle=lay.idle["sender"]))


def _die_with_parent() -> None:
    """In the child, before exec: SIGTERM when the supervisor dies, even by SIGKILL, so no
    process is left quoting without its supervisor (SIGTERM is the orderly path: the sender
    still cancels everything)."""
    import ctypes

    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _stop(p: subprocess.Popen, wait_s: float) -> int | None:
    """Wait for a process that was told to stop (kill switch); then SIGTERM, then SIGKILL."""
    for sig, wait in ((None, wait_s), (signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
        if sig is not None and p.poll() is None:
            try:
                p.send_signal(sig)
            except ProcessLookupError:
                pass
        try:
            return p.wait(wait)
        except subprocess.TimeoutExpired:
            continue
    return p.poll()


def _readline_with_timeout(p: subprocess.Popen, timeout_s: float) -> str | None:
    import selectors

    sel = selectors.DefaultSelector()
    sel.register(p.stdout, selectors.EVENT_READ)
    if not sel.select(timeout_s):
        return None
    return p.stdout.readline()


def _forward(stream) -> None:
    """Keep draining the simulator's stdout so it never blocks on a full pipe."""
    for line in stream:
        sys.stderr.write(f"mm[sim] {line}")


def _one_line_status(ctl: Control) -> str:
    parts = []
    for role in ROLES:
        c = ctl.counter_values(role)
        keys = [k for k in ("records", "intents", "orders_sent", "fills") if k in c]
        parts.append(f"{role}: " + " ".join(f"{k}={c[k]}" for k in keys))
    return "; ".join(parts)
