"""Producer and consumer loops that exercise a ring end to end, from numba and from Python.

Used by the concurrency tests (millions of records, checksums), by the ring benchmark, and by
the ring demo. Each record carries `value = mix(seq)`, so a consumer detects a torn, stale or
misplaced record, and sequence numbers show loss (gaps), duplication and reordering.
"""
from __future__ import annotations

import os
import struct
import time

import numpy as np
from numba import njit

from engine import _native as C
from engine.native import (nb_load_acquire, nb_now_ns, nb_ring_available, nb_ring_claim,
                           nb_ring_commit, nb_ring_read_index, nb_ring_release)
from engine.proc import pin
from engine.ring import header as L
from engine.ring.idle import NB_PARK, SPINS, STRATEGIES, YIELDS, nb_idle
from engine.ring.ring import Ring

# A 64-byte test record: the smallest slot the ring allows.
PROBE_DTYPE = np.dtype({"names": ["seq", "value", "ts"], "formats": ["i8", "i8", "i8"],
                        "offsets": [0, 8, 16], "itemsize": 64})


# The Python face's idle strategies: nb_idle's policy for a consumer written in Python. Given the
# consumer's ring, every empty step first releases the view of the last read (Ring.release): a
# consumer that took the whole ring and then waits must not leave its producer unable to push.
class IdleStrategy:
    name = "?"

    def __init__(self, ring=None) -> None:
        self.ring = ring             # the consumer's ring (None: nothing to release or poll)

    def idle(self, work: int) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def _release(self) -> None:
        if self.ring is not None:
            self.ring.release()


class BusySpin(IdleStrategy):
    """Spin; with the ring given, the spin runs in C until a record arrives (Ring.spin)."""
    name = "busy-spin"

    def idle(self, work: int) -> None:
        if work <= 0:
            if self.ring is not None:
                self.ring.spin()         # releases the last read first
            else:
                C.cpu_relax()


class Yielding(IdleStrategy):
    name = "yield"

    def __init__(self, ring=None) -> None:
        super().__init__(ring)
        self.n = 0

    def idle(self, work: int) -> None:
        if work > 0:
            self.n = 0
            return
        self._release()
        if self.n < SPINS:
            self.n += 1
            C.cpu_relax()
        else:
            os.sched_yield()


class Parking(IdleStrategy):
    """Spin, yield, then park on `ring` (the consumer's ring) for at most `timeout_ns`."""
    name = "park"

    def __init__(self, ring, timeout_ns: int = 50_000_000) -> None:
        super().__init__(ring)
        self.timeout_ns = timeout_ns
        self.n = 0

    def idle(self, work: int) -> None:
        if work > 0:
            self.n = 0
            return
        self._release()
        if self.n < SPINS:
            self.n += 1
            C.cpu_relax()
        elif self.n < SPINS + YIELDS:
            self.n += 1
            os.sched_yield()
        else:
            self.ring.park(self.timeout_ns)
            self.n = SPINS + YIELDS           # spin and yield again only after work


def make_idle(name: str, ring=None, park_timeout_ns: int = 50_000_000) -> IdleStrategy:
    """Build the strategy called `name` for the consumer of `ring` (`park` needs it; the others
    use it to release the last read and, busy-spin, to poll in C)."""
    if name == "busy-spin":
        return BusySpin(ring)
    if name == "yield":
        return Yielding(ring)
    if name == "park":
        if ring is None:
            raise ValueError("idle strategy 'park' needs the ring to park on")
        return Parking(ring, park_timeout_ns)
    raise ValueError(f"idle strategy must be one of {sorted(STRATEGIES)}, got {name!r}")


@njit(cache=True, inline="always")
def mix(x):
    """A cheap bijective scramble of the sequence number (splitmix64 finaliser)."""
    z = np.uint64(x) + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return np.int64(z ^ (z >> np.uint64(31)))


@njit(cache=True, nogil=True)
def nb_produce(hdr, slots, n, batch, pace_ns):
    """Offer n records (committing every `batch`), optionally paced one per `pace_ns`.
    Returns how many the ring accepted."""
    accepted = 0
    next_t = nb_now_ns()
    now = next_t
    for i in range(n):
        if pace_ns > 0:
            next_t += pace_ns
            while nb_now_ns() < next_t:
                pass
            now = nb_now_ns()
        elif accepted % batch == 0:
            now = nb_now_ns()   # unpaced: one clock read per published batch
        j = nb_ring_claim(hdr)
        if j >= 0:
            s = slots[j]["seq"]
            slots[j]["value"] = mix(s)
            slots[j]["ts"] = now
            accepted += 1
            if pace_ns > 0 or accepted % batch == 0:
                nb_ring_commit(hdr)
    nb_ring_commit(hdr)
    return accepted


@njit(cache=True, nogil=True)
def nb_consume(hdr, slots, n, idle_kind, park_timeout_ns, lat, timeout_ns):
    """Read until n sequence numbers are accounted for (received + counted drops).
    Returns (received, bad_values, out_of_order, gaps, last_seq). `lat` (len >= n) receives
    one-way latencies (now - ts) of received records."""
    state = np.zeros(1, np.int64)
    received = 0
    bad = 0
    disorder = 0
    gaps = 0
    last = -1
    deadline = nb_now_ns() + timeout_ns
    while True:
        k = nb_ring_available(hdr)
        if k > 0:
            now = nb_now_ns()
            base = nb_ring_read_index(hdr, 0)
            mask = slots.shape[0] - 1
            for i in range(k):
                rec = slots[(base + i) & mask]
                s = rec["seq"]
                if rec["value"] != mix(s):
                    bad += 1
                if s <= last:
                    disorder += 1
                elif s > last + 1:
                    gaps += s - last - 1
                last = s
                if received < lat.shape[0]:
                    lat[received] = now - rec["ts"]
                received += 1
            nb_ring_release(hdr, k)
        dropped = nb_load_acquire(hdr + L.OFF_DROPPED)
        if received + dropped >= n and nb_ring_available(hdr) == 0:
            break
        if nb_now_ns() > deadline:
            break
        nb_idle(idle_kind, state, hdr, k, park_timeout_ns)
    return received, bad, disorder, gaps, last


def mix_np(seqs: np.ndarray) -> np.ndarray:
    """numpy twin of `mix` for whole arrays (uint64 arithmetic wraps like the numba code)."""
    z = seqs.astype(np.uint64) + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return (z ^ (z >> np.uint64(31))).view(np.int64)


def py_produce(ring: Ring, n: int, batch: int = 1, pace_ns: int = 0) -> int:
    """Python-face producer. batch == 1: one `push` per record, the record packed with one
    struct call into a reused buffer (how the feed publishes); batch > 1: `push_many` of numpy
    batches. The sequence the ring will stamp is the producer's own header word, so checksums
    are precomputed in chunks outside the timed part and recomputed only after a refusal."""
    words = ring.seg.words
    accepted = 0
    next_t = time.perf_counter_ns()
    if batch == 1:
        rec = bytearray(PROBE_DTYPE.itemsize)
        pack = struct.Struct("<qq").pack_into
        push, hdr, now = C.push, ring.hdr, time.perf_counter_ns
        base, vals = 0, []
        for _ in range(n):
            seq = int(words[L.OFF_NEXT_SEQ // 8])
            if not base <= seq < base + len(vals):
                base, vals = seq, mix_np(np.arange(seq, seq + 4096)).tolist()
            value = vals[seq - base]
            if pace_ns:
                next_t += pace_ns
                while now() < next_t:
                    pass
            pack(rec, 8, value, now())
            accepted += push(hdr, rec) >= 0
        return accepted
    buf = np.zeros(batch, PROBE_DTYPE)
    for start in range(0, n, batch):
        m = min(batch, n - start)
        seq0 = int(words[L.OFF_NEXT_SEQ // 8])
        buf["value"][:m] = mix_np(np.arange(seq0, seq0 + m))
        if pace_ns:
            next_t += pace_ns
            while time.perf_counter_ns() < next_t:
                pass
        buf["ts"][:m] = time.perf_counter_ns()
        accepted += ring.push_many(buf[:m])
    return accepted


def py_consume(ring: Ring, n: int, idle: str, timeout_s: float = 60.0) -> dict:
    """Python-face consumer: a tight `available` poll, then `pop_many` of everything there,
    until n sequence numbers are accounted for. Checksums are verified in bulk at the end."""
    strategy = make_idle(idle, ring, park_timeout_ns=5_000_000)
    seqs = np.empty(n, np.int64)
    vals = np.empty(n, np.int64)
    lat = np.empty(n, np.int64)
    received = 0
    deadline = time.monotonic() + timeout_s
    words = ring.seg.words
    now = time.perf_counter_ns
    while True:
        if ring.available() <= 0:
            if received + int(words[L.OFF_DROPPED // 8]) >= n or time.monotonic() > deadline:
                break
            strategy.idle(0)
            continue
        t = now()              # the record is visible: one-way latency ends here
        view = ring.pop_many()
        k = len(view)
        end = min(received + k, n)
        lat[received:end] = t - view["ts"][:end - received]
        seqs[received:end] = view["seq"][:end - received]
        vals[received:end] = view["value"][:end - received]
        received += k
        strategy.idle(k)
    ring.release()
    got = min(received, n)
    bad = int(np.count_nonzero(vals[:got] != mix_np(seqs[:got])))
    return {"received": received, "bad": bad, "seqs": seqs[:got], "lat": lat[:got]}


def run_pair(instance: str, n: int, capacity: int, policy: str, idle: str, face: str = "numba",
             pace_ns: int = 0, batch: int = 64, timeout_s: float = 120.0,
             park_timeout_ns: int = 5_000_000, cores: tuple[int, int] | None = None) -> dict:
    """Producer and consumer in two real processes, one ring, both through the numba face or
    both through the Python face. Returns the consumer's accounting, the ring's counters and
    the producer's accepted count. A peer that hangs is killed at the deadline and its result
    is missing from the output (the caller's assertions then fail). `cores` pins
    (producer, consumer)."""
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    ring = Ring.create(instance, "probe", PROBE_DTYPE, capacity, policy)
    try:
        q = ctx.Queue()
        cons = ctx.Process(target=_consumer_main,
                           args=(instance, n, idle, q, timeout_s, face, park_timeout_ns,
                                 cores[1] if cores else -1))
        cons.start()
        _wait_role(ring, L.OFF_CONSUMER_PID, cons, 60)
        prod = ctx.Process(target=_producer_main,
                           args=(instance, n, batch, pace_ns, q, face, cores[0] if cores else -1))
        prod.start()
        results = {}
        deadline = time.monotonic() + timeout_s + 30
        while len(results) < 3 and time.monotonic() < deadline:
            try:
                k, v = q.get(timeout=1.0)
                results[k] = v
            except Exception:
                if not cons.is_alive() and not prod.is_alive() and q.empty():
                    break
        for p in (prod, cons):
            p.join(5)
            if p.is_alive():
                p.kill()
                p.join()
        out = dict(results.get("consumer", {}))
        out["accepted"] = results.get("producer")
        if results.get("producer_t0") and out.get("consumer_done_ns"):
            out["elapsed_ns"] = out["consumer_done_ns"] - results["producer_t0"]
        out["stats"] = ring.stats()
        return out
    finally:
        ring.close()
        ring.unlink()


def _wait_role(ring: Ring, off: int, proc, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while int(ring.seg.words[off // 8]) == 0:
        if not proc.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("ring peer did not attach")
        time.sleep(0.005)


def _consumer_main(instance, n, idle, q, timeout_s, face, park_timeout_ns, core):
    pin("ring consumer", core)
    ring = Ring.attach(instance, "probe", PROBE_DTYPE, role="consumer")
    if face == "numba":
        lat = np.empty(n, np.int64)
        received, bad, disorder, gaps, last = nb_consume(
            ring.hdr, ring.slots, n, STRATEGIES[idle], park_timeout_ns, lat, int(timeout_s * 1e9))
        lat = lat[:received]
    else:
        r = py_consume(ring, n, idle, timeout_s)
        seqs, lat, received, bad = r["seqs"], r["lat"], r["received"], r["bad"]
        d = np.diff(seqs)
        disorder = int(np.count_nonzero(d <= 0))
        gaps = int((d[d > 1] - 1).sum()) + (int(seqs[0]) if len(seqs) else 0)
        last = int(seqs[-1]) if len(seqs) else -1
    q.put(("consumer", {"received": int(received), "bad": int(bad), "disorder": int(disorder),
                        "gaps": int(gaps), "last": int(last), "lat": lat,
                        "consumer_done_ns": time.perf_counter_ns()}))
    ring.close()


def _producer_main(instance, n, batch, pace_ns, q, face, core):
    pin("ring producer", core)
    ring = Ring.attach(instance, "probe", PROBE_DTYPE, role="producer")
    t0 = time.perf_counter_ns()
    if face == "numba":
        accepted = int(nb_produce(ring.hdr, ring.slots, n, batch, pace_ns))
    else:
        accepted = int(py_produce(ring, n, batch, pace_ns))
    q.put(("producer", accepted))
    q.put(("producer_t0", t0))
    ring.close()


def warm() -> None:
    """Compile (or load from cache) the numba loops before timing anything."""
    inst = f"warm{os.getpid()}"
    hdr_ring = Ring.create(inst, "probe", PROBE_DTYPE, 8, "drop")
    try:
        nb_produce(hdr_ring.hdr, hdr_ring.slots, 4, 1, 0)
        nb_consume(hdr_ring.hdr, hdr_ring.slots, 4, NB_PARK, 1000, np.empty(4, np.int64), 10**8)
    finally:
        hdr_ring.close()
        hdr_ring.unlink()
