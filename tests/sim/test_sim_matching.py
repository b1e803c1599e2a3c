"""The matching model and the account: queue position, partial fills, balances that add up,
and the wire-to-wire latency samples."""
from __future__ import annotations

import asyncio
import json
import random
from decimal import Decimal

import websockets
from tests.support.sim_client import ApiClient, order

from tests.support.sim_thread import SimThread

TICK = Decimal("0.01")


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 45))


def test_queue_position_partial_then_full_fill():
    async def go(sim):
        c = await ApiClient.connect(sim.api_url)
        await c.subscribe_user_data()
        b = sim.book("BTCUSDT")
        queue = Decimal(b["bid_qty"])                 # displayed size ahead of us at the bid
        r = await c.request("order.place", order("BTCUSDT", "BUY", b["bid"], "0.02000", "q-1-1"))
        assert r["status"] == 200
        await c.event(lambda e: e.get("x") == "NEW")
        # a sell print at our price smaller than the queue ahead: no fill
        sim.trade_at("BTCUSDT", b["bid"], str(queue - Decimal("0.00001")), "SELL")
        assert sim.open_orders()[0]["executedQty"] == "0.00000000"
        # the next print eats the last lot of queue and 0.005 of ours: partial fill
        sim.trade_at("BTCUSDT", b["bid"], "0.00501", "SELL")
        ev = await c.event(lambda e: e.get("x") == "TRADE")
        assert (ev["X"], ev["l"], ev["z"], ev["m"]) == ("PARTIALLY_FILLED", "0.00500000",
                                                        "0.00500000", True)
        assert Decimal(ev["L"]) == Decimal(b["bid"]) and ev["t"] > 0
        # a buy print does not touch a resting buy
        sim.trade_at("BTCUSDT", b["bid"], "1.00000", "BUY")
        assert sim.open_orders()[0]["executedQty"] == "0.00500000"
        # a sell print through our price fills the rest
        sim.trade_at("BTCUSDT", str(Decimal(b["bid"]) - TICK), "0.00100", "SELL")
        ev = await c.event(lambda e: e.get("x") == "TRADE")
        assert (ev["X"], ev["l"], ev["z"]) == ("FILLED", "0.01500000", "0.02000000")
        assert Decimal(ev["Z"]) == Decimal(b["bid"]) * Decimal("0.02")
        assert sim.open_orders() == []
        bal = sim.balances()
        assert Decimal(bal["BTC"]["free"]) == Decimal("10.02")
        assert Decimal(bal["USDT"]["free"]) == Decimal(1_000_000) - Decimal(b["bid"]) * Decimal(
            "0.02")
        assert Decimal(bal["USDT"]["locked"]) == 0
        # taker LIMIT crosses and fills at the touch; FULL response lists the fill
        ask = sim.book("BTCUSDT")["ask"]
        r = await c.request("order.place", order(
            "BTCUSDT", "BUY", str(Decimal(ask) + 10), "0.01000", "tk-1-1", type_="LIMIT",
            newOrderRespType="FULL"))
        res = r["result"]
        assert res["status"] == "FILLED" and Decimal(res["fills"][0]["price"]) == Decimal(ask)
        await c.close()
    with SimThread(event_rate=100, seed=11) as sim:
        sim.pause_market()
        run(go(sim))


def test_seeded_run_fills_and_balances_add_up():
    """Quote both sides near the touch while the book walks; every fill reported on the user
    stream must account exactly for the balance change."""
    async def go(sim):
        c = await ApiClient.connect(sim.api_url)
        await c.subscribe_user_data()
        # max_queue=None: frames pile up unread here, and a full queue stalls the close
        md = await websockets.connect(sim.md_url + "/ws/ethusdt@bookTicker", max_queue=None)
        start = {a: Decimal(v["free"]) + Decimal(v["locked"]) for a, v in sim.balances().items()}
        rng = random.Random(4)
        n = 0
        for _ in range(60):
            tick = json.loads(await md.recv())
            bid, ask = Decimal(tick["b"]), Decimal(tick["a"])
            side = rng.choice(["BUY", "SELL"])
            px = bid - TICK * rng.randint(0, 3) if side == "BUY" else ask + TICK * rng.randint(0, 3)
            qty = Decimal("0.0100") * rng.randint(1, 5)
            n += 1
            r = await c.request("order.place", order("ETHUSDT", side, str(px), str(qty),
                                                     f"mm-{tick['u']}-{n}"))
            assert r["status"] in (200, 400), r
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.3)
        await c.request("openOrders.cancelAll", {"symbol": "ETHUSDT"})
        await md.close()
        # drain events until the account is quiet
        base = quote = Decimal(0)
        fills = 0
        try:
            while True:
                ev = await c.event(lambda e: e["e"] == "executionReport", timeout=1.0)
                if ev["x"] == "TRADE":
                    fills += 1
                    q, p = Decimal(ev["l"]), Decimal(ev["L"])
                    sign = 1 if ev["S"] == "BUY" else -1
                    base += sign * q
                    quote -= sign * q * p
        except TimeoutError:
            pass
        end = {a: Decimal(v["free"]) + Decimal(v["locked"]) for a, v in sim.balances().items()}
        stats = sim.stats()
        assert fills == stats["fills"] and fills > 0
        assert end["ETH"] - start["ETH"] == base
        assert end["USDT"] - start["USDT"] == quote
        assert all(Decimal(v["locked"]) == 0 for v in sim.balances().values())
        # wire-to-wire: each order named a fresh update id it had just received
        samples = sim.latency_samples()
        rep = sim.latency_report()
        assert rep["count"] == len(samples) == 60
        assert all(s > 0 for s in samples)
        assert rep["p50"] <= rep["p99"] <= rep["max"] == max(samples)
        await c.close()
    with SimThread(event_rate=100, trade_rate=40, volatility_bps=3.0, seed=21) as sim:
        run(go(sim))


def test_latency_one_sample_per_update_id():
    async def go(sim):
        c = await ApiClient.connect(sim.api_url)
        async with websockets.connect(sim.md_url + "/ws/btcusdt@bookTicker") as md:
            u0 = json.loads(await md.recv())["u"]
            u = json.loads(await md.recv())["u"]
        sim.pause_market()
        far = str(Decimal(sim.book("BTCUSDT")["bid"]) - 100)
        for n, cid in enumerate([f"mm-{u}-1", f"mm-{u}-2", "no-update-id", f"mm-{u + 10**9}-3"]):
            await c.request("order.place", order("BTCUSDT", "BUY", far, "0.01000", cid))
        # order.cancelReplace counts with the new order's client id
        await c.request("order.cancelReplace", order(
            "BTCUSDT", "BUY", far, "0.01000", f"mm-{u0}-5", cancelReplaceMode="ALLOW_FAILURE",
            cancelOrigClientOrderId=f"mm-{u}-1"))
        samples = sim.latency_samples()
        stats = sim.stats()
        assert stats["orders_received"] == 5
        # u0 and u were both written; the others never were (or are not ids at all)
        assert len(samples) == 2 and all(s > 0 for s in samples)
        await c.close()
    with SimThread(event_rate=200) as sim:
        run(go(sim))


def test_taker_orders_ioc_and_market():
    async def go(sim):
        c = await ApiClient.connect(sim.api_url)
        await c.subscribe_user_data()
        b = sim.book("ETHUSDT")
        # IOC that does not cross: expires at once, nothing rests, nothing locked
        r = await c.request("order.place", order("ETHUSDT", "BUY", str(Decimal(b["bid"]) - 5),
                                                 "0.1000", "ioc-1-1", type_="LIMIT",
                                                 timeInForce="IOC", newOrderRespType="RESULT"))
        assert r["result"]["status"] == "EXPIRED"
        ev = await c.event(lambda e: e.get("x") == "EXPIRED")
        assert ev["c"] == "ioc-1-1" and ev["z"] == "0.00000000"
        assert sim.open_orders() == [] and Decimal(sim.balances()["USDT"]["locked"]) == 0
        # MARKET sell fills at the bid
        r = await c.request("order.place", {"symbol": "ETHUSDT", "side": "SELL", "type": "MARKET",
                                            "quantity": "0.5000", "newOrderRespType": "FULL"})
        res = r["result"]
        assert res["status"] == "FILLED" and res["fills"][0]["price"] == b["bid"]
        ev = await c.event(lambda e: e.get("x") == "TRADE")
        assert ev["m"] is False and ev["X"] == "FILLED"            # we took liquidity
        bal = sim.balances()
        assert Decimal(bal["ETH"]["free"]) == Decimal("9.5")
        assert Decimal(bal["USDT"]["free"]) == 1_000_000 + Decimal(b["bid"]) * Decimal("0.5")
        await c.close()
    with SimThread(event_rate=100) as sim:
        sim.pause_market()
        run(go(sim))
