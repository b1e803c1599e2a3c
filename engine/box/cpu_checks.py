"""`mm doctor` checks of the CPUs the engine runs on: the layout, isolation (isolcpus, nohz_full,
rcu_nocbs), SMT siblings, frequency governor and interrupts allowed on trading cores."""
from __future__ import annotations

import os
import re

from engine.box.facts import FAIL, PASS, WARN, Box, Finding
from engine.box.topology import format_cpu_list, isolcpus_arg, parse_cpu_list


def _cores(cores: dict[str, int]) -> str:
    return ", ".join(f"{r} {c}" for r, c in cores.items())


def _boot_cores(box: Box) -> str:
    """The CPUs to isolate for this layout: the trading cores and the SMT siblings of spinners,
    less the simulator's core and the first CPU (the kernel keeps one for itself)."""
    spin = {s for c in box.spinning_cores().values() for s in box.topo.threads(c)}
    cpus = spin | set(box.trading_cores().values())
    cpus -= {box.layout.cores.get("sim", -1), min(box.topo.online)} if box.layout else set()
    return format_cpu_list(cpus if cpus < set(box.topo.online) else spin)


def check_layout(box: Box) -> list[Finding]:
    if box.layout is None:
        return [Finding("layout", FAIL, box.layout_error,
                        "change the core named in the message, or set it to -1 (chosen here)")]
    lay = box.layout
    detail = lay.describe()
    if not lay.warnings:
        return [Finding("layout", PASS, detail)]
    return [Finding("layout", WARN, detail + "; " + "; ".join(lay.warnings),
                    "see the checks below; `mm layout` prints the choice as JSON")]


def check_isolated(box: Box) -> list[Finding]:
    spin, iso = box.spinning_cores(), box.topo.isolated
    out: list[Finding] = []
    asked = box.cmdline().get("isolcpus")
    if asked is not None:
        wanted = parse_cpu_list(",".join(p for p in asked.split(",") if p[:1].isdigit()))
        if wanted != set(iso):
            out.append(Finding("isolated cores", WARN,
                               f"isolcpus={asked} on the command line, but the kernel isolated "
                               f"{format_cpu_list(iso) or 'nothing'}",
                               f"{isolcpus_arg()} (without 'domain' the scheduler still "
                               f"balances onto them)"))
    if not spin:
        out.append(Finding("isolated cores", PASS, "no stage spins in this layout"))
    elif not iso:
        out.append(Finding("isolated cores", WARN,
                           f"no isolated CPUs; spinning: {_cores(spin)}",
                           f"boot with {isolcpus_arg(_boot_cores(box))} (kernel command "
                           f"line)"))
    elif missing := {r: c for r, c in spin.items() if c not in iso}:
        out.append(Finding("isolated cores", WARN,
                           f"spinning on non-isolated cores: {_cores(missing)} "
                           f"(isolated: {format_cpu_list(iso)})",
                           "set [quoter]/[sender] core to isolated CPUs, or -1 to let mm choose"))
    else:
        out.append(Finding("isolated cores", PASS,
                           f"{_cores(spin)} isolated (isolated: {format_cpu_list(iso)})"))
    return out


def check_nohz_full(box: Box) -> list[Finding]:
    spin, nohz = box.spinning_cores(), box.topo.nohz_full
    if not spin:
        return [Finding("nohz_full", PASS, "no stage spins in this layout")]
    missing = sorted(c for c in spin.values() if c not in nohz)
    if not missing:
        return [Finding("nohz_full", PASS, f"tick stopped on {format_cpu_list(spin.values())} "
                                           f"(nohz_full={format_cpu_list(nohz)})")]
    known = box.sys("devices/system/cpu/nohz_full") is not None
    where = f"nohz_full={format_cpu_list(nohz)}" if nohz else (
        "nohz_full not set" if known else "this kernel is built without nohz_full")
    return [Finding("nohz_full", WARN,
                    f"the tick still interrupts spinning core(s) {format_cpu_list(missing)} "
                    f"({where})", f"boot with nohz_full={_boot_cores(box)}")]


def check_rcu_nocbs(box: Box) -> list[Finding]:
    spin = box.spinning_cores()
    if not spin:
        return [Finding("rcu_nocbs", PASS, "no stage spins in this layout")]
    params = box.cmdline()
    offloaded = set(box.topo.nohz_full)  # nohz_full CPUs have their callbacks offloaded too
    if "rcu_nocbs" in params:
        value = params["rcu_nocbs"]
        offloaded |= set(box.topo.online) if value in ("", "all") else parse_cpu_list(value)
    missing = sorted(c for c in spin.values() if c not in offloaded)
    if not missing:
        return [Finding("rcu_nocbs", PASS, f"RCU callbacks offloaded from "
                                           f"{format_cpu_list(spin.values())}")]
    return [Finding("rcu_nocbs", WARN,
                    f"RCU callbacks still run on spinning core(s) {format_cpu_list(missing)}",
                    f"boot with rcu_nocbs={_boot_cores(box)} (or nohz_full=, which implies it)")]


def check_smt(box: Box) -> list[Finding]:
    spin = box.spinning_cores()
    layout_cores = box.layout.cores if box.layout is not None else {}
    problems, idle = [], []
    for role, core in spin.items():
        for sib in sorted(box.topo.threads(core) - {core}):
            near = [r for r, c in layout_cores.items() if c == sib]
            if near:
                problems.append(f"{role} on {core} shares its physical core with "
                                f"{', '.join(near)} on {sib}")
            elif sib not in box.topo.isolated:
                problems.append(f"{role} on {core}: sibling {sib} is not isolated (the OS runs "
                                f"there)")
            else:
                idle.append(f"{role} on {core}: sibling {sib} idle and isolated")
    if problems:
        return [Finding("SMT siblings", WARN, "; ".join(problems),
                        "isolate whole physical cores (both threads), or boot with nosmt")]
    if idle:
        return [Finding("SMT siblings", PASS, "; ".join(idle))]
    return [Finding("SMT siblings", PASS, "no SMT siblings on the spinning cores")]


def check_governor(box: Box) -> list[Finding]:
    cores = sorted(set(box.trading_cores().values())) or list(box.topo.online)
    found = {c: (box.sys(f"devices/system/cpu/cpu{c}/cpufreq/scaling_governor") or "").strip()
             for c in cores}
    if not any(found.values()):
        return [Finding("cpufreq governor", WARN,
                        "no cpufreq interface: the frequency policy is not visible here "
                        "(a VM's host, or a driver without governors, decides it)",
                        "on bare metal: load the cpufreq driver, then the performance governor")]
    slow = {c: g for c, g in found.items() if g != "performance"}
    if slow:
        return [Finding("cpufreq governor", WARN,
                        ", ".join(f"CPU {c}: {g or 'none'}" for c, g in slow.items()),
                        "cpupower frequency-set -g performance (or cpufreq.default_governor="
                        "performance at boot)")]
    return [Finding("cpufreq governor", PASS,
                    f"performance on {format_cpu_list(found)}")]


def _nic_irqs(box: Box) -> set[int]:
    """IRQ numbers of physical network interfaces: their MSI vectors, and lines named after
    the interface or its device (virtio2-input.0, eth0-TxRx-0)."""
    net = box.sys_root / "sys/class/net"
    irqs: set[int] = set()
    names: list[str] = []
    try:
        ifaces = sorted(os.listdir(net))
    except OSError:
        return irqs
    for iface in ifaces:
        dev = net / iface / "device"
        if not dev.is_dir():
            continue  # virtual: lo, bridges, ifb
        names.append(iface)
        names.append(os.path.basename(os.path.realpath(dev)))
        for msi in (dev / "msi_irqs", dev / ".." / "msi_irqs"):
            try:
                irqs.update(int(n) for n in os.listdir(msi) if n.isdigit())
            except OSError:
                pass
    for number, _counts, name in _interrupts(box):
        if any(re.match(rf"{re.escape(n)}\b", name) for n in names):
            irqs.add(number)
    return irqs


def _interrupts(box: Box) -> list[tuple[int, dict[int, int], str]]:
    """Numbered lines of /proc/interrupts: (irq, {cpu: count}, device name)."""
    lines = (box.proc("interrupts") or "").splitlines()
    if not lines:
        return []
    cpus = [int(h[3:]) for h in lines[0].split() if h.startswith("CPU")]
    out = []
    for line in lines[1:]:
        head, _, rest = line.partition(":")
        if not head.strip().isdigit():
            continue
        cols = rest.split()
        counts = {c: int(v) for c, v in zip(cpus, cols) if v.isdigit()}
        out.append((int(head), counts, cols[-1] if cols else ""))
    return out


def check_irqs(box: Box) -> list[Finding]:
    trading = box.trading_cores()
    iso_trading = {r: c for r, c in trading.items() if c in box.topo.isolated}
    targets = iso_trading or box.spinning_cores()
    if not targets:
        return [Finding("IRQs on trading cores", PASS, "no isolated or spinning trading core")]
    nic = _nic_irqs(box)
    hits_nic, hits_other = [], []
    for number, counts, name in _interrupts(box):
        text = box.proc(f"irq/{number}/smp_affinity_list")
        if text is None:
            continue
        try:
            allowed = parse_cpu_list(text)
        except ValueError:
            continue
        on = sorted(c for c in set(targets.values()) if c in allowed)
        if not on:
            continue
        fired = sum(counts.get(c, 0) for c in on)
        entry = f"{number} {name} (allowed {text.strip()}, {fired} on {format_cpu_list(on)})"
        (hits_nic if number in nic else hits_other).append(entry)
    if not hits_nic and not hits_other:
        return [Finding("IRQs on trading cores", PASS,
                        f"no device IRQ allowed on {_cores(targets)}")]
    house = format_cpu_list(c for c in box.topo.housekeeping if c not in targets.values())
    fix = (f"deploy/tune-irqs.sh {house or '0'} as root at boot; irqbalance off or "
           f"IRQBALANCE_BANNED_CPULIST={format_cpu_list(targets.values())}")
    detail = f"allowed on {_cores(targets)}: "
    parts = []
    if hits_nic:
        parts.append("NIC " + "; ".join(hits_nic))
    if hits_other:
        parts.append(f"{len(hits_other)} other: " + ", ".join(e.split(" (")[0] for e in hits_other))
    return [Finding("IRQs on trading cores", WARN, detail + " | ".join(parts), fix)]


CHECKS = (check_layout, check_isolated, check_nohz_full, check_rcu_nocbs, check_smt,
          check_governor, check_irqs)
