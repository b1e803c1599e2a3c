"""`mm doctor` against fake /sys and /proc trees of a tuned box and of a box with problems, the
stale-segment check against real segments, and the real run on this box."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from fakebox import make_proc, make_sys

from engine import config
from engine.box import cpu_checks, system_checks
from engine.box.doctor import FAIL, PASS, WARN, Box, run
from engine.control import Control

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
VENUE = "[feed]\nurl = 'wss://md.example'\n[sender]\nurl = 'wss://api.example'\n"
TUNED = "BOOT_IMAGE=/vmlinuz isolcpus=domain,managed_irq,2-4 nohz_full=2-4 rcu_nocbs=2-4"


def load(tmp_path, text=VENUE, instance="blue"):
    p = tmp_path / "mm.toml"
    p.write_text(f"instance = '{instance}'\n" + text)
    return config.load(p, env={})


def install_units(unit_dir: Path, instance: str, cores: dict[str, int]) -> None:
    """The units as deploy/install.sh leaves them: files, drop-ins, the boot link."""
    unit_dir.mkdir(parents=True, exist_ok=True)
    for unit in system_checks.UNITS:
        (unit_dir / unit).write_text((DEPLOY / unit).read_text())
    for role, core in cores.items():
        d = unit_dir / f"mm-{role}@{instance}.service.d"
        d.mkdir()
        (d / "layout.conf").write_text(f"[Service]\nCPUAffinity={core}\n")
    wants = unit_dir / "multi-user.target.wants"
    wants.mkdir()
    (wants / f"mm-engine@{instance}.target").symlink_to(unit_dir / "mm-engine@.target")


def by_check(findings):
    out: dict[str, list] = {}
    for f in findings:
        out.setdefault(f.check, []).append(f)
    return out


def test_tuned_box_passes(tmp_path):
    sys_root = make_sys(tmp_path / "sys", 8, isolated="2-4", nohz_full="2-4",
                        thp="always madvise [never]")
    irqs = {40: ("eth0-TxRx-0", "0-1"), 41: ("eth0-TxRx-1", "0-1"), 42: ("ahci", "0,1,5-7")}
    proc_root = make_proc(tmp_path / "proc", cmdline=TUNED, irqs=irqs, daemons=("chronyd",))
    (sys_root / "sys/class/net/eth0/device").mkdir(parents=True)
    cfg = load(tmp_path)
    box = Box(cfg, sys_root=sys_root, proc_root=proc_root, unit_dir=tmp_path / "units",
              shm_dir=tmp_path, timex=lambda: (True, 1500))
    install_units(box.unit_dir, "blue", box.trading_cores())
    findings = run(box)
    not_ok = [f for f in findings if f.status != PASS and f.check != "shared memory"]
    assert not_ok == [], "\n".join(f"{f.check}: {f.detail}" for f in not_ok)
    assert set(box.spinning_cores().values()) <= {2, 3, 4}


def test_irq_allowed_on_a_range_including_a_trading_core(tmp_path):
    # box-check.sh compared the whole list with the isolated set and missed "0-7".
    sys_root = make_sys(tmp_path / "sys", 8, isolated="2-4")
    (sys_root / "sys/class/net/eth0/device/msi_irqs/40").mkdir(parents=True)
    irqs = {40: ("mlx5_comp0@pci:0000:3b:00.0", "0-7"), 41: ("nvme0q1", "2"),
            42: ("ahci", "0-1")}
    proc_root = make_proc(tmp_path / "proc", cmdline=TUNED, irqs=irqs)
    box = Box(load(tmp_path), sys_root=sys_root, proc_root=proc_root, shm_dir=tmp_path)
    [f] = cpu_checks.check_irqs(box)
    assert f.status == WARN
    assert "NIC 40 mlx5_comp0" in f.detail and "allowed 0-7" in f.detail   # by its MSI vector
    assert "41 nvme0q1" in f.detail and "42" not in f.detail
    assert "tune-irqs.sh 0-1,5-7" in f.fix


def test_untuned_box_warns_with_fixes(tmp_path):
    smt = [[c, c + 4] for c in range(4)]
    sys_root = make_sys(tmp_path / "sys", 8, isolated="2-3", siblings=smt, governor="powersave",
                        clocksource="hpet", thp="[always] madvise never")
    proc_root = make_proc(tmp_path / "proc", cmdline="isolcpus=nohz,2-3,6")
    box = Box(load(tmp_path), sys_root=sys_root, proc_root=proc_root,
              unit_dir=tmp_path / "none", shm_dir=tmp_path, timex=lambda: (False, 16_000_000))
    checks = by_check(run(box))
    for name in ("isolated cores", "nohz_full", "rcu_nocbs", "SMT siblings", "cpufreq governor",
                 "clocksource", "transparent hugepages", "clock sync", "systemd units"):
        assert any(f.status == WARN and f.fix for f in checks[name]), (name, checks[name])
    assert any("the kernel isolated 2-3" in f.detail for f in checks["isolated cores"])
    assert "sibling 6 is not isolated" in checks["SMT siblings"][0].detail \
        or "sibling 7 is not isolated" in checks["SMT siblings"][0].detail
    assert "nohz_full=1-3,6-7" in checks["nohz_full"][0].fix  # feed 1, spinners + siblings
    assert "no time daemon" in checks["clock sync"][0].detail


def test_blocking_problems_fail_and_exit_1(tmp_path):
    sys_root = make_sys(tmp_path / "sys", 4, isolated="1-3")
    proc_root = make_proc(tmp_path / "proc", cpus=4, memlock="65536", rtprio="0")
    cfg_path = tmp_path / "mm.toml"      # RT priority is for parked stages only
    cfg_path.write_text("lock_memory = true\nrealtime_priority = 10\n"
                        "[feed]\nurl = 'wss://md.example'\n"
                        "[sender]\nurl = 'wss://api.example'\nidle = 'park'\n"
                        "[quoter]\nidle = 'park'\n")
    cmd = [sys.executable, "-m", "engine.cli", "doctor", "--config", str(cfg_path),
           "--sys-root", str(sys_root), "--proc-root", str(proc_root),
           "--unit-dir", str(tmp_path / "no-units")]
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 1, out.stdout + out.stderr
    rows = {line.split()[0]: line for line in out.stdout.splitlines()[1:] if line[:1].isalpha()}
    assert "FAIL" in rows["memory"] and "lock_memory = true" in rows["memory"]
    assert "FAIL" in rows["real-time"] and "realtime_priority = 10" in rows["real-time"]

    # The same box with the units installed: LimitMEMLOCK/LimitRTPRIO cover both.
    box = Box(config.load(cfg_path, env={}), sys_root=sys_root, proc_root=proc_root,
              unit_dir=tmp_path / "units", shm_dir=tmp_path)
    install_units(box.unit_dir, "mm", {})
    assert system_checks.check_memlock(box)[0].status == PASS
    assert system_checks.check_realtime(box)[0].status == PASS


def test_layout_error_and_small_shm_fail(tmp_path):
    sys_root = make_sys(tmp_path / "sys", 4)
    proc_root = make_proc(tmp_path / "proc", cpus=4)
    box = Box(load(tmp_path, VENUE.replace("[feed]\n", "[feed]\ncore = 12\n")),
              sys_root=sys_root, proc_root=proc_root, shm_dir=tmp_path)
    [f] = cpu_checks.check_layout(box)
    assert f.status == FAIL and "feed.core: CPU 12 is not online" in f.detail
    big = load(tmp_path, VENUE + "[rings.md]\ncapacity = 1073741824\npolicy = 'drop'\n")
    box = Box(big, sys_root=sys_root, proc_root=proc_root, shm_dir=tmp_path)
    assert system_checks.shm_bytes_needed(big) > 2**37
    assert system_checks.check_shm_size(box)[0].status == FAIL


def test_stale_and_running_segments(tmp_path, instance):
    # A process registered in the control segment, then died without cleaning up.
    code = ("import os; from engine.control import Control; "
            f"c = Control.create({instance!r}); c.register('feed'); os._exit(0)")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=60)
    sys_root = make_sys(tmp_path / "sys", 2)
    box = Box(load(tmp_path), sys_root=sys_root, proc_root=make_proc(tmp_path / "proc", cpus=2))
    [f] = system_checks.check_stale_segments(box)
    assert f.status == WARN and "stale: " in f.detail
    assert instance in f.detail.split("running")[0]

    ctl = Control.attach(instance)       # now a live process holds the instance
    try:
        ctl.register("quoter")
        [f] = system_checks.check_stale_segments(box)
        assert f"{instance} (pids " in f.detail
        assert instance not in f.detail.split("running")[0]
    finally:
        ctl.deregister("quoter")
        ctl.close()


def test_this_box():
    out = subprocess.run([sys.executable, "-m", "engine.cli", "doctor"], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode in (0, 1), out.stderr
    statuses = [line.split()[-1] for line in out.stdout.splitlines() if line.startswith("doctor:")]
    assert statuses, out.stdout
    for name in ("layout", "isolated cores", "nohz_full", "rcu_nocbs", "SMT siblings",
                 "cpufreq governor", "IRQs on trading cores", "clocksource",
                 "transparent hugepages", "memory locking", "real-time priority", "/dev/shm",
                 "clock sync", "shared memory", "systemd units"):
        assert f"\n{name} " in out.stdout, name
    failed = any(" FAIL " in line for line in out.stdout.splitlines())
    assert out.returncode == (1 if failed else 0)
