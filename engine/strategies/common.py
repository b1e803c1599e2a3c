"""What every strategy's set-up shares (no numba here: the configuration loads it): the fair
value choices."""
from __future__ import annotations

from typing import Literal

FairValue = Literal["mid", "micro", "depth_imbalance"]
FAIR_MID, FAIR_MICRO, FAIR_DEPTH = 0, 1, 2
FAIR_KINDS = {"mid": FAIR_MID, "micro": FAIR_MICRO, "depth_imbalance": FAIR_DEPTH}
# depth_levels: levels per side of the feed's L2 book (records.DEPTH_LEVELS at most) whose sizes
# weigh the depth_imbalance fair value
MAX_DEPTH_LEVELS = 10
