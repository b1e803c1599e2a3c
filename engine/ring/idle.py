"""Idle strategies (Agrona IdleStrategy style): how a role waits when there is nothing to do,
chosen by name in config and published in the control segment's idle word (IDLE_WORDS).

  busy-spin   : a CPU-relax pause per empty poll, the poll itself in C. Cheapest hand-off
                (0.15-1 us here); only on a core the process owns (isolcpus), never beside
                another busy process.
  yield       : spin a little, then sched_yield. For shared cores under light contention.
  park        : spin, yield, then sleep in futex_wait on the ring's producer position, woken by
                the producer only when it sees the consumer parked (the fast path stays
                syscall-free). A cross-core wake costs 25-45 us here; the default on small boxes.
  epoll       : the event loop sleeps in the kernel until one of its sockets wakes it.
  sleep       : a plain Python loop sleeps a fixed linger after an empty turn (engine/agent.py
                WorkAgent): never on a ring's futex, so its producer has no sleeper to wake.

Where each role waits (the runner, engine/agent.py, publishes which):
  quoter  its compiled loop calls nb_idle_warm below between turns: no Python per turn.
  sender  in its event loop: park = the order ring's doorbell beside the order socket (epoll);
          busy-spin = the ring and the socket polled in C (spin_fd).
  feed    epoll: its sockets wake it (it never spins: engine/core_layout.py).
  journal sleep: records gather in the ring while it lingers (engine/journal/agent.py).
A Python consumer with a loop of its own (the ring's Python face in tests/support/ring_exercise.py)
runs the same policy over Ring.spin and Ring.park.
"""
from __future__ import annotations

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
# The control segment's idle word: the ring strategies' codes, the event loop's wait, and a
# plain loop's sleep.
IDLE_WORDS = {**STRATEGIES, "epoll": 3, "sleep": 4}


def nb_idle_state() -> np.ndarray:
    """State array for nb_idle / nb_idle_warm: [empty polls so far, time of the last work]."""
    return np.zeros(2, dtype=np.int64)


@njit(cache=True, nogil=True)
def nb_idle(kind: int, state: np.ndarray, hdr: int, work: int, park_timeout_ns: int) -> None:
    """numba duty-cycle idle over one ring (`hdr`, the ring to park on): nb_idle_warm without
    the warm window."""
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
    after it. The spin and the yields follow work only: back from a park with nothing to do it
    parks again. It parks on both rings through the consumer's shared wake word when `wake` is
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
        # Back from a park: spin and yield again only after work. A park that timed out (the
        # timers' turn, 1,000 a second for the quoter) parks again at once; it used to spin
        # and yield first, ~90 us of CPU per wake-up on the core the feed shares.
        state[0] = SPINS + YIELDS
