"""Decimal string -> int64 fixed point: exact against decimal.Decimal (hypothesis), strict about
syntax, and the cache returns what the parser returns."""
from __future__ import annotations

from decimal import Decimal, localcontext

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.feed.fixed import (INT64_MAX, MALFORMED, PRECISION, FixedError, fixed_cache,
                               lookup, parse_fixed, rescale)

exps = st.integers(min_value=-12, max_value=3)
digits = st.text("0123456789", min_size=1, max_size=20)


def oracle(s: str, exp: int) -> int | str:
    with localcontext() as ctx:
        ctx.prec = 100                    # the default 28 digits would round long inputs
        v = Decimal(s).scaleb(-exp)
        if v != v.to_integral_value():
            return "precision"
    v = int(v)
    return v if abs(v) <= INT64_MAX else "malformed"


def outcome(s: str, exp: int, signed: bool = False) -> int | str:
    try:
        return parse_fixed(s, exp, signed)
    except FixedError as e:
        return e.kind


@settings(max_examples=600, deadline=None)
@given(whole=digits, frac=st.none() | st.text("0123456789", min_size=1, max_size=20), exp=exps,
       neg=st.booleans())
def test_matches_decimal(whole, frac, exp, neg):
    s = whole if frac is None else f"{whole}.{frac}"
    if neg:
        s = "-" + s
        assert outcome(s, exp) == "malformed"            # unsigned by default
    assert outcome(s, exp, signed=True) == oracle(s, exp)


@settings(max_examples=300, deadline=None)
@given(mantissa=st.integers(min_value=0, max_value=INT64_MAX), scale=st.integers(0, 18), exp=exps)
def test_round_trip_of_venue_formatted_values(mantissa, scale, exp):
    """A value printed with `scale` decimals (what venues send) comes back exactly."""
    s = str(mantissa).rjust(scale + 1, "0")
    s = f"{s[:-scale]}.{s[-scale:]}" if scale else s
    assert outcome(s, exp) == oracle(s, exp)
    want = oracle(s, exp)
    for _ in range(2):     # a miss (parse) then a hit (remembered)
        assert lookup(fixed_cache(exp), s, exp) == (
            want if isinstance(want, int) else {"precision": PRECISION, "malformed": MALFORMED}[want])


@pytest.mark.parametrize("s,exp,want", [
    ("0.00000100", -8, 100),
    ("0.00000000", -8, 0),
    ("0", -8, 0),
    ("0.000", -2, 0),
    ("61837.63000000", -2, 6183763),
    ("61837.63000000", -8, 6183763000000),
    ("8477", -2, 847700),
    ("1500", 2, 15),                 # a positive exponent (lots of 100)
    ("007.50", -1, 75),
    ("9223372036854775807", 0, INT64_MAX),
])
def test_examples(s, exp, want):
    assert parse_fixed(s, exp) == want
    assert lookup(fixed_cache(exp), s, exp) == want and fixed_cache(exp)[s] == want


@pytest.mark.parametrize("s,kind", [
    ("", "malformed"), (".", "malformed"), ("1.", "malformed"), (".5", "malformed"),
    ("1e-8", "malformed"), ("1E3", "malformed"), ("+1", "malformed"), ("-1", "malformed"),
    (" 1", "malformed"), ("1 ", "malformed"), ("1_000", "malformed"), ("1.2.3", "malformed"),
    ("１２", "malformed"), ("²", "malformed"), ("0x10", "malformed"), ("nan", "malformed"),
    ("inf", "malformed"), ("9223372036854775808", "malformed"), ("1" * 5000, "malformed"),
    ("0.001", "precision"), ("1550", "precision"),
])
def test_rejects(s, kind):
    exp = 2 if s == "1550" else -2
    with pytest.raises(FixedError) as e:
        parse_fixed(s, exp)
    assert e.value.kind == kind
    assert lookup(fixed_cache(exp), s, exp) == (PRECISION if kind == "precision" else MALFORMED)


def test_signed_and_non_strings():
    assert parse_fixed("-0.021776769", -9, signed=True) == -21776769
    with pytest.raises(FixedError):
        parse_fixed("--1", -2, signed=True)
    with pytest.raises(FixedError):
        parse_fixed(1.5, -2)                # type: ignore[arg-type]
    assert lookup({}, b"1.00", -2) == MALFORMED and lookup({}, None, -2) == MALFORMED


def test_rescale():
    assert rescale(12, -1, -3) == 1200
    assert rescale(1200, -3, -1) == 12
    with pytest.raises(FixedError):
        rescale(1201, -3, -1)


def test_cache_is_bounded_and_shared_per_exponent():
    c: dict = {}
    for k in range(100):
        assert lookup(c, str(k), -2, max_size=8) == k * 100
    assert len(c) <= 8
    assert fixed_cache(-3) is fixed_cache(-3) and fixed_cache(-3) is not fixed_cache(-4)
