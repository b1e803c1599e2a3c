"""The whole engine as a user runs it (`mm run`, subprocesses) against the simulator on
loopback, reached through MM_MD_URL / MM_ORDER_URL as a real venue would be."""
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from engine.control import Control
from engine.ring.segment import list_segments, pid_alive
from tests.support.sim_thread import SimThread
from tests.support.units import wait_until as _wait

pytestmark = pytest.mark.slow


@pytest.fixture
def engine(instance, tmp_path):
    """Start `mm run` against a SimThread; yield (sim, supervisor process, run dir)."""
    cfg = tmp_path / "mm.toml"
    with socket.socket() as s:  # a free loopback port for the metrics endpoint
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cfg.write_text(f"metrics_port = {port}\nheartbeat_timeout_ms = 3000\n")
    with SimThread() as sim:
        env = {**os.environ, "MM_MD_URL": sim.md_url, "MM_ORDER_URL": sim.api_url,
               "MM_INSTANCE": instance}
        run_dir = tmp_path / "run"
        p = subprocess.Popen([sys.executable, "-m", "engine.cli", "run", "--config", str(cfg),
                              "--duration", "0", "--run-dir", str(run_dir)],
                             env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            _wait(lambda: sim.open_orders(), 90, "quotes resting on the simulator")
            p.metrics_port = port
            yield sim, p, run_dir
        finally:
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(60)
                except subprocess.TimeoutExpired:
                    p.kill()  # its children get SIGTERM from the kernel (PR_SET_PDEATHSIG)
            p.wait(30)
            # Whatever the test did, no order may stay resting, and no segment may stay behind.
            _wait(lambda: not sim.open_orders(), 30, "zero open orders")


def _status(instance):
    return subprocess.run([sys.executable, "-m", "engine.cli", "status", "--once", "--instance",
                           instance], capture_output=True, text=True, timeout=60)


def test_quotes_status_and_sigterm_exit_zero(engine, instance):
    sim, p, run_dir = engine
    out = _status(instance)
    assert out.returncode == 0, out.stderr
    for role in ("feed", "quoter", "sender"):
        assert role in out.stdout
    assert out.stdout.count("running") >= 3
    seen = []
    # <tag>-<u>-<n>: u is the book update that triggered the order (0 when a fill or a timer
    # did), never one the venue has not sent yet; n is the engine's order number.
    _wait(lambda: seen.extend(sim.open_orders()) or any(
        int(o["clientOrderId"].split("-")[1]) > 0 for o in seen), 30, "a tick-triggered order")
    # the instance's own tag, chosen once and kept in its state directory
    own = (Path(os.environ["MM_STATE_DIR"]) / f"{instance}.tag").read_text().strip()
    for o in seen:
        tag, u, n = o["clientOrderId"].split("-")
        assert tag == own and int(n) > 0
        assert 0 <= int(u) <= sim.update_id(o["symbol"])
    metrics = urllib.request.urlopen(f"http://127.0.0.1:{p.metrics_port}/metrics",
                                     timeout=10).read().decode()
    for role in ("feed", "quoter", "sender"):
        assert f'mm_process_up{{role="{role}"}} 1.0' in metrics
    assert 'mm_hop_latency_seconds{hop="sender.tick_to_order",quantile="0.99"}' in metrics
    assert 'mm_sender_orders_sent_total ' in metrics
    assert 'mm_ring_written_total{ring="md"}' in metrics
    p.send_signal(signal.SIGTERM)
    assert p.wait(60) == 0, p.stdout.read()
    assert sim.open_orders() == []
    assert list_segments(instance) == []
    assert (run_dir / "summary.json").exists() and (run_dir / "sender.tick_to_order.hgrm").exists()
    # the venue's round trips are recorded, and a backtest draws its latencies from the run
    from engine.backtest.latency import from_run
    lat = from_run(run_dir)
    assert 0 < lat.order_ns.min() and 0 < lat.answer_ns.min() < 1e9


def test_second_run_with_the_same_instance_is_refused(engine, instance, tmp_path):
    """A second `mm run` on a running instance must refuse, and leave the first one intact."""
    sim, p, _ = engine
    env = {**os.environ, "MM_MD_URL": sim.md_url, "MM_ORDER_URL": sim.api_url,
           "MM_INSTANCE": instance}
    second = subprocess.run([sys.executable, "-m", "engine.cli", "run", "--duration", "1",
                             "--run-dir", str(tmp_path / "second")],
                            env=env, capture_output=True, text=True, timeout=60)
    assert second.returncode == 2
    assert f"instance {instance!r} is running" in second.stderr
    assert len(list_segments(instance)) >= 4     # control + 3 rings still there
    assert p.poll() is None
    p.send_signal(signal.SIGTERM)
    assert p.wait(60) == 0


def test_sigkill_quoter_cancels_everything_and_exits_nonzero(engine, instance):
    sim, p, _ = engine
    ctl = Control.attach(instance)
    quoter_pid = ctl.pid("quoter")
    ctl.close()
    os.kill(quoter_pid, signal.SIGKILL)
    code = p.wait(60)
    text = p.stdout.read()
    assert code != 0, text
    assert "quoter exited" in text
    assert sim.open_orders() == []
    assert list_segments(instance) == []


def test_sigkill_sender_rescue_cancels_everything(engine, instance):
    """The process that owns the orders dies: a rescue sender cancels them all."""
    sim, p, _ = engine
    ctl = Control.attach(instance)
    sender_pid = ctl.pid("sender")
    ctl.close()
    assert sim.open_orders()
    os.kill(sender_pid, signal.SIGKILL)
    code = p.wait(90)
    text = p.stdout.read()
    assert code == 1, text                       # not an orderly stop, but nothing left resting
    assert "rescue sender exit status 0" in text
    assert sim.open_orders() == []


def test_supervisor_killed_takes_its_processes_down(engine, instance):
    sim, p, _ = engine
    ctl = Control.attach(instance)
    pids = [ctl.pid(r) for r in ("feed", "quoter", "sender")]
    ctl.close()
    p.kill()
    p.wait(30)
    from engine.ring.segment import pid_alive

    _wait(lambda: not any(pid_alive(x) for x in pids), 60, "children to exit")
    # The sender stopped on SIGTERM, the orderly path: nothing left resting (fixture checks).


def _mm(*args, timeout=90):
    return subprocess.run([sys.executable, "-m", "engine.cli", *args], capture_output=True,
                          text=True, timeout=timeout)


def _state(instance) -> dict:
    out = _mm("status", "--json", "--instance", instance, "--interval", "0.1")
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_kill_pauses_resume_quotes_again_stop_stops(engine, instance):
    """`mm kill` is a pause: every order canceled and confirmed, no new quote, every process up
    and its book still fed; `mm resume` quotes again after a reconcile; `mm stop` is the full
    stop, exit 0 with every order confirmed gone."""
    sim, p, _ = engine
    ctl = Control.attach(instance)
    pids = {r: ctl.pid(r) for r in ("feed", "quoter", "sender")}
    ctl.close()
    out = _mm("kill", "--instance", instance)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.strip().splitlines()[-1].startswith("paused: every order confirmed gone")
    assert sim.open_orders() == []
    before = _state(instance)
    assert before["state"] == "paused", before["why"]
    time.sleep(2.0)                              # quoting stays stopped, the book stays fed
    assert sim.open_orders() == []
    after = _state(instance)
    assert after["state"] == "paused"
    assert after["counters"]["feed"]["records"] > before["counters"]["feed"]["records"]
    assert p.poll() is None
    for role, pid in pids.items():
        assert pid_alive(pid), role
    assert _mm("kill", "--instance", instance).returncode == 0      # twice: says so, still 0

    out = _mm("resume", "--instance", instance)
    assert out.returncode == 0 and out.stdout.startswith("resumed"), out.stdout + out.stderr
    _wait(lambda: sim.open_orders(), 30, "quotes resting again after mm resume")
    assert _state(instance)["state"] == "quoting"
    ctl = Control.attach(instance)
    assert {r: ctl.pid(r) for r in pids} == pids      # the same processes, never restarted
    ctl.close()

    out = _mm("stop", "--instance", instance)
    assert out.returncode == 0 and out.stdout.strip().endswith("stopped"), out.stdout
    assert p.wait(60) == 0
    last = p.stdout.read().strip().splitlines()[-1]
    assert "every order confirmed gone" in last and last.endswith("nothing resting (exit 0)"), last
    assert sim.open_orders() == []


def test_status_is_plain_lines_when_piped_and_json_for_machines(engine, instance):
    """Not a terminal: plain lines, first the state; --json: one object; the live view (a
    terminal) ends by itself, saying why, once the engine stops."""
    sim, p, _ = engine
    piped = subprocess.run([sys.executable, "-m", "engine.cli", "status", "--instance",
                            instance], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True, timeout=60)
    assert piped.returncode == 0, piped.stderr
    first = piped.stdout.splitlines()[0]
    assert first.startswith(f"instance {instance}: quoting"), piped.stdout
    assert "\x1b[" not in piped.stdout and "\u2501" not in piped.stdout   # no colour, no boxes
    assert _state(instance)["state"] == "quoting"
    # the live view, in a pseudo-terminal, while the engine stops
    import pty

    leader, follower = pty.openpty()
    live = subprocess.Popen([sys.executable, "-m", "engine.cli", "status", "--instance",
                             instance], stdin=follower, stdout=follower, stderr=follower)
    os.close(follower)
    seen = bytearray()
    try:
        time.sleep(2.0)
        p.send_signal(signal.SIGTERM)
        assert p.wait(60) == 0
        deadline = time.monotonic() + 30
        while live.poll() is None and time.monotonic() < deadline:
            _drain_pty(leader, seen)
        assert live.poll() == 0, "mm status kept running after the engine stopped"
        _drain_pty(leader, seen)
        assert b"engine stopped: every process has ended" in seen, seen[-400:]
    finally:
        if live.poll() is None:
            live.kill()
        live.wait(10)
        os.close(leader)


def _drain_pty(fd: int, into: bytearray) -> None:
    import select

    while select.select([fd], [], [], 0.2)[0]:
        try:
            chunk = os.read(fd, 65536)
        except OSError:                # the follower side closed
            return
        if not chunk:
            return
        into += chunk
