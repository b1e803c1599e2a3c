"""The parking consumer's idle policy (engine/ring/idle.py): after work it spins, then yields,
then parks; back from a park with nothing to do it parks again at once (a park that timed out
is the timers' turn, a thousand a second for the quoter, not a sign that an event is near)."""
import time

from engine.records import FILL_DTYPE
from engine.ring import Ring
from engine.ring.idle import NB_PARK, SPINS, YIELDS, nb_idle, nb_idle_state

TIMEOUT_NS = 2_000_000


def _timed(state, hdr, work=0) -> int:
    t0 = time.monotonic_ns()
    nb_idle(NB_PARK, state, hdr, work, TIMEOUT_NS)
    return time.monotonic_ns() - t0


def test_spin_and_yield_follow_work_and_a_timed_out_park_parks_again(instance):
    ring = Ring.create(instance, "r", FILL_DTYPE, 16, "block")
    consumer = Ring.attach(instance, "r", FILL_DTYPE, role="consumer")
    try:
        state = nb_idle_state()
        _timed(state, consumer.hdr, work=1)
        assert state[0] == 0
        for _ in range(SPINS + YIELDS):             # spin, then yield: no park yet
            _timed(state, consumer.hdr)
        assert state[0] == SPINS + YIELDS
        # the park: nothing comes, it waits out its timeout
        assert _timed(state, consumer.hdr) >= TIMEOUT_NS // 2
        # back from it with nothing to do: the next call parks again, it does not spin
        assert state[0] == SPINS + YIELDS
        assert _timed(state, consumer.hdr) >= TIMEOUT_NS // 2
        _timed(state, consumer.hdr, work=1)         # work again: the warm spin comes back
        assert state[0] == 0
        assert _timed(state, consumer.hdr) < TIMEOUT_NS // 2
    finally:
        consumer.close()
        ring.close()
