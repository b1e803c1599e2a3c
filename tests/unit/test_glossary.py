"""Every counter a process publishes has a one-line meaning and a display name that does not
read like an error for a normal event (engine/glossary.py); tests/integration/test_exit_statuses.py
checks the same end to end (mm report --explain of a real run)."""
from __future__ import annotations

from engine import glossary
from engine.feed.process import COUNTERS as FEED
from engine.quoter.arrays import counter_names
from engine.sender.gateway import COUNTS as GATEWAY_COUNTS
from engine.sender.order_state import COUNTS as ORDER_COUNTS
from engine.sender.process import PROCESS_COUNTERS


def test_every_published_counter_has_a_meaning():
    names = {"feed": list(FEED), "quoter": counter_names(["BTCUSDT", "ETHUSDT"], -7),
             "sender": list(GATEWAY_COUNTS) + list(ORDER_COUNTS) + list(PROCESS_COUNTERS)}
    missing = [f"{role}.{n}" for role, ns in names.items() for n in ns
               if not glossary.meaning(role, n)]
    assert not missing, f"counters nobody explained: {missing}"


def test_normal_events_are_not_named_like_errors():
    assert glossary.display_name("quoter", "rate_limited") == "held_by_rate_window"
    assert glossary.display_name("sender", "unknown_intents") == "cancels_already_done"
    assert glossary.display_name("feed", "dupes") == "duplicates_dropped"
    assert glossary.display_name("quoter", "fills") == "sender_records"   # not only fills


def test_one_order_count_with_its_parts():
    line = glossary.order_count({"orders_sent": 54, "replaces_sent": 66, "cancels_sent": 9},
                                61, 21)
    assert line.startswith("orders: 120 sent (54 new + 66 replaces), 9 cancels;")
    assert "tick-to-order timed 61" in line and "the venue timed 21" in line
