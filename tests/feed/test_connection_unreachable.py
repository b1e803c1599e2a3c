"""A venue that refuses connections: the feed retries with back-off (never raising), marks the
stream stale for the quoter, and stops promptly when asked."""
import asyncio
import socket
import time

from engine.config import EngineConfig
from engine.feed.config import FeedConfig
from engine.feed.connection import StreamGroup
from engine.feed.process import adapter_factory
from engine.feed.publish import RingSink
from engine.records import MD_DTYPE, MD_STALE, VENUE_BINANCE
from engine.ring import Ring


def _refused_url() -> str:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()                      # nothing listens there now: connect is refused
    return f"ws://127.0.0.1:{port}"


def test_refused_venue_backs_off_and_marks_stale(instance):
    url = _refused_url()
    cfg = EngineConfig(instance=instance, feed=FeedConfig(
        url=url, connections=2, stale_after_ms=100, reconnect_base_s=0.02, reconnect_cap_s=0.1))
    producer = Ring.create(instance, "md", MD_DTYPE, 64, "drop", role="producer")
    consumer = Ring.attach(instance, "md", MD_DTYPE, role="consumer")
    try:
        sink = RingSink(producer, None, len(cfg.instruments), VENUE_BINANCE)

        async def main():
            group = StreamGroup(url, adapter_factory(cfg), sink, cfg.feed)
            await group.start()
            await asyncio.sleep(1.0)
            t = time.monotonic()
            await group.stop()
            return group, time.monotonic() - t

        group, stop_s = asyncio.run(asyncio.wait_for(main(), 30))
        c = group.counters()
        # Back-off: with a 0.1 s cap each slot retries at most ~1/0.01 s and at least a few times.
        assert 2 * 3 <= c["connect_failures"] <= 2 * 200
        assert c["reconnects"] == 0 and c["frames"] == 0
        assert all("Connect" in s.last_error or "refused" in s.last_error for s in group.slots), \
            [s.last_error for s in group.slots]
        assert stop_s < 3.0
        recs = consumer.pop_many()
        assert sorted(recs["instrument"]) == list(range(len(cfg.instruments)))
        assert (recs["kind"] == MD_STALE).all() and sink.stale_marks == 1
    finally:
        consumer.close()
        producer.close()
