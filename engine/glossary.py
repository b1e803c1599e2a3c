"""What every counter of the report and `mm status` means, in one line each, and the name a
trader reads it under. One place: `mm report --explain`, `mm status` and the README table use
it, and tests/unit/test_glossary.py fails when a process publishes a counter missing here.

Display names differ from the published ones only where the published name reads like an error
for an event that is normal (a quote held back by the rate window is not "rate_limited").
"""
from __future__ import annotations

import re

# role -> counter -> (name shown, meaning). Prefixed families (position_<SYMBOL>, pnl_e<exp>,
# start_<SYMBOL>) are matched by FAMILIES below.
COUNTERS: dict[str, dict[str, tuple[str, str]]] = {
    "feed": {
        "frames": ("frames", "WebSocket frames received, every connection"),
        "records": ("records", "book updates published into the md ring (after dedupe)"),
        "dupes": ("duplicates_dropped", "copies of an update already published by another "
                                        "connection (normal: the connections are redundant)"),
        "reconnects": ("reconnects", "connections lost and opened again"),
        "connect_failures": ("connect_failures", "connection attempts that did not open"),
        "rollovers": ("rollovers", "connections replaced before the venue's age limit "
                                   "(make-before-break; normal)"),
        "stale_marks": ("stale_marks", "times the stream went silent past stale_after_ms (the "
                                       "quoter pulls its quotes)"),
        "fresh_marks": ("fresh_marks", "times a silent stream delivered again"),
        "stale_reconnects": ("stale_reconnects", "silent connections forced to reconnect"),
        "id_resets": ("id_resets", "times the venue rewound its update ids and the dedupe "
                                   "forgot them"),
        "ring_full": ("md_ring_full", "book updates the full md ring refused (the board keeps "
                                      "the newest; see conflated)"),
        "conflated": ("conflated", "book updates replaced by a newer one before the quoter read "
                                   "them (normal under bursts)"),
        "decode_errors": ("decode_errors", "frames the decoder raised on (a bug: report it)"),
        "capture_dropped": ("capture_dropped", "frames the capture file could not keep up with"),
        "reads": ("socket_reads", "socket reads"),
        "reads_kernel_stamped": ("reads_kernel_stamped", "reads carrying the kernel's receive "
                                                         "time stamp"),
        "unstamped_connections": ("unstamped_connections", "connections without kernel "
                                                           "receive stamps (pick-up time used)"),
        "connected_ever": ("connected_ever", "1 once any market-data connection opened"),
        "connect_error": ("last_connect_error", "why the latest attempt failed: 1 refused, "
                                                "2 timed out, 3 DNS, 4 TLS, 5 HTTP status, "
                                                "6 reset, 7 other"),
        "connect_http_status": ("last_http_status", "the HTTP status the upgrade got, if any"),
        # L2 books (feed.streams has "depth@100ms", "orderbook.50", "books"...): summed over
        # the instruments' books
        "depth_gaps": ("depth_gaps", "depth events that did not continue the L2 book (or failed "
                                     "its checksum): it was marked stale and resynced from a "
                                     "snapshot"),
        "depth_resyncs": ("depth_resyncs", "L2 books synced again from a snapshot after a gap"),
        "depth_snapshots": ("depth_snapshots", "depth snapshots (REST or in the stream) applied "
                                               "or refused"),
        "depth_snapshots_too_old": ("depth_snapshots_too_old", "snapshots older than the first "
                                                               "buffered event (fetched again)"),
        "depth_buffered": ("depth_events_buffered", "diff events kept while a book waited for "
                                                    "its snapshot"),
        "depth_dropped": ("depth_events_dropped", "diff events already in the book (the other "
                                                  "connection's copy, or before the snapshot)"),
        "depth_applied": ("depth_events_applied", "diff events applied to the L2 books"),
        "depth_buffer_overflows": ("depth_buffer_overflows", "buffered diff events dropped "
                                                             "(oldest first) past 10000"),
        "depth_fetch_errors": ("depth_fetch_errors", "snapshot requests that failed (retried "
                                                     "with back-off)"),
        "depth_stale_marks": ("depth_stale_marks", "instruments marked stale for a depth gap "
                                                   "(the quoter pulls their quotes)"),
        "depth_resync_us_last": ("depth_resync_us_last", "gap seen to book resynced, the last "
                                                         "time, microseconds"),
        "depth_resync_us_max": ("depth_resync_us_max", "the same, the longest, microseconds"),
        "depth_unsynced": ("depth_unsynced", "L2 books waiting for a snapshot now"),
        "depth_checksum_failures": ("depth_checksum_failures", "OKX: books whose checksum "
                                                               "did not match (a gap)"),
        "depth_rewinds": ("depth_rewinds", "Bybit/OKX: books that dropped 64 events in a row "
                                           "for 1 s (the venue's ids went back: a gap)"),
        "depth_resubscribes": ("depth_resubscribes", "Bybit/OKX: book channels re-subscribed "
                                                     "for a new snapshot after a gap"),
        "data": ("frames_data", "frames that carried book data"),
        "control": ("frames_control", "subscription answers, pongs and the like"),
        "error": ("frames_venue_error", "error messages from the venue"),
        "shutdown": ("frames_shutdown", "the venue's notices that it will close a connection"),
        "malformed": ("frames_malformed", "frames that were not valid JSON/SBE"),
        "unknown": ("frames_unhandled", "valid frames of a type this adapter does not use"),
        "unknown_symbol": ("frames_other_symbol", "data for a symbol we do not trade"),
        "crossed": ("frames_crossed", "books with bid >= ask, refused"),
        "precision": ("frames_precision", "prices/sizes finer than the instrument allows"),
        "backwards": ("frames_backwards", "update ids that went backwards"),
    },
    "quoter": {
        "ticks": ("ticks", "book updates read"),
        "batches": ("batches", "bursts of updates handled together (one requote each)"),
        "intents": ("intents", "order intents published to the sender (new + replace + "
                               "cancel + cancel_all)"),
        "new": ("new", "new-order intents"),
        "replace": ("replace", "replace intents (cancel-replace of a resting quote)"),
        "cancel": ("cancel", "cancel intents"),
        "cancel_all": ("cancel_all", "cancel-everything intents (stop, pause, kill switch)"),
        "fills": ("sender_records", "records from the sender: acks, fills, refusals, "
                                    "positions (not only fills)"),
        "acks": ("acks", "orders the venue accepted"),
        "trades": ("fills", "executions of our orders (partial fills count each)"),
        "rejects": ("refused", "orders refused, by the venue or locally by the sender (rate "
                               "window, not connected, stale intent, paused)"),
        "canceled": ("canceled", "orders confirmed canceled"),
        "unknown_order": ("records_for_old_orders", "sender records about orders no quote "
                                                     "slot holds any more (late, normal)"),
        "positions": ("positions_told", "position snapshots from the sender (start, reconcile)"),
        "risk_position": ("held_by_position_limit", "quotes held back by max_position"),
        "risk_notional": ("held_by_notional_limit", "quotes held back by max_notional"),
        "risk_band": ("held_by_price_band", "quotes held back by the price band"),
        "rate_limited": ("held_by_rate_window", "requote passes held back because the order "
                                                "rate window was full; counted per pass (about "
                                                "one a millisecond while it lasts), not per "
                                                "order; normal when the market moves faster "
                                                "than the window allows"),
        "stale_pulls": ("stale_pulls", "times quotes were pulled because the book went stale"),
        "crossed_book": ("crossed_books", "books with bid >= ask ignored"),
        "ring_full": ("orders_ring_full", "times the orders ring had no room (intents wait)"),
        "unknown_instrument": ("unknown_instrument", "records for an instrument index we do "
                                                     "not have (a bug: report it)"),
        "cancel_rejects": ("cancels_refused", "cancels the venue refused (the order still "
                                              "rests; retried)"),
        "unknowns": ("outcome_unknown", "requests whose outcome was not seen in time (asked "
                                        "of the venue)"),
        "resets": ("resets", "times a new sender told the quoter to forget its slots"),
        "backoffs": ("backoffs", "refusals that made a quote slot wait before trying again"),
        "rate_refunds": ("rate_refunds", "rate-window charges given back for orders never sent"),
        "conflated": ("conflated", "times the quoter took the freshest book from the board "
                                   "because the md ring was full"),
        "superseded": ("superseded", "board books older than what the quoter already had"),
        "lags": ("quote_lags", "times a book event moved a quote's wish away from its resting "
                               "order (its quote lag began; quoter.quote_lag times the answer)"),
        "lags_undone": ("quote_lags_undone", "quote lags the book ended, coming back to the "
                                             "resting order before any answer"),
        "depth_reads": ("depth_reads", "L2 book summaries read from the depth board"),
        "depth_pulls": ("depth_pulls", "times quotes were pulled because the feed's L2 book "
                                       "was not in sync (a depth gap; once per instrument at "
                                       "start, until its first snapshot)"),
    },
    "sender": {
        "intents": ("intents", "intents read from the orders ring"),
        "orders_sent": ("orders_sent", "new orders written to the venue"),
        "replaces_sent": ("replaces_sent", "cancel-replace requests written"),
        "cancels_sent": ("cancels_sent", "cancel requests written"),
        "cancel_alls_sent": ("cancel_alls_sent", "cancel-all requests written"),
        "malformed": ("malformed_intents", "intents the sender could not read (a bug)"),
        "unknown_responses": ("unmatched_answers", "venue answers to no request we know"),
        "late_answers": ("late_answers", "answers after their request had timed out (applied)"),
        "timeouts": ("timeouts", "requests without an answer in time (outcome asked)"),
        "foreign_events": ("other_instance_events", "events about orders of another instance"),
        "other_events": ("other_events", "venue events the sender does not act on"),
        "local_rejects": ("refused_locally", "new orders/replaces not sent (rate window, not "
                                             "connected, stale, paused): the quoter was told"),
        "stale_intents": ("stale_intents", "intents older than the freshness limit, not sent"),
        "unknown_intents": ("cancels_already_done", "cancels for orders that had already ended "
                                                    "(normal: a fill or cancel won the race)"),
        "rate_paced": ("rate_paced", "sends delayed to keep the venue's rate (pacing)"),
        "rate_backoffs": ("rate_backoffs", "times the venue's rate answer made us wait"),
        "dry_run_frames": ("dry_run_frames", "frames built but not sent (dry run)"),
        "server_errors": ("venue_server_errors", "5xx answers from the venue"),
        "frame_errors": ("frame_errors", "frames from the venue we could not read"),
        "strangers_canceled": ("strangers_canceled", "orders of our tag no slot knew, canceled"),
        "reconciles": ("reconciles", "comparisons of our order table with the venue's"),
        "divergences": ("divergences", "differences found by a reconcile (repaired)"),
        "position_repairs": ("position_repairs", "positions set to the venue's after two "
                                                 "settled differences"),
        "rollovers": ("rollovers", "order connections replaced before the venue's age limit"),
        "before_reset": ("refused_before_reset", "new orders the quoter decided before it read "
                                                 "this sender's RESET (not sent: their slots "
                                                 "were dropped)"),
        "dead_connections": ("dead_connections", "order connections found silent (no pong, "
                                                 "unanswered requests) and replaced"),
        "acks": ("acks", "orders the venue accepted"),
        "fills": ("fills", "executions of our orders"),
        "rejects": ("orders_refused", "new orders and replaces that ended refused: by the "
                                      "venue, or not sent (refused_locally is that part)"),
        "canceled": ("canceled", "orders confirmed canceled"),
        "duplicates": ("duplicate_reports", "reports already applied (ignored; normal)"),
        "out_of_order": ("out_of_order_reports", "reports older than what we knew (ignored)"),
        "late_fills": ("late_fills", "fills after the order had been canceled (applied once)"),
        "unknown_events": ("unknown_reports", "reports for orders we do not know"),
        "cancel_refused": ("cancels_refused", "cancels the venue refused (retried)"),
        "unknowns": ("outcome_unknown", "requests whose outcome was not seen in time"),
        "resolved": ("unknown_resolved", "unknown outcomes resolved by asking the venue"),
        "not_found": ("not_found", "orders the venue did not find when asked (confirmed twice)"),
        "queries_sent": ("queries_sent", "order status questions sent"),
        "revived": ("revived", "orders concluded gone that the venue later showed live "
                               "(canceled at once)"),
        "reconnects": ("reconnects", "order connections lost and opened again"),
        "open_orders": ("open_orders", "our orders resting at the venue now"),
        "fills_written": ("fill_records", "records written to the quoter (fills, acks, ...)"),
        "fills_delayed": ("fill_records_delayed", "records held while the fills ring was full"),
        "fills_backlog": ("fill_records_waiting", "records waiting for room now"),
        "journal_written": ("journal_records", "records handed to the journal agent"),
        "journal_full": ("journal_dropped", "journal records dropped because the journal ring "
                                            "was full (the venue's trade list refills fills)"),
        "clock_offset_ms": ("clock_offset_ms", "venue clock minus ours, ms"),
        "rtt_us": ("rtt_us", "measured round trip to the venue, us"),
        "bells": ("wakeups", "times the quoter woke the sender"),
        "connected_ever": ("connected_ever", "1 once the order connection logged on"),
        "canceled_at_stop": ("canceled_at_stop", "orders canceled by the stop (or by a pause "
                                                 "not resumed)"),
        "left_open": ("left_open", "our orders still open after the stop (0: every order "
                                   "confirmed gone)"),
        "in_flight": ("in_flight", "requests awaiting an answer now"),
        "deadline_us": ("request_deadline_us", "how long a request may go unanswered now "
                                               "(from the measured round trip)"),
        "paused": ("pause_state", "0 quoting, 1 pausing (canceling), 2 paused with every order "
                                  "confirmed gone, 3 resuming (reconciling)"),
    },
    "supervisor": {},
    "journal": {
        "records": ("records", "journal records written to the journal file"),
        "batches": ("transactions", "transactions they were written in"),
        "fills": ("fills_reported", "fills written from the sender's execution reports"),
        "fills_from_venue": ("fills_from_venue", "fills the journal lacked, added from the "
                                                 "venue's trade list (myTrades)"),
        "gaps": ("records_lost", "journal records the sender dropped (full ring), seen as gaps"),
        "reconciles": ("reconciles", "passes over the venue's trade list"),
        "reconcile_errors": ("reconcile_errors", "passes that failed (retried)"),
        "markouts": ("markouts", "fill markouts written (mid at +100 ms, 1 s, 5 s, 30 s)"),
        "pruned": ("rows_pruned", "rows older than journal.retention_days removed"),
        "lag_ms": ("lag_ms", "age of the newest record when it was written, ms"),
    },
}

FAMILIES = (
    (re.compile(r"^position_(\w+)$"), "position of {0} in 10**qty_exp base units (shown "
                                      "converted under trading)"),
    (re.compile(r"^pnl_e(-?\d+)$"), "mark-to-market PnL in 10**{0} quote units (shown "
                                    "converted under trading)"),
    (re.compile(r"^drawdown_e(-?\d+)$"), "peak-to-trough drawdown in 10**{0} quote units"),
    (re.compile(r"^start_(\w+)$"), "holdings of {0} when the run started"),
)


def display_name(role: str, name: str) -> str:
    """The name a counter is shown under (the published name when it reads right already)."""
    entry = COUNTERS.get(role, {}).get(name)
    return entry[0] if entry else name


def meaning(role: str, name: str) -> str | None:
    """One line saying what the counter counts; None when nobody wrote it down."""
    entry = COUNTERS.get(role, {}).get(name)
    if entry:
        return entry[1]
    for pattern, text in FAMILIES:
        m = pattern.match(name)
        if m:
            return text.format(*m.groups())
    return None


def shown(role: str, counters: dict[str, int]) -> dict[str, int]:
    """The counters keyed by display name, in the published order."""
    return {display_name(role, k): v for k, v in counters.items()}


def order_count(sender: dict[str, int], tick_to_order_count: int | None = None,
                wire_count: int | None = None) -> str:
    """One order count with its parts: what was written, and which of it each latency figure
    timed (so three figures do not read as three different counts)."""
    new, rep = sender.get("orders_sent", 0), sender.get("replaces_sent", 0)
    can = sender.get("cancels_sent", 0)
    text = f"orders: {new + rep} sent ({new} new + {rep} replaces), {can} cancels"
    timed = []
    if tick_to_order_count is not None:
        timed.append(f"tick-to-order timed {tick_to_order_count} requests (those a book tick "
                     f"caused; the rest followed a fill, a timer or a retry)")
    if wire_count is not None:
        timed.append(f"the venue timed {wire_count} (wire-to-wire: requests whose client id "
                     f"carries the tick's update id)")
    return text + ("; " + "; ".join(timed) if timed else "")
