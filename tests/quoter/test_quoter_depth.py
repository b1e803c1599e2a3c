"""The quoter and the feed's L2 book (a real depth board in shared memory): a depth gap
(MD_DEPTH_BOOK|MD_STALE) pulls the instrument's quotes at once, the board read after
MD_DEPTH_BOOK|MD_FRESH quotes again, and fair_value = "depth_imbalance" leans the quotes
toward the side with less size in the best depth_levels levels."""
from __future__ import annotations

import numpy as np
from quoter_harness import Harness

from engine.instruments import DEFAULT_INSTRUMENTS
from engine.quoter import model
from engine.quoter.arrays import C_DEPTH_PULLS, C_DEPTH_READS, G_DEPTH_DIRTY
from engine.quoter.config import QuoterConfig
from engine.records import (ACTION_CANCEL, ACTION_NEW, DEPTH_DTYPE, FILL_ACK, FILL_CANCELED,
                            FILL_POSITION, FILL_RESUME,
                            MD_BBO, MD_DEPTH_BOOK, MD_FRESH, MD_STALE, SIDE_BUY, SIDE_SELL)
from engine.ring.board import Board
from engine.strategies.fixed_spread.config import FixedSpreadConfig

BTC = 0
NOW = 5_000_000_000


def _harness(fair_value="mid", depth_levels=2) -> Harness:
    q = QuoterConfig(strategy="fixed_spread", levels=1, max_position="1",
                     max_notional="1000000",
                     fixed_spread=FixedSpreadConfig(half_spread_ticks=5, skew_ticks=0,
                                                    fair_value=fair_value,
                                                    depth_levels=depth_levels))
    h = Harness(q, DEFAULT_INSTRUMENTS, with_reference=False)
    for i in range(2):
        h.fill(i, FILL_POSITION, qty=0)
    h.fill(0, FILL_RESUME)
    return h


def _put(board: Board, i: int, synced: int, bids, asks, update_id=10) -> None:
    r = np.zeros(1, DEPTH_DTYPE)
    r["update_id"], r["instrument"], r["synced"] = update_id, i, synced
    r["n_bids"], r["n_asks"] = len(bids), len(asks)
    for k, (p, q) in enumerate(bids):
        r["bid_px"][0, k], r["bid_qty"][0, k] = p, q
    for k, (p, q) in enumerate(asks):
        r["ask_px"][0, k], r["ask_qty"][0, k] = p, q
    board.put(i, r)


def _md(h: Harness, kind: int, now: int, bid=6_000_000, ask=6_000_008, u=1) -> None:
    model.on_md(h.st.arrays, BTC, kind, u, bid, 100_000, ask, 100_000, now - 1000, now - 500, now)


def _read(h: Harness, board: Board) -> int:
    return model.read_depth(board.addr, np.zeros(1, DEPTH_DTYPE), h.st.arrays)


def _new(out, side):
    return [(it[7], it[8]) for it in out if it[4] == side and it[3] == ACTION_NEW]


def test_a_depth_gap_pulls_quotes_until_the_board_is_synced_again(instance):
    board = Board.open(instance, 2, DEPTH_DTYPE, "depth")
    try:
        h = _harness()
        levels = ([(6_000_000, 100_000)], [(6_000_008, 100_000)])
        _put(board, BTC, 1, *levels)
        _md(h, MD_DEPTH_BOOK, NOW)
        assert h.st.g[G_DEPTH_DIRTY] == 1 and _read(h, board) == 1
        _md(h, MD_BBO, NOW)
        out = h.end_batch(NOW)
        assert len(_new(out, SIDE_BUY)) == 1                         # quoting
        for it in out:
            h.fill(BTC, FILL_ACK, order_id=it[0])
        # the gap: the stale mark pulls at once, before any board read
        _put(board, BTC, 0, *levels)
        _md(h, MD_DEPTH_BOOK | MD_STALE, NOW + 1000)
        _md(h, MD_BBO, NOW + 2000, u=2)                              # bookTicker keeps coming
        out = h.end_batch(NOW + 2000)
        assert [it[3] for it in out] == [ACTION_CANCEL, ACTION_CANCEL]
        for it in out:
            h.fill(BTC, FILL_CANCELED, order_id=it[1])     # a cancel names its order in orig
        assert h.st.cnt[C_DEPTH_PULLS] == 1
        assert _read(h, board) == 1 and h.st.inst[BTC]["depth_stale"] == 1   # still unsynced
        _md(h, MD_BBO, NOW + 3000, u=3)
        assert h.end_batch(NOW + 3000) == []                         # not quoted through it
        # resynced: the fresh mark, the board says synced, quotes come back
        _put(board, BTC, 1, *levels, update_id=20)
        _md(h, MD_DEPTH_BOOK | MD_FRESH, NOW + 4000)
        assert _read(h, board) == 1 and h.st.inst[BTC]["depth_stale"] == 0
        assert h.st.inst[BTC]["depth_id"] == 20 and h.st.cnt[C_DEPTH_READS] == 3
        ack = h.end_batch(NOW + 4000)
        assert len(_new(ack, SIDE_BUY)) == 1 and len(_new(ack, SIDE_SELL)) == 1
    finally:
        board.close()


def test_depth_imbalance_leans_the_fair_value_toward_the_thin_side(instance):
    board = Board.open(instance, 2, DEPTH_DTYPE, "depth")
    try:
        # best bid 6_000_000, best ask 6_000_008 (tick 1): the mid is 6_000_004
        bids = [(6_000_000, 100_000), (5_999_999, 200_000), (5_999_990, 9_000_000)]
        asks = [(6_000_008, 50_000), (6_000_009, 50_000), (6_000_010, 9_000_000)]
        quotes = {}
        for fair in ("mid", "depth_imbalance"):
            h = _harness(fair, depth_levels=2)
            _put(board, BTC, 1, bids, asks)
            _md(h, MD_DEPTH_BOOK, NOW)
            _read(h, board)
            _md(h, MD_BBO, NOW)
            out = h.end_batch(NOW)
            quotes[fair] = (_new(out, SIDE_BUY)[0][0], _new(out, SIDE_SELL)[0][0])
        assert quotes["mid"] == (5_999_999, 6_000_009)
        # two levels a side: 300_000 bid against 100_000 ask: fair = (b*1 + a*3) / 4 = 6_000_006
        assert quotes["depth_imbalance"] == (6_000_001, 6_000_011)
    finally:
        board.close()


def test_without_a_depth_board_nothing_changes():
    """The default (no depth stream): no MD_DEPTH_BOOK record ever comes, depth_stale stays 0,
    and the quotes are the mid's."""
    h = _harness()
    _md(h, MD_BBO, NOW)
    out = h.end_batch(NOW)
    assert h.st.inst[BTC]["depth_stale"] == 0 and h.st.g[G_DEPTH_DIRTY] == 0
    assert _new(out, SIDE_BUY) == [(5_999_999, 200)]
