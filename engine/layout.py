"""Which core each process gets and which idle strategy it runs: the box check of `mm run`.

Rules (measured on the 2-core KVM dev box):
  - a spinner must own its core: beside another busy process it pushes P99 to ~4 ms (one
    scheduler tick), so at most one spinner per core and never a spinner next to anyone;
  - parking costs a 25-45 us cross-core wake-up but leaves the core to others;
  - SCHED_FIFO helps processes that block (P99 ~4 ms -> ~50 us beside a busy neighbour) and
    hurts a spinner (the kernel's RT throttling takes ~50 ms out of every second): refused.
The feed is driven by its sockets (it sleeps in epoll), so it never spins.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field

from engine.proc import isolated_cores

SPIN = "busy-spin"
PARK = "park"


@dataclass
class Layout:
    cores: dict[str, int]                  # role -> core (-1 = unpinned)
    idle: dict[str, str]                   # role -> idle strategy of its ring reads
    warnings: list[str] = field(default_factory=list)

    def describe(self) -> str:
        parts = []
        for role in ("feed", "quoter", "sender", "sim"):
            if role in self.cores:
                core = self.cores[role]
                where = f"core {core}" if core >= 0 else "unpinned"
                how = self.idle.get(role, "epoll")
                parts.append(f"{role}: {where}, {how}")
        return "; ".join(parts)


def choose(cfg, with_sim: bool, cpus: list[int] | None = None,
           isolated: set[int] | None = None) -> Layout:
    """The layout for `cfg` on this box. Explicit cores/idle in the config are kept (and
    checked); everything left unset is chosen so that no spinner shares a core."""
    cpus = sorted(cpus if cpus is not None else os.sched_getaffinity(0))
    isolated = isolated_cores() if isolated is None else isolated
    explicit_core = {"feed": cfg.feed.core, "quoter": cfg.quoter.core, "sender": cfg.sender.core}
    explicit_idle = {"quoter": cfg.quoter.idle, "sender": cfg.sender.idle}
    auto = _auto(cpus, isolated, with_sim)
    cores = {r: (c if c >= 0 else auto.cores.get(r, -1)) for r, c in explicit_core.items()}
    if with_sim:
        cores["sim"] = auto.cores.get("sim", -1)
    idle = {r: (i or auto.idle[r]) for r, i in explicit_idle.items()}
    lay = Layout(cores, idle)
    _check(lay, cpus, isolated, cfg)
    return lay


def _auto(cpus: list[int], isolated: set[int], with_sim: bool) -> Layout:
    n = len(cpus)
    # Prefer isolated cores for the hot stages, the rest for the feed's neighbours.
    hot = [c for c in cpus if c in isolated] + [c for c in cpus if c not in isolated]
    if n >= 4:
        q, s, f = hot[-1], hot[-2], hot[-3]
        rest = [c for c in cpus if c not in (q, s, f)]
        cores = {"quoter": q, "sender": s, "feed": f, "sim": rest[0] if rest else -1}
        return Layout(cores, {"quoter": SPIN, "sender": SPIN})
    if n == 3:
        cores = {"quoter": hot[-1], "sender": hot[-2], "feed": hot[0], "sim": hot[0]}
        return Layout(cores, {"quoter": SPIN, "sender": SPIN})
    if n == 2:
        # One spinner at most, and it is the sender: waking an event-loop process through its
        # doorbell costs ~150 us P50 here, waking the numba quoter through the futex ~35 us
        # (measured with `mm run`: tick-to-order P50 175 us this way, 440 us with the quoter
        # spinning instead). The quoter parks beside the feed (and the simulator).
        other = [c for c in cpus if c != hot[-1]][0]
        cores = {"sender": hot[-1], "quoter": other, "feed": other, "sim": other}
        return Layout(cores, {"quoter": PARK, "sender": SPIN})
    return Layout({"quoter": -1, "sender": -1, "feed": -1, "sim": -1},
                  {"quoter": PARK, "sender": PARK})


def _check(lay: Layout, cpus: list[int], isolated: set[int], cfg) -> None:
    for role, core in lay.cores.items():
        if core >= 0 and core not in cpus:
            raise ValueError(f"{role}.core: CPU {core} is not available here (usable: {cpus})")
        if core >= 0 and role != "sim" and core not in isolated:
            lay.warnings.append(f"{role} on core {core}, which is not isolated (isolcpus)")
    for role, how in lay.idle.items():
        if how not in (SPIN, PARK, "yield"):
            raise ValueError(f"{role}.idle: expected busy-spin, yield or park, got {how!r}")
        if how != SPIN:
            continue
        core = lay.cores[role]
        if core < 0:
            lay.warnings.append(f"{role} spins but is not pinned: it will share a core")
            continue
        others = [r for r, c in lay.cores.items() if c == core and r != role]
        if others:
            lay.warnings.append(f"{role} spins on core {core} shared with {', '.join(others)}: "
                                f"expect a ~4 ms P99 (one scheduler tick)")
    spinners = sum(1 for h in lay.idle.values() if h == SPIN)
    if spinners > len(cpus) - 1:
        lay.warnings.append(f"{spinners} spinning stages on {len(cpus)} cores: the layout cannot "
                            f"hold them without sharing")
    rt = getattr(cfg, "realtime_priority", 0)
    if rt and spinners:
        raise ValueError("realtime_priority: SCHED_FIFO on a spinning process gets it throttled "
                         "(~50 ms every second); use park for RT processes or drop the priority")
