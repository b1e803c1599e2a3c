"""What every strategy's set-up shares (no numba here: the configuration loads it): the fair
value choices and the range checks that name the field."""
from __future__ import annotations

from typing import Literal

FairValue = Literal["mid", "micro"]
FAIR_MID, FAIR_MICRO = 0, 1
FAIR_KINDS = {"mid": FAIR_MID, "micro": FAIR_MICRO}


def check_fields(section: str, obj, checks) -> None:
    """Raise ValueError("<section>.<field>: expected <want>, got <value>") for the first
    (field, ok, want) of `checks` whose ok is false."""
    for name, ok, want in checks:
        if not ok:
            raise ValueError(f"{section}.{name}: expected {want}, got {getattr(obj, name)!r}")
