"""The machine's CPUs as the kernel describes them under /sys: online, isolated (isolcpus=),
nohz_full, SMT siblings and NUMA nodes.

Every file is read below `sys_root` ("/" on the box itself), so `mm layout --sys-root DIR` and
the tests can describe another machine with a tree of plain files at the same relative paths
(DIR/sys/devices/system/cpu/online, ...). Nothing here consults this process's own affinity:
under isolcpus the kernel leaves isolated CPUs out of every process's default affinity, so
os.sched_getaffinity(0) cannot show them.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

CPU_DIR = "sys/devices/system/cpu"
NODE_DIR = "sys/devices/system/node"
NET_DIR = "sys/class/net"



# The one spelling of the kernel command line's isolation (deploy/README.md, mm doctor, mm
# layout): without `domain` the scheduler still balances onto the cores, without `managed_irq`
# managed device interrupts still land there.
ISOLCPUS_FLAGS = "domain,managed_irq"


def isolcpus_arg(cpus: str = "<cpus>") -> str:
    """'isolcpus=domain,managed_irq,<cpus>' for the CPU list given."""
    return f"isolcpus={ISOLCPUS_FLAGS},{cpus}"

def parse_cpu_list(text: str) -> set[int]:
    """CPUs of a kernel CPU list ("0-3,8,10-11"; "" or "(null)" = none). ValueError names the
    text when it is not a CPU list."""
    text = text.strip()
    out: set[int] = set()
    if text in ("", "(null)"):
        return out
    for part in text.split(","):
        lo, _, hi = part.strip().partition("-")
        try:
            first, last = int(lo), int(hi or lo)
        except ValueError:
            raise ValueError(f"not a CPU list: {text!r}") from None
        if first < 0 or last < first:
            raise ValueError(f"not a CPU list: {text!r}")
        out.update(range(first, last + 1))
    return out


def format_cpu_list(cpus) -> str:
    """The kernel's compact form of a set of CPUs: {0, 1, 2, 5} -> "0-2,5"."""
    parts: list[str] = []
    run: list[int] = []
    for c in sorted(set(cpus)):
        if run and c == run[-1] + 1:
            run.append(c)
            continue
        if run:
            parts.append(f"{run[0]}-{run[-1]}" if len(run) > 1 else str(run[0]))
        run = [c]
    if run:
        parts.append(f"{run[0]}-{run[-1]}" if len(run) > 1 else str(run[0]))
    return ",".join(parts)


@dataclass(frozen=True)
class Topology:
    """What the kernel says about the CPUs. `siblings[c]` holds every hardware thread of c's
    physical core, c included (just {c} without SMT); `node[c]` is c's NUMA node when known."""
    online: tuple[int, ...]
    isolated: frozenset[int] = frozenset()
    nohz_full: frozenset[int] = frozenset()
    siblings: dict[int, frozenset[int]] = field(default_factory=dict)
    node: dict[int, int] = field(default_factory=dict)

    @property
    def housekeeping(self) -> tuple[int, ...]:
        """Online CPUs the kernel schedules ordinary work on (not isolated)."""
        return tuple(c for c in self.online if c not in self.isolated)

    def threads(self, cpu: int) -> frozenset[int]:
        """Every hardware thread of `cpu`'s physical core, `cpu` included."""
        return self.siblings.get(cpu, frozenset((cpu,)))

    def physical_cores(self, cpus) -> list[frozenset[int]]:
        """The physical cores that `cpus` belong to, each once (as its set of threads)."""
        seen: list[frozenset[int]] = []
        for c in sorted(cpus):
            t = self.threads(c)
            if t not in seen:
                seen.append(t)
        return seen

    @classmethod
    def flat(cls, cpus, isolated=()) -> "Topology":
        """A machine without SMT or NUMA information: for callers that only know a CPU list."""
        return cls(tuple(sorted(cpus)), frozenset(isolated))


def _read(root: Path, rel: str) -> str | None:
    try:
        return (root / rel).read_text()
    except OSError:
        return None


def online_cpus(sys_root: str | os.PathLike = "/") -> list[int]:
    """Online CPUs (…/cpu/online; without that file, the cpuN directories present)."""
    root = Path(sys_root)
    text = _read(root, f"{CPU_DIR}/online")
    if text is not None:
        return sorted(parse_cpu_list(text))
    try:
        names = os.listdir(root / CPU_DIR)
    except OSError:
        names = []
    cpus = sorted(int(m.group(1)) for n in names if (m := re.fullmatch(r"cpu(\d+)", n)))
    if not cpus:
        raise ValueError(f"no CPUs described under {root / CPU_DIR} (is --sys-root right?)")
    return cpus


def isolated_cpus(sys_root: str | os.PathLike = "/") -> set[int]:
    """CPUs the kernel isolated from the scheduler (isolcpus=): …/cpu/isolated."""
    text = _read(Path(sys_root), f"{CPU_DIR}/isolated")
    return parse_cpu_list(text) if text else set()


def nohz_full_cpus(sys_root: str | os.PathLike = "/") -> set[int]:
    """CPUs running without the periodic tick (nohz_full=): …/cpu/nohz_full, absent on
    kernels built without CONFIG_NO_HZ_FULL."""
    text = _read(Path(sys_root), f"{CPU_DIR}/nohz_full")
    return parse_cpu_list(text) if text else set()


def _siblings(root: Path, cpus: list[int]) -> dict[int, frozenset[int]]:
    out: dict[int, frozenset[int]] = {}
    for c in cpus:
        text = _read(root, f"{CPU_DIR}/cpu{c}/topology/thread_siblings_list")
        out[c] = frozenset(parse_cpu_list(text) | {c}) if text else frozenset((c,))
    return out


def _nodes(root: Path, cpus: list[int]) -> dict[int, int]:
    out: dict[int, int] = {}
    try:
        names = os.listdir(root / NODE_DIR)
    except OSError:
        names = []
    for n in names:
        m = re.fullmatch(r"node(\d+)", n)
        text = _read(root / NODE_DIR, f"{n}/cpulist") if m else None
        for c in parse_cpu_list(text or ""):
            out[c] = int(m.group(1))
    for c in cpus:  # without /sys/devices/system/node: the cpuN/nodeM link
        if c not in out:
            try:
                links = os.listdir(root / CPU_DIR / f"cpu{c}")
            except OSError:
                continue
            for n in links:
                if m := re.fullmatch(r"node(\d+)", n):
                    out[c] = int(m.group(1))
    return out


def read(sys_root: str | os.PathLike = "/") -> Topology:
    """The topology of the machine whose /sys is at `sys_root`/sys."""
    root = Path(sys_root)
    cpus = online_cpus(root)
    return Topology(tuple(cpus), frozenset(isolated_cpus(root)), frozenset(nohz_full_cpus(root)),
                    _siblings(root, cpus), _nodes(root, cpus))


def default_route_interface(proc_root: str | os.PathLike = "/proc") -> str | None:
    """The network interface of the IPv4 default route (<proc_root>/net/route), if any."""
    text = _read(Path(proc_root), "net/route")
    for line in (text or "").splitlines()[1:]:
        cols = line.split()
        if len(cols) > 2 and cols[1] == "00000000":
            return cols[0]
    return None


def nic_numa_node(interface: str, sys_root: str | os.PathLike = "/") -> int | None:
    """The NUMA node of a network interface's device (None: unknown, virtual or single-node)."""
    text = _read(Path(sys_root), f"{NET_DIR}/{interface}/device/numa_node")
    try:
        node = int(text) if text else -1
    except ValueError:
        return None
    return node if node >= 0 else None
