"""The whole engine as a user runs it (`mm run`, subprocesses) against the simulator on
loopback, reached through MM_MD_URL / MM_ORDER_URL as a real venue would be."""
import os
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from engine.control import Control
from engine.ring.segment import list_segments
from sim_thread import SimThread
from run_support import wait_until as _wait




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


def test_operator_kill_switch_stops_cleanly(engine, instance):
    sim, p, _ = engine
    out = subprocess.run([sys.executable, "-m", "engine.cli", "kill", "--instance", instance],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "kill switch set" in out.stdout
    assert p.wait(60) == 0
    assert sim.open_orders() == []
