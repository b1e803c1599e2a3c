"""The local L2 book's rules (engine/feed/depth_book.py; Binance's "Local book rules",
../shared/PROTOCOLS.md section 1): buffering until a snapshot, a snapshot older than the
stream refused, stale events dropped, the straddle, gaps (spot U, futures pu), qty 0 deletes."""
from __future__ import annotations

from engine.feed.depth_book import (APPLIED, BUFFERED, DROPPED, GAP, SYNCED, TOO_OLD,
                                    DepthBook)


def synced_book(last_id=100, bids=((99, 5), (98, 7)), asks=((101, 3), (103, 4))) -> DepthBook:
    b = DepthBook()
    assert b.on_snapshot(last_id, list(bids), list(asks)) == SYNCED
    return b


def test_events_before_the_snapshot_are_buffered_and_applied_after_it():
    b = DepthBook()
    assert b.on_diff(95, 99, -1, [(99, 1)], []) == BUFFERED      # older than the snapshot
    assert b.on_diff(100, 104, -1, [(99, 2)], [(101, 0)]) == BUFFERED   # straddles 101
    assert b.on_diff(105, 107, -1, [], [(102, 9)]) == BUFFERED
    assert not b.synced
    assert b.first_buffered() == 95
    assert b.on_snapshot(100, [(99, 5)], [(101, 3), (103, 4)]) == SYNCED
    assert b.synced and b.update_id == 107
    assert b.top(5) == ([(99, 2)], [(102, 9), (103, 4)])
    assert (b.buffered, b.dropped, b.applied, b.resyncs) == (3, 1, 2, 0)


def test_a_snapshot_older_than_the_first_buffered_event_is_refused():
    b = DepthBook()
    b.on_diff(110, 112, -1, [(99, 1)], [])
    assert b.on_snapshot(108, [(99, 5)], [(101, 3)]) == TOO_OLD      # 109 missing
    assert not b.synced and b.too_old == 1
    assert b.on_snapshot(109, [(99, 5)], [(101, 3)]) == SYNCED       # U = L + 1: continues
    assert b.update_id == 112 and b.top(1) == ([(99, 1)], [(101, 3)])


def test_the_first_event_after_the_snapshot_must_straddle_it():
    b = synced_book(100)
    assert b.on_diff(90, 100, -1, [(99, 1)], []) == DROPPED          # u <= id: already in it
    assert b.on_diff(95, 103, -1, [(97, 1)], []) == APPLIED          # U <= 101 <= u
    assert b.update_id == 103
    assert b.on_diff(104, 104, -1, [], []) == APPLIED
    assert b.on_diff(104, 104, -1, [(1, 1)], []) == DROPPED          # a second copy
    assert b.top(5)[0] == [(99, 5), (98, 7), (97, 1)]


def test_a_gap_unsyncs_counts_and_resyncs_from_the_next_snapshot():
    b = synced_book(100)
    assert b.on_diff(101, 102, -1, [(99, 6)], []) == APPLIED
    assert b.on_diff(104, 105, -1, [(98, 0)], []) == GAP             # 103 lost
    assert not b.synced and b.gaps == 1
    assert b.on_diff(106, 108, -1, [], [(101, 8)]) == BUFFERED
    assert b.top(5) == ([(99, 6), (98, 7)], [(101, 3), (103, 4)])    # as before the gap
    assert b.on_snapshot(105, [(99, 6)], [(101, 3), (103, 4)]) == SYNCED
    assert b.update_id == 108 and b.resyncs == 1
    assert b.top(5) == ([(99, 6)], [(101, 8), (103, 4)])


def test_a_gap_inside_the_buffer_after_the_snapshot_is_a_gap_again():
    b = DepthBook()
    b.on_diff(101, 102, -1, [], [])
    b.on_diff(105, 106, -1, [], [])                                  # 103..104 lost
    assert b.on_snapshot(101, [(99, 1)], [(101, 1)]) == GAP
    assert not b.synced and b.gaps == 1 and b.first_buffered() == 105
    assert b.on_snapshot(105, [(99, 1)], [(101, 1)]) == SYNCED
    assert b.update_id == 106


def test_qty_zero_deletes_a_level_and_an_absent_level_stays_absent():
    b = synced_book(100)
    assert b.on_diff(101, 101, -1, [(99, 0), (50, 0)], [(101, 0), (102, 2)]) == APPLIED
    bids, asks = b.levels()
    assert bids == {98: 7} and asks == {102: 2, 103: 4}
    assert b.top(1) == ([(98, 7)], [(102, 2)])


def test_futures_events_chain_by_pu():
    b = DepthBook()
    b.on_diff(1000, 1010, 990, [(99, 1)], [])
    b.on_diff(1013, 1020, 1010, [(98, 2)], [])                       # U jumps; pu chains
    assert b.on_snapshot(1005, [(99, 5)], [(101, 3)]) == SYNCED      # 1000 <= 1006 <= 1010
    assert b.update_id == 1020 and b.top(2)[0] == [(99, 1), (98, 2)]
    assert b.on_diff(1025, 1030, 1020, [], [(101, 0)]) == APPLIED
    assert b.on_diff(1040, 1050, 1035, [], []) == GAP                # pu 1035 != 1030


def test_the_buffer_is_bounded():
    b = DepthBook(max_buffer=3)
    for k in range(5):
        assert b.on_diff(10 + k, 10 + k, -1, [], []) == BUFFERED
    assert b.buffer_overflows == 2 and b.first_buffered() == 12
    assert b.on_snapshot(11, [], []) == SYNCED and b.update_id == 14
