"""Issue 18 against the simulator (a real WebSocket server on loopback; the test process plays
the quoter's ring ends): a silently dead order connection is noticed and replaced, then
reconciled before quoting resumes; the stop says "every order confirmed gone" only when nothing
is in flight or unknown; under ORDERS pacing cancels are not held behind new orders."""
from __future__ import annotations

import time

import pytest

from engine.config import EngineConfig
from engine.exit_codes import EXIT_ORDERS_LEFT
from engine.records import (FILL_ACK, FILL_CANCELED, FILL_REJECT, FILL_RESUME, FILL_TRADE,
                            SIDE_BUY)
from tests.support.sender_process import QuoterEnd, SenderProcess
from tests.support.sim_thread import SimThread

pytestmark = [pytest.mark.slow, pytest.mark.timeout(90)]

PX = 5_000_000                # 50000.00 BTCUSDT
QTY = 100                     # 0.00100 BTC


@pytest.fixture
def sim():
    with SimThread(event_rate=20, trade_rate=0) as s:
        yield s


@pytest.fixture
def running(instance, sim):
    """start(**sender) -> (SenderProcess, QuoterEnd) once the sender has said RESUME; both are
    stopped and closed at the end, whatever happened."""
    started = []

    def start(**sender):
        sender.setdefault("reconnect_base_s", 0.05)
        cfg = EngineConfig(instance=instance, tag="mm",
                           sender={"url": sim.api_url, "auth": "hmac", **sender})
        q = QuoterEnd(cfg)
        sp = SenderProcess(cfg).start()
        started.append((sp, q))
        try:
            q.wait_fill(lambda r: r["kind"] == FILL_RESUME, 20)
        except TimeoutError:
            raise AssertionError(f"sender did not start:\n{sp.log()}") from None
        return sp, q

    yield start
    for sp, q in started:
        sp.__exit__(None, None, None)
        q.close()


def _until(cond, timeout: float, what: str, log=lambda: ""):
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} within {timeout} s\n{log()[-3000:]}")
        time.sleep(0.01)


def _resumes(q) -> int:
    q.poll()
    return sum(r["kind"] == FILL_RESUME for r in q.received)


def _silence_and_measure(sim, q, sp) -> tuple[float, float]:
    """Silence the order connection; returns (s until a new connection opened, s from then
    until the sender said RESUME again)."""
    opened, resumed = len(sim.api_connected_at()), _resumes(q)
    t0 = time.perf_counter_ns()
    assert sim.silence_api() == 1
    _until(lambda: len(sim.api_connected_at()) > opened, 8, "no new order connection", sp.log)
    t_new = sim.api_connected_at()[opened]
    _until(lambda: _resumes(q) > resumed, 8, "no RESUME after the replacement", sp.log)
    return (t_new - t0) / 1e9, (time.perf_counter_ns() - t_new) / 1e9


def test_a_silent_order_connection_is_replaced_reconciled_and_quoting_resumes(sim, running):
    sp, q = running(recv_window_ms=1000, backend_timeout_ms=1000, not_found_confirm_ms=200)
    q.new(1, update_id=1, price=PX, qty=QTY, side=SIDE_BUY)
    q.new(2, update_id=2, price=PX - 100, qty=QTY, side=SIDE_BUY)
    q.wait_fill(lambda r: r["kind"] == FILL_ACK and r["order_id"] == 2)

    # idle: only the pings can tell (ping after 2 s quiet, pong within 1.5 s)
    found_idle, resumed_idle = _silence_and_measure(sim, q, sp)
    assert found_idle < 5.0 and resumed_idle < 5.0
    _until(lambda: sim.stats()["api_open"] == 1, 5, "the dead connection was not closed")

    # busy: a new order goes into the silence (read and dropped: never placed)
    opened, resumed = len(sim.api_connected_at()), _resumes(q)
    t0 = time.perf_counter_ns()
    sim.silence_api()
    q.new(3, update_id=3, price=PX - 200, qty=QTY, side=SIDE_BUY)
    _until(lambda: len(sim.api_connected_at()) > opened, 5, "no new order connection", sp.log)
    found_busy = (sim.api_connected_at()[opened] - t0) / 1e9
    _until(lambda: _resumes(q) > resumed, 5, "no RESUME after the replacement", sp.log)
    assert found_busy < 2.5                  # requests waiting: no need to wait for a ping
    # the order that never arrived is concluded gone only after recvWindow + backend timeout
    r = q.wait_fill(lambda r: r["order_id"] == 3 and r["kind"] == FILL_REJECT, 10)
    assert r["error_code"] == -2013

    # the resting orders stayed managed across both replacements
    assert sorted(o["clientOrderId"] for o in sim.open_orders()) == ["mm-1-1", "mm-2-2"]
    q.cancel(1)
    q.wait_fill(lambda r: r["kind"] == FILL_CANCELED and r["order_id"] == 1, 5)
    print(f"\nsilent connection: idle found+replaced in {found_idle:.2f} s, resumed "
          f"{resumed_idle:.2f} s later; with a request waiting found+replaced in "
          f"{found_busy:.2f} s")
    sp.terminate()
    assert sp.wait(30) == 0, sp.log()[-3000:]
    assert sim.open_orders() == []


def test_a_silent_user_data_stream_replaces_the_connection(sim, running):
    """Answers flow but order reports stopped: two accepted orders without a report within
    report_timeout_ms and the connection (with its subscription) is replaced; fills are
    reported again afterwards."""
    sp, q = running(report_timeout_ms=1000)
    opened, resumed = len(sim.api_connected_at()), _resumes(q)
    assert sim.mute_user_streams() == 1
    t0 = time.monotonic()
    q.new(1, update_id=1, price=PX, qty=QTY, side=SIDE_BUY)
    q.new(2, update_id=2, price=PX - 100, qty=QTY, side=SIDE_BUY)
    q.wait_fill(lambda r: r["kind"] == FILL_ACK and r["order_id"] == 2)   # by the answers
    _until(lambda: len(sim.api_connected_at()) > opened, 5, "no new order connection", sp.log)
    _until(lambda: _resumes(q) > resumed, 5, "no RESUME after the replacement", sp.log)
    found = time.monotonic() - t0
    assert "user-data stream silent" in sp.log()
    sim.trade_at("BTCUSDT", "49999.00", "0.00100", "SELL")          # through order 1
    q.wait_fill(lambda r: r["kind"] == FILL_TRADE and r["order_id"] == 1, 5)
    print(f"\nsilent user-data stream found and replaced in {found:.2f} s")
    sp.terminate()
    assert sp.wait(30) == 0 and sim.open_orders() == []


def test_an_order_concluded_gone_that_lands_later_is_canceled_at_once(sim, running):
    """Configured as if the venue gave up fast (recvWindow 200 ms, no backend wait), the
    sender concludes an unanswered place gone; the simulator carries it out 1-3 s later. Its
    report revives it and it is canceled at once (old: it rested until the next reconcile
    found it as a stranger)."""
    sp, q = running(recv_window_ms=200, backend_timeout_ms=0, not_found_confirm_ms=100,
                    reconcile_interval_s=30)
    sim.set_chaos(late_execution=1.0)
    q.new(1, update_id=1, price=PX, qty=QTY, side=SIDE_BUY)
    _until(lambda: any(m == "order.place" for m, *_ in sim.order_requests()), 5,
           "the place never reached the venue")
    sim.set_chaos(late_execution=0.0)
    r = q.wait_fill(lambda r: r["order_id"] == 1 and r["kind"] == FILL_REJECT, 5)
    assert r["error_code"] == -2013                       # concluded gone ...
    _until(lambda: sim.late_executions(), 5, "the late execution never happened")
    [(landed, cid)] = sim.late_executions()               # ... yet it lands
    assert cid == "mm-1-1"

    def canceled():
        return [t for m, _f, target, t in sim.order_requests()
                if m == "order.cancel" and target == "mm-1-1"]
    _until(lambda: canceled() and not sim.open_orders(), 3, "the revived order rests", sp.log)
    took = (canceled()[0] - landed) / 1e9
    assert took < 1.0, f"it rested {took:.2f} s"
    print(f"\nrevived order canceled {took * 1000:.0f} ms after it landed")
    sp.terminate()
    assert sp.wait(30) == 0 and sim.open_orders() == []


def test_the_stop_waits_for_an_order_whose_execution_is_late(sim, running):
    """A place carried out 1-3 s after its unanswered request: openOrders is empty when the
    stop looks, yet the order lands later. The stop must not call that "confirmed gone"."""
    sp, q = running(cancel_confirm_timeout_s=5)
    sim.set_chaos(late_execution=1.0)
    q.new(1, update_id=1, price=PX, qty=QTY, side=SIDE_BUY)
    _until(lambda: any(m == "order.place" for m, *_ in sim.order_requests()), 5,
           "the place never reached the venue")
    sim.set_chaos(late_execution=0.0)
    t_place = time.monotonic()
    sp.terminate()
    rc = sp.wait(30)
    time.sleep(max(0.0, t_place + 3.3 - time.monotonic()))   # past the late execution
    left = sim.open_orders()
    assert left == [], f"exit {rc} yet {left} rests:\n{sp.log()[-3000:]}"
    assert rc == 0 and sim.stats()["late_executions"] == 1


def test_the_stop_names_what_is_unknown_and_fails(sim, running):
    """An order sent into a silent connection never reaches the book, but nothing can prove
    it before recvWindow + the backend timeout: the stop says so and exits non-zero."""
    sp, q = running(cancel_confirm_timeout_s=2)
    sim.silence_api()
    q.new(1, update_id=1, price=PX, qty=QTY, side=SIDE_BUY)
    time.sleep(0.1)
    sp.terminate()
    assert sp.wait(40) == EXIT_ORDERS_LEFT
    log = sp.log()
    assert "orders of unknown outcome: mm-1-1" in log, log[-3000:]


def test_cancels_are_not_held_behind_paced_new_orders(sim, running):
    sp, q = running(max_intent_age_ms=10_000)
    wall_ms = time.time_ns() // 1_000_000
    if wall_ms % 10_000 > 5_000:                  # the venue counts in calendar 10 s windows:
        time.sleep((10_000 - wall_ms % 10_000) / 1000 + 0.05)   # start in a fresh one
    sim.throttle(20)                              # ORDERS 20 per 10 s: paced above 16
    for n in range(1, 18):
        q.new(n, update_id=n, price=PX - n, qty=QTY, side=SIDE_BUY)
    q.wait_fill(lambda r: r["kind"] == FILL_ACK and r["order_id"] == 17)
    for n in range(18, 21):                       # 10 s / 20 = 500 ms apart
        q.new(n, update_id=n, price=PX - n, qty=QTY, side=SIDE_BUY)
    t0 = time.monotonic()
    q.cancel(1)
    q.wait_fill(lambda r: r["kind"] == FILL_CANCELED and r["order_id"] == 1, 5)
    took = time.monotonic() - t0
    q.wait_fill(lambda r: r["kind"] == FILL_ACK and r["order_id"] == 20, 5)
    places = [t for m, f, _, t in sim.order_requests()
              if m == "order.place" and f["newClientOrderId"] in ("mm-19-19", "mm-20-20")]
    assert took < 0.3, f"the cancel waited {took:.2f} s behind paced orders"
    assert len(places) == 2 and (places[1] - places[0]) / 1e9 > 0.4   # still paced
    sp.terminate()
    assert sp.wait(30) == 0
