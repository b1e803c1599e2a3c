"""The journal's upkeep: markouts taken from the book board at their horizons, pruning by age
(the file stays bounded), retention checked against the reconcile look-back."""
from __future__ import annotations

import numpy as np
import pytest

from engine.config import EngineConfig
from engine.journal.rows import prune
from engine.journal.config import JournalConfig
from engine.journal.markouts import Markouts
from engine.journal.reconcile import reconcile_symbol
from engine.journal.schema import open_journal
from engine.records import MD_DTYPE
from test_journal_records import FakeVenue, _trade


class FakeBoard:
    count = 2

    def __init__(self):
        self.rec = np.zeros(1, MD_DTYPE)

    def set(self, bid, ask):
        self.rec["bid_px"], self.rec["ask_px"] = bid, ask

    def get(self, i):
        return self.rec.copy()


def test_markouts_are_taken_at_each_horizon_in_order():
    board = FakeBoard()
    m = Markouts(board, EngineConfig().instruments)        # BTCUSDT: price exp -2
    board.set(6000000, 6000002)
    assert m.mid(0) == 60000.01
    m.add(("BTCUSDT", 1, 5), 0, t_fill_ns=1_000)
    assert m.due(1_000 + 50_000_000) == []
    board.set(6000100, 6000102)
    assert m.due(1_000 + 100_000_000) == [("mid_100ms", 60001.01, ("BTCUSDT", 1, 5))]
    got = m.due(1_000 + 6_000_000_000)                     # 1 s and 5 s are both due
    assert [c for c, _, _ in got] == ["mid_1s", "mid_5s"]
    assert len(m.pending) == 1
    assert [c for c, _, _ in m.due(1_000 + 30_000_000_000)] == ["mid_30s"]
    assert len(m.pending) == 0
    board.set(0, 0)                                        # no two-sided book: no mid
    assert m.mid(0) is None


def test_pruning_by_age_keeps_the_recent_rows(tmp_path):
    con = open_journal(tmp_path / "j.sqlite")
    old_ms, new_ms = 1_600_000_000_000, 1_700_000_000_000
    reconcile_symbol(con, FakeVenue([_trade(1, 1, "BUY", "100", "1", old_ms),
                                     _trade(2, 2, "SELL", "100", "1", new_ms)]),
                     "BTCUSDT", 10 ** 12, new_ms)
    con.execute("INSERT INTO requests (ts_ns, kind, symbol) VALUES (?, 'new', 'BTCUSDT')",
                (old_ms * 1_000_000,))
    con.commit()
    cut = (old_ms + new_ms) // 2 * 1_000_000
    assert prune(con, cut) == 2            # the old fill and the old request (the decision
                                           # rows are dated when they were taken: now)
    assert [r[0] for r in con.execute("SELECT trade_id FROM fills")] == [2]


def test_retention_shorter_than_the_look_back_is_refused():
    with pytest.raises(ValueError, match="retention_days"):
        JournalConfig(retention_days=0.5, reconcile_lookback_h=24).validate()
    JournalConfig(retention_days=0).validate()             # keep everything
