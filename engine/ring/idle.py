"""Idle strategies (Agrona IdleStrategy style), chosen by name in config.

Contract: the role's duty cycle is `while running: idle.idle(agent.do_work())`; `idle(n)` with
n > 0 resets the strategy, n == 0 backs off one step. Given the consumer's ring, every empty
step first releases the view of the last read (Ring.release): a consumer that took the whole
ring and then waits must not leave its producer unable to push.

  busy-spin   : a CPU-relax pause per empty poll. Cheapest hand-off (0.15-1 us here); only on a
                core the process owns (isolcpus), never beside another busy process.
  yield       : spin a little, then sched_yield. For shared cores under light contention.
  park        : spin, yield, then sleep in futex_wait on the ring's producer position, woken by
                the producer only when it sees the consumer parked (the fast path stays
                syscall-free). A cross-core wake costs 25-45 us here; the default on small boxes.

The numba face (`NB_*` codes, `nb_idle`) is the same policy for loops that run in nopython mode.
"""
from __future__ import annotations

import os

import numpy as np
from numba import njit

from engine import _native as C
from engine.native import (
    nb_cpu_relax, nb_load_acquire, nb_park2, nb_ring_park, nb_ring_spin, nb_yield,
)

SPINS = 200        # empty polls spent spinning before yielding
YIELDS = 50        # sched_yield calls before parking
SPIN_BURST = 128   # busy-spin: pauses per C-level poll burst before the caller looks elsewhere

NB_BUSY_SPIN, NB_YIELD, NB_PARK = 0, 1, 2
_OFF_WAKE_ADDR = C.MM_OFF_WAKE_ADDR
STRATEGIES = {"busy-spin": NB_BUSY_SPIN, "yield": NB_YIELD, "park": NB_PARK}


class IdleStrategy:
    name = "?"

    def __init__(self, ring=None) -> None:
        self.ring = ring             # the consumer's ring (None: nothing to release or poll)

    def idle(self, work: int) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def _release(self) -> None:
        if self.ring is not None:
            self.ring.release()

    def reset(self) -> None:
        pass


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
            self.n = 0


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


def nb_idle_state() -> np.ndarray:
    """State array for nb_idle / nb_idle_warm: [empty polls so far, time of the last work]."""
    return np.zeros(2, dtype=np.int64)


@njit(cache=True, nogil=True)
def nb_idle(kind: int, state: np.ndarray, hdr: int, work: int, park_timeout_ns: int) -> None:
    """numba duty-cycle idle: same policy as the Python classes; `hdr` is the ring to park on."""
    nb_idle_warm(kind, state, hdr, 0, 0, work, park_timeout_ns, 0, 0)


@njit(cache=True, nogil=True)
def _wakes_shared(hdr: int) -> bool:
    """The ring's producer named the wake word to bump (Ring.set_wake_target): until it has, a
    shared park would not hear it, so the consumer parks on the first ring alone."""
    return nb_load_acquire(hdr + _OFF_WAKE_ADDR) != 0


@njit(cache=True, nogil=True)
def nb_idle_warm(kind: int, state: np.ndarray, hdr: int, hdr2: int, wake: int, work: int,
                 park_timeout_ns: int, warm_ns: int, now: int) -> None:
    """nb_idle for a consumer of up to two rings that stays warm between sparse events: `park`
    spins, then yields (giving the core to any runnable neighbour) until `warm_ns` have passed
    since the last work, and only then parks, so an event that comes within warm_ns of the
    previous one finds the process running instead of paying the wake-up and the cold caches
    after it. It parks on both rings through the consumer's shared wake word when `wake` is
    given (either producer wakes it), else on `hdr`. busy-spin polls `hdr` in C."""
    if work > 0:
        state[0] = 0
        state[1] = now
        return
    n = state[0]
    if kind == NB_BUSY_SPIN:
        nb_ring_spin(hdr, 0, SPIN_BURST)  # poll in C: no loop overhead between looks
    elif n < SPINS:
        state[0] = n + 1
        nb_cpu_relax()
    elif kind == NB_YIELD or n < SPINS + YIELDS or now - state[1] < warm_ns:
        state[0] = n + 1
        nb_yield()
    else:
        if wake != 0 and _wakes_shared(hdr) and _wakes_shared(hdr2):
            nb_park2(hdr, hdr2, wake, park_timeout_ns)
        else:
            nb_ring_park(hdr, park_timeout_ns)
        state[0] = 0
