"""Recovery is a state, not a latch: an instance run the systemd way (separate `mm feed`,
`mm quoter`, `mm sender` processes, each restarted on failure like Restart=on-failure with
RestartPreventExitStatus=2 4) comes back after any one of its processes is SIGKILLed, without a
person removing anything: the restarted process attaches to the instance's shared memory, the
sender reconciles with the venue (orders nobody manages any more are canceled), and quoting
resumes only then. Judged from the venue's book: after every recovery each resting order of
ours is held by a quoter slot; at the end nothing rests."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from engine.control import Control
from engine.exit_codes import ORDERS_CONFIRMED_GONE
from engine.quoter.belief import Belief
from engine.ring.segment import SegmentError, pid_alive
from tests.support.sim_thread import SimThread
from tests.support.units import unit_config

pytestmark = [pytest.mark.slow, pytest.mark.timeout(360)]

ROLES = ("sender", "quoter", "feed")
NO_RESTART = (0, 2, 4)        # like RestartPreventExitStatus=2 4 (and a clean 0)
TAG = "rec"
CONFIG = unit_config(TAG)


class Units(threading.Thread):
    """A small systemd: one process per role, restarted 0.3 s after it fails."""

    def __init__(self, env: dict, cfg: str, log_dir):
        super().__init__(daemon=True)
        self.env, self.cfg, self.log_dir = env, cfg, log_dir
        self.procs: dict[str, subprocess.Popen] = {}
        self.exits: dict[str, list[int]] = {r: [] for r in ROLES}
        self.starts = dict.fromkeys(ROLES, 0)
        self.stopping = threading.Event()
        self.lock = threading.Lock()

    def start_unit(self, role: str) -> None:
        log = open(self.log_dir / f"{role}.log", "ab")
        self.procs[role] = subprocess.Popen(
            [sys.executable, "-m", "engine.cli", role, "--config", self.cfg], env=self.env,
            stdout=log, stderr=subprocess.STDOUT)
        log.close()
        self.starts[role] += 1

    def run(self) -> None:
        with self.lock:
            for role in ROLES:
                self.start_unit(role)
        while not self.stopping.wait(0.1):
            with self.lock:
                for role, p in self.procs.items():
                    code = p.poll()
                    if code is not None and p.returncode is not None and not getattr(p, "seen", 0):
                        p.seen = 1
                        self.exits[role].append(code)
                        if code not in NO_RESTART:
                            time.sleep(float(os.environ.get("T_RESTART", "0.3")))  # RestartSec=
                            self.start_unit(role)

    def kill(self, role: str) -> None:
        with self.lock:
            self.procs[role].send_signal(signal.SIGKILL)

    def stop(self) -> dict[str, int]:
        """systemctl stop of the target: SIGTERM to every unit at once."""
        self.stopping.set()
        self.join(5)
        for p in self.procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        codes = {}
        for role, p in self.procs.items():
            try:
                codes[role] = p.wait(60)
            except subprocess.TimeoutExpired:
                p.kill()
                codes[role] = p.wait(10)
        return codes


def _ours(sim) -> set[int]:
    return {int(o["clientOrderId"].rsplit("-", 1)[1]) for o in sim.open_orders()
            if o["clientOrderId"].startswith(TAG + "-")}


def _held(instance) -> set[int] | None:
    """The orders the live quoter's slots hold (None: no live quoter)."""
    try:
        ctl = Control.attach(instance)
        alive = pid_alive(ctl.pid("quoter"))
        ctl.close()
        if not alive:
            return None
        b = Belief.attach(instance)
        try:
            return set(b.orders())
        finally:
            b.close()
    except SegmentError:
        return None


def _unmanaged_throughout(sim, instance, seconds: float) -> set[int]:
    """Orders of ours resting without a slot in every look over `seconds` (one look can catch
    an order the venue canceled a moment before the quoter heard of it)."""
    left = None
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        now = _ours(sim) - (_held(instance) or set())
        left = now if left is None else left & now
        time.sleep(0.1)
    return left or set()


def _all_running(instance) -> bool:
    try:
        ctl = Control.attach(instance)
    except SegmentError:
        return False
    try:
        return all(pid_alive(ctl.pid(r)) and ctl.role_info(r)["state"] == "running"
                   for r in ROLES) and not ctl.killed()
    finally:
        ctl.close()


def _recovered(sim, instance, timeout: float) -> float:
    """Seconds until every process runs, quotes rest and every resting order is held by the
    live quoter's slots (the belief equals the venue's orders)."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if _all_running(instance):
            ours, held = _ours(sim), _held(instance)
            if ours and held is not None and ours <= held:
                return time.monotonic() - t0
        time.sleep(0.1)
    diag = ""
    try:
        from engine.records import FILL_DTYPE
        from engine.ring import Ring
        ctl = Control.attach(instance)
        fills = Ring.attach(instance, "fills", FILL_DTYPE)
        diag = (f"\nkill {ctl.killed()} roles {[ctl.role_info(r) for r in ROLES]}\n"
                f"quoter {ctl.counter_values('quoter')}\nfills ring {fills.stats()}")
        fills.close()
        ctl.close()
    except SegmentError:
        pass
    raise AssertionError(f"not recovered within {timeout} s: venue {_ours(sim)}, "
                         f"held {_held(instance)}{diag}")


def test_each_process_killed_comes_back_and_quoting_resumes(instance, tmp_path):
    cfg = tmp_path / "mm.toml"
    cfg.write_text(CONFIG)
    with SimThread(event_rate=100, seed=31) as sim:
        env = {**os.environ, "MM_MD_URL": sim.md_url, "MM_ORDER_URL": sim.api_url,
               "MM_INSTANCE": instance}
        units = Units(env, str(cfg), tmp_path)
        units.start()
        codes = None
        try:
            _recovered(sim, instance, 120)
            times = {}
            for role in ("quoter", "sender", "feed"):
                before = dict(units.starts)
                units.kill(role)
                time.sleep(0.5)
                times[role] = _recovered(sim, instance, 60)
                assert units.starts[role] == before[role] + 1, role      # it was restarted
                stranger = _unmanaged_throughout(sim, instance, 1.0)
                assert not stranger, f"after the {role} came back: unmanaged {stranger}"
            codes = units.stop()
        finally:
            if codes is None:
                units.stop()
            logs = {r: (tmp_path / f"{r}.log").read_text(errors="replace") for r in ROLES}
        assert _ours(sim) == set(), "orders left resting after the stop"
        # every restarted quoter took ids above its predecessors': none used twice
        assert sim.stats()["client_ids_reused"] == 0
        # stopped, or saw a peer stop first: either way it confirmed every order gone
        assert codes["sender"] in ORDERS_CONFIRMED_GONE, logs["sender"][-3000:]
        # the sender's restart found the dead sender's orders and canceled them itself
        assert "connected to" in logs["sender"] and logs["sender"].count("connected to") >= 2
        print("\nrecovery seconds after SIGKILL:", {r: round(t, 2) for r, t in times.items()},
              "exits:", units.exits)


def _mm(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "engine.cli", *args], capture_output=True,
                          text=True, timeout=120)


def test_kill_pauses_and_resume_quotes_again_under_systemd(instance, tmp_path):
    """The systemd way (no supervisor; MM_LAYOUT=auto as the units set it): `mm kill` cancels
    everything and stops quoting while no unit exits or restarts; `mm resume` quotes again;
    `mm stop` ends every unit with 0, which systemd does not restart."""
    cfg = tmp_path / "mm.toml"
    cfg.write_text(CONFIG)
    with SimThread(event_rate=100, seed=32) as sim:
        env = {**os.environ, "MM_MD_URL": sim.md_url, "MM_ORDER_URL": sim.api_url,
               "MM_INSTANCE": instance, "MM_LAYOUT": "auto"}
        units = Units(env, str(cfg), tmp_path)
        units.start()
        try:
            _recovered(sim, instance, 120)
            out = _mm("kill", "--instance", instance)
            assert out.returncode == 0 and "every order confirmed gone" in out.stdout, \
                out.stdout + out.stderr
            assert _ours(sim) == set()
            time.sleep(2.0)
            assert _ours(sim) == set(), "quoting while paused"
            assert units.starts == dict.fromkeys(ROLES, 1) and not any(units.exits.values())
            out = _mm("resume", "--instance", instance)
            assert out.returncode == 0, out.stderr
            _recovered(sim, instance, 60)
            out = _mm("stop", "--instance", instance)
            assert out.returncode == 0 and out.stdout.strip().endswith("stopped"), \
                out.stdout + out.stderr
            time.sleep(0.5)                         # the watcher notes the exits
            assert units.exits == {r: [0] for r in ROLES}, units.exits
            assert units.starts == dict.fromkeys(ROLES, 1)
        finally:
            units.stop()
            logs = {r: (tmp_path / f"{r}.log").read_text(errors="replace") for r in ROLES}
        assert _ours(sim) == set()
        assert "layout computed at start (MM_LAYOUT=auto)" in logs["quoter"]
        assert "paused: every order confirmed gone" in logs["sender"], logs["sender"][-2000:]
