"""A consumer that took the whole ring and then waits must give the slots back.

The trap (found under load in test_python_face_batches): the view of the last `pop_many` is
released only by the next read call, and an idle strategy that spins or yields without reading
kept it forever, so the producer could not push and the pair hung. Allowed outcome, for every
idle strategy: after one empty idle step, the producer can push a whole ring again.
"""
import numpy as np
import pytest

from engine.records import FILL_DTYPE
from engine.ring import Ring
from tests.support.ring_exercise import make_idle

CAP = 8


@pytest.mark.parametrize("idle", ["busy-spin", "yield", "park"])
def test_idle_releases_a_consumer_that_holds_the_whole_ring(instance, idle):
    ring = Ring.create(instance, "r", FILL_DTYPE, CAP, "drop")
    try:
        rec = np.zeros(CAP, FILL_DTYPE)
        assert ring.push_many(rec) == CAP
        view = ring.pop_many()
        assert len(view) == CAP                 # the consumer holds every slot
        assert ring.push(rec[:1]) is False      # so the producer cannot push: expected
        strategy = make_idle(idle, ring, park_timeout_ns=1_000)
        strategy.idle(0)                        # nothing new: wait one step
        assert ring.push_many(rec) == CAP       # ... and every slot is free again
        assert ring.stats()["dropped"] == 1
    finally:
        ring.close()
        ring.unlink()


def test_spin_releases_first(instance):
    ring = Ring.create(instance, "r", FILL_DTYPE, CAP, "drop")
    try:
        rec = np.zeros(CAP, FILL_DTYPE)
        ring.push_many(rec)
        assert len(ring.pop_many()) == CAP
        assert ring.spin(max_spins=10) == 0     # released, nothing new
        assert ring.push_many(rec) == CAP
        assert ring.spin(max_spins=10) == CAP
    finally:
        ring.close()
        ring.unlink()


def test_view_stays_valid_until_the_next_read(instance):
    """The zero-copy contract itself: a read does not release its own records."""
    ring = Ring.create(instance, "r", FILL_DTYPE, CAP, "drop")
    try:
        rec = np.zeros(CAP, FILL_DTYPE)
        rec["order_id"] = np.arange(CAP)
        ring.push_many(rec)
        view = ring.pop_many(4)
        assert ring.push_many(rec[:4]) == 0     # slots still held by the view
        assert view["order_id"].tolist() == [0, 1, 2, 3]
        rest = ring.pop_many()                  # releases the first four
        assert rest["order_id"].tolist() == [4, 5, 6, 7]
        assert ring.push_many(rec[:4]) == 4
    finally:
        ring.close()
        ring.unlink()
