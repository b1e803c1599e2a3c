"""Compiled calls into the configured strategy (hot path).

The core calls `on_book(sst[i], spar[i], s, p, now)` and so on; which strategy's hook runs is
decided when numba compiles the caller, from the type of the state row: each strategy's
STATE_DTYPE is its own record type. So the choice costs nothing per call (the hook is linked,
usually inlined), numba caches one specialisation of the loop per strategy, and a strategy is
added by registering it (engine/strategies/__init__.py), not by editing the core.
"""
from __future__ import annotations

import numba
from numba.core.errors import TypingError
from numba.extending import overload

from engine.strategies import STRATEGIES, model

_MODELS = {name: model(name) for name in STRATEGIES}
_TYPES = {}
for _name, _m in _MODELS.items():
    _t = numba.from_dtype(_m.STATE_DTYPE)
    if _t in _TYPES:
        raise TypeError(f"strategies {_TYPES[_t]} and {_name} have the same STATE_DTYPE: "
                        f"give each strategy a state of its own")
    _TYPES[_t] = _name


def _model_of(st):
    name = _TYPES.get(st)
    if name is None:
        raise TypingError(f"no registered strategy has the state record {st}")
    return _MODELS[name]


def on_book(st, sp, s, p, now):
    """A good book update of instrument row `s` (compiled code only)."""
    raise NotImplementedError("compiled only: call from numba")


def on_fill(st, sp, s, p, kind, side, price, qty, now):
    """A sender record (FILL_*) about the instrument (compiled code only)."""
    raise NotImplementedError("compiled only: call from numba")


def on_timer(st, sp, s, p, now):
    """The loop's timer; True asks for a requote (compiled code only)."""
    raise NotImplementedError("compiled only: call from numba")


def quote(st, sp, s, p, want):
    """Fill want[side, level] with the desired quotes (compiled code only)."""
    raise NotImplementedError("compiled only: call from numba")


@overload(on_book)
def _on_book(st, sp, s, p, now):
    hook = _model_of(st).on_book
    return lambda st, sp, s, p, now: hook(st, sp, s, p, now)


@overload(on_fill)
def _on_fill(st, sp, s, p, kind, side, price, qty, now):
    hook = _model_of(st).on_fill
    return lambda st, sp, s, p, kind, side, price, qty, now: hook(st, sp, s, p, kind, side,
                                                                   price, qty, now)


@overload(on_timer)
def _on_timer(st, sp, s, p, now):
    hook = _model_of(st).on_timer
    return lambda st, sp, s, p, now: hook(st, sp, s, p, now)


@overload(quote)
def _quote(st, sp, s, p, want):
    hook = _model_of(st).quote
    return lambda st, sp, s, p, want: hook(st, sp, s, p, want)
