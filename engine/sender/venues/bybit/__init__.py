"""Bybit v5 trade WebSocket: encoding.py (order ops from byte templates, op auth), wire.py
(answers and the venue's codes), gateway.py (the hot path's hooks, answers -> order truth),
reconcile.py (cancel-to-settle, the local table as truth, the safety net)."""
from __future__ import annotations

from engine.sender.venues._base import OrderVenue

VENUE = OrderVenue(name="bybit", title="Bybit",
                   gateway="engine.sender.venues.bybit.gateway:BybitGateway",
                   auths=("hmac",))
