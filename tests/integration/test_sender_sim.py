"""The sender process against the exchange simulator (a real WebSocket server on loopback):
round trips, fills, rejects, reconnect + reconcile, and the safety net. The test process plays
the quoter's ring ends (tests/support/sender_process.QuoterEnd)."""
from __future__ import annotations

import json
import threading
import time

import pytest

from engine import demo_keys
from engine.config import EngineConfig
from engine.control import KILL_HEARTBEAT, STATE_RUNNING, Control
from engine.exit_codes import EXIT_PEER_LOST
from engine.instruments import DEFAULT_INSTRUMENTS
from engine.records import (ACTION_RESET_SEEN, ALL_INSTRUMENTS, FILL_ACK, FILL_CANCELED,
                            FILL_POSITION, FILL_REJECT, FILL_RESET, FILL_RESUME, FILL_TRADE,
                            SIDE_BUY, SIDE_SELL)
from engine.sender.venues.binance import encoding as bn
from engine.sender.fills import LOCAL_BEFORE_RESET
from engine.sender.signing import HmacSigner
from tests.support.sender_process import QuoterEnd, SenderProcess
from tests.support.sim_thread import SimThread

pytestmark = pytest.mark.timeout(60)

BTC = 0
PX_50000 = 5_000_000          # BTCUSDT price mantissa (exp -2)
QTY = 100                     # 0.00100 BTC (exp -5)


def kinds(records, order_id=None):
    return [r["kind"] for r in records if order_id is None or r["order_id"] == order_id]


@pytest.fixture
def sim():
    with SimThread(event_rate=20, trade_rate=0) as s:
        yield s


def engine_cfg(instance, sim, **sender):
    sender.setdefault("reconnect_base_s", 0.05)
    return EngineConfig(instance=instance, tag="mm", sender={"url": sim.api_url, **sender})


@pytest.fixture
def running(instance, sim):
    """Start a sender (auth per test param) and wait for FILL_RESUME; yields (sp, q, cfg)."""
    started = []

    def start(**sender):
        cfg = engine_cfg(instance, sim, **sender)
        q = QuoterEnd(cfg)
        sp = SenderProcess(cfg).start()
        started.append((sp, q))
        try:
            q.wait_fill(lambda r: r["kind"] == FILL_RESUME, 20)
        except TimeoutError:
            raise AssertionError(f"sender did not start:\n{sp.log()}") from None
        return sp, q, cfg

    yield start
    for sp, q in started:
        sp.__exit__(None, None, None)
        q.close()


@pytest.mark.parametrize("auth,idle", [("ed25519", "park"), ("hmac", "busy-spin")])
def test_place_replace_cancel_round_trip(sim, running, auth, idle):
    sp, q, _ = running(auth=auth, idle=idle)
    q.new(1, update_id=4242, price=PX_50000, qty=QTY, side=SIDE_BUY)
    ack = q.wait_fill(lambda r: r["kind"] == FILL_ACK and r["order_id"] == 1)
    assert (ack["price"], ack["qty"], ack["leaves_qty"]) == (PX_50000, QTY, QTY)
    [o] = sim.open_orders("BTCUSDT")
    assert (o["clientOrderId"], o["price"], o["origQty"], o["type"], o["side"]) == \
        ("mm-4242-1", "50000.00000000", "0.00100000", "LIMIT_MAKER", "BUY")

    q.replace(2, 1, update_id=4243, price=PX_50000 + 1, qty=2 * QTY, side=SIDE_BUY)
    q.wait_fill(lambda r: r["kind"] == FILL_ACK and r["order_id"] == 2)
    q.wait_fill(lambda r: r["kind"] == FILL_CANCELED and r["order_id"] == 1)
    [o] = sim.open_orders("BTCUSDT")
    assert (o["clientOrderId"], o["price"], o["origQty"]) == ("mm-4243-2", "50000.01000000",
                                                             "0.00200000")
    q.cancel(2)
    q.wait_fill(lambda r: r["kind"] == FILL_CANCELED and r["order_id"] == 2)
    assert sim.open_orders() == []
    sp.terminate()
    assert sp.wait() == 0
    assert kinds(q.received, 1) == [FILL_ACK, FILL_CANCELED]       # nothing duplicated
    assert kinds(q.received, 2) == [FILL_ACK, FILL_CANCELED]


def test_fills_reach_the_fill_ring_with_exact_quantities(sim, running):
    sp, q, _ = running(auth="hmac")
    start_btc = [r for r in q.received if r["kind"] == FILL_POSITION and r["instrument"] == BTC]
    assert start_btc[0]["qty"] == 10 * 100_000                      # sim starts with 10 BTC
    q.new(1, update_id=1, price=PX_50000, qty=QTY, side=SIDE_BUY)
    q.new(2, update_id=1, price=7_000_000, qty=3 * QTY, side=SIDE_SELL)
    q.wait_fill(lambda r: r["kind"] == FILL_ACK and r["order_id"] == 2)
    sim.trade_at("BTCUSDT", "49999.00", "0.00500", "SELL")          # through our bid
    t = q.wait_fill(lambda r: r["kind"] == FILL_TRADE and r["order_id"] == 1)
    assert (t["side"], t["price"], t["qty"], t["cum_qty"], t["leaves_qty"]) == \
        (SIDE_BUY, PX_50000, QTY, QTY, 0)
    sim.trade_at("BTCUSDT", "70000.01", "0.00300", "BUY")           # through our ask
    t = q.wait_fill(lambda r: r["kind"] == FILL_TRADE and r["order_id"] == 2)
    assert (t["side"], t["price"], t["qty"], t["cum_qty"], t["leaves_qty"]) == \
        (SIDE_SELL, 7_000_000, 3 * QTY, 3 * QTY, 0)
    assert sim.balances()["BTC"]["free"].startswith("9.998")      # +0.001 -0.003
    sp.terminate()
    assert sp.wait() == 0
    trades = [r for r in q.received if r["kind"] == FILL_TRADE]
    assert len(trades) == 2                                        # each fill exactly once


def test_rejects_are_reported_with_the_venue_code(sim, running):
    sp, q, _ = running(auth="ed25519")
    sim.reject_orders(1, -2010, "Account has insufficient balance for requested action.")
    q.new(1, update_id=1, price=PX_50000, qty=QTY, side=SIDE_BUY)
    r = q.wait_fill(lambda r: r["order_id"] == 1 and r["kind"] != FILL_POSITION)
    assert (r["kind"], r["error_code"]) == (FILL_REJECT, -2010)
    book = sim.book("BTCUSDT")
    ask = int(book["ask"].replace(".", "")[:-6])                   # 8 decimals -> 2
    q.new(2, update_id=2, price=ask + 100, qty=QTY, side=SIDE_BUY, post_only=1)  # would take
    r = q.wait_fill(lambda r: r["order_id"] == 2)
    assert (r["kind"], r["error_code"]) == (FILL_REJECT, -2010)
    assert sim.open_orders() == []
    sp.terminate()
    assert sp.wait() == 0


def _place_stranger(sim, cid: str) -> None:
    """Another client places an order carrying our tag (a leftover of an earlier run)."""
    import websockets.sync.client as wsc

    enc = bn.BinanceEncoder(DEFAULT_INSTRUMENTS, demo_keys.DEMO_API_KEY, bn.AUTH_HMAC,
                            HmacSigner(demo_keys.DEMO_API_SECRET.encode()))
    with wsc.connect(sim.api_url, open_timeout=5) as ws:
        ws.send(enc.place(1, BTC, SIDE_BUY, 1, cid.encode(), 4_000_000, QTY,
                          time.time_ns() // 1_000_000).decode())
        assert json.loads(ws.recv(timeout=5))["status"] == 200


def test_start_and_reconnect_reconcile_with_the_venue(sim, running):
    _place_stranger(sim, "mm-1-999")
    sp, q, _ = running(auth="ed25519")
    assert [o["clientOrderId"] for o in _wait(lambda: sim.open_orders() == [] or None,
                                              sim.open_orders)] == []  # stranger canceled
    q.new(1, update_id=1, price=PX_50000, qty=QTY, side=SIDE_BUY)
    q.new(2, update_id=1, price=PX_50000 - 100, qty=QTY, side=SIDE_BUY)
    q.wait_fill(lambda r: r["kind"] == FILL_ACK and r["order_id"] == 2)
    resumes = kinds(q.received).count(FILL_RESUME)

    def drop_and_fill():          # one step on the sim's loop: the fill lands while we are away
        srv = sim.server
        srv.drop_connections("api")
        srv.trade_at("BTCUSDT", "49999.50", "0.00100", "SELL")     # fills order 1 only
    sim.delay_responses(200)      # the fill's executionReport is still queued when we drop
    sim._call(drop_and_fill)
    time.sleep(0.4)
    sim.delay_responses(0)

    # order 1 is no longer listed: asked about, it turns out filled - a fill, not a cancel
    fill = q.wait_fill(lambda r: r["kind"] == FILL_TRADE and r["order_id"] == 1, 15)
    assert (fill["qty"], fill["leaves_qty"]) == (QTY, 0)
    q.wait_fill(lambda r: r["kind"] == FILL_RESUME and
                kinds(q.received).count(FILL_RESUME) > resumes, 15)
    assert FILL_CANCELED not in kinds(q.received, 1)
    assert 2 not in [r["order_id"] for r in q.received if r["kind"] == FILL_CANCELED]
    # the quoter's inventory (positions then fills, in ring order) equals the venue's
    inv = None
    for r in q.received:
        if r["kind"] == FILL_POSITION and r["instrument"] == BTC:
            inv = r["qty"]
        elif r["kind"] == FILL_TRADE and r["instrument"] == BTC:
            inv += r["qty"] if r["side"] == SIDE_BUY else -r["qty"]
    btc = sim.balances()["BTC"]
    assert inv == round((float(btc["free"]) + float(btc["locked"])) * 100_000) == 1_000_100
    q.cancel(2)                                                  # order 2 survived, still ours
    q.wait_fill(lambda r: r["kind"] == FILL_CANCELED and r["order_id"] == 2)
    sp.terminate()
    assert sp.wait() == 0
    assert "reconnected" in sp.log()


def _wait(pred, get, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            break
        time.sleep(0.02)
    return get()


def test_sigterm_with_resting_orders_leaves_nothing_open(sim, running):
    sp, q, _ = running(auth="hmac")
    for n in range(1, 6):
        q.new(n, update_id=100 + n, price=PX_50000 - n, qty=QTY, side=SIDE_BUY)
    q.new(6, update_id=200, price=7_000_000, qty=QTY, side=SIDE_SELL, instrument=0)
    q.new(7, update_id=201, price=200_000, qty=10_000, side=SIDE_BUY, instrument=1)  # ETHUSDT
    q.wait_fill(lambda r: kinds(q.received).count(FILL_ACK) == 7)
    assert len(sim.open_orders()) == 7
    sp.terminate()
    assert sp.wait() == 0
    assert sim.open_orders() == []
    log = sp.log()
    assert "every order confirmed gone" in log
    assert demo_keys.DEMO_API_SECRET not in log and demo_keys.DEMO_API_KEY not in log


def test_no_order_is_placed_before_the_quoter_echoes_the_reset(instance, sim):
    """A new sender's RESET carries a token; until the quoter's RESET_SEEN with that token is
    read, new orders are refused locally (LOCAL_BEFORE_RESET: an intent decided before the
    quoter dropped its slots would become an order no slot manages); an echo of another token
    changes nothing; the right echo lets orders go."""
    cfg = engine_cfg(instance, sim, auth="hmac")
    q = QuoterEnd(cfg, echo_reset=False)
    with SenderProcess(cfg) as sp:
        try:
            reset = q.wait_fill(lambda r: r["kind"] == FILL_RESET, 20)
            q.wait_fill(lambda r: r["kind"] == FILL_RESUME, 20)
        except TimeoutError:
            raise AssertionError(f"sender did not start:\n{sp.log()}") from None
        assert reset["order_id"] != 0                        # the token
        q.new(1, update_id=1, price=PX_50000, qty=QTY, side=SIDE_BUY)
        rej = q.wait_fill(lambda r: r["order_id"] == 1)
        assert (rej["kind"], rej["error_code"]) == (FILL_REJECT, LOCAL_BEFORE_RESET)
        q.intent(ACTION_RESET_SEEN, reset["order_id"] + 1, instrument=ALL_INSTRUMENTS)
        q.new(2, update_id=2, price=PX_50000, qty=QTY, side=SIDE_BUY)
        rej = q.wait_fill(lambda r: r["order_id"] == 2)
        assert (rej["kind"], rej["error_code"]) == (FILL_REJECT, LOCAL_BEFORE_RESET)
        q.intent(ACTION_RESET_SEEN, reset["order_id"], instrument=ALL_INSTRUMENTS)
        q.new(3, update_id=3, price=PX_50000, qty=QTY, side=SIDE_BUY)
        assert q.wait_fill(lambda r: r["order_id"] == 3)["kind"] == FILL_ACK
        assert [o["clientOrderId"] for o in sim.open_orders()] == ["mm-3-3"]
        sp.terminate()
        assert sp.wait() == 0
    q.close()


def test_stopped_quoter_heartbeat_triggers_cancel_all(instance, sim, running):
    ctl = Control.open(instance)
    ctl.register("quoter")
    ctl.set_state("quoter", STATE_RUNNING)
    beating = threading.Event()
    beating.set()

    def beat():
        while beating.is_set():
            ctl.beat("quoter")
            time.sleep(0.02)
    t = threading.Thread(target=beat, daemon=True)
    t.start()
    try:
        sp, q, _ = running(auth="ed25519", heartbeat_timeout_ms=300)
        q.new(1, update_id=1, price=PX_50000, qty=QTY, side=SIDE_BUY)
        q.wait_fill(lambda r: r["kind"] == FILL_ACK)
        time.sleep(0.5)                           # beating: the sender keeps running
        assert sp.proc.poll() is None and len(sim.open_orders()) == 1
        beating.clear()                           # the quoter stops beating
        assert sp.wait(15) == EXIT_PEER_LOST           # canceled everything; restart me
        assert sim.open_orders() == []
        assert ctl.killed() == KILL_HEARTBEAT
        assert "quoter heartbeat" in sp.log()
    finally:
        beating.clear()
        t.join(2)
        ctl.deregister("quoter")
        ctl.close()


def test_dry_run_signs_logs_redacted_and_sends_nothing(instance, sim):
    cfg = EngineConfig(instance=instance, tag="mm", sender={"url": sim.api_url, "dry_run": True,
                                                  "auth": "hmac"})
    q = QuoterEnd(cfg)
    with SenderProcess(cfg) as sp:
        q.wait_fill(lambda r: r["kind"] == FILL_RESUME, 20)
        q.new(1, update_id=9, price=PX_50000, qty=QTY, side=SIDE_BUY)
        deadline = time.monotonic() + 10
        while "dry-run:" not in sp.log() and time.monotonic() < deadline:
            time.sleep(0.02)
        sp.terminate()
        assert sp.wait() == 0
        log = sp.log()
    q.poll()
    q.close()
    line = [x for x in log.splitlines() if "dry-run:" in x][0]
    frame = json.loads(line.split("dry-run: ", 1)[1])
    assert frame["params"]["newClientOrderId"] == "mm-9-1"
    assert frame["params"]["signature"] == "***" and frame["params"]["apiKey"] == "***"
    assert demo_keys.DEMO_API_KEY not in log and demo_keys.DEMO_API_SECRET not in log
    assert kinds(q.received) == [FILL_RESUME]                     # no acks, no fills
    assert sim.stats()["requests"] == 0 and sim.open_orders() == []


def test_refuses_demo_keys_off_loopback(instance):
    cfg = EngineConfig(instance=instance, sender={"url": "wss://ws-api.binance.com/ws-api/v3"})
    with SenderProcess(cfg, env={"MM_API_KEY": "", "MM_API_SECRET": ""}) as sp:
        assert sp.wait(20) == 2
        assert "loopback" in sp.log()




def test_rate_limit_feedback_paces_then_backs_off(instance, sim, running):
    from engine.sender.fills import LOCAL_RATE_LIMITED

    sp, q, cfg = running(auth="ed25519")
    sim.throttle(3)                               # ORDERS: 3 per 10 s
    for n in range(1, 5):
        q.new(n, update_id=n, price=PX_50000 - n, qty=QTY, side=SIDE_BUY)
    q.wait_fill(lambda r: r["kind"] == FILL_ACK and r["order_id"] == 3)
    r = q.wait_fill(lambda r: r["order_id"] == 4, 20)    # same burst: the venue refuses it
    assert (r["kind"], r["error_code"]) == (FILL_REJECT, -1015)
    q.new(5, update_id=5, price=PX_50000 - 5, qty=QTY, side=SIDE_BUY)
    r = q.wait_fill(lambda r: r["order_id"] == 5)        # backing off: refused locally
    assert (r["kind"], r["error_code"]) == (FILL_REJECT, LOCAL_RATE_LIMITED)
    ctl = Control.attach(instance)
    deadline = time.monotonic() + 5
    wanted = ("rate_paced", "rate_backoffs", "local_rejects")     # published every 50 ms
    while (min(ctl.counter_values("sender").get(k, 0) for k in wanted) < 1
           and time.monotonic() < deadline):
        time.sleep(0.05)
    counts = ctl.counter_values("sender")
    ctl.close()
    assert counts["rate_paced"] >= 1 and counts["rate_backoffs"] >= 1
    assert counts["local_rejects"] >= 1
    sp.terminate()
    assert sp.wait() == 0
    assert sim.open_orders() == []


def test_server_shutdown_notice_replaces_the_connection_before_the_break(sim, running):
    """Make-before-break: on the venue's serverShutdown notice the sender logs on a second
    connection, moves to it, and retires the old one; resting orders stay managed and new
    ones go out on the new connection."""
    sp, q, _ = running(auth="hmac")
    q.new(1, update_id=1, price=PX_50000, qty=QTY, side=SIDE_BUY)
    q.wait_fill(lambda r: r["kind"] == FILL_ACK and r["order_id"] == 1)
    before = sim.stats()["api_connections"]
    assert sim.announce_shutdown() == 1
    _wait(lambda: "order connection replaced" in sp.log(), lambda: None, 10)
    assert sim.stats()["api_connections"] == before + 1
    _wait(lambda: sim.stats()["api_open"] == 1, lambda: None, 10)    # the old one retired
    assert sim.stats()["api_open"] == 1
    q.new(2, update_id=2, price=PX_50000 - 100, qty=QTY, side=SIDE_BUY)
    q.wait_fill(lambda r: r["kind"] == FILL_ACK and r["order_id"] == 2)
    q.cancel(1)
    q.wait_fill(lambda r: r["kind"] == FILL_CANCELED and r["order_id"] == 1)
    assert [o["clientOrderId"] for o in sim.open_orders()] == ["mm-2-2"]
    sp.terminate()
    assert sp.wait() == 0 and sim.open_orders() == []


def test_stale_intents_and_the_kill_word_send_nothing(instance, sim, running):
    from engine.control import KILL_OPERATOR
    from engine.exit_codes import EXIT_KILLED
    from engine.sender.fills import LOCAL_STALE_INTENT

    sp, q, _ = running(auth="ed25519", max_intent_age_ms=100)
    q.new(1, update_id=1, price=PX_50000, qty=QTY, side=SIDE_BUY, age_ns=500_000_000)
    r = q.wait_fill(lambda r: r["order_id"] == 1)
    assert (r["kind"], r["error_code"]) == (FILL_REJECT, LOCAL_STALE_INTENT)
    ctl = Control.attach(instance)
    ctl.kill(KILL_OPERATOR)
    q.new(2, update_id=2, price=PX_50000, qty=QTY, side=SIDE_BUY)   # read before the watch
    assert sp.wait(15) == EXIT_KILLED                                  # notices, or never
    ctl.close()
    placed = [cid for _, cid in sim.place_log()]
    assert "mm-1-1" not in placed and "mm-2-2" not in placed
