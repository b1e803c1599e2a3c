"""From ring records to rows, and the venue's trade list to fills: every fill exactly once,
keyed by the venue's trade id; a fill whose report never reached the journal comes from the
venue's list; the venue's figures win; `mm journal` prints them (fills CSV with trade_id)."""
from __future__ import annotations

import csv
import io
import subprocess
import sys

from engine.config import EngineConfig
from engine.journal.rows import Journal
from engine.journal.queries import pnl
from engine.journal.reconcile import reconcile_symbol
from engine.journal.schema import open_journal
from engine.journal.writer import JournalWriter, asset_word
from engine.records import (FILL_ACK, FILL_UNKNOWN, JE_KILL, JE_REQ_NEW, JE_REQ_REPLACE,
                            JE_STRANGER_CANCELED, SIDE_BUY, SIDE_SELL)
from engine.ring.table import JOURNAL

BTC = 0            # EngineConfig's first instrument: BTCUSDT, price exp -2, qty exp -5


class FakeVenue:
    """The venue's trade list for BTCUSDT (myTrades entries), paged as Binance pages."""

    def __init__(self, trades):
        self.trades = trades
        self.calls = []

    def fetch(self, symbol, from_id=None, start_ms=None, limit=1000):
        self.calls.append((symbol, from_id, start_ms))
        out = [t for t in self.trades if t["symbol"] == symbol
               and (from_id is None or t["id"] >= from_id)]
        return out[:limit]


def _trade(i, order, side, price, qty, t_ms):
    return {"symbol": "BTCUSDT", "id": i, "orderId": order, "orderListId": -1, "price": price,
            "qty": qty, "quoteQty": "0", "commission": "0.01", "commissionAsset": "USDT",
            "time": t_ms, "isBuyer": side == "BUY", "isMaker": True, "isBestMatch": True}


def _ring_records(instance, write):
    cfg = EngineConfig(instance=instance)
    prod = JOURNAL.open(cfg, "producer")
    cons = JOURNAL.open(cfg, "consumer")
    try:
        w = JournalWriter(prod)
        write(w)
        return list(cons.reader().take(1000)), w
    finally:
        prod.close()
        cons.close()


def _journal(tmp_path, instance, write):
    cfg = EngineConfig(instance=instance)
    con = open_journal(tmp_path / "j.sqlite")
    recs, w = _ring_records(instance, write)
    j = Journal(con, cfg.instruments, "tg")
    j.write(recs)
    return con, j, w


def test_records_become_rows_and_an_unknown_resolved_is_a_decision(instance, tmp_path):
    def write(w):
        w.request(JE_REQ_NEW, 7, 0, BTC, SIDE_BUY, 6000000, 200, 123)
        w.fill_record(FILL_UNKNOWN, 7, BTC, SIDE_BUY, 6000000, 0, 0, 200, 0, 0)
        w.fill_record(FILL_ACK, 7, BTC, SIDE_BUY, 6000000, 200, 0, 200, 0, 0)
        w.exec_trade(7, 55, 1001, BTC, SIDE_BUY, 5999999, 100, 100, 10 ** 10, asset_word("USDT"),
                     1, 1_700_000_000_000_000_000)
        w.decision(JE_STRANGER_CANCELED, BTC, 9, venue_order_id=77)
        w.decision(JE_KILL, code=3)
        w.request(JE_REQ_REPLACE, 8, 7, BTC, SIDE_BUY, 6000001, 200, 124)
    con, j, w = _journal(tmp_path, instance, write)
    assert w.written == 7 and w.full == 0
    assert con.execute("SELECT kind, symbol, order_id, orig_order_id, client_id, side, price, "
                       "qty FROM requests ORDER BY id").fetchall() == [
        ("new", "BTCUSDT", 7, None, "tg-123-7", "BUY", "60000.00", "0.00200"),
        ("replace", "BTCUSDT", 8, 7, "tg-124-8", "BUY", "60000.01", "0.00200")]
    assert [r[0] for r in con.execute("SELECT kind FROM events ORDER BY id")] == \
        ["unknown", "ack"]
    assert con.execute("SELECT trade_id, venue_order_id, order_id, client_id, price, qty, "
                       "commission, commission_asset, is_maker, source FROM fills").fetchall() \
        == [(1001, 55, 7, "tg-123-7", "59999.99", "0.00100", "0.010000000000", "USDT", 1,
             "report")]
    kinds = [r[0] for r in con.execute("SELECT kind FROM decisions ORDER BY id")]
    assert kinds == ["unknown_resolved", "stranger_canceled", "kill"]


def test_records_a_killed_agent_committed_are_not_written_twice(instance, tmp_path):
    def write(w):
        w.request(JE_REQ_NEW, 7, 0, BTC, SIDE_BUY, 6000000, 200, 123)
        w.fill_record(FILL_ACK, 7, BTC, SIDE_BUY, 6000000, 200, 0, 200, 0, 0)
    cfg = EngineConfig(instance=instance)
    con = open_journal(tmp_path / "j.sqlite")
    recs, _ = _ring_records(instance, write)
    Journal(con, cfg.instruments, "tg", ring_id=99).write(recs)
    # its successor reads the same records again (committed, never released): skipped
    Journal(con, cfg.instruments, "tg", ring_id=99).write(recs)
    assert con.execute("SELECT count(*) FROM requests").fetchone()[0] == 1
    assert con.execute("SELECT count(*) FROM events").fetchone()[0] == 1
    # a new ring (a new run) starts its seqs again: nothing skipped
    Journal(con, cfg.instruments, "tg", ring_id=100).write(recs)
    assert con.execute("SELECT count(*) FROM requests").fetchone()[0] == 2


def test_the_venue_trade_list_adds_what_is_missing_once_and_confirms_the_rest(instance,
                                                                               tmp_path):
    def write(w):        # the report of trade 1001 reached the journal; 1002 and 1003 did not
        w.exec_trade(7, 55, 1001, BTC, SIDE_BUY, 5999999, 100, 100, 0, 0, 1,
                     1_700_000_000_000_000_000)
    con, j, _ = _journal(tmp_path, instance, write)
    venue = FakeVenue([_trade(1001, 55, "BUY", "59999.99", "0.00100", 1_700_000_000_000),
                       _trade(1002, 56, "SELL", "60001.00", "0.00100", 1_700_000_001_000),
                       _trade(1002, 57, "BUY", "60001.00", "0.00100", 1_700_000_001_000),
                       _trade(1003, 58, "SELL", "60002.00", "0.00050", 1_700_000_002_000)])
    assert reconcile_symbol(con, venue, "BTCUSDT", 3_600_000) == (4, 3)
    # again: from the newest confirmed id (asked again: a self-trade shares it), nothing new
    assert reconcile_symbol(con, venue, "BTCUSDT", 3_600_000) == (1, 0)
    rows = con.execute("SELECT trade_id, venue_order_id, source, confirmed, commission "
                       "FROM fills ORDER BY trade_id, venue_order_id").fetchall()
    assert rows == [(1001, 55, "report", 1, "0.01"), (1002, 56, "mytrades", 1, "0.01"),
                    (1002, 57, "mytrades", 1, "0.01"), (1003, 58, "mytrades", 1, "0.01")]
    assert venue.calls[0] == ("BTCUSDT", 1001, None)            # from the unconfirmed one
    assert con.execute("SELECT count(*) FROM decisions WHERE kind='fill_from_venue'"
                       ).fetchone()[0] == 3
    # an empty journal asks by time
    con2 = open_journal(tmp_path / "empty.sqlite")
    v2 = FakeVenue(venue.trades)
    reconcile_symbol(con2, v2, "BTCUSDT", 3_600_000, now_ms=1_700_000_100_000)
    assert v2.calls[0] == ("BTCUSDT", None, 1_700_000_100_000 - 3_600_000)


def test_pnl_realised_marked_and_fees_in_the_quote_asset(tmp_path):
    con = open_journal(tmp_path / "j.sqlite")
    venue = FakeVenue([_trade(1, 1, "BUY", "100", "2", 1_700_000_000_000),
                       _trade(2, 2, "SELL", "110", "1", 1_700_000_001_000)])
    reconcile_symbol(con, venue, "BTCUSDT", 3_600_000)
    rows = pnl(con, EngineConfig().instruments, 0, "day")
    assert len(rows) == 1
    r = rows[0]
    assert r["fills"] == 2 and r["position"] == 1.0
    assert r["realised"] == 10.0                  # 1 unit bought at 100, sold at 110
    assert r["marked"] == 20.0                    # the other unit marked at 110
    assert abs(r["fees"] - 0.02) < 1e-12 and abs(r["net"] - 19.98) < 1e-9


def test_mm_journal_prints_fills_orders_and_pnl(instance, tmp_path):
    path = tmp_path / "j.sqlite"

    def write(w):
        w.request(JE_REQ_NEW, 7, 0, BTC, SIDE_SELL, 6000000, 200, 123)
        w.exec_trade(7, 55, 1001, BTC, SIDE_SELL, 6000000, 200, 200, 0, 0, 1, 0)
    cfg = EngineConfig(instance=instance)
    con = open_journal(path)
    recs, _ = _ring_records(instance, write)
    Journal(con, cfg.instruments, "tg").write(recs)
    con.close()
    toml = tmp_path / "mm.toml"
    toml.write_text(f'[journal]\npath = "{path}"\n')

    def mm(*args):
        out = subprocess.run([sys.executable, "-m", "engine.cli", "journal", *args, "--config",
                              str(toml)], capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        return out.stdout
    rows = list(csv.DictReader(io.StringIO(mm("fills", "--csv"))))
    assert [(r["trade_id"], r["side"], r["price"], r["qty"], r["client_id"]) for r in rows] == \
        [("1001", "SELL", "60000.00", "0.00200", "tg-123-7")]
    assert "tg-123-7" in mm("orders", "--since", "1h")
    text = mm("pnl", "--by", "day")
    assert text.splitlines()[0].split()[:4] == ["bucket", "symbol", "fills", "volume"]
    assert "BTCUSDT" in text and "-0.002" in text     # position after the sell, base units
