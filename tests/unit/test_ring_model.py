"""Property tests: any sequence of ring operations behaves like a bounded FIFO model."""
from collections import deque

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.ring import Ring
from tests.support.ring_exercise import PROBE_DTYPE

OPS = st.lists(
    st.one_of(
        st.tuples(st.just("push"), st.integers(0, 1 << 40)),
        st.tuples(st.just("push_many"), st.lists(st.integers(0, 1 << 40), min_size=1, max_size=20)),
        st.tuples(st.just("claim"), st.lists(st.integers(0, 1 << 40), min_size=1, max_size=5)),
        st.tuples(st.just("pop"), st.just(0)),
        st.tuples(st.just("pop_many"), st.integers(1, 40)),
    ),
    max_size=120,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(capacity_log2=st.integers(1, 4), policy=st.sampled_from(["drop", "block"]), ops=OPS)
def test_ring_matches_fifo_model(instance, capacity_log2, policy, ops):
    cap = 1 << capacity_log2
    # One process plays both roles, so a blocked producer could never be released: give the
    # block policy a 1 ms timeout, after which a refusal is counted exactly like a drop.
    ring = Ring.create(instance, "model", PROBE_DTYPE, cap, policy, block_timeout_ns=1_000_000)
    cons = Ring.attach(instance, "model", PROBE_DTYPE)
    model: deque = deque()
    next_seq = 0
    dropped = 0
    pending = 0  # records handed out by the last read: their slots return on the next read
    try:
        for op, arg in ops:
            if op == "push":
                rec = np.zeros(1, PROBE_DTYPE)
                rec["value"] = arg
                ok = ring.push(rec)
                assert ok == (len(model) + pending < cap)
                if ok:
                    model.append((next_seq, arg))
                else:
                    dropped += 1
                next_seq += 1
            elif op == "push_many":
                recs = np.zeros(len(arg), PROBE_DTYPE)
                recs["value"] = arg
                n = ring.push_many(recs)
                assert n == min(len(arg), cap - len(model) - pending)
                for v in arg[:n]:
                    model.append((next_seq, v))
                    next_seq += 1
                dropped += len(arg) - n
                next_seq += len(arg) - n
            elif op == "claim":
                for v in arg:
                    i = ring.claim()
                    if i < 0:
                        assert len(model) + pending == cap
                        dropped += 1
                    else:
                        assert ring.slots[i]["seq"] == next_seq
                        ring.slots[i]["value"] = v
                        model.append((next_seq, v))
                    next_seq += 1
                ring.commit()
            elif op == "pop":
                got = cons.pop()
                pending = 0 if got is None else 1
                if not model:
                    assert got is None
                else:
                    want = model.popleft()
                    assert (int(got["seq"][0]), int(got["value"][0])) == want
            else:
                view = cons.pop_many(arg)
                pending = len(view)
                assert len(view) <= min(arg, len(model))
                assert len(view) > 0 or not model
                for rec in view:
                    assert (int(rec["seq"]), int(rec["value"])) == model.popleft()
            assert ring.stats()["dropped"] == dropped
        cons.release()
        assert cons.available() == len(model)
    finally:
        cons.close()
        ring.close()
        ring.unlink()
