"""deploy/: every unit passes `systemd-analyze verify`, the process units keep the properties an
operations engineer signs off (restart policy by exit code, alert, credentials to the sender
alone, hardening, shared /dev/shm), install.sh --dry-run changes nothing and needs no root, the
scripts pass shellcheck, and `mm alert` says what an exit status means."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from fakebox import make_sys

from engine.box import alert
from engine.box.system_checks import UNITS

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
PROCESS_UNITS = ("mm-sender@.service", "mm-quoter@.service", "mm-feed@.service")
SYSTEM_UNITS = Path("/lib/systemd/system")


def settings(unit: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in (DEPLOY / unit).read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            key, _, value = line.partition("=")
            out.setdefault(key, []).append(value)
    return out


def unit_root(tmp_path: Path) -> Path:
    """A root directory systemd-analyze --root can load the units from: the units in
    etc/systemd/system, the distribution's units (sysinit.target, ...), a stub `mm`."""
    root = tmp_path / "root"
    units = root / "etc/systemd/system"
    units.mkdir(parents=True)
    for unit in UNITS:
        shutil.copy(DEPLOY / unit, units / unit)
    shutil.copytree(SYSTEM_UNITS, root / "usr/lib/systemd/system", symlinks=True)
    mm = root / "opt/mm/venv/bin/mm"
    mm.parent.mkdir(parents=True)
    mm.write_text("#!/bin/sh\n")
    mm.chmod(0o755)
    drop = units / "mm-sender@blue.service.d"
    drop.mkdir()
    (drop / "layout.conf").write_text("[Service]\nCPUAffinity=1\nEnvironment=MM_CORE=1\n")
    return root


needs_analyze = pytest.mark.skipif(
    shutil.which("systemd-analyze") is None or not SYSTEM_UNITS.is_dir(),
    reason="systemd-analyze not installed (apt-get install systemd) or no /lib/systemd/system")


@needs_analyze
def test_every_unit_verifies(tmp_path):
    root = unit_root(tmp_path)
    names = ["mm-engine@blue.target", "mm-sender@blue.service", "mm-quoter@blue.service",
             "mm-feed@blue.service", "mm-alert@mm-sender-blue.service"]
    out = subprocess.run(["systemd-analyze", "verify", f"--root={root}", *names],
                         capture_output=True, text=True, timeout=120, cwd=tmp_path)
    # verify only warns (exit 0) about unknown keys or bad values: any output is a finding.
    assert out.returncode == 0 and out.stderr.strip() == "" and out.stdout.strip() == "", \
        out.stdout + out.stderr

    # It does catch a broken unit (the test can fail).
    bad = root / "etc/systemd/system/mm-feed@.service"
    bad.write_text(bad.read_text().replace("RestartSec=2", "RestartSec=two"))
    out = subprocess.run(["systemd-analyze", "verify", f"--root={root}", "mm-feed@blue.service"],
                         capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert "RestartSec" in out.stderr or "two" in out.stderr


@needs_analyze
def test_security_exposure_is_low(tmp_path):
    root = unit_root(tmp_path)
    for unit in ("mm-sender@blue.service", "mm-quoter@blue.service", "mm-feed@blue.service"):
        out = subprocess.run(["systemd-analyze", "security", "--offline=true", f"--root={root}",
                              "--no-pager", unit], capture_output=True, text=True, timeout=120,
                             cwd=tmp_path)
        m = re.search(r"Overall exposure level for \S+: ([\d.]+) (\w+)", out.stdout)
        assert m, out.stdout + out.stderr
        assert float(m.group(1)) <= 2.5, (unit, m.group(0))


def test_units_restart_alert_and_keep_secrets_to_the_sender():
    for unit in PROCESS_UNITS:
        s = settings(unit)
        assert s["Restart"] == ["on-failure"]
        assert s["RestartPreventExitStatus"] == ["2 4"]          # config error, kill switch
        assert s["OnFailure"] == ["mm-alert@%p-%i.service"]
        assert s["PartOf"] == ["mm-engine@%i.target"]
        assert s["KillSignal"] == ["SIGTERM"] and "ExecStop" not in s
        assert s["SyslogIdentifier"] == [f"{unit.split('@')[0]}-%i"]
        assert s["CapabilityBoundingSet"] == ["CAP_SYS_NICE CAP_IPC_LOCK"]
        assert s["RemoveIPC"] == ["no"] and s["PrivateDevices"] == ["yes"]
        for key in ("NoNewPrivileges", "ProtectHome", "PrivateTmp"):
            assert s[key] == ["yes"], (unit, key)
        assert s["ProtectSystem"] == ["strict"] and s["LimitMEMLOCK"] == ["infinity"]
        assert "EnvironmentFile" in s and "CPUAffinity" not in s   # cores: install.sh drop-ins
        assert ("LoadCredential" in s) == unit.startswith("mm-sender")
        # they hold the CPU wake-up bound: the one device added to their private /dev
        assert s["BindPaths"] == ["-/dev/cpu_dma_latency"], unit
        assert s["DeviceAllow"] == ["/dev/cpu_dma_latency rw"], unit
    # the journal agent holds no privilege and may never run real-time
    journal = settings("mm-journal@.service")
    assert journal["CapabilityBoundingSet"] == [""] and "AmbientCapabilities" not in journal
    assert journal["RestrictRealtime"] == ["yes"] and "LimitRTPRIO" not in journal
    assert int(settings("mm-sender@.service")["TimeoutStopSec"][0]) >= 60
    assert settings("mm-engine@.target")["WantedBy"] == ["multi-user.target"]


def dry_run(tmp_path: Path, *extra: str, user: str | None = None,
            python: str = str(ROOT / ".venv/bin/python"),
            deploy: Path = DEPLOY) -> subprocess.CompletedProcess:
    """install.sh --dry-run (from `deploy`) with every command that could change the box
    replaced by a stub that records its call: the dry run must call none of them."""
    stubs = tmp_path / "stubs"
    stubs.mkdir(exist_ok=True)
    log = tmp_path / "called.log"
    for name in ("useradd", "install", "chown", "chmod", "systemctl", "mkdir", "mv", "rm", "pip"):
        p = stubs / name
        p.write_text(f"#!/bin/sh\necho {name} \"$@\" >> {log}\n")
        p.chmod(0o755)
    env = {**os.environ, "PATH": f"{stubs}:{os.environ['PATH']}"}
    cmd = ["bash", str(deploy / "install.sh"), "--dry-run", "--instance", "blue",
           "--python", python, "--prefix", str(tmp_path / "opt"),
           "--etc-dir", str(tmp_path / "etc"), "--unit-dir", str(tmp_path / "units"), *extra]
    if user:
        cmd = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups", *cmd]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path)
    assert not log.exists(), log.read_text()
    assert not (tmp_path / "etc").exists() and not (tmp_path / "units").exists()
    return out


def test_install_dry_run_shows_every_change_and_makes_none(tmp_path):
    sys_root = make_sys(tmp_path / "box", 8, isolated="2-4")
    out = dry_run(tmp_path, "--sys-root", str(sys_root))
    assert out.returncode == 0, out.stdout + out.stderr
    text = out.stdout
    assert "would run: useradd --system" in text or "user mm exists" in text
    assert f"-m venv {tmp_path}/opt/venv" in text and "pip install" in text
    for unit in UNITS:
        assert f"{tmp_path}/units/{unit}" in text
    assert f"would write {tmp_path}/etc/blue.toml (mode 0600, owner mm:mm)" in text
    assert f"would write {tmp_path}/etc/blue.env (mode 0600, owner mm:mm)" in text
    assert f"install -d -m 0700 -o root -g root {tmp_path}/etc/credentials" in text
    assert "would write /etc/udev/rules.d/90-mm-cpu-latency.rules (mode 0644, owner root:root)" \
        in text and 'KERNEL=="cpu_dma_latency", GROUP="mm", MODE="0660"' in text
    # No frozen layout: the processes compute it at start; the dry run shows today's choice.
    assert "layout.conf" not in text and "CPUAffinity=" not in text
    assert "they recompute it at every start" in text
    start = text.index("{", text.index("recompute it"))
    shown = text[start:text.index("\n    }\n", start) + 6]
    lay = json.loads(shown.replace("\n    ", "\n"))
    assert {lay["sender"]["core"], lay["quoter"]["core"]} <= {2, 3, 4}   # isolated, fake box
    assert 'auth = "auto"' in text                   # follows the credentials present
    assert "would run: systemctl enable mm-engine@blue.target" in text


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None
                    or not os.access("/usr/bin/python3", os.X_OK),
                    reason="needs root to drop to an unprivileged user (setpriv) and python3")
def test_install_dry_run_needs_no_root():
    # An operator's first look: no venv yet, the system's python3 (without the engine's
    # dependencies), an ordinary user. The dry run still shows every change. (pytest's tmp_path
    # is private to root, and so may the checkout be (a clone inside a 0700 mktemp -d): the
    # nobody user gets a world-readable copy of deploy/ in a directory of its own.)
    with tempfile.TemporaryDirectory(prefix="mm-dry-") as d:
        os.chmod(d, 0o777)
        copy = Path(d) / "checkout" / "deploy"
        shutil.copytree(DEPLOY, copy)
        for path in [copy.parent, copy, *copy.rglob("*")]:
            path.chmod(0o755 if path.is_dir() or path.suffix == ".sh" else 0o644)
        out = dry_run(Path(d), user="65534", python="/usr/bin/python3", deploy=copy)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "would write" in out.stdout and "would compute the layout" in out.stdout
    assert "would run: systemctl enable mm-engine@blue.target" in out.stdout


@pytest.mark.skipif(shutil.which("shellcheck") is None,
                    reason="shellcheck not installed (apt-get install shellcheck)")
def test_scripts_pass_shellcheck():
    out = subprocess.run(["shellcheck", str(DEPLOY / "install.sh"), str(DEPLOY / "tune-irqs.sh")],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout


def test_alert_says_what_the_exit_status_means(capsys):
    env = {"MONITOR_UNIT": "mm-quoter@blue.service", "MONITOR_SERVICE_RESULT": "exit-code",
           "MONITOR_EXIT_CODE": "exited", "MONITOR_EXIT_STATUS": "4", "JOURNAL_STREAM": "8:1"}
    alert.main(env=env)
    line = capsys.readouterr().out
    assert line.startswith("<2>mm ALERT: mm-quoter@blue.service stopped (exit-code, exit 4)")
    assert "mm resume --instance blue" in line
    # The sender's ExecStopPost alerts on exit 3 only.
    stop = {"EXIT_CODE": "exited", "EXIT_STATUS": "0", "SERVICE_RESULT": "success"}
    alert.main("mm-sender@blue.service", ["3"], env=stop)
    assert capsys.readouterr().err == ""
    alert.main("mm-sender@blue.service", ["3"], env={**stop, "EXIT_STATUS": "3"})
    assert "could NOT be confirmed canceled" in capsys.readouterr().err
