"""A real quoter process between real rings: book records in through the md ring, acks through
the fills ring, order intents out of the orders ring, in the order the model dictates."""
from __future__ import annotations

import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from engine.config import EngineConfig, RingConfig, RingsConfig
from engine.control import KILL_OPERATOR, Control
from engine.exit_codes import EXIT_KILLED
from engine.quoter.config import QuoterConfig
from engine.quoter.arrays import G_MAX_DRAWDOWN
from tests.support.quoter_reference import INTENT_FIELDS, ReferenceQuoter
from engine.quoter.state import QuoterState
from engine.records import (
    ACTION_CANCEL_ALL, ACTION_NEW, ACTION_REPLACE, ALL_INSTRUMENTS, FILL_ACK, FILL_DTYPE,
    FILL_POSITION, FILL_RESUME, MD_BBO, MD_DTYPE, ORDER_DTYPE, SIDE_BUY, SIDE_SELL,
)
from engine.feed.publish import open_sink
from engine.records import VENUE_BINANCE
from engine.ring.ring import Ring

pytestmark = pytest.mark.slow

START_TIMEOUT_S = 120      # a first run compiles the loop (numba cache empty): tens of seconds
READ_TIMEOUT_S = 10


# no timers in the way: the test checks the model's order of intents
QUOTER = dict(idle="park", levels=2, stale_after_ms=60_000, max_quote_age_ms=0, requote_ticks=5,
              max_drawdown="0")
EXTRA = ("park_timeout_us", "warm_us")     # what a test may set besides


def _config(instance: str, orders_capacity: int = 1024, md_capacity: int = 4096,
            **quoter) -> EngineConfig:
    rings = RingsConfig(orders=RingConfig(capacity=orders_capacity, policy="block"),
                        md=RingConfig(capacity=md_capacity, policy="drop"))
    return EngineConfig(instance=instance, quoter=QuoterConfig(**{**QUOTER, **quoter}),
                        rings=rings)


def _start(cfg: EngineConfig, tmp_path) -> subprocess.Popen:
    """`mm quoter --config <file>`, the way systemd or the supervisor starts it."""
    path = tmp_path / "mm.toml"
    r, q = cfg.rings, cfg.quoter
    lines = [f'instance = "{cfg.instance}"',
             "[rings.orders]", f"capacity = {r.orders.capacity}", 'policy = "block"',
             "[rings.md]", f"capacity = {r.md.capacity}", 'policy = "drop"', "[quoter]"]
    lines += [f"{k} = {getattr(q, k)!r}".replace("'", '"') for k in (*QUOTER, *EXTRA)]
    path.write_text("\n".join(lines) + "\n")
    code = ("import sys; from engine.cli import main; "
            f"sys.exit(main(['quoter', '--config', {str(path)!r}]))")
    return subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE, text=True)


def _wait_running(ctl: Control, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while ctl.role_info("quoter")["state"] != "running" or ctl.pid("quoter") != proc.pid:
        if proc.poll() is not None:
            raise AssertionError(f"quoter exited {proc.returncode}: {proc.stderr.read()}")
        assert time.monotonic() < deadline, "quoter did not start"
        time.sleep(0.02)


COLUMNS = ("seq", *INTENT_FIELDS, "ts_published")


def _read(orders: Ring, n: int, timeout_s: float = READ_TIMEOUT_S) -> list[tuple]:
    """Up to n intents as tuples in COLUMNS order, waiting at most timeout_s."""
    got: list[tuple] = []
    deadline = time.monotonic() + timeout_s
    while len(got) < n and time.monotonic() < deadline:
        recs = orders.pop_many()
        got += [tuple(r) for r in recs[list(COLUMNS)].tolist()]
        if not len(recs):
            time.sleep(0.001)
    orders.release()
    return got


def col(rows: list[tuple], name: str) -> list:
    k = COLUMNS.index(name)
    return [r[k] for r in rows]


def _md(i, update_id, bid_px, ask_px) -> np.ndarray:
    r = np.zeros(1, MD_DTYPE)
    r["instrument"], r["kind"], r["update_id"] = i, MD_BBO, update_id
    r["bid_px"], r["ask_px"], r["bid_qty"], r["ask_qty"] = bid_px, ask_px, 300_000, 200_000
    now = time.perf_counter_ns()
    r["ts_arrival"], r["ts_decoded"], r["ts_published"] = now - 2000, now - 1000, now
    return r


def _fill(i, kind, order_id=0, qty=0) -> np.ndarray:
    f = np.zeros(1, FILL_DTYPE)
    f["instrument"], f["kind"], f["order_id"], f["qty"] = i, kind, order_id, qty
    f["ts_received"] = time.perf_counter_ns()
    return f


@pytest.fixture
def engine(instance, tmp_path, request):
    """Rings and control opened from the test side, a quoter process, all cleaned up.
    Parametrize indirectly with _config's keywords (ring capacities, quoter settings)."""
    cfg = _config(instance, **getattr(request, "param", {}))
    r = cfg.rings
    ctl = Control.open(instance)
    md = Ring.open(instance, "md", MD_DTYPE, r.md.capacity, r.md.policy, role="producer")
    fills = Ring.open(instance, "fills", FILL_DTYPE, r.fills.capacity, r.fills.policy,
                      role="producer")
    orders = Ring.open(instance, "orders", ORDER_DTYPE, r.orders.capacity, r.orders.policy,
                       role="consumer")
    proc = _start(cfg, tmp_path)
    try:
        _wait_running(ctl, proc)
        yield cfg, ctl, md, fills, orders, proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)
        for ring in (md, fills, orders):
            ring.close()
        ctl.close()


def _expected(cfg, events, first_id) -> list[tuple]:
    """What the reference model emits for the same events (read times from the intents)."""
    max_drawdown = int(QuoterState(cfg.quoter, cfg.instruments).g[G_MAX_DRAWDOWN])
    ref = ReferenceQuoter(cfg.quoter, cfg.instruments, first_id, max_drawdown)
    out = []
    for kind, args, now in events:
        if kind == "md":
            ref.on_md(*args, now)
        else:
            ref.on_fill(*args)
        out += ref.requote_dirty(now)
    return out


def test_ring_to_quoter_to_ring(engine):
    cfg, ctl, md, fills, orders, proc = engine
    # nothing is quoted before the sender's POSITION + RESUME
    tick1 = _md(0, 101, 6_000_000, 6_000_001)
    md.push(tick1)
    assert _read(orders, 1, timeout_s=0.3) == []
    fills.push(_fill(0, FILL_POSITION, qty=0))
    fills.push(_fill(1, FILL_POSITION, qty=0))
    fills.push(_fill(0, FILL_RESUME))
    first = _read(orders, 4)                         # 2 levels x 2 sides of instrument 0
    assert len(first) == 4
    assert col(first, "action") == [ACTION_NEW] * 4
    assert col(first, "side") == [SIDE_BUY] * 2 + [SIDE_SELL] * 2
    assert set(col(first, "update_id")) == {101}
    seq = col(first, "seq")
    assert seq == list(range(seq[0], seq[0] + 4))
    for x in first:     # the tick waited for RESUME: answered, but not a tick-to-order sample
        d = dict(zip(COLUMNS, x))
        assert d["ts_arrival"] == d["ts_md_published"] == 0
        assert 0 < d["ts_quoter_read"] <= d["ts_published"]
    ids = col(first, "order_id")
    # acks, then a move of 1 dollar: every quote moves by >= requote_ticks -> 4 replaces
    for oid in ids:
        fills.push(_fill(0, FILL_ACK, order_id=oid))
    time.sleep(0.05)
    md.push(_md(0, 102, 6_000_100, 6_000_101))
    second = _read(orders, 4)
    assert col(second, "action") == [ACTION_REPLACE] * 4
    assert col(second, "orig_order_id") == ids
    assert set(col(second, "update_id")) == {102}
    for x in second:
        d = dict(zip(COLUMNS, x))
        assert d["ts_arrival"] < d["ts_md_published"] <= d["ts_quoter_read"] <= d["ts_published"]
    # the same events through the reference model give the same intents
    t1, t2 = col(first, "ts_quoter_read")[0], col(second, "ts_quoter_read")[0]
    stamps1 = int(tick1["ts_arrival"][0]), int(tick1["ts_published"][0])
    stamps2 = col(second, "ts_arrival")[0], col(second, "ts_md_published")[0]
    events = [("md", (0, MD_BBO, 101, 6_000_000, 300_000, 6_000_001, 200_000, *stamps1), t1),
              ("fill", (0, FILL_POSITION, 0, 0, 0, 0, 0), t1),
              ("fill", (1, FILL_POSITION, 0, 0, 0, 0, 0), t1),
              ("fill", (0, FILL_RESUME, 0, 0, 0, 0, 0), t1)]
    events += [("fill", (0, FILL_ACK, oid, 0, 0, 0, 0), t1) for oid in ids]
    events += [("md", (0, MD_BBO, 102, 6_000_100, 300_000, 6_000_101, 200_000, *stamps2), t2)]
    assert [x[1:-1] for x in first + second] == _expected(cfg, events, first_id=ids[0])
    # kill switch: one CANCEL_ALL for all instruments, then the process ends cleanly
    ctl.kill(KILL_OPERATOR)
    last = _read(orders, 1)
    assert list(zip(col(last, "action"), col(last, "instrument"))) == [(ACTION_CANCEL_ALL,
                                                                       ALL_INSTRUMENTS)]
    assert proc.wait(timeout=10) == EXIT_KILLED          # latched: stays down until mm resume
    assert ctl.role_info("quoter")["state"] == "stopped"
    counters = ctl.counter_values("quoter")
    assert counters["new"] == 4 and counters["replace"] == 4 and counters["cancel_all"] == 1
    assert counters["ticks"] == 2 and counters["acks"] == 4


def test_sigterm_cancels_live_quotes_and_exits(engine):
    cfg, ctl, md, fills, orders, proc = engine
    fills.push(_fill(0, FILL_RESUME))
    md.push(_md(1, 7, 300_000, 300_001))
    assert len(_read(orders, 4)) == 4
    assert ctl.role_info("quoter")["heartbeat_age_ns"] < 5_000_000_000
    proc.send_signal(signal.SIGTERM)
    last = _read(orders, 1)
    assert col(last, "action") == [ACTION_CANCEL_ALL]
    assert proc.wait(timeout=10) == 0
    assert ctl.killed() == 0                       # a stop is not a kill
    assert ctl.role_info("quoter")["state"] == "stopped"


@pytest.mark.parametrize("engine", [{"orders_capacity": 2}], indirect=True)
def test_full_order_ring_delays_intents_without_losing_them(engine):
    """An order ring of 2 slots and a pass of 4 intents: the quoter keeps the rest staged and
    publishes it as the sender reads, in order, nothing dropped."""
    cfg, ctl, md, fills, orders, proc = engine
    fills.push(_fill(0, FILL_RESUME))
    md.push(_md(0, 55, 6_000_000, 6_000_001))
    deadline = time.monotonic() + READ_TIMEOUT_S
    while orders.available() < 2 and time.monotonic() < deadline:
        time.sleep(0.001)
    time.sleep(0.05)                               # the quoter finds the ring full meanwhile
    got = _read(orders, 4)
    assert col(got, "action") == [ACTION_NEW] * 4
    assert col(got, "level") == [0, 1, 0, 1]
    seq = col(got, "seq")
    assert seq == list(range(seq[0], seq[0] + 4))
    assert orders.stats()["dropped"] == 0
    assert ctl.counter_values("quoter")["ring_full"] >= 1


@pytest.mark.parametrize("engine", [{"park_timeout_us": 100_000}], indirect=True)
def test_a_fill_wakes_the_parked_quoter(engine):
    """The quoter sleeps on the md and the fills ring at once (one shared wake word): the
    sender's answer wakes it as a tick does, instead of waiting out the park timeout."""
    cfg, ctl, md, fills, orders, proc = engine
    for ring in (md, fills):                       # as the feed and the sender do
        ring.set_wake_target(ctl.wake_addr("quoter"))
    md.push(_md(0, 101, 6_000_000, 6_000_001))     # pending until RESUME
    assert _read(orders, 1, timeout_s=0.3) == []
    parks, wakes = md.stats()["parks"], fills.stats()["wakes"]
    assert parks > 0                               # it sleeps between events
    deadline = time.monotonic() + 1.0              # push while it sleeps, not while it spins
    while not fills.consumer_parked and time.monotonic() < deadline:
        time.sleep(0.001)
    assert fills.consumer_parked
    # read again right before the push: under the suite's load the test can be descheduled
    # past the 100 ms park after the loop above, and an awake quoter is owed no wake-up
    parked = fills.consumer_parked
    t0 = time.perf_counter_ns()
    fills.push(_fill(0, FILL_POSITION, qty=0))
    fills.push(_fill(1, FILL_POSITION, qty=0))
    fills.push(_fill(0, FILL_RESUME))
    first = _read(orders, 4)
    assert col(first, "update_id") == [101] * 4
    if parked:
        assert fills.stats()["wakes"] > wakes      # the fills ring's producer woke it
    # well inside the 100 ms park: not served by the timeout
    assert col(first, "ts_published")[0] - t0 < 50_000_000


@pytest.mark.parametrize("engine", [{"md_capacity": 8}], indirect=True)
def test_a_quoter_behind_a_full_md_ring_acts_on_the_newest_book(engine, instance):
    """Stopped while the feed publishes 30 book updates into an 8-slot md ring, the quoter
    reads the 8 the ring kept and then, because the feed counted the rest, the book board: it
    quotes the newest book (update 31), never a lost state."""
    cfg, ctl, md, fills, orders, proc = engine
    producer = Ring.open(instance, "md", MD_DTYPE, 8, "drop", role="producer")
    sink = open_sink(instance, producer, cfg.instruments, VENUE_BINANCE, None)
    try:
        sink.ring.set_wake_target(ctl.wake_addr("quoter"))
        sink.conn = 0

        def book(u, bid):
            sink.ts_arrival = time.perf_counter_ns()
            sink.emit(0, MD_BBO, u, bid, 300_000, bid + 1, 200_000, 0, 0, 0, 0)

        fills.push(_fill(0, FILL_POSITION, qty=0))
        fills.push(_fill(1, FILL_POSITION, qty=0))
        fills.push(_fill(0, FILL_RESUME))
        book(1, 6_000_000)
        first = _read(orders, 4)
        assert col(first, "update_id") == [1] * 4
        for oid in col(first, "order_id"):
            fills.push(_fill(0, FILL_ACK, order_id=oid))
        time.sleep(0.05)
        proc.send_signal(signal.SIGSTOP)
        try:
            for u in range(2, 32):                 # the quoter reads nothing meanwhile
                book(u, 6_000_000 + 100 * u)
            assert sink.conflated == 22            # 8 fit, 22 live only on the board
        finally:
            proc.send_signal(signal.SIGCONT)
        got = []
        deadline = time.monotonic() + READ_TIMEOUT_S
        while 31 not in col(got, "update_id") and time.monotonic() < deadline:
            got += _read(orders, 1, timeout_s=0.1)
        assert 31 in col(got, "update_id"), got
        # every quote moved to the newest book: bids at or under 6_003_100, asks above it
        moved = [r for r in got if r[COLUMNS.index("update_id")] == 31]
        for r in moved:
            d = dict(zip(COLUMNS, r))
            assert d["action"] == ACTION_REPLACE
            if d["side"] == SIDE_BUY:
                assert d["price"] <= 6_003_100
            else:
                assert d["price"] >= 6_003_101
        assert not {u for u in col(got, "update_id") if 10 <= u <= 30}   # never delivered
        counters = ctl.counter_values("quoter")
        assert counters["conflated"] >= 1
        assert counters["ticks"] == 1 + 8          # the ring's records; the board's are apart
    finally:
        sink.close()
