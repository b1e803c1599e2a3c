"""The simulator's seeded chaos mode and order.status: every race kind happens on demand, is
counted, and leaves the venue's own book consistent (the order that "failed" to cancel rests)."""
from __future__ import annotations

import asyncio
import time
from decimal import Decimal

import pytest
from tests.support.sim_client import ApiClient, order

from engine.sim.chaos import KINDS, Chaos
from tests.support.sim_thread import SimThread


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 30))


@pytest.fixture
def sim():
    with SimThread(event_rate=100, seed=3) as s:
        s.pause_market()
        yield s


def _px(sim, n):
    return str(Decimal(sim.book("BTCUSDT")["bid"]) - Decimal("0.01") * n)


async def _place(c, sim, cid, n=100):
    r = await c.request("order.place", order("BTCUSDT", "BUY", _px(sim, n), "0.01000", cid))
    assert r["status"] == 200, r
    return r["result"]["orderId"]


def test_order_status_open_finished_and_unknown(sim):
    async def go():
        c = await ApiClient.connect(sim.api_url)
        oid = await _place(c, sim, "st-1-1")
        r = await c.request("order.status", {"symbol": "BTCUSDT", "origClientOrderId": "st-1-1"})
        assert r["status"] == 200 and r["result"]["status"] == "NEW"
        assert r["result"]["orderId"] == oid and r["result"]["executedQty"] == "0.00000000"
        await c.request("order.cancel", {"symbol": "BTCUSDT", "orderId": oid})
        r = await c.request("order.status", {"symbol": "BTCUSDT", "orderId": oid})
        assert r["result"]["status"] == "CANCELED"      # finished orders are still known
        r = await c.request("order.status", {"symbol": "BTCUSDT", "origClientOrderId": "st-9-9"})
        assert (r["status"], r["error"]["code"]) == (400, -2013)
        r = await c.request("order.status", {"symbol": "BTCUSDT"})
        assert r["error"]["code"] == -1102
        await c.close()
    run(go())
    assert sim.cancel_log()[-1][1] == "st-1-1"


def test_refused_and_phantom_cancels_leave_the_order_resting(sim):
    async def go():
        c = await ApiClient.connect(sim.api_url)
        await _place(c, sim, "ch-1-1")
        sim.set_chaos(refuse_cancel=1.0)
        r = await c.request("order.cancel", {"symbol": "BTCUSDT", "origClientOrderId": "ch-1-1"})
        assert (r["status"], r["error"]["code"]) in ((400, -1021), (503, -1008))
        r = await c.request("order.cancelReplace", order(
            "BTCUSDT", "BUY", _px(sim, 90), "0.01000", "ch-2-2",
            cancelReplaceMode="STOP_ON_FAILURE", cancelOrigClientOrderId="ch-1-1"))
        assert r["error"]["code"] in (-1021, -1008)
        assert [o["clientOrderId"] for o in sim.open_orders()] == ["ch-1-1"]
        sim.set_chaos(refuse_cancel=0.0, phantom_unknown=1.0)
        r = await c.request("order.cancel", {"symbol": "BTCUSDT", "origClientOrderId": "ch-1-1"})
        assert r["error"]["code"] == -2011                 # "unknown" ...
        r = await c.request("order.cancelReplace", order(
            "BTCUSDT", "BUY", _px(sim, 90), "0.01000", "ch-3-3",
            cancelReplaceMode="STOP_ON_FAILURE", cancelOrigClientOrderId="ch-1-1"))
        assert r["error"]["code"] == -2022
        assert r["error"]["data"]["cancelResponse"]["code"] == -2011
        r = await c.request("order.status", {"symbol": "BTCUSDT", "origClientOrderId": "ch-1-1"})
        assert r["error"]["code"] == -2013
        assert [o["clientOrderId"] for o in sim.open_orders()] == ["ch-1-1"]   # ... yet it rests
        await c.close()
    run(go())
    st = sim.stats()
    assert st["chaos_refuse_cancel"] == 2 and st["chaos_phantom_unknown"] == 3


def test_fill_during_replace_and_lost_answer(sim):
    async def go():
        c = await ApiClient.connect(sim.api_url)
        await c.subscribe_user_data()
        await _place(c, sim, "fr-1-1")
        sim.set_chaos(fill_during_replace=1.0)
        r = await c.request("order.cancelReplace", order(
            "BTCUSDT", "BUY", _px(sim, 90), "0.01000", "fr-2-2",
            cancelReplaceMode="STOP_ON_FAILURE", cancelOrigClientOrderId="fr-1-1"))
        assert r["error"]["code"] == -2022                 # the old order filled first
        fill = await c.event(lambda e: e["e"] == "executionReport" and e["x"] == "TRADE")
        assert fill["c"] == "fr-1-1" and fill["X"] == "FILLED"
        sim.set_chaos(fill_during_replace=0.0, lost_answer=1.0)
        req = c.request("order.place", order("BTCUSDT", "BUY", _px(sim, 80), "0.01000", "fr-3-3"))
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(req, 1.0)
        assert [o["clientOrderId"] for o in sim.open_orders()] == ["fr-3-3"]  # carried out
        await c.close()
    run(go())
    assert sim.stats()["chaos_lost_answer"] == 1


def test_late_and_duplicate_reports(sim):
    async def go():
        c = await ApiClient.connect(sim.api_url)
        await c.subscribe_user_data()
        sim.set_chaos(duplicate_report=1.0)
        await _place(c, sim, "du-1-1")
        a = await c.event(lambda e: e["e"] == "executionReport" and e["c"] == "du-1-1")
        b = await c.event(lambda e: e["e"] == "executionReport" and e["c"] == "du-1-1")
        assert a == b and a["x"] == "NEW"
        sim.set_chaos(duplicate_report=0.0, late_report=1.0)
        await _place(c, sim, "la-1-1")
        # the answer to a later request overtakes the NEW report of the earlier order
        r = await c.request("order.status", {"symbol": "BTCUSDT", "origClientOrderId": "la-1-1"})
        assert r["result"]["status"] == "NEW"
        assert not any(m["event"].get("c") == "la-1-1" for m in c.events)
        late = await c.event(lambda e: e["e"] == "executionReport" and e["c"] == "la-1-1", 5)
        assert late["x"] == "NEW"
        await c.close()
    run(go())


def test_market_chaos_partial_fills_and_dropped_connections():
    with SimThread(event_rate=500, seed=4, chaos={"partial_fill": 0.2}, chaos_seed=9) as sim:
        async def go():
            c = await ApiClient.connect(sim.api_url)
            await _place(c, sim, "pf-1-1", n=20000)   # far: only chaos fills it
            async with asyncio.timeout(10):
                while sim.stats()["chaos_partial_fill"] == 0:
                    await asyncio.sleep(0.05)
            sim.set_chaos(partial_fill=0.0, drop_api=0.05)
            with pytest.raises(Exception):
                async with asyncio.timeout(10):
                    while True:
                        await c.ws.recv()           # until the simulator drops us
        run(go())
        st = sim.stats()
        assert st["chaos_drop_api"] >= 1 and st["api_open"] == 0
        o = sim.order_status("BTCUSDT", "pf-1-1")
        assert 0 < Decimal(o["executedQty"]) < Decimal("0.01")   # partly filled
        assert o["status"] == "PARTIALLY_FILLED"


def test_chaos_config_is_validated_and_seeded():
    with pytest.raises(ValueError, match="unknown kind"):
        Chaos({"meteor": 0.1}, 1)
    with pytest.raises(ValueError, match="sim.chaos.lost_answer"):
        Chaos({"lost_answer": 2.0}, 1)
    a, b = Chaos({k: 0.3 for k in KINDS}, 5), Chaos({k: 0.3 for k in KINDS}, 5)
    assert [a.roll(k) for k in KINDS * 20] == [b.roll(k) for k in KINDS * 20]


def test_a_silent_connection_reads_and_drops_everything_without_closing(sim):
    """silent_api: requests are not carried out, nothing comes back (answers, reports, pongs),
    and the connection stays open; a new connection is served as before."""
    async def go():
        c = await ApiClient.connect(sim.api_url)
        await c.subscribe_user_data()
        pong = await c.ws.ping()
        await asyncio.wait_for(pong, 2)                # pongs come while it is alive
        assert sim.silence_api() == 1
        req = c.request("order.place", order("BTCUSDT", "BUY", _px(sim, 100), "0.01000",
                                             "si-1-1"))
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(req, 1.0)
        pong = await c.ws.ping()
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(pong, 1.0)          # a dead path: no pong either
        assert sim.open_orders() == [] and sim.stats()["api_open"] == 1   # not closed
        d = await ApiClient.connect(sim.api_url)
        await _place(d, sim, "si-2-2")                 # the next connection is served
        await d.close()
    run(go())
    st = sim.stats()
    assert st["silent_frames_dropped"] >= 2 and len(sim.silenced_at()) == 1
    assert [o["clientOrderId"] for o in sim.open_orders()] == ["si-2-2"]


def test_late_execution_carries_out_an_unanswered_place_seconds_later(sim):
    async def go():
        c = await ApiClient.connect(sim.api_url)
        await c.subscribe_user_data()
        sim.set_chaos(late_execution=1.0)
        t0 = time.monotonic()
        req = c.request("order.place", order("BTCUSDT", "BUY", _px(sim, 100), "0.01000",
                                             "le-1-1"))
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(req, 0.8)
        sim.set_chaos(late_execution=0.0)
        r = await c.request("order.status", {"symbol": "BTCUSDT", "origClientOrderId": "le-1-1"})
        assert r["error"]["code"] == -2013             # not there yet: truly
        ev = await c.event(lambda e: e["e"] == "executionReport" and e["c"] == "le-1-1", 5)
        assert ev["x"] == "NEW" and 1.0 <= time.monotonic() - t0 <= 3.5
        await c.close()
    run(go())
    assert sim.stats()["late_executions"] == 1
    assert [o["clientOrderId"] for o in sim.open_orders()] == ["le-1-1"]


def test_status_lag_hides_a_resting_order_from_order_status_for_a_while(sim):
    async def go():
        c = await ApiClient.connect(sim.api_url)
        sim.set_chaos(status_lag=1.0)
        await _place(c, sim, "sl-1-1")
        sim.set_chaos(status_lag=0.0)
        t0 = time.monotonic()
        q = {"symbol": "BTCUSDT", "origClientOrderId": "sl-1-1"}
        r = await c.request("order.status", q)
        assert r["error"]["code"] == -2013             # it rests, yet "does not exist"
        assert [o["clientOrderId"] for o in sim.open_orders()] == ["sl-1-1"]
        while r.get("status") != 200:
            assert time.monotonic() - t0 < 4, "the lag did not end"
            await asyncio.sleep(0.1)
            r = await c.request("order.status", q)
        assert r["result"]["status"] == "NEW" and time.monotonic() - t0 >= 0.9
        await c.close()
    run(go())
    assert sim.stats()["chaos_status_lag"] == 1
