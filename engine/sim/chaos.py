"""Seeded chaos: the races a live venue produces, injected on demand so tests can replay them.

Each kind is a probability per opportunity (SimConfig.chaos, e.g. {"lost_answer": 0.02}); one
random.Random(chaos_seed) decides every roll, so a seed and a request sequence give the same
injections. Every injection is counted by kind (`chaos_<kind>` in the simulator's stats).

  fill_during_replace  an order.cancelReplace finds its old order filled by a taker just before
                       the cancel leg runs (cancel leg fails -2011: the fill raced the replace)
  refuse_cancel        an order.cancel or order.cancelReplace is refused before anything is done
                       (-1021 outside recvWindow, or 503 -1008 server busy); the order keeps
                       resting
  phantom_unknown      the venue answers "unknown order" for an order that still rests: order.cancel
                       -2011, the cancel leg of a cancelReplace -2011 (-2022), order.status -2013
  lost_answer          an order request (place, cancelReplace, cancel, status) is carried out but
                       its answer is never sent
  late_report          an executionReport is delivered 0.2-1.5 s late (after later answers)
  duplicate_report     an executionReport is delivered twice
  partial_fill         on a book event, one resting order of that book is partly filled
  drop_api             on a book event, every order API connection is dropped (no close frame)
  silent_api           on a book event, every order API connection goes silent without closing:
                       its frames are read and dropped (requests, pings), nothing is written to
                       it (no answers, no reports, no pongs) - a path that died without FIN/RST
  late_execution       an order.place or order.cancelReplace is left unanswered and carried out
                       1-3 s later (the
                       venue's matching engine was slow; within its 10 s backend timeout)
  status_lag           a new order is hidden from order.status for 1-3 s (-2013 "does not exist"
                       while it rests: the query path lags the book)
"""
from __future__ import annotations

import random

KINDS = ("fill_during_replace", "refuse_cancel", "phantom_unknown", "lost_answer", "late_report",
         "duplicate_report", "partial_fill", "drop_api", "silent_api", "late_execution",
         "status_lag")


class Chaos:
    """The dice and the tally. `roll(kind)` is True when this opportunity gets the fault."""

    def __init__(self, rates: dict[str, float], seed: int):
        unknown = set(rates) - set(KINDS)
        if unknown:
            raise ValueError(f"sim.chaos: unknown kind(s) {sorted(unknown)}; "
                             f"expected some of {', '.join(KINDS)}")
        for kind, p in rates.items():
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"sim.chaos.{kind}: expected a probability 0..1, got {p!r}")
        self.rates = {k: float(rates.get(k, 0.0)) for k in KINDS}
        # one stream of dice per kind: how often a kind strikes depends on its own
        # opportunities only, not on how the others' interleave with it (timing)
        self.dice = {k: random.Random(f"{seed}:{k}") for k in KINDS}
        self.rng = random.Random(seed)            # the details of a fault (which refusal...)
        self.injected = dict.fromkeys(KINDS, 0)
        self.enabled = any(self.rates.values())

    def roll(self, kind: str) -> bool:
        p = self.rates[kind]
        if p <= 0.0 or self.dice[kind].random() >= p:
            return False
        self.injected[kind] += 1
        return True

    def set_rates(self, rates: dict[str, float]) -> None:
        """Change the probabilities (kinds not named keep theirs); validated like the config."""
        Chaos({**self.rates, **rates}, 0)
        self.rates.update({k: float(v) for k, v in rates.items()})
        self.enabled = any(self.rates.values())

    def refusal(self):
        """(status, code, msg) of a temporary refusal: the request was not carried out."""
        if self.rng.random() < 0.5:
            return 400, -1021, "Timestamp for this request is outside of the recvWindow."
        return 503, -1008, ("Server is currently overloaded with other requests. Please try "
                            "again in a few minutes.")

    def late_delay_s(self) -> float:
        return self.rng.uniform(0.2, 1.5)

    def lag_s(self) -> float:
        """How long a late execution waits, or a status lag lasts (seconds)."""
        return self.rng.uniform(1.0, 3.0)

    def stats(self) -> dict[str, int]:
        return {f"chaos_{k}": v for k, v in self.injected.items()}
