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

import signal
import subprocess
import sys
import time
from pathlib import Path

from engine import config as config_mod
from engine import instance_info, proc
from engine.control import Control
from engine.exit_codes import EXIT_CONFIG, EXIT_ERROR
from engine.ring import Ring
from engine.supervisor.children import log
from engine.supervisor.journal import JournalKeeping
from engine.supervisor.startup import Startup, _apply_layout
from engine.supervisor.stopping import Stopping
from engine.supervisor.verdict import Verdict
from engine.supervisor.watching import Watching


class Supervisor(Startup, JournalKeeping, Watching, Stopping, Verdict):
    """One `mm run`: the state of the run, and its whole life; each part of the life is in its
    own module (startup, journal, watching, stopping, verdict)."""

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
        self.wake_bound_us: int | None = None   # the PM QoS bound in force once all ran
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
            proc.stay_off(set(self.layout.spinning_cores().values()))  # its polls, reports
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
