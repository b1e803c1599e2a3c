"""Sender benchmarks.

1. sign+encode of one order.place (ns/order, best of several runs and the median run):
   naive baseline (hmac.new + sorted payload + json.dumps of a dict, measured here) vs the
   sender's byte templates with HMAC (keyed state copied per order), Ed25519 per request,
   and the unsigned Ed25519 session.
2. ring-read-to-bytes-written against the simulator: the sender process reads intents from the
   order ring and writes order.place / order.cancel frames to the simulator's WS API; its own
   shared-memory histograms give read->signed ("sign"), signed->written ("encode_send"),
   read->written and intent-published->read (the doorbell wake-up).

    python -m bench --only sender [--quick]
"""
from __future__ import annotations

import os
import statistics
import time
from timeit import Timer

from bench.baselines.asyncio_bot import signed_request
from engine import demo_keys
from engine.instruments import DEFAULT_INSTRUMENTS
from engine.records import SIDE_BUY
from engine.sender.venues.binance import encoding as bn
from engine.sender.keys import demo_ed25519_key
from engine.sender.signing import Ed25519Signer, HmacSigner

KEY, SECRET = demo_keys.DEMO_API_KEY, demo_keys.DEMO_API_SECRET


def _naive_place(rid: int, cid: str, price: str, qty: str) -> bytes:
    """What a straightforward client does (the tutorial-style bot's own request builder):
    build a dict, sort, hmac.new, json.dumps."""
    params = {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT_MAKER", "price": price,
              "quantity": qty, "newClientOrderId": cid, "newOrderRespType": "ACK",
              "recvWindow": 5000}
    return signed_request(rid, "order.place", params).encode()


def _per_order_ns(fn, number: int, repeat: int) -> tuple[float, float]:
    runs = Timer(fn).repeat(repeat=repeat, number=number)
    per = [r / number * 1e9 for r in runs]
    return min(per), statistics.median(per)


def sign_encode(quick: bool) -> list[dict]:
    number, repeat = (2_000, 5) if quick else (20_000, 7)
    hm = HmacSigner(SECRET.encode())
    ed = Ed25519Signer(demo_ed25519_key())
    encs = {a: bn.BinanceEncoder(DEFAULT_INSTRUMENTS, KEY, a, hm, ed)
            for a in (bn.AUTH_HMAC, bn.AUTH_ED25519, bn.AUTH_SESSION)}
    tag = b"mm-%d-%d"
    state = {"n": 0}

    def template(enc):
        def one():
            n = state["n"] = state["n"] + 1
            enc.place(n, 0, SIDE_BUY, 1, tag % (123456789, n), 6000012 + (n & 7), 150,
                      time.time_ns() // 1_000_000)
        return one

    buf = bytearray(4096)

    def native(enc):
        """The hot path: render, sign and frame in one C call into the batch buffer."""
        def one():
            n = state["n"] = state["n"] + 1
            enc.place_into(buf, 0, n, 0, SIDE_BUY, 1, tag % (123456789, n), 6000012 + (n & 7),
                           150, time.time_ns() // 1_000_000)
        return one

    def naive():
        n = state["n"] = state["n"] + 1
        _naive_place(n, "mm-123456789-%d" % n, DEFAULT_INSTRUMENTS[0].price_str(6000012 + (n & 7)),
                     DEFAULT_INSTRUMENTS[0].qty_str(150))

    rows = []
    base_best, base_med = _per_order_ns(naive, number, repeat)
    rows.append({"name": "naive hmac.new + json.dumps(dict)", "best_ns": base_best,
                 "median_ns": base_med, "ratio": 1.0})
    for label, fn, num in (
            ("C: HMAC render+sign+frame (hot path)", native(encs[bn.AUTH_HMAC]), number),
            ("C: session render+frame (hot path)", native(encs[bn.AUTH_SESSION]), number),
            ("Python template HMAC (keyed copy)", template(encs[bn.AUTH_HMAC]), number),
            ("Python template Ed25519 per request", template(encs[bn.AUTH_ED25519]),
             max(number // 20, 200)),
            ("Python template session (unsigned)", template(encs[bn.AUTH_SESSION]), number)):
        best, med = _per_order_ns(fn, num, repeat)
        rows.append({"name": label, "best_ns": best, "median_ns": med,
                     "ratio": base_best / best})
    return rows


def ring_to_wire(quick: bool) -> dict:
    """The sender process against the simulator; its histograms after N place+cancel pairs."""
    from engine.config import EngineConfig
    from engine.latency.histogram import HistogramSet
    from engine.records import FILL_ACK, FILL_CANCELED, FILL_RESUME
    from engine.ring.segment import list_segments, unlink
    from tests.support.sender_process import QuoterEnd, SenderProcess
    from tests.support.sim_thread import SimThread

    pairs = 300 if quick else 2000
    instance = f"bsnd{os.getpid()}"
    out: dict = {}
    try:
        with SimThread(event_rate=20, trade_rate=0, orders_per_10s=10**6) as sim:
            for auth in ("ed25519", "hmac"):
                cfg = EngineConfig(instance=instance, sender={"url": sim.api_url, "auth": auth})
                q = QuoterEnd(cfg)
                with SenderProcess(cfg) as sp:
                    q.wait_fill(lambda r: r["kind"] == FILL_RESUME, 30)
                    for n in range(1, pairs + 1):
                        q.new(n, update_id=n, price=5_000_000 - (n % 50), qty=100, side=SIDE_BUY)
                        q.wait_fill(lambda r, n=n: r["kind"] == FILL_ACK and r["order_id"] == n)
                        time.sleep(0.0005)     # let the sender park: measure the wake-up too
                        q.cancel(n)
                        q.wait_fill(lambda r, n=n: r["kind"] == FILL_CANCELED and r["order_id"] == n)
                        q.received.clear()
                    hs = HistogramSet.attach(instance, "sender")
                    snaps = hs.snapshots()
                    hs.close()
                    sp.terminate()
                    sp.wait(20)
                q.close()
                out[auth] = {name: {"count": h.count, **{f"p{q_:g}": h.percentile(q_)
                                                          for q_ in (50, 90, 99, 99.9)},
                                    "max": h.max}
                             for name, h in snaps.items()}
                for name in list_segments(instance):
                    unlink(name)
    finally:
        for name in list_segments(instance):
            unlink(name)
    return out


def main(args) -> dict:
    from bench.common import describe_machine, table

    quick = bool(getattr(args, "quick", False))
    print("\n== sender: sign + encode of one order.place (ns per order) ==")
    print(describe_machine())
    rows = sign_encode(quick)
    print(table(rows, [("name", "variant", ""), ("best_ns", "best ns", ".0f"),
                       ("median_ns", "median ns", ".0f"), ("ratio", "x faster", ".2f")]))
    hot = rows[1]["median_ns"]
    print(f"target: HMAC sign+encode <= 2500 ns: the hot path (C) {hot:,.0f} ns, "
          f"{'met' if hot <= 2500 else 'not met'}")
    print("\n== sender: ring read -> bytes written, sender process vs simulator (ns) ==")
    wire = ring_to_wire(quick)
    for auth, hists in wire.items():
        print(f"-- auth {auth} --")
        print(table([{"name": n, **v} for n, v in hists.items()],
                    [("name", "histogram", ""), ("count", "count", "d"), ("p50", "p50", ".0f"),
                     ("p90", "p90", ".0f"), ("p99", "p99", ".0f"), ("p99.9", "p99.9", ".0f"),
                     ("max", "max", ".0f")]))
    return {"sign_encode": rows, "ring_to_wire": wire, "idle": "park (doorbell)"}


if __name__ == "__main__":
    import argparse
    p = argparse.ArgumentParser()
    p.add_argument("--quick", action="store_true")
    main(p.parse_args())
