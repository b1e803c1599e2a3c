"""Fake /sys and /proc trees of other machines: real files in a temporary directory, at the
same relative paths the kernel uses, for `--sys-root` / `--proc-root`."""
from __future__ import annotations

from pathlib import Path

from engine.box.topology import format_cpu_list

CPU = "sys/devices/system/cpu"


def _put(root: Path, rel: str, text: str) -> None:
    p = root / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text)


def make_sys(root: Path, cpus: int, isolated: str = "", nohz_full: str | None = None,
             siblings: list[list[int]] | None = None, nodes: list[list[int]] | None = None,
             governor: str | None = "performance", clocksource: str = "tsc",
             thp: str = "always madvise [never]", nics: dict[str, int] | None = None) -> Path:
    """A /sys tree with `cpus` online CPUs; `siblings` lists the SMT groups (default: none),
    `nodes` the CPUs of each NUMA node, `nics` interface -> numa_node."""
    root = Path(root)
    _put(root, f"{CPU}/online", f"0-{cpus - 1}\n")
    _put(root, f"{CPU}/possible", f"0-{cpus - 1}\n")
    _put(root, f"{CPU}/isolated", isolated + "\n")
    if nohz_full is not None:
        _put(root, f"{CPU}/nohz_full", nohz_full + "\n")
    groups = {c: [c] for c in range(cpus)}
    for g in siblings or []:
        for c in g:
            groups[c] = g
    for c in range(cpus):
        _put(root, f"{CPU}/cpu{c}/topology/thread_siblings_list", format_cpu_list(groups[c]) + "\n")
        if governor is not None:
            _put(root, f"{CPU}/cpu{c}/cpufreq/scaling_governor", governor + "\n")
    for n, members in enumerate(nodes or []):
        _put(root, f"sys/devices/system/node/node{n}/cpulist", format_cpu_list(members) + "\n")
    _put(root, "sys/devices/system/clocksource/clocksource0/current_clocksource", clocksource + "\n")
    _put(root, "sys/devices/system/clocksource/clocksource0/available_clocksource",
         "tsc hpet acpi_pm\n")
    _put(root, "sys/kernel/mm/transparent_hugepage/enabled", thp + "\n")
    for nic, node in (nics or {}).items():
        _put(root, f"sys/class/net/{nic}/device/numa_node", f"{node}\n")
    return root


LIMITS_HEADER = "Limit                     Soft Limit           Hard Limit           Units     \n"


def make_proc(root: Path, cmdline: str = "", irqs: dict[int, tuple[str, str]] | None = None,
              cpus: int = 8, memlock: str = "unlimited", rtprio: str = "0",
              cap_eff: str = "0000000000000000", daemons: tuple[str, ...] = (),
              route_iface: str | None = None) -> Path:
    """A /proc tree: the kernel command line, `irqs` (number -> (name, smp_affinity_list)) in
    /proc/interrupts and /proc/irq, self/limits and self/status, and processes named `daemons`."""
    root = Path(root)
    _put(root, "cmdline", cmdline + "\n")
    lines = ["           " + "".join(f"CPU{c:<8}" for c in range(cpus))]
    for n, (name, allowed) in sorted((irqs or {}).items()):
        lines.append(f"{n:>3}: " + "".join(f"{10:>10} " for _ in range(cpus))
                     + f"  PCI-MSI 1000-edge      {name}")
        _put(root, f"irq/{n}/smp_affinity_list", allowed + "\n")
    lines.append("LOC: " + "".join(f"{100:>10} " for _ in range(cpus)) + "  Local timer interrupts")
    _put(root, "interrupts", "\n".join(lines) + "\n")
    _put(root, "self/limits", LIMITS_HEADER
         + f"{'Max locked memory':<26}{memlock:<21}{memlock:<21}bytes     \n"
         + f"{'Max realtime priority':<26}{rtprio:<21}{rtprio:<21}\n")
    _put(root, "self/status", f"Name:\tpython\nCapEff:\t{cap_eff}\n")
    for pid, name in enumerate(daemons, start=100):
        _put(root, f"{pid}/comm", name + "\n")
    if route_iface:
        _put(root, "net/route", "Iface\tDestination\tGateway\tFlags\n"
             f"{route_iface}\t00000000\t0101A8C0\t0003\n")
    return root
