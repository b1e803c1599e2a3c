"""`mm run`'s start-up: the checks without side effects, the embedded simulator, the venue's
instrument filters, shared memory, and spawning the processes in order."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import msgspec

from engine import config as config_mod
from engine.box import core_layout as layout_mod
from engine.box import wake_latency
from engine.control import KILL_PROCESS_DIED, KILL_SHUTDOWN, STATE_RUNNING, Control
from engine.instruments import DEFAULT_INSTRUMENTS
from engine.ring.table import RINGS
from engine.state_dir import forget_anchor
from engine.supervisor.children import (ROLES, START_TIMEOUT_S, _child_env, _die_with_parent,
                                        _forward, _readline_with_timeout, log)
from engine.units import START_PREFIX

SIM_NICE = 10                 # a cold numba cache compiles for tens of seconds
FULL_FILTERS = frozenset({"tick_size", "lot_size", "min_notional"})


class Startup:
    """Supervisor's start-up (engine/supervisor/__init__.py holds the state)."""

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
        self.layout = layout_mod.choose(
            cfg, with_sim=with_sim, venue_local=layout_mod.venue_takes_a_core(cfg, with_sim))
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
        if forget_anchor(cfg):     # before the quoter starts: it would restore it
            log("embedded simulator: a new venue every run (fresh account, market from its "
                "start price): the quoter's position references and drawdown start afresh")
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
        self.wake_bound_us = wake_latency.in_force()
        log(f"CPU wake-up bound in force (PM QoS): {wake_latency.describe(self.wake_bound_us)}")
        return True

    def _spawn(self, role: str, cfg_path: Path) -> None:
        # --venue-checked: the instrument table in the file already comes from the venue.
        cmd = [sys.executable, "-m", "engine.cli", role, "--config", str(cfg_path),
               "--venue-checked"]
        # Own session: a Ctrl-C on the terminal reaches the supervisor only, which then stops
        # the others in order (cancel first).
        # (realtime_priority: each process sets SCHED_FIFO on itself, engine/proc.realtime)
        self.children[role] = subprocess.Popen(cmd, start_new_session=True, env=_child_env(),
                                               preexec_fn=_die_with_parent)

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


def _apply_layout(cfg, lay):
    rep = msgspec.structs.replace
    return rep(cfg,
               feed=rep(cfg.feed, core=lay.cores["feed"], idle=lay.idle.get("feed", "epoll")),
               quoter=rep(cfg.quoter, core=lay.cores["quoter"], idle=lay.idle["quoter"]),
               sender=rep(cfg.sender, core=lay.cores["sender"], idle=lay.idle["sender"]))
