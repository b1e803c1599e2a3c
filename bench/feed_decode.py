"""Feed decode benchmark: ns per frame, decode + normalise to int64 fixed point + publish into a
real md ring, for each venue format, side by side with `json.loads` + float and `orjson.loads` +
float doing the same normalisation and the same publish (measured in the same run), the
frame-arrival-to-published latency distribution, and heap allocations per frame.

Frames: the real Binance spot bookTicker/trade stream from ../shared/corpus (hftbacktest
BTCUSDT capture) when it is there, else a synthetic random walk; update ids are renumbered so a
frame list can be replayed. The other formats carry the same prices in their own wire shape
(SBE bestBidAsk built per stream_1_0.xml). Publish = the feed's own sink (engine/feed/publish.py
RingSink: dedupe, stamps, claim, write, commit) into a real md ring; a consumer in this process
drains between batches. The Binance bookTicker and SBE bestBidAsk rows go through the C fast
path (engine._feed.BookDecoder) as in the feed; "(python decoder)" rows are the same adapters
built with fast_path=False, the decoders the fast path is tested against.

Also measured: the cost of the kernel receive stamp per socket pick-up (engine/feed/stamps.py),
on a loopback TCP pair through picows's own transport, against the same read without it.

Run: `.venv/bin/python -m bench --only feed_decode` (or `python -m bench.feed_decode`).
"""
from __future__ import annotations

import asyncio
import json
import os
import random
import socket
import statistics
import struct
import sys
from pathlib import Path
from time import perf_counter_ns

import numpy as np

from bench.common import describe_machine, pct, table
from engine import _feed
from engine.feed.publish import RingSink
from engine.feed.venues import make_adapter
from engine.feed.venues import binance_sbe
from engine.instruments import Instrument
from engine.records import MD_BBO, MD_DTYPE, MD_TRADE, SIDE_BUY, SIDE_SELL
from engine.ring.ring import Ring

CORPUS = Path(os.environ.get("MM_SHARED_DIR", Path(__file__).resolve().parents[2] / "shared")) / "corpus"
BTC = Instrument(symbol="BTCUSDT", base="BTC", quote="USDT", tick_size="0.01", lot_size="0.00001")
BATCH = 256


# ---------------------------------------------------------------- frames
def _book_tickers(n: int) -> tuple[list[dict], list[dict], str]:
    """n bookTicker payloads and n/4 trade payloads (dicts with venue key order)."""
    src = CORPUS / "binance/hftbacktest_spot_btcusdt_20240808.head.txt"
    books, trades = [], []
    if src.is_file():
        for line in src.read_bytes().splitlines():
            m = json.loads(line.split(b" ", 1)[1])
            kind = m.get("stream", "").partition("@")[2]
            if kind == "bookTicker":
                books.append(m["data"])
            elif kind == "trade":
                trades.append(m["data"])
        origin = f"corpus {src.name} ({len(books)} bookTicker, {len(trades)} trade frames, cycled)"
    else:
        rnd = random.Random(7)
        px = 6_183_763
        for _ in range(2000):
            px += rnd.choice((-1, 0, 0, 1))
            books.append({"u": 0, "s": "BTCUSDT", "b": f"{px / 100:.2f}000000",
                          "B": f"{rnd.randint(1, 500000) / 1e5:.8f}", "a": f"{(px + 1) / 100:.2f}000000",
                          "A": f"{rnd.randint(1, 500000) / 1e5:.8f}"})
            trades.append({"e": "trade", "E": 1723161255343, "s": "BTCUSDT", "t": 0,
                           "p": f"{px / 100:.2f}000000", "q": "0.02000000", "T": 1723161255342,
                           "m": True, "M": True})
        origin = "synthetic random walk (corpus not found)"
    out_b = [dict(books[k % len(books)], u=50_000_000_000 + k) for k in range(n)]
    out_t = [dict(trades[k % len(trades)], t=3_735_683_259 + k) for k in range(n)]
    return out_b, out_t, origin


def _dumps(obj) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def _exact(s: str, exp: int) -> int:
    whole, _, frac = s.partition(".")
    frac = (frac + "0" * 20)[:-exp]
    return int(whole + frac)


def build_frames(n: int) -> tuple[dict[str, list[bytes]], str]:
    books, trades, origin = _book_tickers(n)
    f: dict[str, list[bytes]] = {}
    f["binance bookTicker"] = [_dumps({"stream": "btcusdt@bookTicker", "data": d}) for d in books]
    f["binance trade"] = [_dumps({"stream": "btcusdt@trade", "data": d}) for d in trades]
    f["binance depth5"] = [_dumps({"stream": "btcusdt@depth5@100ms", "data": {
        "lastUpdateId": d["u"], "bids": [[d["b"], d["B"]]] + [["1.00000000", "1.00000000"]] * 4,
        "asks": [[d["a"], d["A"]]] + [["99999.00000000", "1.00000000"]] * 4}}) for d in books]
    for exp, name in ((-2, "sbe bestBidAsk (exp = instrument's)"), (-8, "sbe bestBidAsk (exp -8, rescaled)")):
        qexp = -5 if exp == -2 else -8
        f[name] = [struct.pack("<HHHHqqbbqqqqB7s", 50, 10001, 1, 0, 1723161255343000 + k, d["u"],
                               exp, qexp, _exact(d["b"], exp), _exact(d["B"], qexp),
                               _exact(d["a"], exp), _exact(d["A"], qexp), 7, b"BTCUSDT")
                   for k, d in enumerate(books)]

    def trim(s: str) -> str:   # Bybit/OKX send trimmed decimals
        return s.rstrip("0").rstrip(".") if "." in s else s
    f["bybit orderbook.1 delta"] = [_dumps({
        "topic": "orderbook.1.BTCUSDT", "type": "snapshot" if k == 0 else "delta", "ts": 1758841134603 + k,
        "data": {"s": "BTCUSDT", "b": [[trim(d["b"]), trim(d["B"])]], "a": [[trim(d["a"]), trim(d["A"])]],
                 "u": 14869255 + k, "seq": 457514742271 + k}, "cts": 1758841134598 + k})
        for k, d in enumerate(books)]
    f["okx bbo-tbt"] = [_dumps({
        "arg": {"channel": "bbo-tbt", "instId": "BTC-USDT"},
        "data": [{"asks": [[trim(d["a"]), trim(d["A"]), "0", "13"]],
                  "bids": [[trim(d["b"]), trim(d["B"]), "0", "12"]],
                  "ts": str(1597026383085 + k), "seqId": 123456 + k}]}) for k, d in enumerate(books)]
    return f, origin


ADAPTER_OF = {
    "binance bookTicker": ("binance", ["bookTicker", "trade", "depth5@100ms"], False),
    "binance trade": ("binance", ["bookTicker", "trade", "depth5@100ms"], False),
    "binance depth5": ("binance", ["bookTicker", "trade", "depth5@100ms"], False),
    "sbe bestBidAsk (exp = instrument's)": ("binance-sbe", ["bestBidAsk"], True),
    "sbe bestBidAsk (exp -8, rescaled)": ("binance-sbe", ["bestBidAsk"], True),
    "bybit orderbook.1 delta": ("bybit", ["orderbook.1"], False),
    "okx bbo-tbt": ("okx", ["bbo-tbt"], False),
}
# Rows that also run with the Python decoder alone (fast_path=False), for comparison.
PYTHON_TOO = {"binance bookTicker": "  python decoder: bookTicker",
              "sbe bestBidAsk (exp = instrument's)": "  python decoder: sbe, same exp",
              "sbe bestBidAsk (exp -8, rescaled)": "  python decoder: sbe, exp -8"}


# ---------------------------------------------------------------- baselines (same normalisation)
def _json_loads(payload):
    """json.loads takes no memoryview: the copy to bytes is part of its cost."""
    return json.loads(bytes(payload))


def make_baseline(loads):
    """bookTicker through a generic parser + float, rounded to the same fixed point: what the
    exact path replaces. Same publish."""
    symbols = {"BTCUSDT": 0}
    ps, qs = 10.0 ** -BTC.pexp, 10.0 ** -BTC.qexp

    def decode(payload, binary, sink):
        m = loads(payload)
        d = m["data"]
        i = symbols[d["s"]]
        bp = round(float(d["b"]) * ps)
        bq = round(float(d["B"]) * qs)
        ap = round(float(d["a"]) * ps)
        aq = round(float(d["A"]) * qs)
        if bp >= ap and bq and aq:
            return 0
        sink.emit(i, MD_BBO, d["u"], bp, bq, ap, aq, 0, 0, 0, 0)
        return 1
    return decode


def make_trade_baseline(loads):
    ps, qs = 10.0 ** -BTC.pexp, 10.0 ** -BTC.qexp

    def decode(payload, binary, sink):
        d = loads(payload)["data"]
        sink.emit(0, MD_TRADE, d["t"], 0, 0, 0, 0, round(float(d["p"]) * ps),
                  round(float(d["q"]) * qs), SIDE_SELL if d["m"] else SIDE_BUY, d["T"] * 1_000_000)
        return 1
    return decode


# ---------------------------------------------------------------- measurement
def _drain(consumer: Ring, lat: list | None = None) -> None:
    """Consume what was published; with `lat`, keep each record's arrival -> published time."""
    while True:
        recs = consumer.pop_many()
        if not len(recs):
            break
        if lat is not None:
            lat.append(recs["ts_published"] - recs["ts_arrival"])
    consumer.release()


class Case:
    """One row: a decoder factory (fresh per pass: per-connection state restarts with the
    replayed ids), its frames, and the sink it publishes to (its ids forgotten before each
    pass, or the replay would be dropped as duplicates)."""

    def __init__(self, name, factory, frames, binary=False, sink=None, baseline=None):
        self.name, self.factory, self.binary = name, factory, binary
        self.views = [memoryview(f) for f in frames]
        self.sink, self.baseline = sink, baseline
        self.runs: list[float] = []

    def fresh(self):
        """A new decoder, and the sink's ids forgotten."""
        forget = getattr(self.sink, "forget_ids", None)
        if forget is not None:
            forget()
        return self.factory()


def time_pass(case: Case, consumer: Ring) -> float:
    """ns/frame over all the case's frames, timed in batches of BATCH (drained in between)."""
    decode = case.fresh()
    sink, binary, views = case.sink, case.binary, case.views
    total = 0
    for start in range(0, len(views), BATCH):
        batch = views[start:start + BATCH]
        t0 = perf_counter_ns()
        for v in batch:
            decode(v, binary, sink)
        total += perf_counter_ns() - t0
        _drain(consumer)
    return total / len(views)


def latency_pass(case: Case, consumer: Ring) -> dict:
    """Stamp each frame's arrival, publish, read the records back: arrival -> published."""
    decode = case.fresh()
    sink, binary = case.sink, case.binary
    lat: list = []
    emitted = 0
    for start in range(0, len(case.views), BATCH):
        for v in case.views[start:start + BATCH]:
            sink.ts_arrival = perf_counter_ns()
            emitted += decode(v, binary, sink)
        _drain(consumer, lat)
    out = {f"lat_{k}": v for k, v in pct(np.concatenate(lat) if lat else np.zeros(0)).items()}
    out["published"] = emitted
    return out


def allocations_per_frame(case: Case, consumer: Ring) -> float:
    """Heap allocations (Python's object and memory allocators) per frame over one pass."""
    decode = case.fresh()
    sink, binary = case.sink, case.binary
    total = 0
    for start in range(0, len(case.views), BATCH):
        batch = case.views[start:start + BATCH]

        def run():
            for v in batch:
                decode(v, binary, sink)
        total += _feed.count_allocations(run)[0]
        _drain(consumer)
    return total / len(case.views)


def _adapter_factory(venue, streams, fast_path=True):
    def factory():
        return make_adapter(venue, [BTC if venue != "okx" else
                                    Instrument(symbol="BTC-USDT", tick_size="0.01", lot_size="0.00001")],
                            streams, log_skipped=False, fast_path=fast_path).decode
    return factory


def _sbe_view_read_ns(frames: list[bytes], repeats: int) -> float:
    """The numpy-view alternative for SBE (read the fields, no publish), for the record."""
    dt = binance_sbe.BEST_BID_ASK_DTYPE
    views = [memoryview(f) for f in frames]
    best = []
    for _ in range(repeats):
        t0 = perf_counter_ns()
        for v in views:
            r = np.frombuffer(v, dt, count=1)[0]
            (r["bookUpdateId"], r["bidPrice"], r["bidQty"], r["askPrice"], r["askQty"],
             r["priceExponent"], r["qtyExponent"])
        best.append((perf_counter_ns() - t0) / len(views))
    return statistics.median(best)


def exactness(frames: list[bytes]) -> dict:
    """How often float normalisation disagrees with the exact decoder on these frames."""
    import orjson

    exact, approx = _ListSink(), _ListSink()
    a = make_adapter("binance", [BTC], ["bookTicker"], log_skipped=False)
    base = make_baseline(orjson.loads)
    for f in frames:
        a.decode(memoryview(f), False, exact)
        base(memoryview(f), False, approx)
    diff = sum(1 for x, y in zip(exact.events, approx.events) if x != y)
    # A harder case for floats: 8-decimal prices above 2^53 / 1e8 (about 9e7) at exponent -8.
    fine = Instrument(symbol="BTCUSDT", price_exp=-8, qty_exp=-8)
    a8 = make_adapter("binance", [fine], ["bookTicker"], log_skipped=False)
    s = _ListSink()
    big = b'{"stream":"btcusdt@bookTicker","data":{"u":1,"s":"BTCUSDT","b":"123456789.12345679","B":"1","a":"123456789.12345680","A":"1"}}'
    a8.decode(memoryview(big), False, s)
    d = json.loads(big)["data"]
    return {"frames_compared": len(exact.events), "float_mismatches": diff,
            "exact_big": s.events[0][3] == 12345678912345679,
            "float_big": round(float(d["b"]) * 1e8) == 12345678912345679}


class _NullSink:
    ts_arrival = 0

    def emit(self, *args):
        pass


class _Sink(asyncio.BufferedProtocol):
    """A buffered protocol that takes the bytes and does nothing with them."""

    def __init__(self):
        self.buf = memoryview(bytearray(1 << 16))

    def get_buffer(self, size_hint):
        return self.buf

    def buffer_updated(self, nbytes):
        pass


def stamp_cost(n: int = 4000) -> dict:
    """ns per socket pick-up of a 150-byte frame on a loopback TCP pair, through picows's
    transport (aiofastnet's SelectorSocketTransport) into a buffered protocol: the transport's
    own read, the stamping reader reading itself (ws://), and the stamping reader peeking
    before the transport reads (as for wss://)."""
    from aiofastnet.selector_transport import SelectorSocketTransport

    srv = socket.create_server(("127.0.0.1", 0))
    tx = socket.create_connection(srv.getsockname())
    rx, _ = srv.accept()
    srv.close()
    rx.setblocking(False)
    loop = asyncio.new_event_loop()
    protocol = _Sink()
    transport = SelectorSocketTransport(loop, rx, protocol)
    ways = {"transport read": transport._read_ready,
            "stamped, reads itself": _feed.StampedReader(rx.fileno(), transport._read_ready,
                                                         protocol),
            "stamped, peek + transport read": _feed.StampedReader(rx.fileno(),
                                                                  transport._read_ready)}
    frame = b"x" * 150
    samples = {name: [] for name in ways}
    try:
        for _ in range(2):                  # the second round of each is the one kept (warm)
            for name, call in ways.items():
                out = np.empty(n, np.int64)
                for k in range(n):
                    tx.send(frame)
                    t0 = perf_counter_ns()
                    call()
                    out[k] = perf_counter_ns() - t0
                samples[name] = out
    finally:
        transport.abort()
        loop.run_until_complete(asyncio.sleep(0))
        loop.close()
        tx.close()
    out = {name: float(np.median(v)) for name, v in samples.items()}
    out["stamped"] = {name: r.stamped for name, r in ways.items() if name != "transport read"}
    return out


def _publish_only(n: int):
    """A decoder factory that only publishes: one emit per frame with fixed values and the
    next of n update ids (made once: the row counts no int the harness makes)."""
    ids = list(range(1, n + 1))

    def factory():
        next_id = iter(ids).__next__

        def publish(payload, binary, sink) -> int:
            sink.emit(0, MD_BBO, next_id(), 6183763, 378826, 6183764, 154698, 0, 0, 0, 0)
            return 1
        return publish
    return factory


class _ListSink:
    def __init__(self):
        self.events = []

    def emit(self, *a):
        self.events.append(a)


def main(args=None) -> dict:
    import orjson

    quick = bool(getattr(args, "quick", False))
    n = 4096 if quick else 16384
    repeats = 5 if quick else 9
    frames, origin = build_frames(n)
    instance = f"bfd{os.getpid()}"
    ring = Ring.create(instance, "md", MD_DTYPE, 4096, "drop", role="producer")
    consumer = Ring.attach(instance, "md", MD_DTYPE, role="consumer")
    try:
        sink = RingSink(ring, None, 1, 1)
        bt = frames["binance bookTicker"]
        base = "json.loads + float (bookTicker)"
        cases = [Case(base, lambda: make_baseline(_json_loads), bt, sink=sink),
                 Case("orjson.loads + float (bookTicker)", lambda: make_baseline(orjson.loads), bt,
                      sink=sink, baseline=base)]
        for name, (venue, streams, binary) in ADAPTER_OF.items():
            cases.append(Case(name, _adapter_factory(venue, streams), frames[name], binary, sink,
                              baseline=base))
            if name in PYTHON_TOO:
                cases.append(Case(PYTHON_TOO[name],
                                  _adapter_factory(venue, streams, fast_path=False), frames[name],
                                  binary, sink, baseline=base))
        cases += [Case("json.loads + float (trade)", lambda: make_trade_baseline(_json_loads),
                       frames["binance trade"], sink=sink),
                  Case("orjson.loads + float (trade)", lambda: make_trade_baseline(orjson.loads),
                       frames["binance trade"], sink=sink, baseline="json.loads + float (trade)")]
        for c in cases:
            if c.name == "binance trade":
                c.baseline = "json.loads + float (trade)"
        # Where the time goes: the Python decoders into a sink that does nothing, and the publish
        # step alone (one emit call per frame with fixed values).
        null = _NullSink()
        cases += [Case("  binance bookTicker python, no publish",
                       _adapter_factory("binance", ["bookTicker"], fast_path=False), bt, sink=null),
                  Case("  sbe bestBidAsk python, no publish",
                       _adapter_factory("binance-sbe", ["bestBidAsk"], fast_path=False),
                       frames["sbe bestBidAsk (exp = instrument's)"], True, sink=null),
                  Case("  publish only (emit into the ring)", _publish_only(len(bt)), bt, sink=sink)]
        for c in cases:                      # warm-up pass: caches, allocator, branch history
            time_pass(c, consumer)
        for _ in range(repeats):             # round robin: load on the box hits every row alike
            for c in cases:
                c.runs.append(time_pass(c, consumer))
        results = {c.name: {"ns_per_frame": statistics.median(c.runs), "ns_min": min(c.runs),
                            "runs": c.runs, "frames": len(c.views),
                            "allocs_per_frame": allocations_per_frame(c, consumer),
                            **latency_pass(c, consumer)}
                   for c in cases}
        rows = []
        for c in cases:
            res = results[c.name]
            row = {"name": c.name, "ns": res["ns_per_frame"], "min": res["ns_min"],
                   "allocs": res["allocs_per_frame"],
                   "p50": res["lat_p50"], "p99": res["lat_p99"], "p999": res["lat_p999"]}
            if c.baseline:
                res["ratio"] = row["ratio"] = results[c.baseline]["ns_per_frame"] / res["ns_per_frame"]
            rows.append(row)
        view_ns = _sbe_view_read_ns(frames["sbe bestBidAsk (exp = instrument's)"], repeats)
        exact = exactness(bt)
        stamps = stamp_cost(1000 if quick else 4000)
    finally:
        consumer.close()
        ring.close()
        ring.unlink()

    print("\nfeed_decode: decode + normalise (exact int64) + publish into an md ring, ns per frame")
    print(f"machine: {describe_machine()} | load average {os.getloadavg()[0]:.2f} at the end "
          f"(other work on the box inflates every row alike)")
    print(f"frames: {origin}; {n} frames x {repeats} passes per row, rows taken round robin; "
          f"ns/frame = median pass (min beside it); ratio = baseline median / row median "
          f"(baseline: json.loads + float of the same stream); allocs = heap allocations per "
          f"frame; latency = arrival stamp -> publish stamp, ns")
    print(table(rows, [("name", "format / path", ""), ("ns", "ns/frame", ".0f"),
                       ("min", "min", ".0f"), ("ratio", "x json+float", ".2f"),
                       ("allocs", "allocs", ".2f"), ("p50", "lat p50", ".0f"),
                       ("p99", "lat p99", ".0f"), ("p999", "lat p99.9", ".0f")]))
    print(f"SBE fields through an np.frombuffer view (no publish): {view_ns:.0f} ns/frame "
          f"(the Python decoder uses one struct.unpack_from derived from the same dtype)")
    print(f"exactness: float path differs from exact on {exact['float_mismatches']} of "
          f"{exact['frames_compared']} bookTicker frames; 123456789.12345679 at 1e-8: exact "
          f"{'ok' if exact['exact_big'] else 'WRONG'}, float {'ok' if exact['float_big'] else 'wrong'}")
    base_ns = stamps["transport read"]
    print("kernel receive stamp, per socket pick-up (loopback, 150-byte frame, median ns): "
          + ", ".join(f"{name} {stamps[name]:.0f} ({stamps[name] - base_ns:+.0f})"
                      for name in ("transport read", "stamped, reads itself",
                                   "stamped, peek + transport read")))
    bt_ns = results["binance bookTicker"]["ns_per_frame"]
    sbe_ns = results["sbe bestBidAsk (exp = instrument's)"]["ns_per_frame"]
    targets = {"bookTicker JSON <= 1000 ns": bt_ns <= 1000, "SBE bestBidAsk <= 500 ns": sbe_ns <= 500}
    print("targets: " + ", ".join(f"{k}: {'met' if v else 'NOT met'}" for k, v in targets.items()))
    return {"machine": describe_machine(), "loadavg": os.getloadavg()[0], "frames": origin,
            "results": results, "sbe_numpy_view_ns": view_ns, "exactness": exact,
            "kernel_stamp": stamps, "targets": targets}


if __name__ == "__main__":
    sys.exit(0 if main(None) else 1)
