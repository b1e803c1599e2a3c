"""Journal configuration ([journal] in the TOML file)."""
from __future__ import annotations

import msgspec


class JournalConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    enabled: bool = True          # mm run starts the journal agent (mm journal-agent alone)
    path: str = ""                # SQLite file; "" = <state_dir>/<instance>.journal.sqlite
    core: int = -1                # CPU for the agent (-1: any core but the trading ones)
    batch_max: int = 4096         # ring records per transaction at most (each wake-up of the
                                  # agent writes what the ring holds in one transaction)
    reconcile_interval_s: float = 30.0  # compare with the venue's trade list (myTrades) this
                                  # often, and at start; 0 = at start only
    reconcile_lookback_h: float = 24.0  # at start, ask the venue for trades this far back
                                  # (trades after the journal's newest are always asked for)
    retention_days: float = 30.0  # rows older than this are pruned (0 = keep everything)
    markouts: bool = True         # mid at +100 ms, +1 s, +5 s, +30 s after each fill (book board)

    def validate(self) -> None:
        """ValueError naming the field."""
        if self.batch_max < 1:
            raise ValueError(f"journal.batch_max: expected >= 1, got {self.batch_max}")
        if self.retention_days and self.retention_days * 24 < self.reconcile_lookback_h:
            raise ValueError(f"journal.retention_days ({self.retention_days:g} d) is shorter "
                             f"than journal.reconcile_lookback_h ({self.reconcile_lookback_h:g} "
                             f"h): fills pruned would come back from the venue")
        if self.reconcile_interval_s < 0 or self.retention_days < 0:
            raise ValueError("journal.reconcile_interval_s and journal.retention_days: "
                             "expected >= 0")
