"""The simulator serves the account's trade list as Binance's WS API does (`myTrades`: signed,
Binance's entry shape, fromId / startTime / limit), and the journal's client reads it."""
from __future__ import annotations

import time

import msgspec
import pytest

from engine.config import EngineConfig
from engine.journal.reconcile import BinanceTrades, VenueError
from tests.support.sim_thread import SimThread

KEYS = {"symbol", "id", "orderId", "orderListId", "price", "qty", "quoteQty", "commission",
        "commissionAsset", "time", "isBuyer", "isMaker", "isBestMatch"}


def _fill_some(sim):
    ex = sim.server.exchange

    def make():
        b = ex.by_symbol["BTCUSDT"]
        for k in range(3):      # crossing limits: each fills at once against the touch
            ex.place(b, k % 2 == 0, "LIMIT", "GTC", b.ask + 100 if k % 2 == 0 else b.bid - 100,
                     b.lot, f"x-{k}")
    sim._call(make)


def test_my_trades_has_binance_shape_and_paging():
    with SimThread(event_rate=1, trade_rate=0, seed=5) as sim:
        _fill_some(sim)
        cfg = EngineConfig(sender=msgspec.structs.replace(EngineConfig().sender,
                                                          url=sim.api_url))
        client = BinanceTrades.from_config(cfg)
        try:
            every = client.fetch("BTCUSDT", start_ms=int(time.time() * 1000) - 3_600_000)
            assert len(every) == 3 and all(set(t) == KEYS for t in every)
            assert every == sim.my_trades("BTCUSDT")
            assert [t["isBuyer"] for t in every] == [True, False, True]
            assert all(t["isMaker"] is False for t in every)          # they took liquidity
            assert [t["id"] for t in client.fetch("BTCUSDT", from_id=every[1]["id"])] == \
                [t["id"] for t in every[1:]]
            assert len(client.fetch("BTCUSDT", from_id=0, limit=2)) == 2
            assert client.fetch("ETHUSDT", from_id=0) == []
            with pytest.raises(VenueError, match="-1100|-1121"):
                client.fetch("NOPE", from_id=0)
        finally:
            client.close()
