"""CSV tables of a backtest written at replay speed: the cells are formatted by compiled code
straight into a byte buffer, a block of rows at a time (no Python string per cell).

A column is one of:
  Fixed(mantissas, exps)   fixed-point numbers printed exactly at their exponent ("61837.63",
                           "0.00400", "-12"); exps per row or one for all; rows where `blank`
                           is true print nothing
  Int(values)              integers (Fixed at exponent 0)
  Seconds(ts, t0)          nanosecond stamps as seconds from t0, to the microsecond (half a
                           microsecond rounds up)
  Names(codes, table, d)   small integer codes through `table` (code -> name), `d` otherwise
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numba import njit

BLANK = np.int64(1) << np.int64(40)     # the exponent of a cell that prints nothing
BLOCK = 1 << 16                          # rows formatted per buffer


@dataclass
class Fixed:
    mantissa: np.ndarray
    exps: np.ndarray | int
    blank: np.ndarray | None = None


def Int(values) -> Fixed:
    return Fixed(np.asarray(values, np.int64), 0)


def Seconds(ts, t0: int) -> Fixed:
    return Fixed((np.asarray(ts, np.int64) - t0 + 500) // 1000, -6)


@dataclass
class Names:
    codes: np.ndarray
    table: dict
    default: str = ""


_jit = njit(cache=True, nogil=True)


@_jit
def _fixed(out, p, m, e, tmp):
    """m * 10**e at out[p], exactly: the index after it."""
    neg = m < 0
    u = np.uint64(-(m + 1)) + np.uint64(1) if neg else np.uint64(m)   # |INT64_MIN| too
    nd = 0
    while True:
        tmp[nd] = np.uint8(48 + u % np.uint64(10))
        u //= np.uint64(10)
        nd += 1
        if u == 0:
            break
    if neg:
        out[p] = 45                       # '-'
        p += 1
    if e >= 0:
        for k in range(nd - 1, -1, -1):
            out[p] = tmp[k]
            p += 1
        if not (nd == 1 and tmp[0] == 48):
            for _ in range(e):
                out[p] = 48
                p += 1
        return p
    f = -e
    whole = nd - f
    if whole <= 0:
        out[p] = 48
        out[p + 1] = 46
        p += 2
        for _ in range(-whole):
            out[p] = 48
            p += 1
        for k in range(nd - 1, -1, -1):
            out[p] = tmp[k]
            p += 1
        return p
    for k in range(nd - 1, -1, -1):
        if k == f - 1:
            out[p] = 46                   # '.'
            p += 1
        out[p] = tmp[k]
        p += 1
    return p


@_jit
def _rows(V, X, is_name, names, off, lo, hi, out):
    """Rows lo..hi-1 as CSV lines into out: the bytes written."""
    tmp = np.zeros(24, np.uint8)
    p = 0
    for r in range(lo, hi):
        for c in range(V.shape[1]):
            if c:
                out[p] = 44
                p += 1
            if is_name[c]:
                k = V[r, c]
                for j in range(off[k], off[k + 1]):
                    out[p] = names[j]
                    p += 1
            elif X[r, c] != BLANK:
                p = _fixed(out, p, V[r, c], X[r, c], tmp)
        out[p] = 10
        p += 1
    return p


def _matrix(columns: list) -> tuple:
    """Values, exponents, which columns are names, and the names' bytes with their offsets."""
    n = len(columns[0].mantissa if isinstance(columns[0], Fixed) else columns[0].codes)
    c = len(columns)
    V = np.zeros((n, c), np.int64)
    X = np.zeros((n, c), np.int64)
    is_name = np.zeros(c, np.bool_)
    strings: list[bytes] = []
    widest = 1
    for k, col in enumerate(columns):
        if isinstance(col, Names):
            codes = np.asarray(col.codes, np.int64)
            u, inv = np.unique(codes, return_inverse=True)
            names = [col.table.get(int(x), col.default).encode() for x in u.tolist()]
            V[:, k] = inv.reshape(-1) + len(strings)
            strings += names
            is_name[k] = True
            widest = max([widest] + [len(s) for s in names])
        else:
            V[:, k] = np.asarray(col.mantissa, np.int64)
            X[:, k] = col.exps
            if col.blank is not None:
                X[np.asarray(col.blank, bool), k] = BLANK
            shown = X[:, k][X[:, k] != BLANK]
            if len(shown):
                widest = max(widest, 23 + max(0, -int(shown.min())) + max(0, int(shown.max())))
    off = np.zeros(len(strings) + 1, np.int64)
    off[1:] = np.cumsum([len(s) for s in strings])
    names = np.frombuffer(b"".join(strings), np.uint8) if strings else np.zeros(1, np.uint8)
    return V, X, is_name, names, off, c * (widest + 1) + 1


def write(path: str | Path, header: list[str], columns: list) -> int:
    """Write `columns` (Fixed or Names, equal lengths) under `header`: the rows written."""
    with open(path, "wb") as f:
        f.write((",".join(header) + "\n").encode())
        return _write_rows(f, columns)


def text(columns: list) -> bytes:
    """The rows of `columns` as CSV bytes (no header)."""
    import io

    b = io.BytesIO()
    _write_rows(b, columns)
    return b.getvalue()


def _write_rows(f, columns: list) -> int:
    if not columns:
        return 0
    V, X, is_name, names, off, row_max = _matrix(columns)
    n = len(V)
    out = np.empty(min(n, BLOCK) * row_max + 1, np.uint8)
    for lo in range(0, n, BLOCK):
        p = _rows(V, X, is_name, names, off, lo, min(lo + BLOCK, n), out)
        f.write(out[:p].data)
    return n
