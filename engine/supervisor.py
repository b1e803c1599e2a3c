"""`mm run`: check the whole configuration, create the instance's shared memory, start feed,
quoter and sender (and the embedded simulator when no venue URLs are configured), watch them,
stop them, report, and say in the last line what is true.

Order of a run: everything that can be checked without side effects first (config, instance
name, cores and layout, credentials, the instance not already running): a refusal there
creates no directory, segment or process. Then the simulator (if embedded), the venue's
instrument filters (engine/venue_info.py), shared memory, and the processes in order.

`--duration` bounds the whole run, connecting included: a venue that never answers or a sender
that never connects is stopped the orderly way when the duration is over.

Stopping is one mechanism whatever the cause: the supervisor sets the kill switch with a reason;
the quoter emits cancel-all and stops; the sender cancels every open order, confirms with the
venue and exits 0 only if nothing is left resting; the feed stops.

Exit status (engine/exit_codes.py, the README's table): 0 an asked-for stop (duration,
SIGTERM/SIGINT, `mm stop`) with every order confirmed gone; 1 the venue (orders or market
data) was never reached or a stage failed, nothing resting; 2 the configuration, the box or the
venue refused us (credentials, symbol, filters, every order refused, an IP ban); 3 orders may be
resting; 4 a risk limit (drawdown) stopped it. `mm kill` is a pause, not a stop.
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
from engine import instance_info
from engine.box import core_layout as layout_mod
from engine.control import (KILL_DRAWDOWN, KILL_HEARTBEAT, KILL_OPERATOR, KILL_PROCESS_DIED,
                            KILL_REASONS, KILL_SHUTDOWN, KILL_VENUE_BAN, KILL_VENUE_REFUSED,
                            STATE_RUNNING, STATE_STOPPED, Control)
from engine.exit_codes import (EXIT_CONFIG, EXIT_ERROR, EXIT_KILLED, EXIT_OK, EXIT_ORDERS_LEFT,
                               ORDERS_CONFIRMED_GONE)
from engine.feed import connect_error
from engine.instruments import DEFAULT_INSTRUMENTS
from engine.proc import log as proc_log
from engine.ring import Ring
from engine.ring.segment import list_segments, unlink
from engine.ring.table import RINGS
from engine.units import POSITION_PREFIX, START_PREFIX

ROLES = ("sender", "quoter", "feed")   # start order: the order gateway first, data last
STOP_WAIT_S = {"sender": 20.0, "quoter": 5.0, "feed": 5.0}
JOURNAL_ROLE = "journal"      # the journal agent: not trading; restarted when it dies, stopped last
JOURNAL_RESTART_S = 1.0
JOURNAL_STOP_WAIT_S = 15.0    # it drains the ring and asks the venue's trade list once more
START_TIMEOUT_S = 120.0       # without --duration: how long connecting may take
SIM_NICE = 10                 # a cold numba cache compiles for tens of seconds
JOURNAL_NICE = 10             # the journal agent beside the trading processes (its unit: 5 to
                              # their -5): a wake-up of theirs preempts its SQLite batch
FULL_FILTERS = frozenset({"tick_size", "lot_size", "min_notional"})


def log(msg: str) -> None:
    proc_log("supervisor", msg)


class Supervisor:
    def __init__(self, cfg: config_mod.EngineConfig, duration_s: float | None = None,
                 run_dir: str | None = None, configured: dict[str, frozenset[str]] | None = None):
        self.cfg = cfg
        self.configured = configured or {}      # instrument filters the user wrote, per symbol
        self.duration_s = cfg.duration_s if duration_s is None else duration_s
        stamp = time.strftime("%Y%m%d-%H%M%S")
        self.run_dir = Path(run_dir or f"runs/{cfg.instance}-{stamp}")
        self.children: dict[str, subprocess.Popen] = {}
        self.sim: subprocess.Popen | None = None
        self.stop_reason: str | None = None
        self.rings: list[Ring] = []
        self.ctl: Control | None = None
        self.layout = None
        self.run_cfg = cfg              # with the venue's filters and the layout, once known
        self.venue_url = cfg.sender.url  # the order URL (the embedded simulator's once started)
        self.sender_running = False     # seen in state running: it connected at least once
        self.sender_counters: dict[str, int] = {}
        self.feed_counters: dict[str, int] = {}
        self.kill_seen = 0              # the kill switch's reason when the stop began
        self.start_noted: dict[str, int] = {}
        self._start_candidate: dict[str, int] | None = None
        self.result = ""                # the last line: what is true at the end

    # ------------------------------------------------------------------ the whole life
    def run(self) -> int:
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        t0 = time.monotonic()
        self.started_ns = time.time_ns()       # the journal's part of the report starts here
        self.deadline = t0 + self.duration_s if self.duration_s else None
        try:
            self._preflight()
        except (ValueError, RuntimeError) as e:   # ConfigError, CredentialError, SegmentError
            log(f"error: {e}")
            return self._finish(EXIT_CONFIG, "configuration refused: nothing was started")
        self._created_run_dir = not self.run_dir.exists()
        self.run_dir.mkdir(parents=True, exist_ok=True)
        status = EXIT_ERROR
        try:
            cfg = self._start_sim_if_needed(self.cfg)
            cfg = self._instruments_from_venue(cfg)
            if cfg is None:
                self._stop_all()
                self._drop_empty_run_dir()
                return self._finish(EXIT_ERROR, f"never connected to {self._venue_url()}: "
                                                f"nothing was sent; {self.stop_reason}")
            self.run_cfg = cfg
            self._create_shared_memory(cfg)
            instance_info.publish(cfg.instance, instance_info.of_config(cfg))
            if self.sim is not None:
                self._make_sim_yield(self.sim.pid)
            cfg = self.run_cfg = _apply_layout(cfg, self.layout)
            self.cfg_path = self.run_dir / "config.json"
            self.cfg_path.write_bytes(config_mod.dump_json(cfg))
            if self._start_in_order(self.cfg_path):
                self._monitor()
            codes = self._stop_all()
            status, self.result = self._verdict(codes)
        except Exception as e:   # refused by the venue, shared memory, a bug: stop, say so
            from engine.venue_info import VenueRefused

            refused = isinstance(e, (VenueRefused, config_mod.ConfigError))
            self.stop_reason = self.stop_reason or ("refused by the venue" if refused
                                                    else "error at start")
            log(f"error: {e}{self._sim_hint() if refused else ''}"
                if isinstance(e, (ValueError, RuntimeError, OSError))
                else f"error: {type(e).__name__}: {e}")
            codes = self._stop_all()
            if codes:                  # processes ran: the sender's word decides
                status, self.result = self._verdict(codes)
            elif refused:
                status, self.result = EXIT_CONFIG, ("the venue refused the configuration: "
                                                    "nothing was sent")
            else:
                status, self.result = EXIT_ERROR, "could not start: nothing was sent"
        finally:
            if self.ctl is not None:
                self._report()
            self._cleanup()
            self._drop_empty_run_dir()
        return self._finish(status, self.result)

    def _finish(self, status: int, result: str) -> int:
        sys.stdout.flush()
        log(f"result: {result} (exit {status})")
        return status

    def _on_signal(self, signum, frame) -> None:
        if self.stop_reason is None:
            self.stop_reason = f"signal {signal.Signals(signum).name}"

    # ------------------------------------------------------------------ set-up
    def _preflight(self) -> None:
        """Everything checkable without side effects; raises with a message naming what to
        change. Nothing is created before this passes."""
        from engine import shm_admin
        from engine.ring.segment import SegmentError
        from engine.sender import keys

        cfg = self.cfg
        config_mod.check(cfg)               # again: --instance may have replaced the name
        if bool(cfg.feed.url) != bool(cfg.sender.url):
            raise config_mod.ConfigError(
                "set both MM_MD_URL and MM_ORDER_URL (feed.url and sender.url), or neither to "
                "run against the embedded simulator")
        with_sim = not cfg.sender.url
        self.layout = layout_mod.choose(cfg, with_sim=with_sim,
                                        venue_local=with_sim or keys.is_loopback(cfg.sender.url))
        keys.check(cfg.sender, cfg.sender.url or "ws://127.0.0.1/")
        if cfg.journal.enabled:            # a corrupt or foreign journal: refused, path named
            from engine.journal.schema import journal_path, open_journal

            path = journal_path(cfg)
            if path.exists():
                open_journal(path, create=False).close()
        live = shm_admin.live_processes(cfg.instance)
        if live:
            raise SegmentError(f"instance {cfg.instance!r} is running ({', '.join(live)}); "
                               f"stop it or pick another instance name")
        if with_sim:
            log("no venue URLs (MM_MD_URL, MM_ORDER_URL): trading the embedded simulator")
        else:
            log(f"trading against {cfg.sender.url} (market data {cfg.feed.url})")
        log(f"layout ({len(os.sched_getaffinity(0))} cores): {self.layout.describe()}")
        for w in self.layout.warnings:
            log(f"warning: {w}")

    def _create_shared_memory(self, cfg) -> None:
        self.ctl = Control.create(cfg.instance)
        self.ctl.register("supervisor")
        self.ctl.set_state("supervisor", STATE_RUNNING)
        self.ctl.name_counters("supervisor", [START_PREFIX + i.symbol for i in cfg.instruments])
        self.rings += [spec.create(cfg) for spec in RINGS]

    def _sim_instruments(self, cfg):
        """What the embedded simulator lists, as a venue would: the built-in instruments and
        every instrument whose filters the config gives in full. Others (MM_SYMBOL=SOLUSDT with
        nothing else) are unknown to it, as a symbol the venue does not list."""
        builtin = {i.symbol for i in DEFAULT_INSTRUMENTS}
        known = tuple(i for i in cfg.instruments if i.symbol.upper() in builtin
                      or FULL_FILTERS <= self.configured.get(i.symbol.upper(), frozenset()))
        return known or DEFAULT_INSTRUMENTS

    def _sim_hint(self) -> str:
        if self.sim is None:
            return ""
        listed = ", ".join(i.symbol for i in self._sim_instruments(self.cfg))
        return (f" (the embedded simulator lists {listed}; give tick_size, lot_size and "
                f"min_notional in an [[instruments]] entry to simulate another symbol)")

    def _start_sim_if_needed(self, cfg):
        if cfg.sender.url:
            return cfg
        sim_cfg = self.run_dir / "sim-config.json"
        sim_cfg.write_bytes(config_mod.dump_json(
            msgspec.structs.replace(cfg, instruments=self._sim_instruments(cfg))))
        cmd = [sys.executable, "-m", "engine.cli", "sim", "--config", str(sim_cfg),
               "--port", str(cfg.sim.port), "--report", str(self.run_dir / "sim-report.json")]
        self.sim = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=_child_env(),
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

    def _instruments_from_venue(self, cfg):
        """The config with the venue's filters; None when the venue was never reached within
        the run's bound (the stop reason says why)."""
        from engine.venue_info import instruments_from_venue

        self.venue_url = cfg.sender.url
        deadline = self.deadline or time.monotonic() + START_TIMEOUT_S
        new = instruments_from_venue(cfg, self.configured, log, deadline=deadline,
                                     stop=lambda: self.stop_reason is not None)
        if new is None and self.stop_reason is None:
            self.stop_reason = (f"duration {self.duration_s:g} s elapsed" if self.deadline
                                else f"no answer from the venue in {START_TIMEOUT_S:g} s")
        return new

    def _venue_url(self) -> str:
        return self.venue_url or "the venue"

    def _start_in_order(self, cfg_path: Path) -> bool:
        """Start each process and wait until it is running before the next: the gateway is
        connected before anyone quotes, and the quoter is warm before the first tick arrives
        (no start-up backlog in the md ring)."""
        if self.cfg.journal.enabled:
            self._spawn_journal()
        for role in ROLES:
            self._spawn(role, cfg_path)
            if not self._wait_running(role):
                return False
        log("all processes running")
        return True

    def _spawn(self, role: str, cfg_path: Path) -> None:
        # --venue-checked: the instrument table in the file already comes from the venue.
        cmd = [sys.executable, "-m", "engine.cli", role, "--config", str(cfg_path),
               "--venue-checked"]
        # Own session: a Ctrl-C on the terminal reaches the supervisor only, which then stops
        # the others in order (cancel first).
        self.children[role] = subprocess.Popen(cmd, start_new_session=True, env=_child_env(),
                                               preexec_fn=_die_with_parent)
        prio = self.cfg.realtime_priority
        if prio and self.layout.idle.get(role) != layout_mod.SPIN:
            try:
                os.sched_setscheduler(self.children[role].pid, os.SCHED_FIFO,
                                      os.sched_param(prio))
            except PermissionError:
                log(f"warning: SCHED_FIFO for {role} refused (needs CAP_SYS_NICE or "
                    f"LimitRTPRIO=); running at normal priority")

    def _make_sim_yield(self, pid: int) -> None:
        """The simulator stands in for a remote venue: it must not stand between the engine's
        processes and their cores. Niced, and SCHED_IDLE unless an engine process spins where
        it runs (it would starve): SCHED_IDLE is preempted by every wake-up of theirs by rule,
        where nice leaves it to the scheduler's weighing (alike in a measurement here: a
        guarantee more than a gain)."""
        os.setpriority(os.PRIO_PROCESS, pid, SIM_NICE)
        core = self.layout.cores.get("sim", -1)
        if core >= 0:
            os.sched_setaffinity(pid, {core})
        spinning = set(self.layout.spinning_cores().values())
        if spinning and (core < 0 or core in spinning or -1 in spinning):
            return
        try:
            os.sched_setscheduler(pid, os.SCHED_IDLE, os.sched_param(0))
        except OSError as e:
            log(f"warning: SCHED_IDLE for the simulator refused ({e}); it runs niced")

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

    def _wait_running(self, role: str) -> bool:
        """Until `role` is running; False (the kill switch set) when it exits, a stop is asked
        for, the run's duration ends, or START_TIMEOUT_S passes."""
        limit = time.monotonic() + START_TIMEOUT_S
        if self.deadline is not None:
            limit = min(limit, self.deadline)
        while time.monotonic() < limit:
            self._note_progress()
            if self._check_children() or self.stop_reason:
                if self.stop_reason and not self.ctl.killed():
                    self.ctl.kill(KILL_SHUTDOWN)
                return False
            if self.ctl.role_info(role)["state"] == "running":
                return True
            time.sleep(0.02)
        if self.deadline is not None and time.monotonic() >= self.deadline:
            self.stop_reason = (f"duration {self.duration_s:g} s elapsed before the {role} was "
                                f"running")
            self.ctl.kill(KILL_SHUTDOWN)
        else:
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

    def _verdict(self, codes: dict[str, int | None]) -> tuple[int, str]:
        """(exit status, last line) from the sender's and the feed's counters (read by name,
        with defaults for processes that do not publish them), the sender's exit status and
        the kill switch's reason. Resting orders outrank everything; then a venue that refused
        us (2), a stage that never reached the venue or failed (1), a risk stop (4)."""
        c = self.sender_counters
        sender = codes.get("sender")
        refused = self.kill_seen in (KILL_VENUE_REFUSED, KILL_VENUE_BAN)
        new, replaces = c.get("orders_sent", 0), c.get("replaces_sent", 0)
        connected = c.get("connected_ever", 1 if self.sender_running or new or replaces else 0)
        if "sender" not in codes or (not connected and not new and not replaces):
            if refused:
                return EXIT_CONFIG, (f"{self._venue_url()} refused us "
                                     f"({KILL_REASONS[self.kill_seen]}; the sender's log says "
                                     f"why): nothing was sent")
            return EXIT_ERROR, f"never connected to {self._venue_url()}: nothing was sent"
        left = c.get("left_open", 0 if sender in ORDERS_CONFIRMED_GONE else -1)
        sent = f"{new} orders and {replaces} replaces sent"
        if sender not in ORDERS_CONFIRMED_GONE or left != 0:
            how = ("the sender could not confirm that every order is gone" if left < 0
                   else f"{left} orders still open at the venue")
            return EXIT_ORDERS_LEFT, (f"ORDERS MAY BE RESTING: {how} ({sent}, sender exit "
                                      f"{sender}); check {self._venue_url()} by hand")
        canceled = c.get("canceled_at_stop")
        gone = ("every order confirmed gone" + (f" ({canceled} canceled at stop)" if canceled
                                                else "") + ", nothing resting")
        no_data = self._market_data_never_connected()
        if no_data:
            return EXIT_ERROR, f"{no_data}; {sent}; {gone}"
        if refused:
            return EXIT_CONFIG, (f"{sent}; {gone}; stopped because the venue refused us "
                                 f"({KILL_REASONS[self.kill_seen]})")
        if self.kill_seen == KILL_DRAWDOWN:
            return EXIT_KILLED, f"{sent}; {gone}; stopped by the drawdown limit"
        # Asked-for stops are orderly: duration over, SIGTERM/SIGINT (`mm stop`).
        orderly = self.stop_reason is not None and self.stop_reason.startswith(
            ("duration", "signal", f"kill switch: {KILL_REASONS[KILL_SHUTDOWN]}",
             f"kill switch: {KILL_REASONS[KILL_OPERATOR]}"))
        return (EXIT_OK if orderly else EXIT_ERROR), f"{sent}; {gone}"

    def _market_data_never_connected(self) -> str:
        """'' when the feed connected at least once (or did not run); otherwise what the last
        line says: where it tried, why it failed, how often."""
        f = self.feed_counters
        if not f or f.get("connected_ever", 1):
            return ""
        cause = connect_error.describe(f.get("connect_error", 0),
                                       f.get("connect_http_status", 0)) or "no answer"
        return (f"market data never connected to {self.run_cfg.feed.url or 'the venue'}: "
                f"{cause} ({f.get('connect_failures', 0)} attempts)")

    def _report(self) -> None:
        from engine.report import print_summary, snapshot_run

        try:
            summary = snapshot_run(self.cfg.instance, self.run_dir, self.ctl, self.rings,
                                   stop_reason=self.stop_reason, layout=self.layout,
                                   result=self.result, cfg=self.run_cfg,
                                   started_ns=self.started_ns)
            print_summary(summary)
            latest = self.run_dir.parent / "latest"
            if latest.is_symlink() or not latest.exists():
                latest.unlink(missing_ok=True)
                latest.symlink_to(self.run_dir.name)
        except Exception as e:  # reporting must never mask the exit status
            log(f"report failed: {type(e).__name__}: {e}")

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


def _apply_layout(cfg, lay):
    rep = msgspec.structs.replace
    return rep(cfg,
               feed=rep(cfg.feed, core=lay.cores["feed"]),
               quoter=rep(cfg.quoter, core=lay.cores["quoter"], idle=lay.idle["quoter"]),
               sender=rep(cfg.sender, core=lay.cores["sender"], idle=lay.idle["sender"]))


def _child_env() -> dict[str, str]:
    """The environment of the processes started here: the config file they get is resolved
    (instance, URLs, symbols), so the variables that override a config are left out; the
    credentials (MM_API_KEY, ...) stay."""
    return {k: v for k, v in os.environ.items() if k not in config_mod.CONFIG_ENV}


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
        proc_log("sim", line.rstrip("\n"))


def _one_line_status(ctl: Control) -> str:
    from engine.glossary import display_name

    parts = []
    for role in ROLES:
        c = ctl.counter_values(role)
        keys = [k for k in ("records", "intents", "orders_sent", "fills") if k in c]
        parts.append(f"{role}: " + " ".join(f"{display_name(role, k)}={c[k]}" for k in keys))
    paused = ctl.paused()
    return "; ".join(parts) + ("; PAUSED (mm kill: mm resume quotes again)" if paused else "")
