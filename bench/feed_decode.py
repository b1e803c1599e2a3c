"""Feed decode benchmark: ns per frame, decode + normalise to int64 fixed point + publish into a
real md ring, for each venue format, side by side with `json.loads` + float and `orjson.loads` +
float doing the same normalisation and the same publish (measured in the same run), and the
frame-arrival-to-published latency distribution.

Frames: the real Binance spot bookTicker/trade stream from ../shared/corpus (hftbacktest
BTCUSDT capture) when it is there, else a synthetic random walk; update ids are renumbered so a
frame list can be replayed. The other formats carry the same prices in their own wire shape
(SBE bestBidAsk built per stream_1_0.xml). Publish = claim + one struct pack into the slot +
commit (the md ring's producer path), a consumer in this process drains between batches.

Run: `.venv/bin/python -m bench --only feed_decode` (or `python -m bench.feed_decode`).
"""
from __future__ import annotations

import json
import os
import random
import statistics
import struct
import sys
from pathlib import Path
from time import perf_counter_ns

import numpy as np

from bench.common import describe_machine, pct, table
from engine import _native as C
from engine.feed.venues import make_adapter
from engine.feed.venues import binance_sbe
from engine.instruments import Instrument
from engine.records import MD_BBO, MD_DTYPE, MD_TRADE, SIDE_BUY, SIDE_SELL, packer
from engine.ring.header import HEADER_SIZE
from engine.ring.ring import Ring

CORPUS = Path(os.environ.get("MM_SHARED_DIR", Path(__file__).resolve().parents[2] / "shared")) / "corpus"
BTC = Instrument(symbol="BTCUSDT", base="BTC", quote="USDT", tick_size="0.01", lot_size="0.00001")
BATCH = 256
_PACK = packer(MD_DTYPE)


class BenchSink:
    """Minimal md-ring publisher (the producer side of engine/feed/publish.py without dedupe):
    claim a slot, pack the record into it in one call, commit."""

    def __init__(self, ring: Ring):
        self._hdr = ring.hdr
        self._buf = ring.seg.buf
        self._base = HEADER_SIZE + 8
        self._size = MD_DTYPE.itemsize
        self.ts_arrival = 0     # set per frame by the caller, as the connection does

    def emit(self, instrument, kind, update_id, bid_px, bid_qty, ask_px, ask_qty, trade_px,
             trade_qty, trade_side, ts_venue):
        idx = C.try_claim(self._hdr)
        if idx < 0:
            return
        ts = perf_counter_ns()
        _PACK.pack_into(self._buf, self._base + idx * self._size, update_id, instrument, kind, 1, 0,
                        bid_px, bid_qty, ask_px, ask_qty, trade_px, trade_qty, trade_side, ts_venue,
                        self.ts_arrival, ts, ts)
        C.commit(self._hdr)


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
    replayed ids), its frames, the sink it publishes to, and what resets that sink."""

    def __init__(self, name, factory, frames, binary=False, sink=None, reset=None, baseline=None):
        self.name, self.factory, self.binary = name, factory, binary
        self.views = [memoryview(f) for f in frames]
        self.sink, self.reset, self.baseline = sink, reset, baseline
        self.runs: list[float] = []


def time_pass(case: Case, consumer: Ring) -> float:
    """ns/frame over all the case's frames, timed in batches of BATCH (drained in between)."""
    decode = case.factory()
    if case.reset:
        case.reset()
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
    decode = case.factory()
    if case.reset:
        case.reset()
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


def _adapter_factory(venue, streams):
    def factory():
        return make_adapter(venue, [BTC if venue != "okx" else
                                    Instrument(symbol="BTC-USDT", tick_size="0.01", lot_size="0.00001")],
                            streams, log_skipped=False).decode
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


def _publish_only(payload, binary, sink) -> int:
    sink.emit(0, MD_BBO, 1, 6183763, 378826, 6183764, 154698, 0, 0, 0, 0)
    return 1


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
        sink = BenchSink(ring)
        bt = frames["binance bookTicker"]
        base = "json.loads + float (bookTicker)"
        cases = [Case(base, lambda: make_baseline(_json_loads), bt, sink=sink),
                 Case("orjson.loads + float (bookTicker)", lambda: make_baseline(orjson.loads), bt,
                      sink=sink, baseline=base)]
        cases += [Case(name, _adapter_factory(venue, streams), frames[name], binary, sink,
                       baseline=base) for name, (venue, streams, binary) in ADAPTER_OF.items()]
        cases += [Case("json.loads + float (trade)", lambda: make_trade_baseline(_json_loads),
                       frames["binance trade"], sink=sink),
                  Case("orjson.loads + float (trade)", lambda: make_trade_baseline(orjson.loads),
                       frames["binance trade"], sink=sink, baseline="json.loads + float (trade)")]
        for c in cases:
            if c.name == "binance trade":
                c.baseline = "json.loads + float (trade)"
        try:   # the real sink (dedupe, stamps) from engine/feed/publish.py, for comparison
            from engine.feed.publish import RingSink
            real = RingSink(ring, None, 1, 1)

            def forget():   # a replay restarts the update ids the sink dedupes on
                real.last_book[0] = real.last_trade[0] = -(1 << 63)
            cases.append(Case("binance bookTicker -> publish.RingSink",
                              _adapter_factory("binance", ["bookTicker"]), bt, sink=real,
                              reset=forget, baseline=base))
        except ImportError:
            pass
        # Where the time goes: the same decoders into a sink that does nothing, and the publish
        # step alone (one emit per frame with fixed values).
        null = _NullSink()
        cases += [Case("  binance bookTicker, no publish", _adapter_factory("binance", ["bookTicker"]),
                       bt, sink=null),
                  Case("  sbe bestBidAsk, no publish", _adapter_factory("binance-sbe", ["bestBidAsk"]),
                       frames["sbe bestBidAsk (exp = instrument's)"], True, sink=null),
                  Case("  publish only (emit into the ring)", lambda: _publish_only, bt, sink=sink)]
        for c in cases:                      # warm-up pass: caches, allocator, branch history
            time_pass(c, consumer)
        for _ in range(repeats):             # round robin: load on the box hits every row alike
            for c in cases:
                c.runs.append(time_pass(c, consumer))
        results = {c.name: {"ns_per_frame": statistics.median(c.runs), "ns_min": min(c.runs),
                            "runs": c.runs, "frames": len(c.views), **latency_pass(c, consumer)}
                   for c in cases}
        rows = []
        for c in cases:
            res = results[c.name]
            row = {"name": c.name, "ns": res["ns_per_frame"], "min": res["ns_min"],
                   "p50": res["lat_p50"], "p99": res["lat_p99"], "p999": res["lat_p999"]}
            if c.baseline:
                res["ratio"] = row["ratio"] = results[c.baseline]["ns_per_frame"] / res["ns_per_frame"]
            rows.append(row)
        view_ns = _sbe_view_read_ns(frames["sbe bestBidAsk (exp = instrument's)"], repeats)
        exact = exactness(bt)
    finally:
        consumer.close()
        ring.close()
        ring.unlink()

    print("\nfeed_decode: decode + normalise (exact int64) + publish into an md ring, ns per frame")
    print(f"machine: {describe_machine()} | load average {os.getloadavg()[0]:.2f} at the end "
          f"(other work on the box inflates every row alike)")
    print(f"frames: {origin}; {n} frames x {repeats} passes per row, rows taken round robin; "
          f"ns/frame = median pass (min beside it); ratio = baseline median / row median "
          f"(baseline: json.loads + float of the same stream); latency = arrival stamp -> "
          f"publish stamp, ns")
    print(table(rows, [("name", "format / path", ""), ("ns", "ns/frame", ".0f"),
                       ("min", "min", ".0f"), ("ratio", "x json+float", ".2f"),
                       ("p50", "lat p50", ".0f"),
                       ("p99", "lat p99", ".0f"), ("p999", "lat p99.9", ".0f")]))
    print(f"SBE fields through an np.frombuffer view (no publish): {view_ns:.0f} ns/frame "
          f"(the adapter uses one struct.unpack_from derived from the same dtype)")
    print(f"exactness: float path differs from exact on {exact['float_mismatches']} of "
          f"{exact['frames_compared']} bookTicker frames; 123456789.12345679 at 1e-8: exact "
          f"{'ok' if exact['exact_big'] else 'WRONG'}, float {'ok' if exact['float_big'] else 'wrong'}")
    bt_ns = results["binance bookTicker"]["ns_per_frame"]
    sbe_ns = results["sbe bestBidAsk (exp = instrument's)"]["ns_per_frame"]
    targets = {"bookTicker JSON <= 1000 ns": bt_ns <= 1000, "SBE bestBidAsk < 500 ns": sbe_ns < 500}
    print("targets: " + ", ".join(f"{k}: {'met' if v else 'NOT met'}" for k, v in targets.items()))
    return {"machine": describe_machine(), "loadavg": os.getloadavg()[0], "frames": origin,
            "results": results, "sbe_numpy_view_ns": view_ns, "exactness": exact,
            "targets": targets}


if __name__ == "__main__":
    sys.exit(0 if main(None) else 1)
