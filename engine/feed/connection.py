"""The feed's WebSocket connections (picows clients on asyncio, uvloop where installed).

Three layers, each with one job:
  FeedConnection  one physical connection (a picows WSListener). Its `on_ws_frame` is the hot
                  path: stamp arrival first (the kernel's receive time, engine/feed/stamps.py),
                  hand the payload view to its own adapter, which emits into the shared sink.
                  No logging, no awaiting, never raises.
  ConnectionSlot  redundant connection number i: keeps one connection alive, reconnects it with
                  exponential back-off and full jitter (capped), and recycles it before the venue's
                  age limit make-before-break (the replacement delivers data, both overlap a
                  little, then the old one closes; the sink's dedupe absorbs the overlap).
  StreamGroup     the N slots of one stream plus its watchdog: marks the stream stale (MD_STALE
                  per instrument) when nothing was published for `stale_after_ms`, forces
                  connections silent that long to reconnect, tells the sink to forget its ids
                  when connections deliver but nothing publishes (the venue rewound its ids),
                  and sends application-level pings.
"""
from __future__ import annotations

import asyncio
import gc
import random
from time import perf_counter_ns
from typing import Callable

from picows import WSCloseCode, WSListener, WSMsgType, ws_connect

from engine.feed import connect_error, stamps
from engine.feed.adapter import FRAME_KINDS, VenueAdapter
from engine.feed.capture import OPCODE_BINARY, OPCODE_TEXT, FrameCapture
from engine.feed.config import FeedConfig

_TEXT = WSMsgType.TEXT
_BINARY = WSMsgType.BINARY
_CLOSE = WSMsgType.CLOSE
_NS = 1_000_000_000


def backoff_delay(failures: int, base_s: float, cap_s: float, rand: Callable[[], float] = random.random
                  ) -> float:
    """Full-jitter exponential back-off: uniform in [0, min(cap, base * 2**failures)]."""
    ceiling = min(cap_s, base_s * (2.0 ** min(failures, 62)))
    return ceiling * rand()


class FeedConnection(WSListener):
    """One WebSocket connection of redundant slot `index`, with its own adapter (update-id
    sequencing is per connection). Built by picows through `ws_connect`'s listener factory."""

    def __init__(self, index: int, adapter: VenueAdapter, sink, capture: FrameCapture | None,
                 wake: asyncio.Event):
        super().__init__()
        self.index = index
        self.adapter = adapter
        self.sink = sink
        self.capture = capture
        self._decode = adapter.decode
        self._counts = adapter.counts
        self._wake = wake                # the slot's event: set on close, first data, shutdown
        self.transport = None
        self.connected_ns = 0
        self.first_data_ns = 0           # arrival of the first frame that produced records
        self.last_data_ns = 0            # arrival of the latest frame that produced records
        self.decode_errors = 0           # exceptions out of adapter.decode (adapters must not raise)
        self.closed = False
        self.force_reconnect = False     # set by the watchdog: silent too long
        self.shutdown_announced = False  # the venue said it will close this connection
        self.last_ping_ns = 0
        self._shutdowns = self._counts.get("shutdown", 0)
        self.reader = None               # engine._feed.StampedReader once kernel stamps are on
        self._arrival = perf_counter_ns  # the frame's arrival stamp: reader.arrival once on

    def stamp_from_kernel(self) -> bool:
        """Stamp frames with the kernel's receive time from now on (engine/feed/stamps.py).
        False when the transport cannot be stamped: frames keep their pick-up time."""
        if self.transport is None or self.closed:
            return False
        self.reader = stamps.install(self.transport)
        if self.reader is None:
            return False
        self._arrival = self.reader.arrival
        return True

    # ------------------------------------------------------------------ picows callbacks
    def on_ws_connected(self, transport) -> None:
        self.transport = transport
        self.connected_ns = self.last_ping_ns = perf_counter_ns()
        for frame in self.adapter.subscribe_frames():
            transport.send(_TEXT, frame)

    def on_ws_frame(self, transport, frame) -> None:
        t = self._arrival()
        msg_type = frame.msg_type
        if msg_type is _TEXT or msg_type is _BINARY:
            binary = msg_type is _BINARY
            sink = self.sink
            sink.conn = self.index
            sink.ts_arrival = t
            if self.capture is not None:
                self.capture.put(t, OPCODE_BINARY if binary else OPCODE_TEXT,
                                 frame.get_payload_as_bytes())
            try:
                n = self._decode(frame.get_payload_as_memoryview(), binary, sink)
            except Exception:
                self.decode_errors += 1
                return
            if n:
                self.last_data_ns = t
                if not self.first_data_ns:
                    self.first_data_ns = t
                    self._wake.set()
            elif self._counts.get("shutdown", 0) != self._shutdowns:
                # serverShutdown and the like: recycle now, make-before-break.
                self._shutdowns = self._counts.get("shutdown", 0)
                self.shutdown_announced = True
                self._wake.set()
        elif msg_type is _CLOSE:
            # The peer closes: echo its close frame, then drop the socket (the slot reconnects).
            transport.send_close(frame.get_close_code())
            transport.disconnect()
        # PING is answered by picows (enable_auto_pong); PONG and CONTINUATION need nothing.

    def on_ws_disconnected(self, transport) -> None:
        self.closed = True
        self._arrival = perf_counter_ns   # the transport removed the reader with the socket
        self._wake.set()

    # ------------------------------------------------------------------ control (not hot)
    def close(self) -> None:
        """Start an orderly close; `closed` turns True when the socket is gone."""
        if self.transport is not None and not self.closed:
            self.transport.send_close(WSCloseCode.OK)
            self.transport.disconnect()

    def send_ping(self, now_ns: int) -> None:
        """Send the adapter's application-level ping, if it has one."""
        payload = self.adapter.ping_frame()
        self.last_ping_ns = now_ns
        if payload is not None and self.transport is not None and not self.closed:
            self.transport.send(_TEXT, payload)


class ConnectionSlot:
    """Redundant connection number `index` of a StreamGroup: one live connection at a time,
    two during a rollover."""

    def __init__(self, group: "StreamGroup", index: int, count: int):
        self.group = group
        self.index = index
        self.current: FeedConnection | None = None
        self.replacement: FeedConnection | None = None
        self.wake = asyncio.Event()
        self.reconnects = 0          # connections lost and reopened
        self.connect_failures = 0    # attempts that did not connect
        self.rollovers = 0           # make-before-break replacements completed
        self.last_error = ""         # the latest connect failure, for status displays
        self._failures = 0           # consecutive attempts without data (drives the back-off)
        # Stagger the slots' ages (slot i recycles at 1 - i/2N of the limit) so redundant copies
        # never roll over together.
        self.max_age_ns = group.max_age_ns - group.max_age_ns * index // (2 * count)

    def connections(self) -> list[FeedConnection]:
        return [c for c in (self.current, self.replacement) if c is not None]

    async def run(self) -> None:
        """Keep this slot connected until the group stops."""
        g = self.group
        first = True
        try:
            while not g.stopping:
                conn = self.current
                if conn is None:
                    if not first:
                        await self._sleep(backoff_delay(self._failures, g.settings.reconnect_base_s,
                                                        g.settings.reconnect_cap_s))
                        if g.stopping:
                            break
                    first = False
                    conn = await self._open()
                    if conn is None:
                        self._failures += 1
                        continue
                    self.current = conn
                self.wake.clear()
                if conn.closed:
                    self._retire(conn)
                    self.reconnects += 1
                    continue
                if conn.force_reconnect:
                    conn.close()
                    await self._wait(1.0)
                    if not conn.closed and conn.transport is not None:
                        conn.transport.disconnect(graceful=False)
                    continue
                now = perf_counter_ns()
                age_left = self.max_age_ns - (now - conn.connected_ns) if self.max_age_ns else None
                if conn.shutdown_announced or (age_left is not None and age_left <= 0):
                    await self._rollover(conn)
                    continue
                await self._wait(None if age_left is None else age_left / _NS)
        finally:
            for c in self.connections():
                c.close()

    # ------------------------------------------------------------------ internals
    async def _open(self) -> FeedConnection | None:
        g = self.group
        adapter = g.new_adapter()
        url = adapter.stream_url(g.base_url)
        wake = self.wake
        try:
            _, conn = await asyncio.wait_for(
                ws_connect(lambda: FeedConnection(self.index, adapter, g.sink, g.capture, wake),
                           url, websocket_handshake_timeout=g.settings.connect_timeout_s,
                           enable_auto_pong=True,
                           extra_headers=adapter.connect_headers() or None),
                g.settings.connect_timeout_s)
        except Exception as e:  # refused, reset, handshake rejected, timed out
            self.connect_failures += 1
            self.last_error = f"{type(e).__name__}: {e}"
            g.last_error, g.last_http_status = connect_error.classify(e)
            return None
        g.connected_ever = 1
        if not conn.stamp_from_kernel():
            g.unstamped_connections += 1
        g.after_reconnect()
        return conn

    def _retire(self, conn: FeedConnection) -> None:
        if conn.first_data_ns:
            self._failures = 0       # it delivered: the next reconnect starts from the base
        else:
            self._failures += 1
        self.group.retire(conn)
        if self.current is conn:
            self.current = None

    async def _rollover(self, old: FeedConnection) -> None:
        """Open the replacement first; close `old` once the replacement delivered data and the
        overlap passed (or the replacement timed out delivering: a quiet stream)."""
        g = self.group
        new = await self._open()
        if new is None:
            # Keep the old one; try again after a back-off (it is still delivering).
            self._failures += 1
            await self._sleep(backoff_delay(self._failures, g.settings.reconnect_base_s,
                                            g.settings.reconnect_cap_s))
            return
        self.replacement = new
        overlap_ns = g.settings.rollover_overlap_ms * 1_000_000
        deadline = perf_counter_ns() + g.stale_ns + overlap_ns
        while not g.stopping and not new.closed and not old.closed:
            self.wake.clear()
            now = perf_counter_ns()
            if now >= deadline:
                break
            if new.first_data_ns:
                if now - new.first_data_ns >= overlap_ns:
                    break
                await self._wait((new.first_data_ns + overlap_ns - now) / _NS)
            else:
                await self._wait((deadline - now) / _NS)
        self.replacement = None
        if new.closed:             # the replacement failed: keep the old, retry later
            g.retire(new)
            return
        self.current = new
        old.close()
        g.retire(old)
        self.rollovers += 1

    async def _wait(self, timeout_s: float | None) -> None:
        try:
            await asyncio.wait_for(self.wake.wait(), timeout_s)
        except asyncio.TimeoutError:
            pass

    async def _sleep(self, seconds: float) -> None:
        # Interruptible by stop(): waits on the wake event, ignores other wakes.
        end = perf_counter_ns() + int(seconds * _NS)
        while not self.group.stopping:
            left = end - perf_counter_ns()
            if left <= 0:
                return
            self.wake.clear()
            await self._wait(left / _NS)


class StreamGroup:
    """The redundant connections of one stream, sharing one sink, plus the watchdog."""

    def __init__(self, base_url: str, new_adapter: Callable[[], VenueAdapter], sink,
                 settings: FeedConfig, capture: FrameCapture | None = None):
        if not base_url:
            raise ValueError("feed.url is empty: set MM_MD_URL or run `mm run`, which starts the "
                             "simulator")
        self.base_url = base_url
        self.new_adapter = new_adapter
        self.sink = sink
        self.settings = settings
        self.capture = capture
        probe = new_adapter()
        self.max_age_ns = int(settings.effective_max_age_s(probe.max_connection_age_s) * _NS)
        self.ping_ns = int(probe.ping_interval_s * _NS)
        self.stale_ns = settings.stale_after_ms * 1_000_000
        n = settings.connections
        self.slots = [ConnectionSlot(self, i, n) for i in range(n)]
        self.stopping = False
        self.started_ns = 0
        self.stale_reconnects = 0    # connections forced to reconnect for silence
        self.unstamped_connections = 0   # connections whose frames carry pick-up stamps only
        self.connected_ever = 0          # 1 once any connection completed its upgrade
        self.last_error = 0              # engine/feed/connect_error.py code of the latest failure
        self.last_http_status = 0        # its HTTP status when the upgrade was refused
        self._retired_counts = dict.fromkeys(FRAME_KINDS, 0)
        self._retired_decode_errors = 0
        self._retired_reads = [0, 0]     # socket pick-ups, those with a kernel stamp
        self._tasks: list[asyncio.Task] = []

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        """Start every slot and the watchdog (returns at once)."""
        self.started_ns = perf_counter_ns()
        self._tasks = [asyncio.ensure_future(s.run()) for s in self.slots]
        self._tasks.append(asyncio.ensure_future(self._watchdog()))

    async def stop(self, timeout_s: float = 2.0) -> None:
        """Close every connection and wait for the tasks (bounded)."""
        self.stopping = True
        for s in self.slots:
            s.wake.set()
        if self._tasks:
            done, pending = await asyncio.wait(self._tasks, timeout=timeout_s)
            for t in pending:
                t.cancel()
            if pending:
                await asyncio.wait(pending, timeout=1.0)
        deadline = perf_counter_ns() + int(timeout_s * _NS)
        while any(not c.closed for c in self.connections()) and perf_counter_ns() < deadline:
            await asyncio.sleep(0.01)
        for c in self.connections():
            if not c.closed and c.transport is not None:
                c.transport.disconnect(graceful=False)

    def connections(self) -> list[FeedConnection]:
        return [c for s in self.slots for c in s.connections()]

    def resubscribe(self, i: int) -> int:
        """Send the adapter's `depth_resubscribe_frames(i)` (unsubscribe + subscribe instrument
        i's book channel: the venue sends a new snapshot) on every open connection; returns how
        many were asked. Off the frame path (the depth feed calls it after a gap)."""
        asked = 0
        for c in self.connections():
            if c.transport is not None and not c.closed:
                for frame in c.adapter.depth_resubscribe_frames(i):
                    c.transport.send(_TEXT, frame)
                asked += 1
        return asked

    def delivering(self) -> int:
        """How many open connections have delivered data."""
        return sum(1 for c in self.connections() if c.first_data_ns and not c.closed)

    # ------------------------------------------------------------------ watchdog
    async def _watchdog(self) -> None:
        period = min(self.stale_ns / 4, 0.1 * _NS) / _NS
        while not self.stopping:
            await asyncio.sleep(period)
            self.check(perf_counter_ns())

    def check(self, now: int) -> None:
        """One watchdog pass: silent connections, staleness, rewound ids, application pings."""
        stale_ns = self.stale_ns
        sink = self.sink
        latest_data = 0
        for c in self.connections():
            if c.last_data_ns > latest_data:
                latest_data = c.last_data_ns
            if c.closed or c.force_reconnect:
                continue
            if now - max(c.last_data_ns, c.connected_ns) > stale_ns:
                c.force_reconnect = True
                self.stale_reconnects += 1
                self.slots[c.index].wake.set()
            elif self.ping_ns and now - c.last_ping_ns >= self.ping_ns:
                c.send_ping(now)
        if now - max(sink.last_published_ns, self.started_ns) > stale_ns:
            if not sink.stale:
                sink.mark_stale()
            elif latest_data - sink.stale_since_ns > stale_ns:
                # Data kept arriving for a whole stale period and none of it was new: the
                # venue's ids went back. Start over from whatever it sends now.
                sink.forget_ids()

    # ------------------------------------------------------------------ bookkeeping
    def after_reconnect(self) -> None:
        # With gc frozen and disabled, connection churn leaves cycles behind: collect the few
        # objects made since the freeze (cheap; never on the frame path).
        if not gc.isenabled():
            gc.collect()

    def retire(self, conn: FeedConnection) -> None:
        """Fold a finished connection's counts into the group totals."""
        for k, v in conn.adapter.counts.items():
            self._retired_counts[k] = self._retired_counts.get(k, 0) + v
        self._retired_decode_errors += conn.decode_errors
        conn.decode_errors = 0
        if conn.reader is not None:
            self._retired_reads[0] += conn.reader.pickups
            self._retired_reads[1] += conn.reader.stamped
            conn.reader = None
        for k in conn.adapter.counts:    # zeroed in place: a second retire adds nothing
            conn.adapter.counts[k] = 0

    def counters(self) -> dict[str, int]:
        """Totals over live and retired connections (reporting, not the hot path)."""
        kinds = dict(self._retired_counts)
        errors = self._retired_decode_errors
        reads, stamped = self._retired_reads
        for c in self.connections():
            errors += c.decode_errors
            for k, v in c.adapter.counts.items():
                kinds[k] = kinds.get(k, 0) + v
            if c.reader is not None:
                reads += c.reader.pickups
                stamped += c.reader.stamped
        out = {"frames": sum(kinds.values()),
               "reads": reads,
               "reads_kernel_stamped": stamped,
               "unstamped_connections": self.unstamped_connections,
               "reconnects": sum(s.reconnects for s in self.slots),
               "connect_failures": sum(s.connect_failures for s in self.slots),
               "rollovers": sum(s.rollovers for s in self.slots),
               "stale_reconnects": self.stale_reconnects,
               "decode_errors": errors,
               "connected_ever": self.connected_ever,
               "connect_error": self.last_error,
               "connect_http_status": self.last_http_status}
        out.update({k: kinds.get(k, 0) for k in FRAME_KINDS})
        return out
