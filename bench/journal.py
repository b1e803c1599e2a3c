"""Journal benchmarks: how many order events per second the journal keeps up with.

1. in-process: Journal.write of batches of ring records into SQLite (WAL, one transaction per
   batch): events/s of the writer alone.
2. the journal agent process, looking at its ring every 20 ms when idle: a producer (this process,
   standing in for the sender) writes records at 5,000 events/s for a few seconds, then as
   fast as the ring takes them (retrying when full); reported: records dropped at 5,000/s
   (target 0), the agent's lag, and its sustained events/s when saturated.

    python -m bench --only journal [--quick]
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_RATE = 5000


def _events(w, n: int, start: int = 0) -> None:
    """n journal records shaped like the sender's: request, ack, (sometimes) a fill, cancel."""
    from engine.records import FILL_ACK, FILL_CANCELED, JE_REQ_CANCEL, JE_REQ_NEW, SIDE_BUY

    for k in range(start, start + n):
        m = k % 4
        oid = k // 4 + 1
        if m == 0:
            w.request(JE_REQ_NEW, oid, 0, 0, SIDE_BUY, 6000000 + (k & 15), 150, 123456)
        elif m == 1:
            w.fill_record(FILL_ACK, oid, 0, SIDE_BUY, 6000000, 150, 0, 150, 0, 0)
        elif m == 2 and k % 16 == 2:
            w.exec_trade(oid, oid + 1000, k, 0, SIDE_BUY, 6000000, 150, 150, 0, 0, 1,
                         time.time_ns())
        elif m == 2:
            w.request(JE_REQ_CANCEL, oid, 0, 0, SIDE_BUY, 6000000)
        else:
            w.fill_record(FILL_CANCELED, oid, 0, SIDE_BUY, 6000000, 0, 0, 0, 0, 0)


class _ListWriter:
    """A JournalWriter stand-in that keeps record tuples (seq first) in a list."""

    def __init__(self):
        from engine.journal.writer import JournalWriter
        self.rows = []
        self.seq = 0
        w = JournalWriter.__new__(JournalWriter)
        w._put = self._put
        w._commit = lambda: None
        w.written = w.full = 0
        self.w = w

    def _put(self, *fields):
        self.seq += 1
        self.rows.append((self.seq, *fields))
        return True


def in_process(quick: bool) -> dict:
    from engine.config import EngineConfig
    from engine.journal.rows import Journal
    from engine.journal.schema import open_journal

    n = 20_000 if quick else 200_000
    lw = _ListWriter()
    _events(lw.w, n)
    with tempfile.TemporaryDirectory() as d:
        con = open_journal(Path(d) / "j.sqlite")
        j = Journal(con, EngineConfig().instruments, "bench")
        t0 = time.perf_counter()
        for i in range(0, n, 4096):
            j.write(lw.rows[i:i + 4096])
        dt = time.perf_counter() - t0
        con.close()
    return {"events": n, "seconds": dt, "events_per_s": n / dt}


def agent_process(quick: bool) -> dict:
    from engine.config import EngineConfig
    from engine.control import Control
    from engine.journal.schema import open_journal
    from engine.journal.writer import JournalWriter
    from engine.ring.segment import list_segments, unlink
    from engine.ring.table import JOURNAL

    paced_s = 2.0 if quick else 6.0
    burst_n = 20_000 if quick else 100_000
    instance = f"bjrn{os.getpid()}"
    out: dict = {}
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "j.sqlite"
        cfg_file = Path(d) / "mm.toml"
        cfg_file.write_text(f'instance = "{instance}"\n[journal]\npath = "{path}"\n')
        cfg = EngineConfig(instance=instance)
        ctl = Control.open(instance)
        ring = JOURNAL.open(cfg, "producer")
        w = JournalWriter(ring)
        agent = subprocess.Popen([sys.executable, "-m", "engine.cli", "journal-agent",
                                  "--config", str(cfg_file), "--venue-checked"],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 30
            while ctl.role_info("journal")["state"] != "running":
                if time.monotonic() > deadline or agent.poll() is not None:
                    raise RuntimeError("the journal agent did not start")
                time.sleep(0.05)
            # paced: TARGET_RATE events/s in 10 ms bursts, as a busy sender would
            per_burst = TARGET_RATE // 100
            t0 = time.monotonic()
            sent = 0
            lag_max = 0
            while time.monotonic() - t0 < paced_s:
                _events(w, per_burst, sent)
                sent += per_burst
                lag_max = max(lag_max, ctl.counter_values("journal").get("lag_ms", 0))
                time.sleep(max(0.0, t0 + sent / TARGET_RATE - time.monotonic()))
            out["paced"] = {"rate": TARGET_RATE, "seconds": paced_s, "events": sent,
                            "dropped": w.full, "agent_lag_ms_max": lag_max}
            # saturated: as fast as the ring takes them
            while ring.stats()["depth"] > 0:
                time.sleep(0.01)
            written0 = ctl.counter_values("journal").get("records", 0)
            t0 = time.perf_counter()
            k = 0
            full0 = w.full
            while k < burst_n:
                before = w.full
                _events(w, 1, sent + k)
                if w.full == before:
                    k += 1
                else:
                    time.sleep(0.0005)
            dropped_retried = w.full - full0
            while ctl.counter_values("journal").get("records", 0) < written0 + burst_n:
                if time.perf_counter() - t0 > 120:
                    break
                time.sleep(0.005)
            dt = time.perf_counter() - t0
            out["saturated"] = {"events": burst_n, "seconds": dt, "events_per_s": burst_n / dt,
                                "ring_full_retries": dropped_retried}
        finally:
            agent.terminate()
            agent.wait(30)
            ring.close()
            ctl.close()
            for name in list_segments(instance):
                unlink(name)
        con = open_journal(path, readonly=True)
        rows = sum(con.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                   for t in ("requests", "events", "fills"))
        con.close()
        out["rows_in_file"] = rows
        out["file_bytes"] = path.stat().st_size + sum(
            p.stat().st_size for p in path.parent.glob(path.name + "-*"))
    return out


def main(args) -> dict:
    quick = bool(getattr(args, "quick", False))
    print("\n== journal: order events per second (SQLite WAL, one transaction per batch) ==")
    a = in_process(quick)
    print(f"in-process Journal.write: {a['events']} events in {a['seconds']:.2f} s = "
          f"{a['events_per_s']:,.0f} events/s")
    b = agent_process(quick)
    p, s = b["paced"], b["saturated"]
    print(f"journal agent (looks every 20 ms when idle), paced at {p['rate']}/s for "
          f"{p['seconds']:g} s: "
          f"{p['events']} events, {p['dropped']} dropped (target 0), agent lag max "
          f"{p['agent_lag_ms_max']} ms")
    print(f"journal agent saturated: {s['events']} events in {s['seconds']:.2f} s = "
          f"{s['events_per_s']:,.0f} events/s ({s['ring_full_retries']} ring-full retries)")
    print(f"rows in the file: {b['rows_in_file']}, file {b['file_bytes'] / 1e6:.1f} MB")
    return {"in_process": a, "agent": b}
