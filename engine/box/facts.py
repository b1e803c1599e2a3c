"""What `mm doctor`'s checks share: the box they read (the config, the file trees read in place
of /sys and /proc, the layout chosen for them) and the findings they return. Its own module so
the checks (cpu_checks.py, system_checks.py) and the table (doctor.py) import it, not each
other."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from engine.box import core_layout
from engine.box import topology as topo_mod
from engine.box.topology import Topology

PASS, WARN, FAIL = "pass", "warn", "fail"
CONFIG_ROLES = ("feed", "quoter", "sender")


@dataclass
class Finding:
    check: str
    status: str                  # pass | warn | fail
    detail: str
    fix: str = ""                # what to change, for warn and fail


@dataclass
class Box:
    """What the checks read: the config, the trees, and the layout chosen for them."""
    cfg: object
    sys_root: Path = Path("/")
    proc_root: Path = Path("/proc")
    unit_dir: Path = Path("/etc/systemd/system")
    shm_dir: Path = Path("/dev/shm")
    timex: object = None         # () -> (synchronised, max error us) | None; None = adjtimex(2)
    topo: Topology = field(init=False)
    layout: object = field(init=False, default=None)
    layout_error: str = field(init=False, default="")

    def __post_init__(self) -> None:
        self.sys_root, self.proc_root = Path(self.sys_root), Path(self.proc_root)
        self.unit_dir, self.shm_dir = Path(self.unit_dir), Path(self.shm_dir)
        self.topo = topo_mod.read(self.sys_root)
        try:
            self.layout = core_layout.for_box(self.cfg, sys_root=str(self.sys_root),
                                              proc_root=str(self.proc_root))
        except ValueError as e:
            self.layout_error = str(e)

    def sys(self, rel: str) -> str | None:
        return _read(self.sys_root / "sys" / rel)

    def proc(self, rel: str) -> str | None:
        return _read(self.proc_root / rel)

    def trading_cores(self) -> dict[str, int]:
        """role -> pinned core of the engine's own processes (not the simulator)."""
        if self.layout is None:
            return {}
        return {r: c for r, c in self.layout.cores.items() if r in CONFIG_ROLES and c >= 0}

    def spinning_cores(self) -> dict[str, int]:
        if self.layout is None:
            return {}
        return {r: c for r, c in self.layout.spinning_cores().items() if c >= 0}

    def cmdline(self) -> dict[str, str]:
        """Kernel parameters of <proc_root>/cmdline (a bare flag maps to "")."""
        out: dict[str, str] = {}
        for word in (self.proc("cmdline") or "").split():
            if word == "--":  # the rest belongs to init
                break
            key, _, value = word.partition("=")
            out[key] = value
        return out


def cap_effective(box: Box) -> int:
    """This process's effective capability mask (<proc_root>/self/status CapEff)."""
    for line in (box.proc("self/status") or "").splitlines():
        if line.startswith("CapEff:"):
            return int(line.split()[1], 16)
    return 0


def limit(box: Box, name: str) -> str | None:
    """The soft limit `name` ("Max locked memory") of <proc_root>/self/limits, as printed."""
    for line in (box.proc("self/limits") or "").splitlines():
        if line.startswith(name):
            rest = line[len(name):].split()
            return rest[0] if rest else None
    return None


def unit_files(box: Box) -> dict[str, str]:
    """Installed mm unit files (name -> text) in the unit directory."""
    out: dict[str, str] = {}
    try:
        names = sorted(os.listdir(box.unit_dir))
    except OSError:
        return out
    for n in names:
        if n.startswith("mm-") and (n.endswith(".service") or n.endswith(".target")):
            out[n] = _read(box.unit_dir / n) or ""
    return out


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except OSError:
        return None
