"""The shared-memory SPSC ring, Python face.

One producer process and one consumer process share a POSIX segment: a 2 KiB header (layout in
native/mm_ring.h) followed by `capacity` fixed-size record slots. The protocol itself (claim,
commit with release ordering, acquire reads, park/wake) is implemented once, in C; this class
maps the segment, validates it, and hands numpy views of the slots to Python code. numba code
uses the same header address with the nb_ring_* functions of engine.native.

Reads are zero-copy: `pop()` / `pop_many()` return views into the slots that stay valid until
the consumer's next read call or wait on this ring (`pop`, `pop_many`, `spin`, `park`,
`arm_doorbell`, `release`, or an idle strategy's empty-poll step): the slots are released to
the producer then, Disruptor style. Waiting always releases first, so a consumer that took the
whole ring can never leave its producer unable to push while it waits for more.
"""
from __future__ import annotations

import mmap
import os
import socket
import time
from typing import Literal

import numpy as np

from engine import _native as C
from engine.ring import header as L
from engine.ring.segment import Segment, SegmentError, pid_alive, segment_name, unlink

Role = Literal["producer", "consumer"]


class RingError(SegmentError):
    """The ring cannot be created or attached as asked; the message names the mismatch."""


class Ring:
    """A mapped ring. Build it with `create`, `attach` or `open`, never directly."""

    def __init__(self, seg: Segment, dtype: np.dtype, role: Role | None, spins: bool = False,
                 keep_unread: bool = False):
        self.seg = seg
        self.name = seg.shm_name
        self.dtype = dtype
        self.role = role
        self.hdr = seg.addr
        self.capacity = int(self._word(L.OFF_CAPACITY))
        self.slots = np.frombuffer(seg.buf, dtype=dtype, count=self.capacity, offset=L.HEADER_SIZE)
        self._pending = 0            # records handed out by the last read, released on the next
        self._doorbell: socket.socket | None = None
        # No page faults or swap on the hot path: lock this process's mapping where permitted
        # (RLIMIT_MEMLOCK, CAP_IPC_LOCK); a refusal only costs latency, so it is not an error.
        self.locked = C.lock(seg.addr, seg.size) == 0
        if role:
            self._register(role, spins, keep_unread)

    # ------------------------------------------------------------------ construction
    @classmethod
    def create(cls, instance: str, name: str, dtype: np.dtype, capacity: int,
               policy: str = "drop", block_timeout_ns: int = 0, role: Role | None = None,
               spins: bool = False) -> "Ring":
        """Create the ring segment (mode 0600). A leftover segment whose registered processes are
        all dead is replaced (with a message on stderr); one still in use is an error."""
        dtype = np.dtype(dtype)
        L.check_record_dtype(dtype)
        if capacity < 2 or capacity & (capacity - 1):
            raise RingError(f"ring capacity must be a power of two >= 2, got {capacity}")
        if policy not in L.POLICIES:
            raise RingError(f"ring policy must be one of {sorted(L.POLICIES)}, got {policy!r}")
        shm_name = segment_name(instance, name)
        size = L.HEADER_SIZE + capacity * dtype.itemsize
        try:
            seg = Segment.create(shm_name, size)
        except SegmentError:
            _replace_if_stale(shm_name)
            seg = Segment.create(shm_name, size)
        descr = L.dtype_description(dtype)
        seg.array[::mmap.PAGESIZE] = 0      # pre-fault every page now, not on the first records
        w = seg.words
        w[L.OFF_CAPACITY // 8] = capacity
        w[L.OFF_MASK // 8] = capacity - 1
        w[L.OFF_BLOCK_TIMEOUT // 8] = block_timeout_ns
        w[L.OFF_CREATED_NS // 8] = time.perf_counter_ns()
        w[L.OFF_DTYPE_HASH // 8] = np.uint64(L.fnv1a64(descr)).view(np.int64)
        u32 = seg.array[:L.HEADER_SIZE].view(np.uint32)
        u32[L.OFF_VERSION // 4] = L.VERSION
        u32[L.OFF_RECORD_SIZE // 4] = dtype.itemsize
        u32[L.OFF_POLICY // 4] = L.POLICIES[policy]
        seg.array[L.OFF_DTYPE_DESCR:L.OFF_DTYPE_DESCR + len(descr)] = np.frombuffer(descr, np.uint8)
        # Magic last, with release: an attacher that sees it sees a complete header.
        C.store_release(seg.addr + L.OFF_MAGIC, np.uint64(L.MAGIC).view(np.int64).item())
        return cls(seg, dtype, role, spins)

    @classmethod
    def attach(cls, instance: str, name: str, dtype: np.dtype, role: Role | None = None,
               capacity: int | None = None, wait_s: float = 0.0, spins: bool = False,
               keep_unread: bool = False) -> "Ring":
        """Attach to an existing ring, checking magic, layout version, record dtype and (if
        given) capacity. `role` registers this process as the ring's producer or consumer."""
        dtype = np.dtype(dtype)
        shm_name = segment_name(instance, name)
        seg = Segment.attach(shm_name, wait_s=wait_s)
        try:
            _validate(seg, dtype, capacity, wait_s)
            return cls(seg, dtype, role, spins, keep_unread)
        except Exception:
            seg.close()
            raise

    @classmethod
    def open(cls, instance: str, name: str, dtype: np.dtype, capacity: int, policy: str = "drop",
             role: Role | None = None, block_timeout_ns: int = 0, spins: bool = False,
             keep_unread: bool = False) -> "Ring":
        """Attach if the ring exists, else create it: processes may start in any order.
        `spins`: this consumer never parks (busy-spin), so the producer's commit can skip the
        park handshake's full fence. `keep_unread`: a (re)starting consumer reads what its
        predecessor left unread instead of skipping it (a record of history, not state)."""
        try:
            return cls.attach(instance, name, dtype, role=role, capacity=capacity, spins=spins,
                              keep_unread=keep_unread)
        except RingError:
            raise
        except SegmentError:
            try:
                return cls.create(instance, name, dtype, capacity, policy, block_timeout_ns, role,
                                  spins)
            except SegmentError:  # lost a creation race: the other process made it first
                return cls.attach(instance, name, dtype, role=role, capacity=capacity, wait_s=1.0,
                                  spins=spins, keep_unread=keep_unread)

    # ------------------------------------------------------------------ producer
    def push(self, record) -> bool:
        """Copy one record (a buffer of exactly one slot, e.g. a 1-element array) into the ring
        and publish it. False when the ring refused it (full under drop policy, or blocked past
        the timeout): that refusal is counted and leaves a sequence gap."""
        return C.push(self.hdr, record) >= 0

    def push_many(self, records: np.ndarray) -> int:
        """Copy a contiguous array of records in and publish them with one release store.
        Returns how many went in; the rest were refused and counted."""
        return C.push_many(self.hdr, records, len(records))

    def claim(self) -> int:
        """Reserve the next slot for in-place writing: its index into `slots`, or -1 (full).
        Write the fields (not `seq`, already stamped), then `commit()` to publish."""
        return C.claim(self.hdr)

    def commit(self) -> int:
        """Publish every claimed slot (one release store); wake a parked consumer."""
        return C.commit(self.hdr)

    # ------------------------------------------------------------------ consumer
    def writer(self) -> RecordWriter:
        """The producer's packing face (RecordWriter)."""
        return RecordWriter(self)

    def reader(self) -> RecordReader:
        """The consumer's unpacking face (RecordReader)."""
        return RecordReader(self)

    def pop(self) -> np.ndarray | None:
        """The next record as a 1-element view, or None. Valid until the next read call."""
        self.release()
        if C.available(self.hdr) <= 0:
            return None
        i = self._read_index()
        self._pending = 1
        return self.slots[i:i + 1]

    def pop_many(self, max_records: int = 1 << 30) -> np.ndarray:
        """Every available record up to `max_records`, as one view (contiguous, so it stops at
        the end of the slot array: call again for the rest). Valid until the next read call."""
        self.release()
        n = C.available(self.hdr)
        if n <= 0:
            return self.slots[:0]
        i = self._read_index()
        n = min(n, max_records, self.capacity - i)
        self._pending = n
        return self.slots[i:i + n]

    def release(self) -> None:
        """Give the slots of the last read back to the producer now."""
        if self._pending:
            C.release(self.hdr, self._pending)
            self._pending = 0

    def available(self) -> int:
        return C.available(self.hdr) - self._pending

    def spin(self, max_spins: int = 1000) -> int:
        """Release the last read, then busy-wait in C until a record is available (or
        `max_spins` pauses, a few tens of microseconds); returns how many are available now.
        The cheapest way for Python code to notice a record: no interpreter step between
        polls."""
        self.release()
        return C.spin(self.hdr, 0, max_spins)

    def park(self, timeout_ns: int = -1) -> int:
        """Sleep in futex_wait until the producer publishes or `timeout_ns` passes."""
        self.release()
        return C.park(self.hdr, timeout_ns)

    def doorbell(self) -> socket.socket:
        """A non-blocking datagram socket the producer writes to when this (parked) consumer must
        wake: register its fileno with an event loop, then `arm_doorbell()` before sleeping."""
        if self._doorbell is None:
            name = f"mm{os.getpid()}{self.name}".encode()[:L.DOORBELL_MAX]
            s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            s.bind(b"\0" + name)
            s.setblocking(False)
            self.seg.array[L.OFF_DOORBELL:L.OFF_DOORBELL + len(name)] = np.frombuffer(name, np.uint8)
            u32 = self.seg.array[:L.HEADER_SIZE].view(np.uint32)
            C.fence()
            u32[L.OFF_DOORBELL_LEN // 4] = len(name)
            self._doorbell = s
        return self._doorbell

    def arm_doorbell(self) -> int:
        """Announce a doorbell park; returns records available (0: sleep on the doorbell)."""
        self.release()
        return C.arm(self.hdr, L.PARK_DOORBELL)

    def disarm(self) -> None:
        C.disarm(self.hdr)

    def _read_index(self) -> int:
        return (int(self._word(L.OFF_CONSUMER_POS)) & (self.capacity - 1))

    # ------------------------------------------------------------------ liveness and stats
    def beat(self) -> None:
        """Record this side's heartbeat (call from the role's duty cycle, not per record)."""
        off = L.OFF_PRODUCER_BEAT if self.role == "producer" else L.OFF_CONSUMER_BEAT
        self.seg.words[off // 8] = time.perf_counter_ns()

    def stats(self) -> dict[str, int]:
        w = self.seg.words
        g = lambda off: int(w[off // 8])  # noqa: E731
        return {
            "capacity": self.capacity, "written": g(L.OFF_WRITTEN), "read": g(L.OFF_READ),
            "depth": g(L.OFF_PRODUCER_POS) - g(L.OFF_CONSUMER_POS), "dropped": g(L.OFF_DROPPED),
            "blocked": g(L.OFF_BLOCKED), "wakes": g(L.OFF_WAKES), "parks": g(L.OFF_PARKS),
            "skipped": g(L.OFF_SKIPPED),
            "producer_pid": g(L.OFF_PRODUCER_PID), "consumer_pid": g(L.OFF_CONSUMER_PID),
            "producer_beat_ns": g(L.OFF_PRODUCER_BEAT), "consumer_beat_ns": g(L.OFF_CONSUMER_BEAT),
        }

    @property
    def consumer_parked(self) -> bool:
        """True while the consumer sleeps armed on this ring (the next publish wakes it)."""
        return int(self.seg.array[:L.HEADER_SIZE].view(np.uint32)[L.OFF_PARKED // 4]) != 0

    @property
    def policy(self) -> str:
        code = int(self.seg.array[:L.HEADER_SIZE].view(np.uint32)[L.OFF_POLICY // 4])
        return {v: k for k, v in L.POLICIES.items()}[code]

    def close(self) -> None:
        """Release pending reads, deregister this process's role, and unmap."""
        if self.seg.words is None:
            return
        self.release()
        if self.role:
            off = L.OFF_PRODUCER_PID if self.role == "producer" else L.OFF_CONSUMER_PID
            if self._word(off) == os.getpid():
                self.seg.words[off // 8] = 0
        if self._doorbell is not None:
            self.seg.array[:L.HEADER_SIZE].view(np.uint32)[L.OFF_DOORBELL_LEN // 4] = 0
            self._doorbell.close()
            self._doorbell = None
        self.slots = None
        self.seg.close()

    def unlink(self) -> None:
        """Remove the segment name (mappings stay valid until closed)."""
        unlink(self.name)

    def __enter__(self) -> "Ring":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _word(self, off: int) -> int:
        return int(self.seg.words[off // 8])

    def _register(self, role: Role, spins: bool, keep_unread: bool = False) -> None:
        """Claim the ring's producer or consumer end for this process. A producer that takes
        over from a dead one drops what that one claimed but never committed (publishing it
        would hand out an old lap's record with a fresh sequence number). A consumer that
        (re)starts skips what is unread: it was meant for the consumer before it, and is
        not fresh; whoever feeds it state (the sender's POSITION + RESUME to a new quoter)
        does so after this registration is visible."""
        off = L.OFF_PRODUCER_PID if role == "producer" else L.OFF_CONSUMER_PID
        holder = self._word(off)
        if holder and holder != os.getpid() and pid_alive(holder):
            raise RingError(f"ring {self.name} already has a live {role} (pid {holder}); "
                            f"a ring has exactly one {role}")
        w = self.seg.words
        if role == "producer":
            w[L.OFF_CLAIMED // 8] = 0
        else:
            w[L.OFF_CONSUMER_SPINS // 8] = int(spins)
            n = 0 if keep_unread else C.available(self.hdr)
            if n > 0:
                C.release(self.hdr, n)
                w[L.OFF_SKIPPED // 8] += n
        C.store_release(self.hdr + off, os.getpid())     # after the skip: see the docstring
        self.beat()

    def set_wake_target(self, addr: int) -> None:
        """Producer: the address (in this process) of the shared wake word the consumer sleeps
        on when it parks on several rings at once (Control.wake_addr)."""
        self.seg.words[L.OFF_WAKE_ADDR // 8] = addr

    def consumer_pid(self) -> int:
        """The registered consumer (0: none yet); its records start after it appeared here."""
        return C.load_acquire(self.hdr + L.OFF_CONSUMER_PID)


class RecordWriter:
    """The producer's hot-path face: `put(*fields)` packs one record (every field after `seq`,
    in records.field_order) straight into a claimed slot with one struct call; `commit()`
    publishes every put record with one release store. `put` returns False when the ring has
    no room (never blocks: the caller decides to count, keep or drop)."""

    def __init__(self, ring: "Ring"):
        from engine.records import packer

        self.ring = ring
        self._hdr = ring.hdr
        self._mv = memoryview(ring.slots.view(np.uint8).reshape(-1))
        self._size = ring.dtype.itemsize
        self._pack = packer(ring.dtype).pack_into

    def put(self, *fields) -> bool:
        i = C.try_claim(self._hdr)
        if i < 0:
            return False
        self._pack(self._mv, i * self._size + 8, *fields)
        return True

    def commit(self) -> None:
        C.commit(self._hdr)


class RecordReader:
    """The consumer's hot-path face: `take(n)` gives the next batch (up to n records) as field
    tuples, `seq` first, unpacked by one C iterator over the slots; the slots go back to the
    producer on the next take (or an idle step: see the module docstring)."""

    def __init__(self, ring: "Ring"):
        from engine.records import packer

        self.ring = ring
        self._iter = packer(ring.dtype, with_seq=True).iter_unpack

    def take(self, max_records: int):
        return self._iter(self.ring.pop_many(max_records))


def _validate(seg: Segment, dtype: np.dtype, capacity: int | None, wait_s: float) -> None:
    """Check an attached header against what the attacher expects; RingError names the field."""
    magic = np.uint64(L.MAGIC).view(np.int64).item()
    deadline = time.monotonic() + max(wait_s, 0.5)  # a creator may still be writing the header
    while seg.size < L.HEADER_SIZE or C.load_acquire(seg.addr + L.OFF_MAGIC) != magic:
        if time.monotonic() >= deadline:
            if seg.size < L.HEADER_SIZE:
                raise RingError(f"{seg.shm_name}: segment too small to be a ring")
            found = C.load_acquire(seg.addr + L.OFF_MAGIC) & 0xFFFFFFFFFFFFFFFF
            raise RingError(f"{seg.shm_name}: bad magic {found:#x} (expected {L.MAGIC:#x}): "
                            f"not a ring segment or not initialised")
        time.sleep(0.005)
    u32 = seg.array[:L.HEADER_SIZE].view(np.uint32)
    version = int(u32[L.OFF_VERSION // 4])
    if version != L.VERSION:
        raise RingError(f"{seg.shm_name}: layout version {version}, this build speaks {L.VERSION}")
    rsize = int(u32[L.OFF_RECORD_SIZE // 4])
    if rsize != dtype.itemsize:
        raise RingError(f"{seg.shm_name}: record size {rsize} bytes, attacher expects "
                        f"{dtype.itemsize}")
    descr = bytes(seg.array[L.OFF_DTYPE_DESCR:L.OFF_DTYPE_DESCR + L.DTYPE_DESCR_MAX]).rstrip(b"\0")
    want = L.dtype_description(dtype)
    if descr != want:
        raise RingError(f"{seg.shm_name}: record dtype mismatch:\n  segment:  {descr.decode()}\n"
                        f"  attacher: {want.decode()}")
    cap = int(seg.words[L.OFF_CAPACITY // 8])
    if capacity is not None and cap != capacity:
        raise RingError(f"{seg.shm_name}: capacity {cap}, attacher expects {capacity}")
    if seg.size < L.HEADER_SIZE + cap * rsize:
        raise RingError(f"{seg.shm_name}: segment is {seg.size} bytes, header says "
                        f"{L.HEADER_SIZE + cap * rsize}")


def _replace_if_stale(shm_name: str) -> None:
    """An existing segment blocks creation: unlink it if every process it names is dead."""
    seg = Segment.attach(shm_name)
    try:
        pids = {}
        if seg.size >= L.HEADER_SIZE:
            pids = {"producer": int(seg.words[L.OFF_PRODUCER_PID // 8]),
                    "consumer": int(seg.words[L.OFF_CONSUMER_PID // 8])}
        live = {r: p for r, p in pids.items() if p and p != os.getpid() and pid_alive(p)}
    finally:
        seg.close()
    if live:
        who = ", ".join(f"{r} pid {p}" for r, p in live.items())
        raise RingError(f"ring {shm_name} exists and is in use ({who}); stop that engine or "
                        f"choose another instance name")
    from engine.proc import log
    log("ring", f"replacing stale ring segment {shm_name} (its processes "
                f"{pids or 'unknown'} are gone)")
    unlink(shm_name)
