"""The native part (native/mm_native.c) seen from Python and from numba.

Python calls the extension's functions directly (`C.push(hdr, buf)`, ...). numba code calls the
same C entry points through the intrinsics below: each one declares the C symbol by *name* in the
LLVM module and calls it, and the addresses are registered with LLVM once at import
(`llvmlite.binding.add_symbol`). Because the compiled code refers to names, not addresses,
functions using them can be cached with `cache=True` and reloaded by a later process.

Pointers cross as int64 addresses (the x86-64 and arm64 ABIs pass both in the same registers).
`load_acquire` / `store_release` are emitted inline as LLVM atomics (a plain MOV on x86) so a
numba poll loop over a shared word is never hoisted into an endless loop.
"""
from __future__ import annotations

import llvmlite.binding as _llvm
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from engine import _native as C

for _name, _addr in C.symbols.items():
    _llvm.add_symbol(_name, _addr)

_i64, _u32, _i32 = types.int64, types.uint32, types.int32


def _extern_call(symbol, restype, argtypes):
    """Build the numba codegen that calls C `symbol(restype(*argtypes))`."""

    def codegen(context, builder, signature, args):
        lret = ir.VoidType() if restype is types.void else context.get_value_type(restype)
        fnty = ir.FunctionType(lret, [context.get_value_type(t) for t in argtypes])
        fn = cgutils.get_or_insert_function(builder.module, fnty, symbol)
        res = builder.call(fn, args)
        return context.get_dummy_value() if restype is types.void else res

    return restype(*argtypes), codegen


def _bind0(symbol, restype):
    @intrinsic
    def f(typingctx):
        return _extern_call(symbol, restype, ())
    return f


def _bind1(symbol, restype, a):
    @intrinsic
    def f(typingctx, x):
        return _extern_call(symbol, restype, (a,))
    return f


def _bind2(symbol, restype, a, b):
    @intrinsic
    def f(typingctx, x, y):
        return _extern_call(symbol, restype, (a, b))
    return f


def _bind3(symbol, restype, a, b, c):
    @intrinsic
    def f(typingctx, x, y, z):
        return _extern_call(symbol, restype, (a, b, c))
    return f


def _bind4(symbol, restype, a, b, c, d):
    @intrinsic
    def f(typingctx, w, x, y, z):
        return _extern_call(symbol, restype, (a, b, c, d))
    return f


# --- numba face of the C entry points (arguments: int64 addresses and plain integers) --------
nb_now_ns = _bind0("mm_now_ns", _i64)
nb_rdtsc = _bind0("mm_rdtsc", _i64)
nb_cpu_relax = _bind0("mm_cpu_relax", types.void)
nb_fence = _bind0("mm_fence", types.void)
nb_yield = _bind0("mm_yield", types.void)
nb_futex_wait = _bind3("mm_futex_wait", _i32, _i64, _u32, _i64)
nb_futex_wake = _bind2("mm_futex_wake", _i32, _i64, _i32)
nb_ring_try_claim = _bind1("mm_ring_try_claim", _i64, _i64)
nb_ring_claim = _bind1("mm_ring_claim", _i64, _i64)
nb_ring_commit = _bind1("mm_ring_commit", _i64, _i64)
nb_ring_available = _bind1("mm_ring_available", _i64, _i64)
nb_ring_spin = _bind3("mm_ring_spin", _i64, _i64, _i64, _i64)
nb_ring_read_index = _bind2("mm_ring_read_index", _i64, _i64, _i64)
nb_ring_release = _bind2("mm_ring_release", types.void, _i64, _i64)
nb_ring_arm = _bind2("mm_ring_arm", _i64, _i64, _u32)
nb_ring_disarm = _bind1("mm_ring_disarm", types.void, _i64)
nb_ring_park = _bind2("mm_ring_park", _i64, _i64, _i64)
nb_hist_record = _bind2("mm_hist_record", types.void, _i64, _i64)
nb_cas64 = _bind3("mm_cas64", _i64, _i64, _i64, _i64)   # (addr, expected, desired) -> held
nb_park2 = _bind4("mm_park2", _i64, _i64, _i64, _i64, _i64)   # (hdr, hdr, wake, timeout)
nb_board_get = _bind3("mm_board_get", _i64, _i64, _i64, _i64)  # (board, i, out) -> seq


@intrinsic
def nb_load_acquire(typingctx, addr):
    """Acquire load of the int64 at `addr` (inline; a plain MOV on x86)."""

    def codegen(context, builder, signature, args):
        ptr = builder.inttoptr(args[0], ir.IntType(64).as_pointer())
        return builder.load_atomic(ptr, "acquire", 8)

    return _i64(_i64), codegen


@intrinsic
def nb_store_release(typingctx, addr, value):
    """Release store of `value` to the int64 at `addr` (inline; a plain MOV on x86)."""

    def codegen(context, builder, signature, args):
        ptr = builder.inttoptr(args[0], ir.IntType(64).as_pointer())
        builder.store_atomic(args[1], ptr, "release", 8)
        return context.get_dummy_value()

    return types.void(_i64, _i64), codegen
