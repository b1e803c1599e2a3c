"""A small venue on 127.0.0.1 for the depth recovery tests (not collected): a picows WebSocket
server in the test's own event loop that keeps one instrument's book, answers subscribe /
unsubscribe frames the way the venue does (a subscription is answered with a snapshot of the
book in the stream), and pushes deltas to the subscribed connections when the test says so;
`lose_next()` makes the next change reach nobody (a gap). The venue's wire format is a small
`Dialect` (Bybit's, OKX's: tests/feed/test_depth_*.py), so the server itself is venue-blind.

Also a sink with the attributes a StreamGroup's watchdog reads, recording what the depth feed
publishes with the time it did."""
from __future__ import annotations

import asyncio
import json
from time import perf_counter_ns

from picows import WSListener, WSMsgType, ws_create_server

from tests.feed.decode_support import NotifySink

WAIT_S = 10.0


class Dialect:
    """How a venue writes the frames: override `is_subscribe(msg)` / `is_unsubscribe(msg)`
    (msg: the client's decoded JSON) and `snapshot(book)` / `delta(book, bids, asks)` (bytes;
    book: the BookServer, for its ids and levels)."""


class _Peer(WSListener):
    def __init__(self, server: "BookServer"):
        super().__init__()
        self.server = server
        self.transport = None
        self.subscribed = False

    def on_ws_connected(self, transport) -> None:
        self.transport = transport
        self.server.peers.append(self)

    def on_ws_frame(self, transport, frame) -> None:
        if frame.msg_type is not WSMsgType.TEXT:
            return
        text = frame.get_payload_as_bytes()
        self.server.received.append(text)
        try:
            msg = json.loads(text)
        except ValueError:
            return          # "ping"
        d = self.server.dialect
        if d.is_unsubscribe(msg):
            self.subscribed = False
        elif d.is_subscribe(msg):
            self.subscribed = True
            self.server.snapshots_sent += 1
            transport.send(WSMsgType.TEXT, d.snapshot(self.server))

    def on_ws_disconnected(self, transport) -> None:
        if self in self.server.peers:
            self.server.peers.remove(self)


class BookServer:
    """One instrument's book (prices and sizes as decimal strings keyed by int ticks) and its
    sequence: `seq` is the id of the latest change, `prev` the one before."""

    def __init__(self, dialect: Dialect, seq: int = 1000):
        self.dialect = dialect
        self.peers: list[_Peer] = []
        self.received: list[bytes] = []
        self.snapshots_sent = 0
        self.bids = {10_000 - k: 5 + k for k in range(30)}    # tick -> size
        self.asks = {10_001 + k: 7 + k for k in range(30)}
        self.seq, self.prev = seq, seq - 1
        self._server = None
        self.port = 0
        self._lose = False

    async def __aenter__(self) -> "BookServer":
        self._server = await ws_create_server(lambda _req: _Peer(self), "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc) -> None:
        for p in list(self.peers):
            p.transport.disconnect(graceful=False)
        self._server.close()
        await self._server.wait_closed()

    def lose_next(self) -> None:
        self._lose = True

    def change(self, k: int) -> None:
        """One change of the book (a few levels), pushed to every subscribed connection unless
        it is to be lost."""
        bids = {10_000 - (k % 25): 100 + k, 10_000 - 40 - k: 3}
        asks = {10_001 + (k % 20): 0 if k % 3 == 0 else 50 + k}
        for side, levels in ((self.bids, bids), (self.asks, asks)):
            for px, q in levels.items():
                if q:
                    side[px] = q
                else:
                    side.pop(px, None)
        self.prev, self.seq = self.seq, self.seq + 1
        if self._lose:
            self._lose = False
            return
        frame = self.dialect.delta(self, bids, asks)
        for p in self.peers:
            if p.subscribed:
                p.transport.send(WSMsgType.TEXT, frame)

    def subscribed(self) -> int:
        return sum(p.subscribed for p in self.peers)


class GroupSink(NotifySink):
    """The sink a StreamGroup and a DepthFeed need, recording each depth record's kind with the
    perf_counter_ns() it was published at."""
    conn = 0
    stale = False
    stale_since_ns = 0

    def __init__(self):
        super().__init__()
        self.last_published_ns = perf_counter_ns()
        self.times: list[tuple[int, int]] = []       # (kind, ns)

    def notify(self, *args) -> None:
        super().notify(*args)
        self.times.append((args[1], perf_counter_ns()))
        self.last_published_ns = perf_counter_ns()

    def mark_stale(self) -> None:
        self.stale = True

    def forget_ids(self) -> None:
        pass


async def wait_until(cond, what: str, timeout_s: float = WAIT_S) -> None:
    """Poll cond() every millisecond until true; fail naming `what` after timeout_s."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not cond():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"not within {timeout_s} s: {what}")
        await asyncio.sleep(0.001)


def run_recovery_over_websocket(venue: str, dialect, ins, streams):
    """A real StreamGroup (two connections, the venue's adapter) against BookServer: synced from
    the subscription's snapshot, a lost change is a gap, the feed re-subscribes on both
    connections, the new snapshot makes the book fresh and equal to the server's. Returns
    (gap -> fresh ns, the server's received frames)."""
    from engine.feed.config import FeedConfig
    from engine.feed.connection import StreamGroup
    from engine.feed.depth_feed import DepthFeed
    from engine.feed.venues import make_adapter
    from engine.records import MD_FRESH, MD_STALE

    async def main():
        async with BookServer(dialect) as server:
            fc = FeedConfig(venue=venue, url=f"ws://127.0.0.1:{server.port}/ws/v5/public",
                            streams=streams, connections=2, stale_after_ms=60_000)
            sink = GroupSink()
            probe = make_adapter(venue, ins, streams)
            depth = DepthFeed(ins, probe, fc.effective_rest_url(), 0, sink)
            group = StreamGroup(fc.url, lambda: make_adapter(venue, ins, streams, depth=depth),
                                sink, fc)
            depth.resubscribe = group.resubscribe
            book = depth.books[0]
            await group.start()
            try:
                await wait_until(lambda: server.subscribed() == 2 and book.synced, "synced")
                for k in range(5):
                    server.change(k)
                await wait_until(lambda: book.update_id == server.seq, "deltas applied")
                assert book.gaps == 0 and book.applied == 5
                server.lose_next()
                server.change(5)                     # reaches nobody
                server.change(6)                     # does not continue the book: a gap
                await wait_until(lambda: any(k & MD_FRESH for k, _ in sink.times), "fresh")
                stale = [t for k, t in sink.times if k & MD_STALE]
                fresh = [t for k, t in sink.times if k & MD_FRESH]
                assert len(stale) == 1 and len(fresh) == 1 and stale[0] < fresh[0]
                assert book.synced and book.gaps == 1 and book.resyncs == 1
                # the book is the server's, and follows it on
                for k in range(7, 12):
                    server.change(k)
                await wait_until(lambda: book.update_id == server.seq, "deltas after resync")
                px = 10 ** -ins[0].pexp // 10
                assert book.levels() == ({p * px: q for p, q in server.bids.items()},
                                         {p * px: q for p, q in server.asks.items()})
                assert depth.resubscribes == 1 and server.snapshots_sent == 4
                c = depth.counters()
                assert c["depth_unsynced"] == 0 and c["depth_resync_us_last"] > 0
                return fresh[0] - stale[0], list(server.received)
            finally:
                await group.stop()
                await depth.close()

    return asyncio.run(main())
