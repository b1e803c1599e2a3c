"""Journal configuration ([journal] in the TOML file)."""
from __future__ import annotations

import msgspec

from engine.config_check import ConfigError, Core, NonNegativeFloat, PositiveInt, check_struct


class JournalConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    enabled: bool = True          # mm run starts the journal agent (mm journal-agent alone)
    path: str = ""                # SQLite file; "" = <state_dir>/<instance>.journal.sqlite
    core: Core = -1               # CPU for the agent (-1: any core but the trading ones)
    batch_max: PositiveInt = 4096  # ring records per transaction at most (each wake-up of the
                                  # agent writes what the ring holds in one transaction)
    reconcile_interval_s: NonNegativeFloat = 30.0  # compare with the venue's trade list (myTrades)
                                  # this often, and at start; 0 = at start only
    reconcile_lookback_h: float = 24.0  # at start, ask the venue for trades this far back
                                  # (trades after the journal's newest are always asked for)
    retention_days: NonNegativeFloat = 30.0  # rows older than this are pruned (0 = keep everything)
    markouts: bool = True         # mid at +100 ms, +1 s, +5 s, +30 s after each fill (book board)
    trades_url: str = ""          # REST base of the venue's trade list where it is not the order
                                  # URL's (Bybit's execution list); "" = from sender.url's host

    def validate(self, instruments=None) -> None:
        """The field constraints and the rules between fields; ConfigError naming the field.
        (No rule here needs the instruments.)"""
        check_struct(self, "journal")
        if self.retention_days and self.retention_days * 24 < self.reconcile_lookback_h:
            raise ConfigError(f"journal.retention_days ({self.retention_days:g} d) is shorter "
                              f"than journal.reconcile_lookback_h ({self.reconcile_lookback_h:g} "
                              f"h): fills pruned would come back from the venue")
