"""Fixed-point mantissas as decimal text in pre-built byte templates, for every venue.

A price or quantity is an integer mantissa at the instrument's exponent; a template renders it
from the two integers of `divmod(mantissa, scale_of(exp))` with the %-format of its slot
(`decimal_slot(exp)`: "%d.%08d" at exp -8), so the hot path formats no float and no Decimal.
"""
from __future__ import annotations


class Slot:
    """A variable parameter: its %-format and whether JSON quotes it."""
    __slots__ = ("fmt", "quoted")

    def __init__(self, fmt: bytes, quoted: bool):
        self.fmt = fmt
        self.quoted = quoted


def decimal_slot(exp: int) -> Slot:
    """A fixed-point value taking (int_part, frac_part) = divmod(mantissa, 10**-exp)."""
    if exp < 0:
        return Slot(b"%d.%0" + str(-exp).encode() + b"d", True)
    # scale 1: divmod gives (mantissa, 0); "%.0a" consumes the 0 and prints nothing
    return Slot(b"%d" + b"0" * exp + b"%.0a", True)


def scale_of(exp: int) -> int:
    return 10 ** -exp if exp < 0 else 1
