"""A ring outlives its processes (systemd restarts one unit at a time): what a dead producer
claimed but never committed is never published; what was left unread when a consumer starts
is not replayed to it as fresh; a consumer alive across a producer restart loses nothing; and a
consumer that only spins lets the producer skip the park handshake without ever losing a
record or a wake-up when it parks after all."""
import multiprocessing as mp
import os
import time

import numpy as np

from engine.records import FILL_DTYPE
from engine.ring import Ring
from engine.ring import header as L


def _die_after_claiming(instance):
    r = Ring.attach(instance, "r", FILL_DTYPE, role="producer")
    rec = np.zeros(3, FILL_DTYPE)
    rec["order_id"] = [1, 2, 3]
    r.push_many(rec)                      # published, never read
    i = r.claim()                         # claimed, never committed
    r.slots[i]["order_id"] = 666
    os._exit(0)                           # dies without closing anything


def test_a_restarted_producer_publishes_nothing_stale(instance):
    ring = Ring.create(instance, "r", FILL_DTYPE, 16, "block")
    try:
        p = mp.get_context("fork").Process(target=_die_after_claiming, args=(instance,))
        p.start()
        p.join(10)
        consumer = Ring.attach(instance, "r", FILL_DTYPE, role="consumer")  # (re)starts now
        assert consumer.stats()["skipped"] == 3           # 1-3 were not meant for it
        new = Ring.attach(instance, "r", FILL_DTYPE, role="producer")   # the restarted unit
        rec = np.zeros(1, FILL_DTYPE)
        rec["order_id"] = 4
        new.push(rec)
        assert consumer.pop_many()["order_id"].tolist() == [4]   # never 666 (uncommitted)
        assert len(consumer.pop_many()) == 0
        for r in (new, consumer):
            r.close()
    finally:
        ring.close()
        ring.unlink()


def test_a_consumer_alive_across_a_producer_restart_keeps_its_records(instance):
    ring = Ring.create(instance, "r", FILL_DTYPE, 16, "block")
    try:
        consumer = Ring.attach(instance, "r", FILL_DTYPE, role="consumer")
        a = Ring.attach(instance, "r", FILL_DTYPE, role="producer")
        rec = np.zeros(2, FILL_DTYPE)
        rec["order_id"] = [1, 2]
        a.push_many(rec)
        a.close()
        b = Ring.attach(instance, "r", FILL_DTYPE, role="producer")
        rec["order_id"] = [3, 4]
        b.push(rec[:1])
        assert consumer.pop_many()["order_id"].tolist() == [1, 2, 3]
        assert consumer.consumer_pid() == os.getpid()
        for r in (consumer, b):
            r.close()
    finally:
        ring.close()
        ring.unlink()


def _park_forever(instance, q):
    r = Ring.attach(instance, "r", FILL_DTYPE, role="consumer", spins=True)
    q.put("ready")
    n = r.park(-1)                         # a spin-only consumer parks after all
    q.put(n)


def test_spin_only_flag_skips_the_fence_but_a_park_still_wakes(instance):
    ring = Ring.create(instance, "r", FILL_DTYPE, 16, "block")
    try:
        assert ring.locked or os.geteuid() != 0    # root here: locking is permitted
        q = mp.get_context("fork").Queue()
        p = mp.get_context("fork").Process(target=_park_forever, args=(instance, q))
        p.start()
        assert q.get(timeout=10) == "ready"
        words = ring.seg.words
        deadline = time.monotonic() + 10
        while int(words[L.OFF_PARKS // 8]) == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert int(words[L.OFF_CONSUMER_SPINS // 8]) == 0    # parking cleared the flag
        prod = Ring.attach(instance, "r", FILL_DTYPE, role="producer")
        prod.push(np.zeros(1, FILL_DTYPE))
        assert q.get(timeout=10) == 1                         # woken: no lost wake-up
        p.join(10)
        prod.close()
    finally:
        ring.close()
        ring.unlink()
