"""Install that matches the box it lands on (issue 20, item 5): the layout is computed by each
process when it starts (MM_LAYOUT=auto in the units), from the instance's .env as it is then;
`mm doctor` and `mm layout` read that same .env; one spelling of the kernel command line."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from fakebox import make_proc, make_sys

from engine import config
from engine.box import core_layout
from engine.box.doctor import Box, run

ROOT = Path(__file__).resolve().parents[2]
VENUE = {"MM_MD_URL": "wss://md.example", "MM_ORDER_URL": "wss://api.example/ws-api/v3"}


def _mm(*args, env=None):
    base = {k: v for k, v in __import__("os").environ.items() if not k.startswith("MM_")
            or k == "MM_STATE_DIR"}
    return subprocess.run([sys.executable, "-m", "engine.cli", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=60, env={**base, **(env or {})})


@pytest.mark.slow
def test_layout_and_doctor_read_the_units_env_file(tmp_path):
    """The .env beside the config (what EnvironmentFile= gives the units) decides whether a
    local venue needs a core: without its URLs the layout keeps one for the simulator."""
    sys_root = make_sys(tmp_path / "sys", 4)
    toml = tmp_path / "blue.toml"
    toml.write_text("instance = 'blue'\n")
    alone = json.loads(_mm("layout", "--config", str(toml), "--sys-root", str(sys_root)).stdout)
    assert "sim" in alone                                    # no venue: the simulator's core
    (tmp_path / "blue.env").write_text("# as install.sh writes it, then filled in\n"
                                       + "".join(f'{k}="{v}"\n' for k, v in VENUE.items()))
    out = _mm("layout", "--config", str(toml), "--sys-root", str(sys_root))
    assert out.returncode == 0, out.stderr
    assert f"settings from {tmp_path}/blue.env" in out.stderr and "MM_MD_URL" in out.stderr
    assert "sim" not in json.loads(out.stdout)              # a remote venue: no core kept
    proc_root = make_proc(tmp_path / "proc", cpus=4)
    doc = _mm("doctor", "--config", str(toml), "--sys-root", str(sys_root), "--proc-root",
              str(proc_root), "--unit-dir", str(tmp_path / "none"))
    assert f"settings from {tmp_path}/blue.env (the units' EnvironmentFile=)" in doc.stderr


def test_a_process_under_systemd_computes_its_layout_at_start(tmp_path):
    sys_cfg = config.load(None, env=VENUE)
    cfg, said = core_layout.apply_box(sys_cfg, "quoter", {"MM_LAYOUT": "auto", **VENUE})
    lay = core_layout.choose(sys_cfg, with_sim=False, venue_local=False)
    assert cfg.quoter.core == lay.cores["quoter"] and cfg.quoter.idle == lay.idle["quoter"]
    assert said.startswith("layout computed at start (MM_LAYOUT=auto): core")
    # an operator's explicit drop-in wins; without MM_LAYOUT nothing is decided here
    assert core_layout.apply_box(sys_cfg, "quoter", {"MM_LAYOUT": "auto", "MM_CORE": "1"}) \
        == (sys_cfg, "")
    assert core_layout.apply_box(sys_cfg, "quoter", {}) == (sys_cfg, "")
    for unit in ("mm-sender@.service", "mm-quoter@.service", "mm-feed@.service"):
        text = (ROOT / "deploy" / unit).read_text()
        assert "Environment=MM_LAYOUT=auto" in text and "CPUAffinity=" not in \
            "\n".join(line for line in text.splitlines() if not line.startswith("#"))


def test_one_spelling_of_the_kernel_command_line(tmp_path):
    sys_root = make_sys(tmp_path / "sys", 8)                 # nothing isolated
    proc_root = make_proc(tmp_path / "proc", cpus=8)
    (tmp_path / "mm.toml").write_text("[feed]\nurl = 'wss://md.example'\n"
                                      "[sender]\nurl = 'wss://api.example'\n")
    box = Box(config.load(tmp_path / "mm.toml", env={}), sys_root=sys_root,
              proc_root=proc_root, unit_dir=tmp_path / "none", shm_dir=tmp_path)
    fixes = [f.fix for f in run(box) if f.check == "isolated cores" and f.fix]
    assert fixes and all("isolcpus=domain,managed_irq," in f for f in fixes), fixes
    assert "isolcpus=domain,managed_irq,<cpus>" in (ROOT / "deploy/README.md").read_text()
    lay = core_layout.choose(config.load(tmp_path / "mm.toml", env={}), with_sim=False,
                             cpus=list(range(8)), isolated=set())
    assert any("isolcpus=domain,managed_irq,<cpus>" in w for w in lay.warnings), lay.warnings
