"""Replay of MMCAP1 captures: the same frames come out, in order, at the recorded pace."""
from __future__ import annotations

import asyncio
import json
import time

import pytest
import websockets

from engine.feed.capture import FrameCapture
from tests.support.sim_thread import SimThread


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 30))


async def receive(url: str, n: int) -> tuple[list[bytes], float]:
    """n frames as bytes, and the seconds between the first and the last."""
    async with websockets.connect(url, max_queue=None) as ws:
        frames = []
        async with asyncio.timeout(20):
            while len(frames) < n:
                frames.append((await ws.recv(decode=False), time.monotonic()))
    return [f for f, _ in frames], frames[-1][1] - frames[0][1]


def write_corpus_capture(corpus, path, lines: int) -> list[tuple[int, bytes]]:
    src = corpus / "binance" / "hftbacktest_spot_btcusdt_20240808.head.txt"
    records = []
    with open(src, "rb") as f:
        for line in f:
            ts, _, payload = line.rstrip(b"\n").partition(b" ")
            records.append((int(ts), payload))
            if len(records) == lines:
                break
    with FrameCapture(path) as cap:                 # the feed's own writer
        for ts, payload in records:
            cap.put(ts, 1, payload)
    return records


def test_replay_of_recorded_frames_reproduces_them(corpus, tmp_path):
    path = tmp_path / "btc.cap"
    records = write_corpus_capture(corpus, path, 300)
    span_s = (records[-1][0] - records[0][0]) / 1e9
    speed = span_s / 0.5                           # the recording, replayed in 0.5 s
    with SimThread(replay_file=str(path), replay_speed=speed) as sim:
        frames, elapsed = run(receive(sim.md_url + "/ws", len(records)))
        assert frames == [p for _, p in records]
        # paced: the server waits for each record's due time, so it cannot finish earlier
        assert elapsed >= 0.9 * span_s / speed
        # the simulator followed the replayed book: its BTCUSDT top is the last bookTicker
        last_bt = [json.loads(p)["data"] for _, p in records
                   if json.loads(p).get("stream") == "btcusdt@bookTicker"][-1]
        assert sim.update_id("BTCUSDT") == last_bt["u"]
        book = sim.book("BTCUSDT")
        assert (book["bid"], book["ask"]) == (last_bt["b"], last_bt["a"])
        assert sim.stats()["replay_frames"] == len(records)


def test_replay_of_a_simulator_session(tmp_path):
    """Frames a client received from the synthetic market, captured, replay byte for byte."""
    path = tmp_path / "sim.cap"

    async def record(sim):
        async with websockets.connect(sim.md_url + "/stream?streams=btcusdt@bookTicker/"
                                      "btcusdt@trade/ethusdt@bookTicker", max_queue=None) as ws:
            with FrameCapture(path) as cap:
                async with asyncio.timeout(10):
                    for _ in range(200):
                        cap.put(time.perf_counter_ns(), 1, await ws.recv(decode=False))

    with SimThread(event_rate=400, trade_rate=80, seed=9) as sim:
        run(record(sim))
    from engine.feed.capture import read_capture
    recorded = [p for _, _, p in read_capture(path)]
    assert len(recorded) == 200
    with SimThread(replay_file=str(path), replay_speed=0) as sim:   # as fast as possible
        frames, _ = run(receive(sim.md_url + "/ws", len(recorded)))
    assert frames == recorded


def test_bad_capture_file_is_refused(tmp_path):
    path = tmp_path / "bad.cap"
    path.write_bytes(b"not a capture")
    with pytest.raises(ValueError, match="not a frame capture"):
        SimThread(replay_file=str(path)).start()
