"""The instance's control segment: kill switch, per-process liveness and named counters.

Layout (int64 words, one segment `/mm.<instance>.control`):
  word 0 magic, 1 version, 2 kill reason (0 = run; KILL_* otherwise), 3 kill time (ns),
  4 pause reason (0 = quote; PAUSE_* otherwise: `mm kill`), 5 pause time (ns)
  per role r (ROLES order), 64 words at ROLE_BASE + 64*r:
    0 pid, 1 heartbeat ns, 2 state (STATE_*), 3 core (-1 = unpinned), 4 idle word (how it
    waits: engine/ring/idle.py IDLE_WORDS), 5 started ns, 6 wake word (futex: the role
    sleeps on it when it waits on several rings; their producers bump it)
  then COUNTERS named counters per role (ROLES order; their names live in the names area after
  them, NAME_BYTES each). COUNTERS leaves room for per-instrument counters (the quoter's
  positions, the supervisor's holdings at start) of MAX_INSTRUMENTS instruments.
Each role writes only its own slot (one writer per word); the kill word is written by whoever
pulls the switch (any writer only ever sets it from 0, so the first reason wins).
numba code reads the kill word with an acquire load at `kill_addr`, the pause word at
`pause_addr`.

Kill and pause are two words because they are two things: the kill word stops the processes
(they cancel, confirm and exit); the pause word (`mm kill`) makes the quoter cancel-all and stop
quoting and the sender cancel and confirm everything, while every process stays up with its
connections, book and order truth; clearing it (`mm resume`) makes the sender reconcile with the
venue and then tell the quoter to quote again.
"""
from __future__ import annotations

import os
import time

import numpy as np

from engine import _native as C
from engine.ring.segment import Segment, SegmentError, pid_alive, segment_name

ROLES = ("supervisor", "feed", "quoter", "sender", "journal")   # journal: the journal agent
_MAGIC = 0x4C5254434D4D0001
LAYOUT_VERSION = 2    # 2: counters out of the role slots, room for MAX_INSTRUMENTS
ROLE_BASE = 8
ROLE_WORDS = 64
# The most instruments one engine's counters can name (the config's max_instruments is checked
# against it); each instrument costs 2 x (8 + NAME_BYTES) bytes of this segment.
MAX_INSTRUMENTS = 1024
COUNTERS = 64 + MAX_INSTRUMENTS      # per role: its own counters, then one per instrument
NAME_BYTES = 32
_COUNTERS_OFF = ROLE_BASE + ROLE_WORDS * len(ROLES)                    # words
_NAMES_OFF = (_COUNTERS_OFF + COUNTERS * len(ROLES)) * 8               # bytes
SIZE = _NAMES_OFF + len(ROLES) * COUNTERS * NAME_BYTES

KILL_NONE = 0
KILL_OPERATOR = 1      # mm kill
KILL_SHUTDOWN = 2      # SIGTERM/SIGINT to the supervisor: orderly stop
KILL_PROCESS_DIED = 3
KILL_HEARTBEAT = 4     # a process stopped beating
KILL_DRAWDOWN = 5      # quoter's mark-to-market drawdown limit
KILL_VENUE_BAN = 6     # the venue answered 418 (IP ban): stop sending
KILL_VENUE_REFUSED = 7  # the venue refuses our key, signature, symbol or every order: fix it
KILL_REASONS = {0: "none", 1: "operator kill switch", 2: "shutdown", 3: "a process died",
                4: "heartbeat lost", 5: "drawdown limit", 6: "venue ban (418)",
                7: "venue refused us"}
# Latched reasons stay set until `mm resume` (a person looks first); transient ones are
# cleared when the instance's processes start again (recovery is a state, not a latch).
LATCHED = (KILL_OPERATOR, KILL_DRAWDOWN, KILL_VENUE_BAN, KILL_VENUE_REFUSED)

PAUSE_NONE = 0
PAUSE_OPERATOR = 1     # mm kill: cancel everything, stop quoting, stay connected
PAUSE_REASONS = {0: "none", 1: "operator (mm kill)"}

STATE_ABSENT, STATE_STARTING, STATE_RUNNING, STATE_STOPPING, STATE_STOPPED, STATE_FAILED = range(6)
STATE_NAMES = ("absent", "starting", "running", "stopping", "stopped", "failed")


def exit_status_for(reason: int) -> int:
    """What a process stopped by the kill switch exits with (engine/exit_codes.py), from the
    reason it saw (the word may be cleared by a restarting peer since): 0 for an asked-for
    shutdown, 4 for a latched reason (stays down), 5 for a lost peer (restart)."""
    from engine.exit_codes import EXIT_KILLED, EXIT_OK, EXIT_PEER_LOST

    if reason in (KILL_NONE, KILL_SHUTDOWN):
        return EXIT_OK
    return EXIT_KILLED if reason in LATCHED else EXIT_PEER_LOST


class Control:
    def __init__(self, seg: Segment):
        self.seg = seg
        self.words = seg.words
        self.kill_addr = seg.addr + 2 * 8
        self.pause_addr = seg.addr + 4 * 8

    @classmethod
    def create(cls, instance: str) -> "Control":
        """Create the control segment; a stale one (supervisor dead) is replaced."""
        shm = segment_name(instance, "control")
        try:
            seg = Segment.create(shm, SIZE)
        except SegmentError:
            old = cls.attach(instance)
            live = [r for r in ROLES if pid_alive(old.pid(r)) and old.pid(r) != os.getpid()]
            old.close()
            if live:
                raise SegmentError(f"instance {instance!r} is running ({', '.join(live)} alive); "
                                   f"stop it or pick another instance name") from None
            Segment.attach(shm).unlink()
            seg = Segment.create(shm, SIZE)
        seg.words[1] = LAYOUT_VERSION
        for r in range(len(ROLES)):
            seg.words[ROLE_BASE + ROLE_WORDS * r + 3] = -1
        C.store_release(seg.addr, _MAGIC)
        return cls(seg)

    @classmethod
    def attach(cls, instance: str, wait_s: float = 0.0) -> "Control":
        seg = Segment.attach(segment_name(instance, "control"), wait_s=wait_s)
        deadline = time.monotonic() + max(wait_s, 0.5)
        while C.load_acquire(seg.addr) != _MAGIC:
            if time.monotonic() > deadline:
                raise SegmentError(f"{seg.shm_name} is not an engine control segment")
            time.sleep(0.005)
        return cls(seg)

    @classmethod
    def open(cls, instance: str) -> "Control":
        """Attach, or create when absent: processes started alone by systemd need no supervisor."""
        try:
            return cls.attach(instance)
        except SegmentError:
            try:
                return cls.create(instance)
            except SegmentError:
                return cls.attach(instance, wait_s=1.0)

    # ---------------------------------------------------------------- kill switch
    def kill(self, reason: int) -> bool:
        """Pull the kill switch: compare-and-swap from 0, so the first reason wins even when
        two processes pull at once. True if this call set it."""
        if C.cas64(self.kill_addr, 0, reason) != 0:
            return False
        self.words[3] = time.perf_counter_ns()
        return True

    def killed(self) -> int:
        return C.load_acquire(self.kill_addr)

    def reset_kill(self) -> None:
        C.store_release(self.kill_addr, 0)

    def clear_transient_kill(self) -> int:
        """A process (re)starting under systemd clears a transient kill reason (shutdown, a lost
        peer): the instance comes back without a person. Under a live `mm run` supervisor the
        supervisor decides (its rescue sender starts with the switch set on purpose). Returns
        the reason cleared (0: none)."""
        reason = self.killed()
        if not reason or reason in LATCHED or pid_alive(self.pid("supervisor")):
            return 0
        return reason if C.cas64(self.kill_addr, reason, 0) == reason else 0

    def resume(self) -> int:
        """`mm resume`: clear whatever reason is set, latched ones included. Returns it."""
        reason = self.killed()
        if reason and C.cas64(self.kill_addr, reason, 0) == reason:
            return reason
        return 0

    # ---------------------------------------------------------------- pause (mm kill)
    def pause(self, reason: int = PAUSE_OPERATOR) -> bool:
        """Pause quoting (compare-and-swap from 0). True if this call set it."""
        if C.cas64(self.pause_addr, 0, reason) != 0:
            return False
        self.words[5] = time.perf_counter_ns()
        return True

    def paused(self) -> int:
        return C.load_acquire(self.pause_addr)

    def unpause(self) -> int:
        """Clear the pause; returns the reason that was set (0: none)."""
        reason = self.paused()
        if reason and C.cas64(self.pause_addr, reason, 0) == reason:
            return reason
        return 0

    # ---------------------------------------------------------------- per-role slots
    def _base(self, role: str) -> int:
        return ROLE_BASE + ROLE_WORDS * ROLES.index(role)

    def register(self, role: str, core: int = -1, idle_code: int = 0) -> np.ndarray:
        """Claim the role's slot for this process; returns its counters array (int64 view)."""
        b = self._base(role)
        holder = int(self.words[b])
        if holder and holder != os.getpid() and pid_alive(holder):
            raise SegmentError(f"role {role} is already running as pid {holder}")
        w = self.words
        w[b + 0] = os.getpid()
        w[b + 3] = core
        w[b + 4] = idle_code
        w[b + 5] = time.perf_counter_ns()
        w[b + 1] = time.perf_counter_ns()
        w[b + 2] = STATE_STARTING
        return self.counters(role)

    def counters(self, role: str) -> np.ndarray:
        b = _COUNTERS_OFF + COUNTERS * ROLES.index(role)
        return self.words[b:b + COUNTERS]

    def name_counters(self, role: str, names: list[str]) -> None:
        """Declare what the role's counters mean (index i is called names[i])."""
        if len(names) > COUNTERS:
            raise ValueError(f"at most {COUNTERS} counters per role")
        off = _NAMES_OFF + ROLES.index(role) * COUNTERS * NAME_BYTES
        area = self.seg.array[off: off + COUNTERS * NAME_BYTES]
        area[:] = 0
        for i, n in enumerate(names):
            raw = n.encode()[:NAME_BYTES]
            area[i * NAME_BYTES: i * NAME_BYTES + len(raw)] = np.frombuffer(raw, np.uint8)

    def counter_names(self, role: str) -> list[str]:
        off = _NAMES_OFF + ROLES.index(role) * COUNTERS * NAME_BYTES
        out = []
        for i in range(COUNTERS):
            raw = bytes(self.seg.array[off + i * NAME_BYTES: off + (i + 1) * NAME_BYTES]).rstrip(b"\0")
            if not raw:
                break
            out.append(raw.decode())
        return out

    def counter_values(self, role: str) -> dict[str, int]:
        vals = self.counters(role)
        return {n: int(vals[i]) for i, n in enumerate(self.counter_names(role))}

    def beat(self, role: str) -> None:
        self.words[self._base(role) + 1] = time.perf_counter_ns()

    def wake_addr(self, role: str) -> int:
        """Address of the role's wake word (engine/ring: MM_PARK_SHARED)."""
        return self.seg.addr + (self._base(role) + 6) * 8

    def heartbeat_addr(self, role: str) -> int:
        """Address of the role's heartbeat word (numba writes it with nb_store_release)."""
        return self.seg.addr + (self._base(role) + 1) * 8

    def set_state(self, role: str, state: int) -> None:
        self.words[self._base(role) + 2] = state

    def pid(self, role: str) -> int:
        return int(self.words[self._base(role)])

    def heartbeat_age_ns(self, role: str) -> int:
        beat = int(self.words[self._base(role) + 1])
        return time.perf_counter_ns() - beat if beat else -1

    def role_info(self, role: str) -> dict:
        b = self._base(role)
        w = self.words
        pid = int(w[b])
        return {"role": role, "pid": pid, "alive": pid_alive(pid),
                "state": STATE_NAMES[int(w[b + 2])] if 0 <= w[b + 2] < len(STATE_NAMES) else "?",
                "core": int(w[b + 3]), "idle": int(w[b + 4]),
                "heartbeat_age_ns": self.heartbeat_age_ns(role)}

    def deregister(self, role: str, state: int = STATE_STOPPED) -> None:
        b = self._base(role)
        if int(self.words[b]) == os.getpid():
            self.words[b + 2] = state

    def close(self) -> None:
        self.words = None
        self.seg.close()

    def unlink(self) -> None:
        self.seg.unlink()
