"""Decimal strings and (mantissa, exponent) pairs to int64 fixed point, exactly, without floats.

Venues send prices and quantities as decimal strings ("61837.63000000", "0.00000100", "0").
`parse_fixed(s, exp)` turns one into the integer m with m * 10**exp == s, or says why it cannot:
a malformed string (empty, a sign, an exponent "1e-8", spaces, "1_0", non-ASCII digits) or a value
with non-zero digits below 10**exp ("precision"), or one outside int64.

The hot path does not parse at all most of the time: market data repeats the same few price and
size strings, so `fixed_cache(exp)` is a bounded dict from string to mantissa, filled by
`lookup(cache, s, exp)` on a miss. Lookups return negative sentinels instead of raising (a frame
handler checks `(a | b | c) < 0` once for all its fields): MALFORMED or PRECISION.

The C fast path of the Binance bookTicker parses its four decimals itself (parse_decimal in
native/mm_feed_decode.c, the same rules as `parse_fixed`); any string it would not take exactly
goes to the Python decoder, and tests/feed/test_fast_path.py holds the two to the same results.
"""
from __future__ import annotations

INT64_MAX = (1 << 63) - 1
MALFORMED = -1    # sentinel from lookup: not an unsigned decimal string, or out of int64
PRECISION = -2    # sentinel from lookup: digits below the exponent's resolution

POW10 = tuple(10 ** k for k in range(40))


class FixedError(ValueError):
    """A decimal string that cannot become a fixed-point integer; `kind` is "malformed" or
    "precision" (the adapter's frame-kind counter names)."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind


def _digits(part: str) -> bool:
    # str.isdigit alone accepts '²' and full-width digits, which int() would then take.
    return part.isascii() and part.isdigit()


def parse_fixed(s: str, exp: int, signed: bool = False) -> int:
    """Return the int m with m * 10**exp equal to the decimal string `s`, exactly.

    Accepts `digits` or `digits.digits` (and a leading '-' when `signed`); trailing zeros beyond
    the exponent are fine ("61837.63000000" at exp -2 is 6183763). Raises FixedError with kind
    "malformed" (bad syntax, result outside int64) or "precision" (non-zero digits lost).
    """
    if type(s) is not str:
        raise FixedError("malformed", f"expected a decimal string, got {type(s).__name__}")
    neg = False
    body = s
    if signed and body[:1] == "-":
        neg, body = True, body[1:]
    whole, dot, frac = body.partition(".")
    if not _digits(whole) or (dot and not _digits(frac)):
        raise FixedError("malformed", f"not a decimal string: {s[:40]!r}")
    try:
        m = int(whole + frac)
    except ValueError:  # more digits than int() converts (sys.int_info.str_digits_check_threshold)
        raise FixedError("malformed", f"decimal string too long: {len(s)} characters") from None
    m = rescale(m, -len(frac), exp)
    if m > INT64_MAX:
        raise FixedError("malformed", f"{s[:40]!r} at 10^{exp} does not fit int64")
    return -m if neg else m


def rescale(mantissa: int, from_exp: int, to_exp: int) -> int:
    """mantissa * 10**from_exp expressed at 10**to_exp, exactly (integer multiply or divide).
    Raises FixedError("precision") when the division leaves a remainder."""
    shift = from_exp - to_exp
    if shift >= 0:
        return mantissa * (POW10[shift] if shift < 40 else 10 ** shift)
    div = POW10[-shift] if -shift < 40 else 10 ** -shift
    q, r = divmod(mantissa, div)
    if r:
        raise FixedError("precision", f"{mantissa}e{from_exp} has digits below 1e{to_exp}")
    return q


CACHE_MAX = 1 << 16   # strings remembered per exponent; the cache is cleared when full

_caches: dict[int, dict[str, int]] = {}


def fixed_cache(exp: int) -> dict[str, int]:
    """The process-wide string -> mantissa cache for exponent `exp` (instruments with equal
    exponents share it). A plain dict on purpose: a hot path reads `cache[s]` (the fastest
    lookup CPython has) and calls `lookup` only on a KeyError; other paths call `lookup`."""
    c = _caches.get(exp)
    if c is None:
        c = _caches[exp] = {}
    return c


def lookup(cache: dict, s, exp: int, max_size: int = CACHE_MAX) -> int:
    """Mantissa of the unsigned decimal string `s` at `exp`, from `cache` or parsed and
    remembered. Never raises: a bad string gives MALFORMED or PRECISION (also remembered, so a
    repeat costs a lookup; a flood of distinct strings clears the cache rather than grow it)."""
    v = cache.get(s) if type(s) is str else MALFORMED
    if v is None:
        try:
            v = parse_fixed(s, exp)
        except FixedError as e:
            v = PRECISION if e.kind == "precision" else MALFORMED
        if len(cache) >= max_size:
            cache.clear()
        cache[s] = v
    return v


def sentinel_kind(v: int) -> str:
    """Frame-kind name of a lookup sentinel (MALFORMED / PRECISION)."""
    return "precision" if v == PRECISION else "malformed"
