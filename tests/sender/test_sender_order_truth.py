"""Issue 18, the sender side, without a socket: deadlines from measured round trips, "gone only
when surely gone", pacing as the venue counts, and the smaller holes of the order path.

The Binance gateway gets the venue's documented frames (PROTOCOLS.md section 3). Where a test
needs the venue to answer a set-up request (order.status, openOrders.status, account.status,
a stranger's cancel) a scripted venue stands in for it at the gateway's `call` boundary, so
that an interleaving the simulator cannot produce on demand (an answer arriving while another
await is pending) is exact."""
from __future__ import annotations

import asyncio
import json
from pathlib import Path

import msgspec
import pytest

from engine.config import EngineConfig
from engine.quoter.config import QuoterConfig
from engine.records import (FILL_ACK, FILL_CANCELED, FILL_POSITION, FILL_REJECT, FILL_RESUME,
                            FILL_UNKNOWN, SIDE_BUY)
from engine.sender.venues.binance import wire as bn
from engine.sender import keys
from engine.sender import order_state as S
from engine.sender.venues.binance.gateway import REQ_CANCEL, REQ_PLACE, BinanceGateway
from engine.sender.config import SenderConfig
from engine.sender.errors import GatewayError
from engine.sender.liveness import Liveness, RoundTrip

MS = 1_000_000
SECOND = 1_000_000_000


class ListSink:
    def __init__(self):
        self.records = []

    def emit(self, kind, order_id, instrument, side=0, price=0, qty=0, cum_qty=0,
             leaves_qty=0, error_code=0, ts_venue=0):
        self.records.append((kind, order_id, price, qty, cum_qty, leaves_qty, error_code))
        return True

    def kinds(self, order_id=None):
        return [r[0] for r in self.records if order_id is None or r[1] == order_id]


def make_gw(**sender) -> BinanceGateway:
    cfg = EngineConfig(tag="mm", sender=SenderConfig(url="ws://127.0.0.1:1/ws-api/v3",
                                                     auth="hmac", **sender))
    return BinanceGateway(cfg, keys.load(cfg.sender, cfg.sender.url, env={}), ListSink())


@pytest.fixture
def gw():
    return make_gw()


def frame(**kw) -> bytes:
    return json.dumps(kw).encode()


def exec_report(c, x, X, z="0.00000000", last_px="0.00000000", n="0", N=None):
    return frame(subscriptionId=0, event={
        "e": "executionReport", "E": 1, "s": "BTCUSDT", "c": c, "S": "BUY", "o": "LIMIT_MAKER",
        "f": "GTC", "q": "0.00100000", "p": "50000.00000000", "C": "", "x": x, "X": X,
        "r": "NONE", "i": 11, "l": "0", "z": z, "L": last_px, "T": 1700000000000, "n": n,
        "N": N})


def placed(gw, n=1, rid=5):
    o = gw.orders.new(n, b"mm-9-%d" % n, 0, SIDE_BUY, 5_000_000, 100)
    gw.track(rid, REQ_PLACE, n, 0, o.ts_sent)
    return o


def wire(gw) -> list:
    """Let the gateway write (a socket stand-in): returns the list its frames land in."""
    out = []
    gw.ready = True
    gw.fd = -1
    gw._tr_write = out.append
    gw._tr_buffered = lambda: 0
    return out


class ScriptedVenue:
    """Answers the gateway's set-up requests (`call`) by method, from a script: method ->
    a list of answers (dicts: status/result/error), one used per request, the last repeated.
    `before[method]` runs before the answer is given (what happens while the await waits)."""

    def __init__(self, gw, script: dict, before: dict | None = None):
        self.script = {k: list(v) for k, v in script.items()}
        self.before = before or {}
        self.asked: list[str] = []
        gw.connected = True
        gw.call = self.call

    async def call(self, build, timeout=None, transport=None):
        req = json.loads(build(1))
        method = req["method"]
        self.asked.append(method)
        if method in self.before:
            self.before.pop(method)()
        await asyncio.sleep(0)
        answers = self.script[method]
        answer = answers.pop(0) if len(answers) > 1 else answers[0]
        return bn.FRAME.decode(json.dumps({"id": 1, **answer}).encode())


def account(btc="10", eth="10"):
    return {"status": 200, "result": {"balances": [
        {"asset": "BTC", "free": btc, "locked": "0"}, {"asset": "ETH", "free": eth, "locked": "0"},
        {"asset": "USDT", "free": "1000000", "locked": "0"}]}}


NOT_FOUND = {"status": 400, "error": {"code": -2013, "msg": "Order does not exist."}}


# ---------------------------------------------------------------- 2. deadlines from round trips
def test_the_deadline_follows_the_measured_round_trip_between_floor_and_cap():
    rt = RoundTrip(floor_ns=50 * MS, cap_ns=2 * SECOND)
    assert rt.deadline_ns() == 2 * SECOND                 # nothing measured: the cap
    for _ in range(20):
        rt.sample(1 * MS)                                 # a fast venue
    assert rt.deadline_ns() == 50 * MS                    # a lost answer costs the floor
    slow = RoundTrip(floor_ns=50 * MS, cap_ns=2 * SECOND)
    for k in range(50):
        slow.sample((300 + (k % 5) * 25) * MS)            # slow but steady: 300-400 ms
    assert 400 * MS < slow.deadline_ns() < 2 * SECOND     # no false UNKNOWN at 400 ms
    before = slow.deadline_ns()
    slow.missed()
    assert slow.deadline_ns() == 2 * before
    slow.missed()
    slow.missed()
    assert slow.deadline_ns() == 2 * SECOND               # misses back off, up to the cap


def test_a_lost_answer_makes_the_order_unknown_after_a_few_round_trips(gw):
    """Old: every order request waited order_timeout_ms (2 s) before its outcome was unknown."""
    for rid in range(100, 120):                           # answered requests: 1 ms round trips
        o = placed(gw, n=rid, rid=rid)
        gw._inflight[rid] = (REQ_PLACE, rid, 0, o.ts_sent - 1 * MS, None)
        gw.on_frame(frame(id=rid, status=200, result={"orderId": rid, "transactTime": 1}))
    lost = placed(gw, n=7, rid=7)
    gw.expire_requests(lost.ts_sent + 30 * MS)
    assert lost.state == S.PENDING_NEW                    # not yet: within its deadline
    gw.expire_requests(lost.ts_sent + 60 * MS)
    assert lost.state == S.UNKNOWN and gw.counts["timeouts"] == 1


def test_a_burst_caught_by_one_slow_spell_is_one_miss_and_a_late_answer_ends_the_streak(gw):
    gw.transport = None
    for n in range(1, 6):                                 # five sent together, none answered
        placed(gw, n=n, rid=n)
    gw.expire_requests(10**18)
    assert gw.counts["timeouts"] == 5 and gw.liveness.missed_in_a_row == 1
    gw.liveness.missed_in_a_row = 2
    gw.on_frame(frame(id=3, status=200, result={"orderId": 3, "transactTime": 1}))
    assert gw.liveness.missed_in_a_row == 0               # slow, not dead


def test_a_place_acknowledged_by_its_report_is_not_made_unknown_by_its_lost_answer(gw):
    o = placed(gw)
    gw.on_frame(exec_report("mm-9-1", "NEW", "NEW"))      # the report came, the answer did not
    gw.expire_requests(o.ts_sent + 10 * SECOND)
    assert o.state == S.OPEN and gw.fills.kinds(1) == [FILL_ACK]


# ---------------------------------------------------------------- 3. gone only when surely gone
def test_not_found_is_no_conclusion_before_send_time_plus_recv_window_plus_backend_timeout():
    sink = ListSink()
    t = S.OrderTable(sink, "mm", not_found_confirm_ns=SECOND, gone_after_ns=15 * SECOND)
    o = t.new(7, b"mm-5-7", 0, SIDE_BUY, 1000, 100)
    o.last_sent_ns = 0
    t.outcome_unknown(o, 0)
    # two "does not exist" 1 s apart used to conclude at about 3 s: the place may still land
    assert not t.not_found(o, 1 * SECOND)
    assert not t.not_found(o, 3 * SECOND)
    assert not t.not_found(o, 14 * SECOND) and o.state == S.UNKNOWN
    assert o.query_due_ns == 15 * SECOND                  # it keeps being asked
    assert not t.not_found(o, 15 * SECOND + 1, busy=True)  # a request for it is in flight
    assert t.not_found(o, 16 * SECOND)
    assert o.state == S.REJECTED and o.concluded


def test_a_cancel_overtaking_its_place_concludes_nothing_and_the_place_answer_counts():
    """order.place in flight, the quoter cancels, the cancel gets -2011 and status -2013 (the
    place has not reached the book): the order stays UNKNOWN while the place is in flight,
    and the place's answer is applied (old: REJECTED after two -2013, answer dropped)."""
    gw = make_gw(recv_window_ms=1, backend_timeout_ms=0, not_found_confirm_ms=1)
    o = placed(gw, rid=5)
    gw.orders.cancel_sent(o)
    gw.track(6, REQ_CANCEL, 1, 0, o.ts_sent)
    gw.on_frame(frame(id=6, status=400, error={"code": -2011, "msg": "Unknown order sent."}))
    assert o.state == S.UNKNOWN                           # -2011 is not "done"
    ScriptedVenue(gw, {"order.status": [NOT_FOUND]})

    async def ask_twice():
        await gw.query(o)
        await asyncio.sleep(0.01)
        await gw.query(o)
    asyncio.run(ask_twice())
    assert o.live and o.state == S.UNKNOWN                # the place is still in flight
    gw.on_frame(frame(id=5, status=200, result={"orderId": 11, "transactTime": 1}))
    assert o.live and o.acked and gw.orders.counts["duplicates"] == 0


def test_an_order_concluded_gone_that_shows_up_is_canceled_until_the_venue_confirms():
    gw = make_gw(recv_window_ms=1, backend_timeout_ms=0, not_found_confirm_ms=1)
    sent = wire(gw)
    o = gw.orders.new(1, b"mm-9-1", 0, SIDE_BUY, 5_000_000, 100)
    o.last_sent_ns = 0
    gw.orders.outcome_unknown(o, 0)
    gw.orders.not_found(o, 0)
    assert gw.orders.not_found(o, 2 * MS)                 # concluded: the quoter got REJECT
    assert gw.fills.kinds(1) == [FILL_UNKNOWN, FILL_REJECT]
    gw.on_frame(exec_report("mm-9-1", "NEW", "NEW"))      # ... yet the venue shows it live
    assert o.live and o.orphan and o.state == S.CANCELING
    [(rid, req)] = list(gw._inflight.items())            # canceled at once
    assert len(sent) == 1 and req[:2] == (REQ_CANCEL, 1)
    gw.on_frame(frame(id=rid, status=400, error={"code": -2011, "msg": "Unknown order sent."}))
    assert o.live and o.state == S.UNKNOWN                # -2011 to that cancel is not "done"
    gw.orders.venue_status(o, S.OPEN, 0)                  # asked: it still rests
    assert o.state == S.OPEN
    gw.cancel_orphans()                                   # the watch duty: again
    assert len(sent) == 2 and o.state == S.CANCELING
    rid = max(gw._inflight)
    gw.on_frame(frame(id=rid, status=200, result={"orderId": 11, "status": "CANCELED",
                                                  "executedQty": "0", "origClientOrderId": "x"}))
    assert not o.live and gw.fills.kinds(1)[-1] == FILL_CANCELED
    assert gw.orders.counts["revived"] == 1


def test_the_late_answer_of_a_concluded_place_revives_it_instead_of_being_a_duplicate():
    gw = make_gw(recv_window_ms=1, backend_timeout_ms=0, not_found_confirm_ms=1)
    sent = wire(gw)
    o = gw.orders.new(1, b"mm-9-1", 0, SIDE_BUY, 5_000_000, 100)
    gw._expired[5] = (REQ_PLACE, 1, 0, 0, None)          # its place timed out long ago
    o.last_sent_ns = 0
    gw.orders.outcome_unknown(o, 0)
    gw.orders.not_found(o, 0)
    gw.orders.not_found(o, 2 * MS)
    gw.on_frame(frame(id=5, status=200, result={"orderId": 11, "transactTime": 1}))
    assert o.live and o.orphan and gw.orders.counts["duplicates"] == 0
    assert len(sent) == 1 and [r[:2] for r in gw._inflight.values()] == [(REQ_CANCEL, 1)]


# ---------------------------------------------------------------- 4. pacing as the venue counts
ORDERS_10S = {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 50,
              "count": 45}
WEIGHT = {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1,
          "limit": 6000, "count": 10}


def test_answers_without_orders_windows_leave_pacing_alone(gw):
    gw.on_frame(frame(id=None, status=200, result={}, rateLimits=[ORDERS_10S, WEIGHT]))
    paced = gw.pace_ns
    assert paced == 10 * SECOND // 50
    # a cancel's or a query's answer: REQUEST_WEIGHT only (old: this switched pacing off)
    gw.on_frame(frame(id=None, status=200, result={}, rateLimits=[WEIGHT]))
    assert gw.pace_ns == paced


def test_request_weight_is_tracked_and_slows_queries(gw):
    gw.ready = True
    gw.on_frame(frame(id=None, status=200, result={}, rateLimits=[dict(WEIGHT, count=5500)]))
    assert gw.weight_tight()
    for n in range(1, 4):
        gw.orders.outcome_unknown(gw.orders.new(n, b"mm-9-%d" % n, 0, SIDE_BUY, 1, 1), 0)
    asked = []

    async def query(o):
        asked.append(o.order_id)

    gw.query = query

    async def go():
        gw.ask_about_unknown_orders()
        await asyncio.sleep(0)
    asyncio.run(go())
    assert asked == [1]                                   # one question at a time


def test_a_429_back_off_applies_to_queries_and_reconcile_too(gw):
    gw.connected = True
    now = gw.now_ms()
    o = placed(gw, rid=6)
    gw.on_frame(frame(id=6, status=429, error={"code": -1003, "msg": "Too much request weight",
                                               "data": {"retryAfter": now + 5000}}))
    assert gw.blocked() and o.state == S.REJECTED
    sent = []
    gw.send = lambda data, transport=None: sent.append(data)

    async def status():
        await gw.call(lambda rid: gw.enc.status(rid, 0, b"mm-9-1", now))
    with pytest.raises(GatewayError, match="backing off"):
        asyncio.run(status())
    assert sent == []                                     # nothing went out


def test_a_429_for_too_many_new_orders_holds_new_orders_only(gw):
    now = gw.now_ms()
    placed(gw, rid=6)
    gw.on_frame(frame(id=6, status=429, error={"code": -1015, "msg": "Too many new orders",
                                               "data": {"retryAfter": now + 5000}}))
    assert gw.blocked() and not gw.requests_blocked()     # cancels and queries still go


def test_the_default_daily_order_limit_stays_under_80_percent_of_the_venue():
    assert QuoterConfig().rate_per_day <= 0.8 * 160_000
    example = Path(__file__).resolve().parents[2] / "mm.example.toml"
    assert "rate_per_day = 120000" in example.read_text()


# ---------------------------------------------------------------- 7. smaller holes
def test_a_status_answer_that_cannot_be_read_is_asked_again_later_not_at_once(gw):
    o = gw.orders.new(1, b"mm-9-1", 0, SIDE_BUY, 1, 1)
    gw.orders.outcome_unknown(o, 0)

    async def query(o):
        raise msgspec.DecodeError("truncated answer")
    gw.query = query
    o.querying = True
    gw._queries = 1
    asyncio.run(gw._ask(o))
    from time import perf_counter_ns
    assert o.query_due_ns > perf_counter_ns() + 40 * MS and gw._queries == 0
    assert gw.orders.due_queries(perf_counter_ns(), 5) == []


def test_reconcile_does_not_doubt_an_order_whose_cancel_left_during_its_awaits(gw):
    """Two instruments: while openOrders of the first is awaited, the quoter cancels the
    second's order; the venue then lists it no more, its cancel's answer is still to come:
    no UNKNOWN (old: the busy snapshot taken before the awaits missed the cancel)."""
    eth = gw.orders.new(2, b"mm-9-2", 1, SIDE_BUY, 300_000, 100)
    gw.orders.accepted(eth)
    wire(gw)
    gw.ready = False

    def cancel_now():
        gw.ready = True
        gw.send_cancel(eth)
        gw.ready = False
    venue = ScriptedVenue(gw, {"openOrders.status": [{"status": 200, "result": []}],
                               "account.status": [account()]},
                          before={"openOrders.status": cancel_now})
    asyncio.run(gw.reconcile(full=False))
    assert venue.asked.count("openOrders.status") == 2
    assert eth.state == S.CANCELING and FILL_UNKNOWN not in gw.fills.kinds(2)


def test_base_asset_commission_is_not_a_position_divergence(gw):
    ScriptedVenue(gw, {"openOrders.status": [{"status": 200, "result": []}],
                       "account.status": [account(btc="10"), account(btc="10.00099")]})
    asyncio.run(gw.reconcile(full=True))                  # first snapshot: 10 BTC
    placed(gw)
    gw.on_frame(frame(id=5, status=200, result={"orderId": 11, "transactTime": 1}))
    # filled 0.001 BTC, 0.00001 BTC of it paid as commission: the venue holds 10.00099
    gw.on_frame(exec_report("mm-9-1", "TRADE", "FILLED", "0.00100000", "50000.00000000",
                            n="0.00001000", N="BTC"))
    gw.on_frame(exec_report("mm-9-1", "TRADE", "FILLED", "0.00100000", "50000.00000000",
                            n="0.00001000", N="BTC"))    # a duplicate: counted once
    asyncio.run(gw.reconcile(full=False))                 # settled: nothing in flight
    assert not gw._inflight
    assert gw.counts["divergences"] == 0 and gw.orders.position[0] == 1_000_000 + 100


def test_strangers_left_resting_get_no_resume_until_they_are_gone(gw):
    stranger = {"symbol": "BTCUSDT", "orderId": 77, "clientOrderId": "mm-1-99999",
                "price": "40000.00000000", "origQty": "0.00100000", "executedQty": "0",
                "status": "NEW", "side": "BUY"}
    refused = {"status": 400, "error": {"code": -1021, "msg": "outside recvWindow"}}
    venue = ScriptedVenue(gw, {"openOrders.status": [{"status": 200, "result": [stranger]},
                                                      {"status": 200, "result": []}],
                               "order.cancel": [refused], "account.status": [account()]})
    asyncio.run(gw.reconcile(full=True))
    assert venue.asked.count("order.cancel") == 3         # three tries, all refused
    assert FILL_RESUME not in gw.fills.kinds() and gw.resume_owed
    venue.script["openOrders.status"] = [{"status": 200, "result": []}]
    asyncio.run(gw.reconcile(full=False))                 # the watch duty's retry: none left
    assert gw.fills.kinds()[-1] == FILL_RESUME and not gw.resume_owed


def test_the_bybit_gateway_has_a_shutdown_notice():
    from engine.sender.venues.bybit.gateway import BybitGateway
    cfg = EngineConfig(tag="mm", sender=SenderConfig(url="ws://127.0.0.1:1/v5/trade",
                                                     venue="bybit", auth="hmac"))
    g = BybitGateway(cfg, keys.load(cfg.sender, cfg.sender.url, env={}), ListSink())
    assert g.shutdown_notice is False


# ---------------------------------------------------------------- 1. liveness (the rules)
def test_liveness_pings_when_quiet_and_dies_without_an_answer():
    lv = Liveness(ping_every_ns=2 * SECOND, pong_timeout_ns=SECOND, silence_ns=1500 * MS,
                  dead_after=3, now_ns=0)
    assert not lv.ping_due(SECOND)
    assert lv.ping_due(2 * SECOND) and not lv.ping_due(2 * SECOND + 1)   # one outstanding
    assert lv.dead_reason(2 * SECOND + SECOND // 2, 0) == ""
    assert "ping" in lv.dead_reason(3 * SECOND + 1, 0)
    lv.last_frame_ns = 3 * SECOND                         # the pong came
    assert lv.dead_reason(4 * SECOND, 0) == ""
    assert "waiting" in lv.dead_reason(4 * SECOND + 600 * MS, 3 * SECOND)   # silent, pending
    for _ in range(3):
        lv.missed()
    assert "in a row" in lv.dead_reason(3 * SECOND, 0)
    lv.answered()
    assert lv.dead_reason(3 * SECOND, 0) == ""
    # a request's deadline passed with nothing received since it left: ping at once
    lv.missed(t_sent_ns=3 * SECOND + 10 * MS)
    assert lv.ping_due(3 * SECOND + 100 * MS)
    assert "ping" in lv.dead_reason(4 * SECOND + 700 * MS, 0)


def test_positions_are_told_with_resume_after_a_full_reconcile(gw):
    ScriptedVenue(gw, {"openOrders.status": [{"status": 200, "result": []}],
                       "account.status": [account()]})
    asyncio.run(gw.reconcile(full=True))
    assert gw.fills.kinds()[-3:] == [FILL_POSITION, FILL_POSITION, FILL_RESUME]
