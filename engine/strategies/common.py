"""What every strategy's set-up shares (no numba here: the configuration loads it): the fair
value choices."""
from __future__ import annotations

from typing import Literal

FairValue = Literal["mid", "micro"]
FAIR_MID, FAIR_MICRO = 0, 1
FAIR_KINDS = {"mid": FAIR_MID, "micro": FAIR_MICRO}
