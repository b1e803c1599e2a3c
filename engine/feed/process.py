"""The feed process: `run(cfg)` connects to the venue's market streams and publishes into the md
ring until the kill switch, SIGTERM or SIGINT.

Set-up and reporting live here; the hot path is FeedConnection.on_ws_frame -> adapter.decode ->
RingSink.emit. Counters are plain Python ints on the hot path, copied into the control
segment by a 100 ms timer that also beats the heartbeat.
"""
from __future__ import annotations

import asyncio
import gc
import signal
import threading
from typing import TYPE_CHECKING

from engine import proc
from engine.control import (STATE_FAILED, STATE_RUNNING, STATE_STOPPED, STATE_STOPPING, Control,
                            exit_status_for)
from engine.exit_codes import EXIT_KILLED, EXIT_PEER_LOST
from engine.feed.adapter import FRAME_KINDS
from engine.feed.capture import FrameCapture
from engine.feed.connection import StreamGroup
from engine.feed.publish import HISTOGRAMS, open_sink
from engine.latency.histogram import HistogramSet

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
            "connect_http_status") + FRAME_KINDS


def new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop's loop where installed (picows runs on it), else asyncio's."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def adapter_factory(cfg: "EngineConfig"):
    """A no-argument callable building one adapter (one per connection) for cfg's venue."""
    from engine.feed.venues import make_adapter

    instruments, streams, venue = cfg.instruments, cfg.feed.streams, cfg.feed.venue
    make_adapter(venue, instruments, streams)        # fail now, at set-up, on a bad venue/stream
    return lambda: make_adapter(venue, instruments, streams)


def run(cfg: "EngineConfig") -> int:
    """Run the feed until stopped. Returns 0 on a clean stop, 2 on bad configuration, 1 on a
    failure after start, 4/5 when the kill switch stopped it (engine/exit_codes.py)."""
    fc = cfg.feed
    if not fc.url:
        proc.log(ROLE, "feed.url is empty: set MM_MD_URL or run `mm run`, which starts the simulator")
        return 2
    try:
        fc.validate(cfg)
        new_adapter = adapter_factory(cfg)
    except ValueError as e:
        proc.log(ROLE, str(e))
        return 2
    ctl = Control.open(cfg.instance)
    ctl.register(ROLE, fc.core)
    if cleared := ctl.clear_transient_kill():
        proc.log(ROLE, f"cleared the transient kill reason of a previous life ({cleared})")
    ctl.name_counters(ROLE, list(COUNTERS))
    hists = HistogramSet.create(cfg.instance, ROLE, list(HISTOGRAMS))
    sink = capture = None
    status = 1
    try:
        for w in proc.pin(ROLE, fc.core):
            proc.log(ROLE, w)
        probe = new_adapter()
        sink = open_sink(cfg.instance, cfg.rings.md.capacity, cfg.rings.md.policy,
                         cfg.instruments, probe.venue, hists)
        sink.ring.set_wake_target(ctl.wake_addr("quoter"))   # the quoter waits on md + fills
        if fc.capture_path:
            capture = FrameCapture(fc.capture_path, fc.capture_queue)
        group = StreamGroup(fc.url, new_adapter, sink, fc, capture)
        loop = new_event_loop()
        try:
            status = loop.run_until_complete(_main(ctl, group, sink, capture))
        finally:
            loop.close()
    except Exception as e:
        proc.log(ROLE, f"failed: {type(e).__name__}: {e}")
        ctl.deregister(ROLE, STATE_FAILED)
        status = 1
    finally:
        if capture is not None:
            try:
                capture.close()
            except OSError as e:
                proc.log(ROLE, str(e))
        if sink is not None:
            sink.close()
        hists.close()
        if status in (0, EXIT_KILLED, EXIT_PEER_LOST):
            ctl.deregister(ROLE, STATE_STOPPED)
        ctl.close()
        if not gc.isenabled():      # run() inside a larger program (tests, tools): undo the freeze
            gc.unfreeze()
            gc.enable()
    return status


async def _main(ctl: Control, group: StreamGroup, sink, capture) -> int:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
    counters = ctl.counters(ROLE)
    publish = _counter_copier(counters, group, sink, capture)
    await group.start()
    started = loop.time()
    warm = False
    reason = 0
    try:
        while not stop.is_set() and not (reason := ctl.killed()):
            ctl.beat(ROLE)
            sink.ring.beat()
            publish()
            if not warm and (group.delivering() or loop.time() - started > WARMUP_TIMEOUT_S):
                # Warm: data went through every layer. Freeze the heap: no gc on the hot path.
                warm = True
                proc.log(ROLE, f"{'receiving' if group.delivering() else 'NO DATA yet'} from "
                               f"{group.base_url} on {len(group.slots)} connection(s)"
                               f"{_why_no_data(group)}")
                proc.freeze_gc()
                ctl.set_state(ROLE, STATE_RUNNING)
            try:
                await asyncio.wait_for(stop.wait(), TIMER_S)
            except asyncio.TimeoutError:
                pass
    finally:
        ctl.set_state(ROLE, STATE_STOPPING)
        await group.stop()
        publish()
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)
    return 0 if stop.is_set() else exit_status_for(reason)   # the reason seen, not a later one


def _why_no_data(group: StreamGroup) -> str:
    """', never connected: connection refused (12 attempts)' while no connection has opened."""
    if group.delivering() or group.connected_ever:
        return ""
    from engine.feed import connect_error

    failures = sum(s.connect_failures for s in group.slots)
    cause = connect_error.describe(group.last_error, group.last_http_status) or "no answer yet"
    return f", never connected: {cause} ({failures} attempts)"


def _counter_copier(counters, group: StreamGroup, sink, capture):
    """A function copying every counter into the control segment (called by the timer)."""
    def publish() -> None:
        values = group.counters()
        values.update(sink.counters())
        values["capture_dropped"] = capture.dropped if capture is not None else 0
        for i, name in enumerate(COUNTERS):
            counters[i] = values.get(name, 0)
    return publish
