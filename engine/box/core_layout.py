"""Which core each process gets and which idle strategy it runs: the box check of `mm run`,
`mm layout` and `deploy/install.sh` (which writes the result into CPUAffinity= drop-ins).

Rules (measured on the 2-core KVM dev box):
  - a spinner must own its core: beside another busy process it pushes P99 to ~4 ms (one
    scheduler tick), so at most one spinner per core and never a spinner next to anyone;
  - parking costs a 25-45 us cross-core wake-up but leaves the core to others;
  - SCHED_FIFO (realtime_priority) helps processes that block (P99 ~4 ms -> ~50 us beside a
    busy neighbour) and hurts a spinner (the kernel's RT throttling takes ~50 ms out of every
    second): each process sets it on itself when it parks or waits in epoll, never when it
    spins (engine/proc.realtime).
The feed is driven by its sockets: it sleeps in epoll, or (feed.idle = busy-spin) polls them
without sleeping, which the layout chooses when the feed has an isolated core nobody else uses.

On a real box the CPUs come from the kernel (engine.box.topology), not from this process's
affinity: under isolcpus the isolated CPUs are missing from every default affinity, and they are
exactly the ones the spinners want. How the cores are handed out:
  - a spinner owns a whole physical core: no other stage on it or on its SMT sibling, which
    stays idle (a warning says so when the OS may still run there);
  - spinners go to isolated cores first (physical cores isolated whole before half-isolated
    ones, the first thread of each), then to the highest-numbered housekeeping cores (CPU 0
    carries most interrupts);
  - at most one spinner fewer than there are physical cores, so one core is left to the OS:
    two spinners (sender, quoter) on three or more, only the sender on two (see _auto_idle);
    a venue at a loopback URL counts one core less (not the embedded simulator: it is pinned
    beside the parked stages, SCHED_IDLE, standing in for a remote venue);
  - a parked sender, then the feed, go to a remaining isolated core, else to a housekeeping
    core, never on or beside a spinner; a parked quoter shares the feed's core when no core is
    left (so on two cores the sender has one of its own, spinning or not); the simulator takes
    the lowest housekeeping core; a feed alone on an isolated physical core polls its sockets
    (busy-spin: the socket -> feed hop without a wake-up), anywhere else it sleeps in epoll;
  - all of them prefer the NUMA node of the NIC when it is known, else the node of the first
    core chosen, so the rings never cross a socket.
Explicit cores and idle strategies in the config are kept and checked; an explicit core must be
online and either isolated or in this process's affinity.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field

from engine.box import topology as topo_mod
from engine.box.topology import Topology, format_cpu_list

SPIN = "busy-spin"
PARK = "park"
EPOLL = "epoll"                 # the feed's way of waiting: its sockets wake it
FEED_IDLES = (EPOLL, SPIN)
IDLES = (SPIN, PARK, "yield")
ROLES = ("feed", "quoter", "sender")


@dataclass
class Layout:
    cores: dict[str, int]                  # role -> core (-1 = unpinned)
    idle: dict[str, str]                   # role -> idle strategy of its ring reads
    warnings: list[str] = field(default_factory=list)
    topology: Topology | None = None

    def describe(self) -> str:
        parts = []
        for role in ("feed", "quoter", "sender", "sim"):
            if role in self.cores:
                core = self.cores[role]
                where = f"core {core}" if core >= 0 else "unpinned"
                how = self.idle.get(role, EPOLL)
                parts.append(f"{role}: {where}, {how}")
        return "; ".join(parts)

    @classmethod
    def of_config(cls, cfg) -> "Layout":
        """The layout a resolved config carries (mm run's config.json: cores and idle set)."""
        return cls({r: getattr(cfg, r).core for r in ROLES},
                   {r: getattr(cfg, r).idle for r in ROLES})

    def spinning_cores(self) -> dict[str, int]:
        """role -> core of every stage that busy-spins."""
        return {r: self.cores[r] for r, how in self.idle.items() if how == SPIN}

    def to_json(self) -> dict:
        """The `mm layout` document: one entry per role, the warnings, the box it was made for."""
        t = self.topology
        doc: dict = {}
        for role, core in self.cores.items():
            entry: dict = {"core": core, "idle": self.idle.get(role, EPOLL)}
            if t is not None and core >= 0:
                entry["isolated"] = core in t.isolated
                entry["siblings"] = sorted(t.threads(core) - {core})
                if core in t.node:
                    entry["node"] = t.node[core]
            doc[role] = entry
        doc["warnings"] = list(self.warnings)
        if t is not None:
            doc["online"] = format_cpu_list(t.online)
            doc["isolated"] = format_cpu_list(t.isolated)
            doc["housekeeping"] = format_cpu_list(t.housekeeping)
        return doc


def choose(cfg, with_sim: bool, cpus: list[int] | None = None,
           isolated: set[int] | None = None, *, topology: Topology | None = None,
           sys_root: str = "/", nic_node: int | None = None,
           venue_local: bool = False) -> Layout:
    """The layout for `cfg` on a box. Explicit cores/idle in the config are kept (and
    checked); everything left unset is chosen so that no spinner shares a physical core.
    `venue_local`: a venue on this box takes a core of its own (venue_takes_a_core), and a
    spinner would take the CPU it needs.

    The box is `topology` if given, else read from `sys_root` (a fake tree for tests and
    `mm layout --sys-root`). `cpus`/`isolated` describe a box without SMT or NUMA detail (older
    callers and tests). `nic_node` is the NUMA node of the trading NIC, when known.
    ValueError names the config field when an explicit choice cannot work."""
    if topology is None:
        if cpus is not None:
            iso = topo_mod.isolated_cpus(sys_root) if isolated is None else isolated
            topology = Topology.flat(cpus, iso)
        else:
            topology = topo_mod.read(sys_root)
    elif isolated is not None:
        topology = Topology(topology.online, frozenset(isolated), topology.nohz_full,
                            topology.siblings, topology.node)
    usable = sorted(cpus) if cpus is not None else usable_cpus(topology, sys_root)
    explicit_core = {"feed": cfg.feed.core, "quoter": cfg.quoter.core, "sender": cfg.sender.core}
    explicit_idle = {"quoter": cfg.quoter.idle, "sender": cfg.sender.idle}
    for role, core in explicit_core.items():
        _check_explicit_core(role, core, topology, usable)
    for role, how in explicit_idle.items():
        if how and how not in IDLES:
            raise ValueError(f"{role}.idle: expected busy-spin, yield or park, got {how!r}")
    if cfg.feed.idle and cfg.feed.idle not in FEED_IDLES:
        raise ValueError(f"feed.idle: expected epoll or busy-spin, got {cfg.feed.idle!r}")
    local = venue_local
    auto = _auto_idle(topology, usable, local)
    idle = {r: (explicit_idle[r] or auto[r]) for r in explicit_idle}
    cores = _assign(topology, usable, explicit_core, idle, with_sim, nic_node)
    # (not under realtime_priority: SCHED_FIFO refuses spinners, _check)
    idle["feed"] = cfg.feed.idle or (EPOLL if getattr(cfg, "realtime_priority", 0)
                                     else _feed_idle(topology, cores))
    lay = Layout(cores, idle, topology=topology)
    _check(lay, topology, usable)
    if local and not with_sim and not explicit_idle["sender"] and not cfg.realtime_priority and \
            _auto_idle(topology, usable, False)["sender"] != auto["sender"]:
        lay.warnings.append(LOCAL_VENUE_NOTE)
    return lay


# Why a loopback venue's weight decides the 2-core layout (make bench, light venue, 2 rounds):
LOCAL_VENUE_NOTE = (
    "the order venue is on this box (a loopback URL), counted as taking a core: nothing spins. "
    "Right for a heavy venue (the full simulator: wire-to-wire P99 673-904 us parked, "
    "1,556-3,514 us with the sender spinning, at 500-5,000 events/s); against a light one (the "
    "bench's light venue, 10-30% of a core) SCHED_FIFO for the parked stages measured P99 "
    "203-239 us against 390-470 us at 2,000-5,000 events/s (and 232-239 against 372-421 us with "
    "the sender spinning instead, at a third to a half of the CPU): for such a venue set "
    "realtime_priority = 10 (beside the full simulator it starves the venue: P99 x1.2-5 worse)")


def venue_takes_a_core(cfg, with_sim: bool) -> bool:
    """A venue at a loopback URL runs on this box and needs CPU of its own. The embedded
    simulator does not count: the supervisor pins it to a parked stage's core, SCHED_IDLE
    (startup._make_sim_yield), so it stands in for a remote venue and `mm run` shows the layout
    a remote venue gets (the figures both ways: README, "Layout and waiting")."""
    from engine.sender.keys import is_loopback

    return not with_sim and is_loopback(cfg.sender.url)


def for_box(cfg, sys_root: str = "/", proc_root: str = "/proc", nic: str | None = None) -> Layout:
    """The layout of a deployed instance (`mm layout`, `mm doctor`, install.sh): the simulator
    runs only when the config names no venue, the NIC is `nic` or else the interface of the
    default route (looked up on the box itself only, not in a fake tree)."""
    with_sim = not (cfg.feed.url and cfg.sender.url)
    if nic is None and os.path.realpath(sys_root) == "/":
        nic = topo_mod.default_route_interface(proc_root)
    node = topo_mod.nic_numa_node(nic, sys_root) if nic else None
    return choose(cfg, with_sim=with_sim, sys_root=sys_root, nic_node=node,
                  venue_local=venue_takes_a_core(cfg, with_sim))


def usable_cpus(t: Topology, sys_root: str = "/") -> list[int]:
    """CPUs this engine may use: on the box itself its affinity plus the isolated CPUs (which
    no default affinity lists), both limited to the online ones; on a fake tree every online
    CPU."""
    if os.path.realpath(sys_root) != "/":
        return list(t.online)
    allowed = os.sched_getaffinity(0) | t.isolated
    return [c for c in t.online if c in allowed]


def apply_box(cfg, role: str, env) -> tuple[object, str]:
    """Under systemd (MM_LAYOUT=auto in the units): `role`'s core and idle strategy computed
    now, on this box, from the config and the environment the unit gives (the venue URLs of the
    instance's .env), so a layout is never frozen at install time from a half-written env file.
    An explicit MM_CORE/MM_IDLE (an operator's drop-in) wins. Returns (cfg, what was decided;
    "" when nothing was)."""
    import msgspec

    if env.get("MM_LAYOUT", "").strip() != "auto" or env.get("MM_CORE") or env.get("MM_IDLE"):
        return cfg, ""
    with_sim = not (cfg.feed.url and cfg.sender.url)
    lay = choose(cfg, with_sim=with_sim,
                 venue_local=venue_takes_a_core(cfg, with_sim))
    section = getattr(cfg, role)
    changes = {"core": lay.cores[role]}
    if hasattr(section, "idle"):
        changes["idle"] = lay.idle.get(role, EPOLL)
    cfg = msgspec.structs.replace(cfg, **{role: msgspec.structs.replace(section, **changes)})
    how = f", {lay.idle[role]}" if role in lay.idle else ""
    return cfg, (f"layout computed at start (MM_LAYOUT=auto): core {lay.cores[role]}{how}; "
                 f"the whole layout: {lay.describe()}")


def apply_env(cfg, role: str, env) -> object:
    """`cfg` with MM_CORE / MM_IDLE applied to `role`'s section: how a systemd unit's drop-in
    (written by deploy/install.sh from `mm layout`) hands one process its core and idle strategy.
    ValueError names the variable when its value is unusable."""
    import msgspec

    core, how = env.get("MM_CORE", "").strip(), env.get("MM_IDLE", "").strip()
    if not core and not how:
        return cfg
    section = getattr(cfg, role)
    changes: dict = {}
    if core:
        try:
            changes["core"] = int(core)
        except ValueError:
            raise ValueError(f"MM_CORE: expected a CPU number, got {core!r}") from None
    if how:
        if not hasattr(section, "idle"):
            raise ValueError(f"MM_IDLE: the {role} has no idle strategy (it waits in epoll)")
        if role == "feed":
            if how not in FEED_IDLES:
                raise ValueError(f"MM_IDLE: the feed waits in epoll or busy-spins, got {how!r}")
        elif how not in IDLES:
            raise ValueError(f"MM_IDLE: expected busy-spin, yield or park, got {how!r}")
        changes["idle"] = how
    return msgspec.structs.replace(cfg, **{role: msgspec.structs.replace(section, **changes)})


def _check_explicit_core(role: str, core: int, t: Topology, usable: list[int]) -> None:
    if core < 0:
        return
    if core not in t.online:
        raise ValueError(f"{role}.core: CPU {core} is not online here "
                         f"(online: {format_cpu_list(t.online)})")
    if core not in usable:
        raise ValueError(f"{role}.core: CPU {core} is neither isolated nor in this process's "
                         f"affinity (usable: {format_cpu_list(usable)})")


def _auto_idle(t: Topology, usable: list[int], venue_local: bool = False) -> dict[str, str]:
    # One physical core stays with the OS (and the feed): two spinners need three. On two,
    # only the sender spins: waking an event-loop process through its doorbell costs ~150 us
    # P50 here, waking the numba quoter through the futex ~35 us (measured with `mm run`:
    # tick-to-order P50 175 us this way, 440 us with the quoter spinning instead).
    # A venue on the same box (a loopback URL; not the embedded simulator, venue_takes_a_core)
    # needs a core as well: on two cores with the venue beside it, nothing spins (wire-to-wire
    # seen by that venue, 500-5,000 events/s: P99 0.63-0.86 ms with every stage parked,
    # 1.8-2.5 ms with the sender spinning; P50 241-328 us against 186-318 us).
    physical = len(t.physical_cores(usable)) - (1 if venue_local else 0)
    return {"sender": SPIN if physical >= 2 else PARK, "quoter": SPIN if physical >= 3 else PARK}


def _feed_idle(t: Topology, cores: dict[str, int]) -> str:
    """busy-spin when the feed is alone on an isolated physical core (its SMT siblings too),
    else epoll: a spinning feed beside anyone would take the CPU they need."""
    feed = cores["feed"]
    if feed < 0 or not t.threads(feed) <= t.isolated:
        return EPOLL
    others = {c for r, c in cores.items() if r != "feed" and c >= 0}
    return EPOLL if any(s in others for s in t.threads(feed)) else SPIN


def _assign(t: Topology, usable: list[int], explicit: dict[str, int], idle: dict[str, str],
            with_sim: bool, nic_node: int | None) -> dict[str, int]:
    if len(usable) <= 1:  # nothing to separate: leave every process to the scheduler
        cores = {r: explicit[r] for r in ROLES}
        if with_sim:
            cores["sim"] = -1
        return cores
    cores = {r: c for r, c in explicit.items() if c >= 0}
    anchor = [nic_node] if nic_node is not None else []

    def node_miss(c: int) -> bool:
        if not anchor and cores:  # no NIC node: stay on the node of the first core chosen
            first = next(iter(cores.values()))
            if first in t.node:
                anchor.append(t.node[first])
        return bool(anchor) and t.node.get(c, anchor[0]) != anchor[0]

    def busy_threads() -> set[int]:
        return {s for c in cores.values() for s in t.threads(c)}

    def spin_threads() -> set[int]:
        return {s for r, c in cores.items() if idle.get(r) == SPIN for s in t.threads(c)}

    # Spinners first (sender before quoter: on a small box the sender is the one that spins).
    for role in ("sender", "quoter"):
        if role in cores or idle[role] != SPIN:
            continue
        busy = busy_threads()
        free = [c for c in usable if c not in cores.values()]
        whole = [c for c in free if not (t.threads(c) & busy)]
        pool = whole or free or usable
        cores[role] = min(pool, key=lambda c: (c not in t.isolated, node_miss(c),
                                               not t.threads(c) <= t.isolated,
                                               c != min(t.threads(c)), -c))
    # Then parked stages and the feed, never on or beside a spinner. The sender first: when
    # cores are short it gets one of its own (it does the most work per event: every answer
    # is parsed in Python) and the quoter shares the feed's, as beside a spinning sender; with
    # the CPU wake-up bound held (engine/box/wake_latency.py) that beat sender-beside-feed at
    # P99 in 8 rounds of `make bench AGAINST=...` here: 2,000/s 450-498 against 570-586 us,
    # 5,000/s 412-439 against 607-650 us, P50 alike.
    for role in ("sender", "feed", "quoter"):
        if role in cores:
            continue
        spin = spin_threads()
        taken = set(cores.values())
        calm = [c for c in usable if c not in spin]
        free = [c for c in calm if c not in taken]
        if role != "quoter" or free:
            pool = free or calm or usable
            cores[role] = min(pool, key=lambda c: (c not in t.isolated, node_miss(c),
                                                   bool(t.threads(c) & taken),
                                                   c != min(t.threads(c)), -c))
        else:  # the quoter with no core left shares the feed's
            cores[role] = cores["feed"]
    if with_sim:
        spin = spin_threads()
        taken = set(cores.values())
        calm = [c for c in usable if c not in spin] or usable
        cores["sim"] = min(calm, key=lambda c: (c in t.isolated, c in taken, c))
    return {r: cores[r] for r in (*ROLES, *(("sim",) if with_sim else ()))}


def _check(lay: Layout, t: Topology, usable: list[int]) -> None:
    w = lay.warnings
    spinners = lay.spinning_cores()
    if spinners and not t.isolated:
        w.append(f"no isolated CPUs on this box (boot with {topo_mod.isolcpus_arg()}, "
                 f"nohz_full=<cpus> and rcu_nocbs=<cpus>): "
                 "the spinning stages share their cores with the OS")
    for role, core in spinners.items():
        if core < 0:
            w.append(f"{role} spins but is not pinned: it will share a core")
            continue
        others = [r for r, c in lay.cores.items() if c == core and r != role]
        if others:
            w.append(f"{role} spins on core {core} shared with {', '.join(others)}: "
                     f"expect a ~4 ms P99 (one scheduler tick)")
        if t.isolated and core not in t.isolated:
            w.append(f"{role} spins on core {core}, which is not isolated "
                     f"(isolated: {format_cpu_list(t.isolated)})")
        for sib in sorted(t.threads(core) - {core}):
            near = [r for r, c in lay.cores.items() if c == sib]
            if near:
                w.append(f"{role} spins on CPU {core} whose SMT sibling CPU {sib} runs "
                         f"{', '.join(near)}: they share one physical core")
            elif sib not in t.isolated:
                w.append(f"{role} spins on CPU {core} whose SMT sibling CPU {sib} is not "
                         f"isolated: the OS may run there, on the same physical core "
                         f"(isolate CPU {sib} too, or turn SMT off)")
    physical = len(t.physical_cores(usable))
    if len(spinners) > max(physical - 1, 0):
        w.append(f"{len(spinners)} spinning stages on {physical} physical cores: the layout "
                 f"cannot hold them and leave one core to the OS")
