"""Bybit v5 trade WebSocket: encoding.py (order ops from byte templates, op auth), wire.py
(answers and the venue's codes), gateway.py (the hot path's hooks, answers -> order truth),
reconcile.py (cancel-to-settle, the local table as truth, the safety net)."""
from __future__ import annotations

from engine.sender.venues._base import OrderVenue
from engine.sender.venues.bybit.instruments import list_instruments

VENUE = OrderVenue(
    name="bybit", title="Bybit",
    gateway="engine.sender.venues.bybit.gateway:BybitGateway",
    auths=("hmac",),
    list_instruments=list_instruments,
    instrument_keys={"base": "baseCoin", "quote": "quoteCoin", "tick_size": "tickSize",
                     "lot_size": "basePrecision", "min_notional": "minOrderAmt"},
    trading="Trading",
    trade_list="engine.journal.bybit_trades:BybitExecutions",
    not_at_order_url=("Bybit serves its instrument filters over REST only: set "
                      "instruments_url = \"https://api.bybit.com\" to check them against the "
                      "venue"))
