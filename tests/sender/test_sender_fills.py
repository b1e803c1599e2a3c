"""The fill ring never blocks the sender and never loses a record: a full ring (a slow or
exited quoter) delays records, in order, until there is room."""

from engine.records import FILL_ACK, FILL_DTYPE, FILL_TRADE
from engine.ring import Ring
from engine.sender.fills import FillWriter


def test_full_ring_delays_in_order_and_never_blocks(instance):
    ring = Ring.create(instance, "fills", FILL_DTYPE, 4, "block")
    try:
        w = FillWriter(ring)
        sent = [w.emit(FILL_TRADE if k % 2 else FILL_ACK, k, 0, qty=k) for k in range(10)]
        assert sent == [True] * 4 + [False] * 6          # no consumer: returned at once
        assert len(w.backlog) == 6 and w.delayed == 6
        got = []
        while len(got) < 10:
            view = ring.pop_many()
            got += view["order_id"].tolist()
            ring.release()
            w.flush()
        assert got == list(range(10))                     # every record, in order
        assert w.flush() and not w.backlog
    finally:
        ring.close()
        ring.unlink()
