"""The engine's rings, in one table: what each carries, its record type, who writes and who
reads it. The processes open their ends from here, the supervisor creates them, the monitor and
`mm shm` attach them, and the tests read the same rows; capacity and policy are configuration
(`[rings.<name>]`)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.records import FILL_DTYPE, JOURNAL_DTYPE, MD_DTYPE, ORDER_DTYPE
from engine.ring.ring import Ring


@dataclass(frozen=True)
class RingSpec:
    name: str           # segment /mm.<instance>.<name>, config section [rings.<name>]
    dtype: np.dtype
    producer: str       # role that writes it
    consumer: str       # role that reads it
    carries: str

    def config(self, cfg):
        """This ring's [rings.<name>] settings (capacity, policy) in an EngineConfig."""
        return getattr(cfg.rings, self.name)

    def create(self, cfg) -> Ring:
        """Create the segment (the supervisor, before starting the processes)."""
        rc = self.config(cfg)
        return Ring.create(cfg.instance, self.name, self.dtype, rc.capacity, rc.policy)

    def open(self, cfg, role: str, **kw) -> Ring:
        """Open this process's end: `role` is "producer" or "consumer" (keywords go to
        Ring.open, e.g. spins=)."""
        rc = self.config(cfg)
        return Ring.open(cfg.instance, self.name, self.dtype, rc.capacity, rc.policy, role=role,
                         **kw)

    def attach(self, instance: str) -> Ring:
        """Attach without taking a side (monitoring)."""
        return Ring.attach(instance, self.name, self.dtype)


MD = RingSpec("md", MD_DTYPE, "feed", "quoter", "book and trade records")
ORDERS = RingSpec("orders", ORDER_DTYPE, "quoter", "sender", "order intents")
FILLS = RingSpec("fills", FILL_DTYPE, "sender", "quoter",
                 "acks, fills, refusals, positions: the venue's answers")
# never blocks the sender: a full journal ring drops (counted as journal_full by the sender);
# the journal agent fills the gap from the venue's trade list (engine/journal/reconcile.py)
JOURNAL = RingSpec("journal", JOURNAL_DTYPE, "sender", "journal",
                   "every request, answer, report, fill and decision, for the journal")
RINGS = (MD, ORDERS, FILLS, JOURNAL)
