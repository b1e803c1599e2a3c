"""Hooks for strategies that need none (compiled): import them into a model module."""
from __future__ import annotations

from numba import njit

_jit = njit(cache=True, nogil=True, fastmath=False, _nrt=False)


@_jit
def on_fill(st, sp, s, p, kind, side, price, qty, now):
    """Nothing: the inventory a skew needs is the core's (s.inventory)."""
    return


@_jit
def on_timer(st, sp, s, p, now):
    """Never asks for a requote."""
    return False
