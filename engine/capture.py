"""`mm capture --duration S [--out FILE]`: record a venue's market streams for `mm backtest`.

The live feed's own parts do the work: its redundant connections (engine/feed/connection.py:
reconnects, stale watchdog, make-before-break rollover) and its capture writer
(engine/feed/capture.py, MMCAP1: every frame of every connection with its arrival stamp). The
frames are decoded as the feed decodes them, only to count what arrived; nothing goes to shared
memory and no other process is needed. Beside the file, `<file>.json` records the venue, URL,
streams and instrument filters it was taken with (mm backtest warns when its config differs).
"""
from __future__ import annotations

import asyncio
import json
import signal
import sys
import time
from pathlib import Path

import msgspec

from engine import proc

ROLE = "capture"


def metadata_path(capture: str | Path) -> Path:
    return Path(f"{capture}.json")


def main(args, cfg, configured) -> int:
    """Record for args.duration seconds (SIGINT/SIGTERM end it early, the file stays whole).
    Exit 0 when frames were written, 1 when none came or the venue was unreachable, 2 for a
    configuration the venue or the feed refuses."""
    from engine.feed.capture import FrameCapture
    from engine.agent import new_event_loop
    from engine.feed.process import adapter_factory
    from engine.venue_info import TIMEOUT_S, VenueRefused, instruments_from_venue

    fc = cfg.feed
    if not fc.url:
        print("mm capture: feed.url is empty: set MM_MD_URL (or [feed] url) to the venue's "
              "market stream URL", file=sys.stderr)
        return 2
    if not args.duration > 0:
        print(f"mm capture: --duration: expected seconds > 0, got {args.duration}",
              file=sys.stderr)
        return 2
    try:
        new = instruments_from_venue(cfg, configured, lambda m: proc.log(ROLE, m),
                                     deadline=time.monotonic() + 3 * TIMEOUT_S)
        if new is None:
            return 1
        cfg = new
        fc.validate(cfg.instruments)
        new_adapter = adapter_factory(cfg)
    except (VenueRefused, ValueError) as e:
        print(f"mm capture: {e}", file=sys.stderr)
        return 2
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out = Path(args.out or f"runs/capture-{fc.venue}-{stamp}.mmcap")
    out.parent.mkdir(parents=True, exist_ok=True)
    meta = {"format": "MMCAP1", "venue": fc.venue, "url": fc.url, "streams": list(fc.streams),
            "connections": fc.connections,
            "instruments": msgspec.to_builtins(cfg.instruments),
            "started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            # the frames' stamps are perf_counter_ns: this puts the exchange's own times in
            # them on the same clock (mm backtest, backtest.feed_latency = "capture")
            "wall_minus_arrival_ns": time.time_ns() - time.perf_counter_ns()}
    capture = FrameCapture(out, fc.capture_queue)
    try:
        loop = new_event_loop()
        try:
            counts = loop.run_until_complete(_record(cfg, new_adapter, capture, args.duration))
        finally:
            loop.close()
    finally:
        capture.close()
    meta.update(duration_s=round(counts.pop("seconds"), 3), frames=capture.written,
                dropped=capture.dropped, **counts)
    metadata_path(out).write_text(json.dumps(meta, indent=1))
    print(f"capture: {out} ({capture.written} frames, {counts['records']} book/trade records, "
          f"{capture.dropped} dropped) in {meta['duration_s']} s; replay it with "
          f"`mm backtest {out}`")
    if capture.written == 0:
        print(f"mm capture: no frames came from {fc.url} in {args.duration} s", file=sys.stderr)
        return 1
    return 0


async def _record(cfg, new_adapter, capture, duration: float) -> dict:
    from engine.backtest.market_data import RecordSink
    from engine.feed.connection import StreamGroup

    sink = RecordSink(len(cfg.instruments), keep=False)
    group = StreamGroup(cfg.feed.url, new_adapter, sink, cfg.feed, capture)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    t0 = time.monotonic()
    await group.start()
    try:
        await asyncio.wait_for(stop.wait(), duration)
    except asyncio.TimeoutError:
        pass
    finally:
        await group.stop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
    c = group.counters()
    return {"seconds": time.monotonic() - t0, "records": sink.records,
            "duplicates": sink.dupes, "reconnects": c["reconnects"],
            "frames_by_kind": {k: c[k] for k in ("data", "control", "unknown", "malformed")
                               if c.get(k)}}
