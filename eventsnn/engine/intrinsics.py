"""LLVM intrinsics that Numba does not expose: the cycle counter and population count."""

from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic


@intrinsic
def _ticks(typingctx):
    """The CPU's cycle counter (x86: the invariant TSC, a fixed rate; reads 0 where LLVM has no
    counter for the target, and a profile then says nothing)."""
    def codegen(context, builder, signature, args):
        counter = cgutils.get_or_insert_function(builder.module, ir.FunctionType(ir.IntType(64), []),
                                                 "llvm.readcyclecounter")
        return builder.call(counter, [])
    return types.int64(), codegen


@intrinsic
def _popcount(typingctx, word):
    """Set bits of a uint64."""
    if word != types.uint64:
        return None
    def codegen(context, builder, signature, args):
        i64 = ir.IntType(64)
        ctpop = cgutils.get_or_insert_function(builder.module, ir.FunctionType(i64, [i64]), "llvm.ctpop.i64")
        return builder.call(ctpop, [args[0]])
    return types.uint64(types.uint64), codegen
