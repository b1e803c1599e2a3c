"""The feed process: `run(cfg)` connects to the venue's market streams and publishes into the md
ring until the kill switch, SIGTERM or SIGINT.

FeedAgent is its duty cycle; the life around it (registration, pinning, signals, gc, the final
state) is engine/agent.py's. The hot path is FeedConnection.on_ws_frame -> adapter.decode ->
RingSink.emit. Counters are plain Python ints on the hot path, copied into the control
segment by a 100 ms timer that also beats the heartbeat.
"""
from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from engine import agent, proc
from engine.control import exit_status_for
from engine.feed.adapter import FRAME_KINDS
from engine.feed.capture import FrameCapture
from engine.feed.connection import StreamGroup
from engine.feed.depth_feed import DEPTH_COUNTERS, DepthFeed
from engine.feed.publish import HISTOGRAMS, open_sink
from engine.ring.table import MD

if TYPE_CHECKING:
    from engine.config import EngineConfig

ROLE = "feed"
TIMER_S = 0.1                    # heartbeat and counter copy cadence
WARMUP_TIMEOUT_S = 10.0          # declare RUNNING after this long even without data

# Index i of the role's counters in the control segment means COUNTERS[i].
COUNTERS = ("frames", "records", "dupes", "reconnects", "connect_failures", "rollovers",
            "stale_marks", "fresh_marks", "stale_reconnects", "id_resets", "ring_full", "conflated",
            "decode_errors", "capture_dropped", "reads", "reads_kernel_stamped",
            "unstamped_connections", "connected_ever", "connect_error",
            "connect_http_status") + FRAME_KINDS + DEPTH_COUNTERS


def adapter_factory(cfg: "EngineConfig", depth: DepthFeed | None = None):
    """A no-argument callable building one adapter (one per connection) for cfg's venue; the
    adapters of a feed that keeps L2 books share its DepthFeed."""
    from engine.feed.venues import make_adapter

    instruments, streams, venue = cfg.instruments, cfg.feed.streams, cfg.feed.venue
    options = {} if depth is None else {"depth": depth}
    make_adapter(venue, instruments, streams)        # fail now, at set-up, on a bad venue/stream
    return lambda: make_adapter(venue, instruments, streams, **options)


def open_depth(cfg: "EngineConfig", sink) -> DepthFeed | None:
    """The feed's L2 books and the depth board when feed.streams has a diff-depth stream."""
    from engine.feed.venues import has_bbo_stream, make_adapter
    from engine.records import DEPTH_DTYPE
    from engine.ring.board import Board

    fc = cfg.feed
    if not fc.keeps_depth():
        return None
    probe = make_adapter(fc.venue, cfg.instruments, fc.streams, fast_path=False)
    board = Board.open(cfg.instance, len(cfg.instruments), DEPTH_DTYPE, "depth")
    return DepthFeed(cfg.instruments, probe, fc.effective_rest_url(), fc.depth_snapshot_limit,
                     sink, board, emit_bbo=not has_bbo_stream(fc.venue, fc.streams))


def run(cfg: "EngineConfig") -> int:
    """Run the feed until stopped. Returns 0 on a clean stop, 2 on bad configuration, 1 on a
    failure after start, 4/5 when the kill switch stopped it (engine/exit_codes.py)."""
    return agent.run(FeedAgent, cfg)


class FeedAgent(agent.Agent):
    """The market streams -> the md ring (and the book board), until stopped."""
    role = ROLE
    idle = "epoll"                   # its sockets wake it; busy-spin (feed.idle): it polls them
    counters = COUNTERS
    histograms = HISTOGRAMS
    rings = (agent.RingEnd(MD, "producer"),)

    def __init__(self, cfg: "EngineConfig"):
        fc = cfg.feed
        if not fc.url:
            raise ValueError("feed.url is empty: set MM_MD_URL or run `mm run`, which starts "
                             "the simulator")
        fc.validate(cfg.instruments)
        self.new_adapter = adapter_factory(cfg)
        self.cfg, self.core = cfg, fc.core
        self.idle = fc.idle or "epoll"
        self._stop = asyncio.Event()          # binds to the loop at its first wait
        self.sink = self.capture = self.group = self.depth = None

    def on_start(self, life: agent.Life) -> None:
        cfg, fc = self.cfg, self.cfg.feed
        self.life = life
        probe = self.new_adapter()
        self.sink = open_sink(cfg.instance, life.rings[MD.name], cfg.instruments, probe.venue,
                              life.histograms)
        life.closing.callback(self.sink.close)       # stops the writer before the unmap
        self.depth = open_depth(cfg, self.sink)
        if self.depth is not None:
            life.closing.callback(self.depth.board.close)
            self.new_adapter = adapter_factory(cfg, self.depth)
        self.sink.ring.set_wake_target(life.control.wake_addr("quoter"))  # it waits on md + fills
        if fc.capture_path:
            self.capture = FrameCapture(fc.capture_path, fc.capture_queue)
            life.closing.callback(self._close_capture)
        self.group = StreamGroup(fc.url, self.new_adapter, self.sink, fc, self.capture)
        if self.depth is not None and self.depth.rules.in_stream:
            self.depth.resubscribe = self.group.resubscribe   # a gap: ask for a new snapshot

    def request_stop(self, reason: str) -> None:
        self._stop.set()

    def _close_capture(self) -> None:
        try:
            self.capture.close()
        except OSError as e:
            proc.log(ROLE, str(e))

    async def run(self) -> int:
        life, group, ctl, stop = self.life, self.group, self.life.control, self._stop
        loop = asyncio.get_running_loop()
        publish = _counter_copier(life.counters, group, self.sink, self.capture, self.depth)
        await group.start()
        spinner = loop.create_task(_poll_without_sleeping(stop)) if self.idle == "busy-spin" \
            else None
        started = loop.time()
        warm = False
        reason = 0
        try:
            while not stop.is_set() and not (reason := ctl.killed()):
                life.beat()
                publish()
                if not warm and (group.delivering() or loop.time() - started > WARMUP_TIMEOUT_S):
                    # Warm: data went through every layer. Freeze the heap: no gc on the hot path.
                    warm = True
                    proc.log(ROLE, f"{'receiving' if group.delivering() else 'NO DATA yet'} from "
                                   f"{group.base_url} on {len(group.slots)} connection(s)"
                                   f"{_why_no_data(group)}")
                    life.running()
                try:
                    await asyncio.wait_for(stop.wait(), TIMER_S)
                except asyncio.TimeoutError:
                    pass
        finally:
            life.stopping()
            if spinner is not None:
                spinner.cancel()
            await group.stop()
            if self.depth is not None:
                await self.depth.close()
            publish()
        return 0 if stop.is_set() else exit_status_for(reason)   # the reason seen, not a later one


async def _poll_without_sleeping(stop: asyncio.Event) -> None:
    """busy-spin: a task that is always ready, so every turn of the event loop polls the
    sockets with a zero timeout (epoll_wait(0)) instead of sleeping in it: a frame is picked up
    a loop turn (a few microseconds) after it lands, without the wake-up of a sleeping process
    (30-60 us here, more from a halted vCPU). It takes the whole core: only on one of its own."""
    while not stop.is_set():
        await asyncio.sleep(0)


def _why_no_data(group: StreamGroup) -> str:
    """', never connected: connection refused (12 attempts)' while no connection has opened."""
    if group.delivering() or group.connected_ever:
        return ""
    from engine.feed import connect_error

    failures = sum(s.connect_failures for s in group.slots)
    cause = connect_error.describe(group.last_error, group.last_http_status) or "no answer yet"
    return f", never connected: {cause} ({failures} attempts)"


def _counter_copier(counters, group: StreamGroup, sink, capture, depth=None):
    """A function copying every counter into the control segment (called by the timer)."""
    def publish() -> None:
        values = group.counters()
        values.update(sink.counters())
        if depth is not None:
            values.update(depth.counters())
        values["capture_dropped"] = capture.dropped if capture is not None else 0
        for i, name in enumerate(COUNTERS):
            counters[i] = values.get(name, 0)
    return publish
