"""`mm doctor` checks of the rest of the box: clocksource, transparent huge pages, memory locking
and real-time permission, /dev/shm, clock synchronisation, stale segments, installed units."""
from __future__ import annotations

import ctypes
import os
import re
from pathlib import Path

from engine.box.facts import (FAIL, PASS, WARN, Box, Finding, cap_effective, limit,
                              unit_files)

CAP_IPC_LOCK = 14
CAP_SYS_NICE = 23
UNITS = ("mm-engine@.target", "mm-feed@.service", "mm-quoter@.service", "mm-sender@.service",
         "mm-alert@.service")
TIME_DAEMONS = ("chronyd", "ntpd", "systemd-timesyn", "ptp4l", "phc2sys", "openntpd", "timemaster")
STA_UNSYNC = 0x0040
TIME_ERROR = 5


def check_clocksource(box: Box) -> list[Finding]:
    base = "devices/system/clocksource/clocksource0"
    current = (box.sys(f"{base}/current_clocksource") or "").strip()
    available = (box.sys(f"{base}/available_clocksource") or "").split()
    if current == "tsc":
        return [Finding("clocksource", PASS, "tsc (clock reads stay in user space)")]
    fix = ("clocksource=tsc tsc=reliable on the kernel command line" if "tsc" in available else
           "a CPU with an invariant TSC (constant_tsc, nonstop_tsc)")
    return [Finding("clocksource", WARN, f"{current or 'unknown'} (available: "
                                         f"{' '.join(available) or 'unknown'}): every timestamp "
                                         f"costs more", fix)]


def check_thp(box: Box) -> list[Finding]:
    text = (box.sys("kernel/mm/transparent_hugepage/enabled") or "").strip()
    mode = m.group(1) if (m := re.search(r"\[(\w+)\]", text)) else ""
    if mode == "always":
        return [Finding("transparent hugepages", WARN,
                        "always: khugepaged compaction can stall the hot path",
                        "transparent_hugepage=madvise at boot (or echo madvise > "
                        "/sys/kernel/mm/transparent_hugepage/enabled)")]
    return [Finding("transparent hugepages", PASS, mode or "not built into this kernel")]


def _unit_sets(box: Box, setting: str) -> str | None:
    """The value the installed process units give `setting`, if all three agree."""
    values = set()
    for name in ("mm-feed@.service", "mm-quoter@.service", "mm-sender@.service"):
        text = unit_files(box).get(name)
        if text is None:
            return None
        found = re.findall(rf"^{setting}=(\S*)", text, re.M)
        values.add(found[-1] if found else None)
    return values.pop() if len(values) == 1 else None


def check_memlock(box: Box) -> list[Finding]:
    soft = limit(box, "Max locked memory") or "unknown"
    shown = soft if not soft.isdigit() else f"{int(soft) // 1024} KiB"
    if soft == "unlimited" or cap_effective(box) >> CAP_IPC_LOCK & 1:
        return [Finding("memory locking", PASS, f"mlockall allowed here (limit {shown}"
                                                f"{', CAP_IPC_LOCK' if soft != 'unlimited' else ''})")]
    if _unit_sets(box, "LimitMEMLOCK") == "infinity":
        return [Finding("memory locking", PASS, f"the units set LimitMEMLOCK=infinity "
                                                f"(this shell: {shown})")]
    if box.cfg.lock_memory:
        return [Finding("memory locking", FAIL,
                        f"lock_memory = true but mlockall would be refused (limit {shown}, "
                        f"no CAP_IPC_LOCK)", "LimitMEMLOCK=infinity (the units set it), or "
                                            "ulimit -l unlimited for mm run")]
    return [Finding("memory locking", PASS, f"lock_memory = false (limit {shown})")]


def check_realtime(box: Box) -> list[Finding]:
    prio = box.cfg.realtime_priority
    soft = limit(box, "Max realtime priority") or "0"
    allowed = 99 if soft == "unlimited" else int(soft) if soft.isdigit() else 0
    if cap_effective(box) >> CAP_SYS_NICE & 1:
        allowed, how = 99, "CAP_SYS_NICE"
    else:
        how = f"rtprio limit {soft}"
    unit_rt = _unit_sets(box, "LimitRTPRIO")
    if unit_rt and unit_rt.isdigit() and int(unit_rt) > allowed:
        allowed, how = int(unit_rt), f"the units set LimitRTPRIO={unit_rt}"
    throttle = (box.proc("sys/kernel/sched_rt_runtime_us") or "").strip()
    if prio == 0:
        return [Finding("real-time priority", PASS, f"realtime_priority = 0 (allowed up to "
                                                    f"{allowed}: {how})")]
    if prio > allowed:
        return [Finding("real-time priority", FAIL,
                        f"realtime_priority = {prio} but SCHED_FIFO is allowed up to {allowed} "
                        f"({how})", "LimitRTPRIO= in the units (they set 99), or run with "
                                    "CAP_SYS_NICE")]
    note = "" if throttle == "-1" else f"; RT throttling {throttle or '?'} us per second"
    return [Finding("real-time priority", PASS, f"SCHED_FIFO {prio} allowed ({how}){note}")]


def check_wake_latency(box: Box) -> list[Finding]:
    """Whether the hot processes can hold their PM QoS wake-up bound (engine/box/
    wake_latency.py): without it a parked stage pays an idle CPU's exit on every wake-up."""
    from engine.box import wake_latency

    want = box.cfg.cpu_wake_latency_us
    if want < 0:
        return [Finding("CPU wake-up bound", PASS, "cpu_wake_latency_us = -1: the box's own "
                                                   "idle states")]
    if box.sys_root != Path("/"):
        return [Finding("CPU wake-up bound", PASS, f"cpu_wake_latency_us = {want} (the device "
                                                   f"is not looked at on a fake tree)")]
    now = wake_latency.describe(wake_latency.in_force())
    if not os.access(wake_latency.PATH, os.W_OK):
        return [Finding("CPU wake-up bound", WARN,
                        f"cpu_wake_latency_us = {want} but {wake_latency.PATH} is not writable "
                        f"here (in force now: {now}): each cross-core wake-up of a parked "
                        f"stage pays an idle CPU's exit",
                        "deploy/install.sh's udev rule (90-mm-cpu-latency.rules: group mm, "
                        "mode 0660; the units bind the device in), or cpu_wake_latency_us = -1 "
                        "to accept it")]
    return [Finding("CPU wake-up bound", PASS, f"cpu_wake_latency_us = {want}, held by feed, "
                                               f"quoter and sender while they run (in force "
                                               f"now: {now})")]


def shm_bytes_needed(cfg) -> int:
    """Bytes one instance maps in /dev/shm: rings, control segment, latency histograms."""
    from engine import control
    from engine.latency import histogram
    from engine.records import FILL_DTYPE, MD_DTYPE, ORDER_DTYPE
    from engine.ring import header as L

    rings = sum(L.HEADER_SIZE + rc.capacity * dtype.itemsize
                for rc, dtype in ((cfg.rings.md, MD_DTYPE), (cfg.rings.orders, ORDER_DTYPE),
                                  (cfg.rings.fills, FILL_DTYPE)))
    hist = 3 * (64 + histogram.MAX_NAMES * (histogram.NAME_BYTES + histogram.WORDS * 8))
    return rings + control.SIZE + hist


def check_shm_size(box: Box) -> list[Finding]:
    need = shm_bytes_needed(box.cfg)
    try:
        st = os.statvfs(box.shm_dir)
    except OSError as e:
        return [Finding("/dev/shm", FAIL, f"{box.shm_dir}: {e.strerror}",
                        "mount a tmpfs on /dev/shm")]
    free = st.f_bavail * st.f_frsize
    detail = f"{free // 2**20} MiB free of {st.f_blocks * st.f_frsize // 2**20} MiB; " \
             f"the instance maps {need // 1024} KiB"
    if free < need:
        return [Finding("/dev/shm", FAIL, detail,
                        "mount -o remount,size=<bigger> /dev/shm, or smaller [rings] capacities")]
    return [Finding("/dev/shm", PASS, detail)]


class _Timeval(ctypes.Structure):
    _fields_ = [("sec", ctypes.c_long), ("usec", ctypes.c_long)]


class _Timex(ctypes.Structure):  # struct timex of <sys/timex.h>
    _fields_ = [("modes", ctypes.c_uint), ("offset", ctypes.c_long), ("freq", ctypes.c_long),
                ("maxerror", ctypes.c_long), ("esterror", ctypes.c_long),
                ("status", ctypes.c_int), ("constant", ctypes.c_long),
                ("precision", ctypes.c_long), ("tolerance", ctypes.c_long), ("time", _Timeval),
                ("tick", ctypes.c_long), ("ppsfreq", ctypes.c_long), ("jitter", ctypes.c_long),
                ("shift", ctypes.c_int), ("stabil", ctypes.c_long), ("jitcnt", ctypes.c_long),
                ("calcnt", ctypes.c_long), ("errcnt", ctypes.c_long), ("stbcnt", ctypes.c_long),
                ("tai", ctypes.c_int), ("padding", ctypes.c_int * 11)]


def kernel_clock_state() -> tuple[bool, int] | None:
    """(synchronised, max error in us) from adjtimex(2) with no change requested: what
    timedatectl's "System clock synchronized" reads; allowed without privileges."""
    tx = _Timex()
    try:
        state = ctypes.CDLL(None, use_errno=True).adjtimex(ctypes.byref(tx))
    except (OSError, AttributeError):
        return None
    if state < 0:
        return None
    return state != TIME_ERROR and not tx.status & STA_UNSYNC, int(tx.maxerror)


def _running(box: Box, names: tuple[str, ...]) -> list[str]:
    found = set()
    try:
        pids = [p for p in os.listdir(box.proc_root) if p.isdigit()]
    except OSError:
        return []
    for pid in pids:
        comm = (box.proc(f"{pid}/comm") or "").strip()
        if comm in names:
            found.add(comm)
    return sorted(found)


def check_clock_sync(box: Box) -> list[Finding]:
    state = (box.timex or kernel_clock_state)()
    daemons = _running(box, TIME_DAEMONS)
    by = f" by {', '.join(daemons)}" if daemons else ""
    if state is None:
        return [Finding("clock sync", WARN, f"kernel clock state unknown{by}",
                        "run chronyd (or ptp4l + phc2sys) and check `chronyc tracking`")]
    synced, maxerror_us = state
    if synced:
        return [Finding("clock sync", PASS, f"kernel clock synchronised{by} "
                                            f"(max error {maxerror_us / 1000:.1f} ms)")]
    if daemons:
        return [Finding("clock sync", WARN, f"{', '.join(daemons)} running but the kernel clock "
                                            f"is not synchronised yet",
                        "check its sources (chronyc sources / timedatectl timesync-status)")]
    return [Finding("clock sync", WARN,
                    "kernel clock not synchronised and no time daemon running (chronyd, ntpd, "
                    "systemd-timesyncd, ptp4l): signed requests drift out of the venue's "
                    "recvWindow", "install and enable chrony (or PTP on a colocated box)")]


def _segment_pids(path: str, shm_name: str) -> list[int] | None:
    """Process ids a segment names (control: every role; ring: producer and consumer); None if
    it cannot be read. Read-only: the segment is neither mapped nor changed."""
    from engine import control
    from engine.ring import header as L

    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        def word(off: int) -> int:
            raw = os.pread(fd, 8, off)
            return int.from_bytes(raw, "little", signed=True) if len(raw) == 8 else 0

        if shm_name.endswith(".control"):
            return [word((control.ROLE_BASE + control.ROLE_WORDS * r) * 8)
                    for r in range(len(control.ROLES))]
        if word(L.OFF_MAGIC) & (2**64 - 1) == L.MAGIC & (2**64 - 1):
            return [word(L.OFF_PRODUCER_PID), word(L.OFF_CONSUMER_PID)]
        return []
    finally:
        os.close(fd)


def check_stale_segments(box: Box) -> list[Finding]:
    from engine.ring.segment import pid_alive

    try:
        names = sorted(n for n in os.listdir(box.shm_dir) if n.startswith("mm."))
    except OSError:
        names = []
    by_instance: dict[str, list[str]] = {}
    for n in names:
        parts = n.split(".")
        if len(parts) == 3:
            by_instance.setdefault(parts[1], []).append(n)
    stale, live, unknown = [], [], []
    for inst, segs in sorted(by_instance.items()):
        pids: list[int] = []
        unreadable = False
        for n in segs:
            got = _segment_pids(str(box.shm_dir / n), n)
            unreadable |= got is None
            pids += got or []
        alive = sorted({p for p in pids if p > 0 and pid_alive(p)})
        if alive:
            live.append(f"{inst} (pids {', '.join(map(str, alive))})")
        elif unreadable:
            unknown.append(inst)
        else:
            stale.append(f"{inst} ({len(segs)} segment{'s' if len(segs) > 1 else ''})")
    if stale or unknown:
        detail = (f"stale: {', '.join(stale)}" if stale else "") + \
                 (f"{'; ' if stale else ''}unreadable here: {', '.join(unknown)}" if unknown else "")
        return [Finding("shared memory", WARN, detail + (f"; running: {', '.join(live)}" if live
                                                          else ""),
                        "mm shm rm --instance <name> once you are sure it is not running")]
    return [Finding("shared memory", PASS,
                    f"running: {', '.join(live)}" if live else "no engine segments")]


def check_units(box: Box) -> list[Finding]:
    have = unit_files(box)
    missing = [u for u in UNITS if u not in have]
    inst = box.cfg.instance
    if missing:
        return [Finding("systemd units", WARN, f"not installed in {box.unit_dir}: "
                                               f"{', '.join(missing)}",
                        f"deploy/install.sh --instance {inst}")]
    out = []
    wants = box.unit_dir / "multi-user.target.wants" / f"mm-engine@{inst}.target"
    enabled = os.path.lexists(wants)
    stale = []
    for role, core in box.trading_cores().items():
        dropin = box.unit_dir / f"mm-{role}@{inst}.service.d" / "layout.conf"
        text = dropin.read_text() if dropin.exists() else ""
        m = re.search(r"^CPUAffinity=(\d+)\s*$", text, re.M)
        # No drop-in is the norm: each process computes its layout at start (MM_LAYOUT=auto).
        # One left by an older install freezes a core that may no longer be the right one.
        if m and int(m.group(1)) != core:
            stale.append(f"{role} pinned to {m.group(1)} by {dropin.name}, the layout chooses "
                         f"{core}")
    if stale:
        out.append(Finding("systemd units", WARN, f"instance {inst}: {'; '.join(stale)}",
                           f"deploy/install.sh --instance {inst} (removes the frozen drop-ins: "
                           f"the processes then compute their layout at start)"))
    if not enabled:
        out.append(Finding("systemd units", WARN, f"installed; mm-engine@{inst}.target not "
                                                  f"enabled at boot",
                           f"systemctl enable mm-engine@{inst}.target"))
    if not out:
        out.append(Finding("systemd units", PASS, f"installed; mm-engine@{inst}.target enabled; "
                                                  f"layout computed by each process at start"))
    return out


CHECKS = (check_clocksource, check_thp, check_memlock, check_realtime, check_wake_latency,
          check_shm_size, check_clock_sync, check_stale_segments, check_units)
