"""CSV tables of a backtest written at replay speed: whole columns converted at once (numpy to
Python lists in C, one `%` format per row), never a Decimal or a csv.writer call per cell.

Fixed-point numbers print at their instrument's exponent ("61837.63", "0.00400"): the float
m / 10**-exp (one correctly rounded division: 10**k is exact for k <= 22) is within
|m| * 2**-53 steps of the decimal, so it formats back to m's digits while |m| < 2**51; larger
mantissas are printed through integer arithmetic.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

EXACT_BELOW = 1 << 51


def fixed(mantissa: np.ndarray, exps: np.ndarray) -> list[str]:
    """Decimal strings of int mantissas, row k at exponent exps[k], exact (exps from -22)."""
    m = np.asarray(mantissa, np.int64)
    exps = np.broadcast_to(np.asarray(exps, np.int64), m.shape)
    out = np.empty(len(m), object)
    for e in np.unique(exps):
        sel = exps == e
        vals = m[sel]
        if e >= 0:
            out[sel] = [str(v * 10 ** int(e)) for v in vals.tolist()]
            continue
        fmt = f"%.{-int(e)}f"
        strs = [fmt % v for v in (vals / 10.0 ** -int(e)).tolist()]
        big = np.flatnonzero(np.abs(vals) >= EXACT_BELOW)
        for k in big.tolist():                 # rare: exact through integer arithmetic
            strs[k] = _exact(int(vals[k]), -int(e))
        out[sel] = strs
    return out.tolist()


def _exact(m: int, digits: int) -> str:
    sign = "-" if m < 0 else ""
    whole, frac = divmod(abs(m), 10 ** digits)
    return f"{sign}{whole}.{frac:0{digits}d}"


def seconds(ts: np.ndarray, t0: int) -> list[str]:
    """Times in seconds from t0, to the microsecond."""
    return ["%.6f" % v for v in ((np.asarray(ts, np.int64) - t0) / 1e9).tolist()]


def names(codes: np.ndarray, table: dict, default: str = "") -> list[str]:
    """Names of small integer codes through `table` (code -> name)."""
    codes = np.asarray(codes, np.int64)
    if len(codes) == 0:
        return []
    u, inv = np.unique(codes, return_inverse=True)
    lut = np.array([table.get(int(k), default) for k in u.tolist()], object)
    return lut[inv.reshape(-1)].tolist()


def write(path: str | Path, header: list[str], columns: list[list]) -> int:
    """Write `columns` (equal-length lists of str or int) under `header`; the rows written."""
    n = len(columns[0]) if columns else 0
    fmt = ",".join("%s" for _ in header)
    with open(path, "w", newline="") as f:
        f.write(",".join(header) + "\n")
        step = 1 << 16
        for lo in range(0, n, step):             # bounded memory for the joined text
            rows = zip(*(c[lo:lo + step] for c in columns))
            f.write("\n".join(fmt % r for r in rows))
            f.write("\n")
    return n
