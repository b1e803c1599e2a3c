"""The programs the end-to-end bench runs against its venue, behind one small interface:
start, wait until trading, the processes to charge CPU to, an optional look inside, stop.

  Engine    `mm run` exactly as a user starts it (MM_MD_URL / MM_ORDER_URL at the bench's
            venue, MM_SYMBOL, --instance), its histograms, rings and counters read from shared
            memory while it runs; stopped with SIGINT, the orderly path (cancel and confirm).
  Baseline  one of bench/baselines/ (asyncio_bot, mpqueue, reflex); stopped with SIGTERM.
Each child runs in its own session (a terminal's Ctrl-C reaches the bench only, which stops
them in order) and gets SIGTERM from the kernel if the bench dies.
"""
from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil

from engine.control import Control
from engine.latency.histogram import HistogramSet
from engine.ring import Ring
from engine.ring.segment import SegmentError, list_segments, unlink
from engine.ring.table import RINGS
from engine.supervisor.children import ROLES, STOP_WAIT_S
from engine.supervisor.children import _die_with_parent as die_with_parent
from engine.supervisor.children import _stop as stop_process

ENGINE_READY_TIMEOUT_S = 180.0   # a cold numba cache compiles the quoter for tens of seconds
BASELINE_READY_TIMEOUT_S = 120.0
# mm run's own stop: the sender cancels and confirms (STOP_WAIT_S), then quoter and feed
ENGINE_STOP_TIMEOUT_S = sum(STOP_WAIT_S.values()) + 15.0


def clean_env(extra: dict | None = None) -> dict:
    """This process's environment without the engine's MM_* settings, plus `extra`: every
    program of the bench uses the demo key pair and the venue the bench gives it (an operator's
    MM_API_KEY would make the venue refuse the baselines, which sign with the demo pair)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MM_")}
    env["MM_STATE_DIR"] = bench_state_dir()    # tags and rate windows: never ./state
    env.update(extra or {})
    return env


_STATE_DIR: list[str] = []


def bench_state_dir() -> str:
    """One temporary state directory for this bench run (MM_STATE_DIR when the caller set
    one): the engines it starts keep their tag and rate windows there, not in the checkout."""
    if not _STATE_DIR:
        import tempfile

        _STATE_DIR.append(os.environ.get("MM_STATE_DIR")
                          or tempfile.mkdtemp(prefix="mm-bench-state-"))
    return _STATE_DIR[0]


class ContenderError(RuntimeError):
    """A contender did not start (the message says which and points at its log)."""


class Contender:
    """Common life of a contender process; subclasses say how to start and look inside."""

    name = ""                 # short key: engine, asyncio, mpqueue, reflex
    label = ""                # what tables call it
    child_roles: tuple[str, ...] = ()   # names of the child processes, in start order

    def __init__(self, tag: str):
        self.tag = tag
        self.proc: subprocess.Popen | None = None
        self.log_path: Path | None = None

    def _spawn(self, cmd: list[str], log_path: Path, env: dict | None = None,
               stdout=None) -> None:
        """Start `cmd` with stderr (and stdout unless given) in `log_path`."""
        self.log_path = log_path
        with open(log_path, "w") as log:
            self.proc = subprocess.Popen(cmd, stdout=log if stdout is None else stdout,
                                         stderr=log, text=True, env=clean_env(env),
                                         start_new_session=True, preexec_fn=die_with_parent)

    def _check_alive(self) -> None:
        if self.proc.poll() is not None:
            raise ContenderError(f"{self.label} exited with status {self.proc.returncode} "
                                 f"while starting; see {self.log_path}")

    def pids(self) -> dict[str, int]:
        """Process name -> pid of every process doing the contender's work: the main one and
        its children, named by `child_roles` in the order they were started."""
        if self.proc is None or self.proc.poll() is not None:
            return {}
        out = {"main": self.proc.pid}
        try:
            children = sorted(psutil.Process(self.proc.pid).children(), key=lambda c: c.pid)
        except psutil.NoSuchProcess:
            return out
        roles = self.child_roles if len(self.child_roles) == len(children) else ()
        for i, child in enumerate(children):
            out[roles[i] if roles else f"child{i}"] = child.pid
        return out

    def snapshot(self) -> dict:
        """The contender's own view (histograms, rings, counters); {} when it has none."""
        return {}

    def _stop_with(self, first_signal: int, wait_s: float) -> int | None:
        """first_signal, wait; then SIGTERM, then SIGKILL. Returns the exit status."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(first_signal)
            except ProcessLookupError:
                pass
        return stop_process(self.proc, wait_s)


class Engine(Contender):
    name, label = "engine", "engine (mm run)"

    def __init__(self, tag: str, config: Path, instance: str, symbol: str, run_dir: Path):
        super().__init__(tag)
        self.config, self.instance, self.symbol, self.run_dir = config, instance, symbol, run_dir
        self.ctl: Control | None = None
        self.hists: dict[str, HistogramSet] = {}
        self.rings: dict[str, Ring] = {}

    def start(self, md_url: str, api_url: str, backstop_s: float) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        env = {"MM_MD_URL": md_url, "MM_ORDER_URL": api_url, "MM_SYMBOL": self.symbol}
        cmd = [sys.executable, "-m", "engine.cli", "run", "--config", str(self.config),
               "--instance", self.instance, "--duration", f"{backstop_s:.0f}",
               "--run-dir", str(self.run_dir)]
        self._spawn(cmd, self.run_dir / "mm-run.log", env)

    def wait_ready(self) -> None:
        deadline = time.monotonic() + ENGINE_READY_TIMEOUT_S
        while time.monotonic() < deadline:
            self._check_alive()
            try:
                if self.ctl is None:
                    self.ctl = Control.attach(self.instance)
                if all(self.ctl.role_info(r)["state"] == "running" for r in ROLES):
                    self._attach()
                    return
            except SegmentError:
                pass                 # not created yet
            time.sleep(0.05)
        raise ContenderError(f"engine not running after {ENGINE_READY_TIMEOUT_S:g} s; "
                             f"see {self.log_path}")

    def _attach(self) -> None:
        for role in ROLES:
            self.hists[role] = HistogramSet.attach(self.instance, role)
        for spec in RINGS:
            self.rings[spec.name] = spec.attach(self.instance)

    def pids(self) -> dict[str, int]:
        if self.proc is None or self.proc.poll() is not None:
            return {}
        out = {"supervisor": self.proc.pid}
        if self.ctl is not None:
            out.update({r: self.ctl.pid(r) for r in ROLES if self.ctl.pid(r)})
        return out

    def snapshot(self) -> dict:
        if self.ctl is None:
            return {}
        return {"hists": {f"{role}.{name}": h for role, hs in self.hists.items()
                          for name, h in hs.snapshots().items()},
                "rings": {name: r.stats() for name, r in self.rings.items()},
                "counters": {r: self.ctl.counter_values(r) for r in ROLES}}

    def stop(self) -> int | None:
        """SIGINT to mm run: kill switch, cancel-all confirmed by the venue, report, exit."""
        self._detach()
        code = self._stop_with(signal.SIGINT, ENGINE_STOP_TIMEOUT_S)
        for name in list_segments(self.instance):   # only if mm run could not clean up
            unlink(name)
        return code

    def _detach(self) -> None:
        for hs in self.hists.values():
            hs.close()
        for r in self.rings.values():
            r.close()
        if self.ctl is not None:
            self.ctl.close()
        self.hists, self.rings, self.ctl = {}, {}, None

    def summary(self) -> dict:
        """The run's summary.json (engine/report.py), {} when mm run wrote none."""
        path = self.run_dir / "summary.json"
        return json.loads(path.read_text()) if path.exists() else {}


class Baseline(Contender):
    """A program of bench/baselines/, speaking the common command line (baselines/common.py)."""

    def __init__(self, name: str, label: str, module: str, tag: str, log_dir: Path,
                 extra: list[str] | None = None, child_roles: tuple[str, ...] = ()):
        super().__init__(tag)
        self.name, self.label, self.module = name, label, module
        self.child_roles = child_roles
        self.log_dir = log_dir
        self.extra = extra or []

    def start(self, md_url: str, api_url: str, backstop_s: float) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", f"bench.baselines.{self.module}", "--md-url", md_url,
               "--api-url", api_url, "--tag", self.tag, "--duration", f"{backstop_s:.0f}",
               *self.extra]
        self._spawn(cmd, self.log_dir / f"{self.name}.log", stdout=subprocess.PIPE)

    def wait_ready(self) -> None:
        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + BASELINE_READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if sel.select(0.2):
                line = self.proc.stdout.readline()
                if line and json.loads(line).get("ready"):
                    return
            self._check_alive()
        raise ContenderError(f"{self.label} not ready after {BASELINE_READY_TIMEOUT_S:g} s; "
                             f"see {self.log_path}")

    def stop(self) -> int | None:
        code = self._stop_with(signal.SIGTERM, 10.0)
        if self.proc is not None and self.proc.stdout is not None:
            self.proc.stdout.close()
        return code
