"""What a trader reads besides `mm journal`: the report's PnL over time, inventory and markout
curve (tables and journal.png), and `mm status`'s line for the day."""
from __future__ import annotations

import time

from engine.config import EngineConfig
from engine.instance_info import InstanceInfo
from engine.journal import report
from engine.journal.reconcile import reconcile_symbol
from engine.journal.schema import open_journal
from engine.status import today
from test_journal_records import FakeVenue, _trade


def _journal(tmp_path):
    path = tmp_path / "j.sqlite"
    con = open_journal(path)
    now_ms = int(time.time() * 1000)
    reconcile_symbol(con, FakeVenue([_trade(1, 1, "BUY", "100", "2", now_ms - 3000),
                                     _trade(2, 2, "SELL", "110", "1", now_ms - 2000),
                                     _trade(3, 3, "SELL", "90", "1", now_ms - 1000)]),
                     "BTCUSDT", 3_600_000, now_ms)
    with con:             # markouts as the agent stores them: the mid after each fill
        con.execute("UPDATE fills SET mid_at_fill = 100, mid_1s = 99 WHERE trade_id = 1")
        con.execute("UPDATE fills SET mid_at_fill = 110, mid_1s = 111 WHERE trade_id = 2")
    con.close()
    return path


def test_the_report_has_pnl_inventory_markouts_and_a_png(tmp_path, capsys):
    path = _journal(tmp_path)
    sec = report.section(path, EngineConfig().instruments, 0)
    assert sec["fills"] == 3
    last = sec["table"][-1]
    assert last["position"] == 0.0 and last["realised"] == 0.0   # +10 then -10
    assert abs(last["fees"] - 0.03) < 1e-12
    one_s = next(c for c in sec["markouts"] if c["horizon"] == "1s")
    assert one_s["fills"] == 2 and one_s["adverse_share"] == 1.0   # 99 < 100; sell, 111 > 110
    assert (report.plot(tmp_path, sec) or tmp_path / "none").exists()
    report.print_section(sec)
    out = capsys.readouterr().out
    assert "PnL over time" in out and "markout curve" in out and "BTCUSDT" in out
    # an unreadable journal is said, with its path
    bad = tmp_path / "bad.sqlite"
    bad.write_bytes(b"x" * 5000)
    assert str(bad) in report.section(bad, (), 0)["error"]


def test_status_shows_the_days_fills_fees_and_pnl(tmp_path):
    path = _journal(tmp_path)
    info = InstanceInfo(instruments=EngineConfig().instruments, journal=str(path))
    (line,) = today(info)
    assert line.startswith("today BTCUSDT: 3 fills, fees 0.03 USDT") and "net" in line
    assert today(InstanceInfo(instruments=())) == []
