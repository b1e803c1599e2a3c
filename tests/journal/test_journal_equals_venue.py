"""Nothing lost: an instance run the systemd way (mm journal-agent, mm sender, mm quoter,
mm feed, each restarted when it fails) against the simulator; whatever is killed with SIGKILL
mid-run (the journal agent, the sender, the quoter, the feed), and when the journal ring overflows, the journal
ends equal to the venue's own trade list: every fill exactly once, keyed by the venue's
trade id, with the venue's price, quantity and side."""
from __future__ import annotations

import os

import pytest

from tests.support.sim_thread import SimThread
from tests.support.units import (TRADING, Units, counter, journal_fills, running,
                                 unit_config, venue_fills, wait_until)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

TAG = "jrn"

def _setup(instance, tmp_path, sim, extra=""):
    path = tmp_path / "journal.sqlite"
    cfg = tmp_path / "mm.toml"
    cfg.write_text(unit_config(TAG, path, "reconcile_interval_s = 2.0", extra))
    env = {**os.environ, "MM_MD_URL": sim.md_url, "MM_ORDER_URL": sim.api_url,
           "MM_INSTANCE": instance}
    return path, Units(env, str(cfg), tmp_path, ("journal-agent", *TRADING))


def _more_fills(sim, n, timeout, what):
    have = len(sim.my_trades())
    wait_until(lambda: len(sim.my_trades()) >= have + n, timeout, what)


def _logs(tmp_path) -> str:
    return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-1500:]}"
                     for p in sorted(tmp_path.glob("*.log")))


def test_journal_equals_the_venue_after_each_process_is_killed(instance, tmp_path):
    with SimThread(event_rate=100, seed=41) as sim:
        path, units = _setup(instance, tmp_path, sim)
        units.start()
        try:
            for u in ("journal-agent", *TRADING):
                units.start_unit(u)
            wait_until(lambda: running(instance, ("journal", *TRADING)), 120, "all running")
            _more_fills(sim, 3, 90, "first fills")
            units.kill("journal-agent")
            _more_fills(sim, 2, 60, "fills while the agent restarts")
            wait_until(lambda: units.starts["journal-agent"] == 2 and
                       running(instance, ("journal",)), 30, "the agent back")
            for unit in TRADING:                 # the sender, the quoter, the feed in turn
                units.kill(unit)
                # a peer's restart can take the others down and up with it (EXIT_PEER_LOST when
                # its heartbeat is older than heartbeat_timeout_ms): slow on a loaded box
                wait_until(lambda: units.starts[unit] >= 2 and running(instance, TRADING),
                           120, f"the {unit} back")
                _more_fills(sim, 1, 60, f"a fill after the {unit} came back")
        except AssertionError as e:
            raise AssertionError(f"{e}; starts {units.starts}\n{_logs(tmp_path)}") from None
        finally:
            codes = units.stop_all()
        assert codes["journal-agent"] == 0, _logs(tmp_path)
        venue = venue_fills(sim)
        journal, rows, decisions = journal_fills(path)
        assert journal == venue, (f"missing {venue - journal}, extra {journal - venue}\n"
                                  + _logs(tmp_path))
        assert any(r[6] == "report" for r in rows)           # the hot path's own reports
        assert sum(k == "journal_start" for k, _ in decisions) == 2
        print(f"\n{len(rows)} fills; from the venue's list: "
              f"{sum(r[6] == 'mytrades' for r in rows)}")


def test_a_full_journal_ring_is_counted_and_filled_from_the_venue(instance, tmp_path):
    with SimThread(event_rate=100, seed=43) as sim:
        path, units = _setup(instance, tmp_path, sim, extra="[rings.journal]\ncapacity = 16\n"
                                                             "policy = \"drop\"")
        units.start()
        try:
            for u in TRADING:                        # no journal agent yet: the ring fills
                units.start_unit(u)
            wait_until(lambda: running(instance, TRADING), 120, "all running")
            _more_fills(sim, 3, 90, "fills with no journal agent")
            wait_until(lambda: counter(instance, "sender", "journal_full") > 0, 30,
                       "the sender counting a full journal ring")
            units.start_unit("journal-agent")
            wait_until(lambda: running(instance, ("journal",)), 30, "the agent running")
            _more_fills(sim, 1, 60, "a fill with the agent running")
            full = counter(instance, "sender", "journal_full")
        finally:
            codes = units.stop_all()
        assert codes["journal-agent"] == 0, _logs(tmp_path)
        venue = venue_fills(sim)
        journal, rows, decisions = journal_fills(path)
        assert journal == venue, (f"missing {venue - journal}, extra {journal - venue}\n"
                                  + _logs(tmp_path))
        assert full > 0
        assert any(r[6] == "mytrades" for r in rows)         # the gap, filled from the venue
        assert any(k == "ring_gap" for k, _ in decisions), decisions
        print(f"\njournal records dropped by the sender: {full}; fills {len(rows)}, from the "
              f"venue's list {sum(r[6] == 'mytrades' for r in rows)}")
