"""A traced TRPO program's two parts compiled with ``torch.compile`` (inductor), opt-in.

The traced member program (``autometa.meta.traced``) runs its aten graphs op by op; on a CPU
the TRPO direction is memory-bound (elementwise tangent arithmetic over every transition),
and inductor fuses those ops into loops that read each tensor once. Compiling costs tens of
seconds per program and the fused arithmetic rounds differently (not bit-identical to the
eager and traced ways: about 1e-7 relative per operation in float32, magnified by the KL
Hessian's conditioning to up to 1e-2 relative in the CG direction at the paper's size), so it
is opt-in: the backend name
``"compiled"``, or ``AUTOMETA_COMPILE=1`` where the traced program would be chosen. A program
that fails to compile or to run on its first step falls back to the traced program with a
logged warning.
"""

from __future__ import annotations

import weakref

import torch

from autometa.meta.traced import ProgramParts, TRPOProgram

__all__ = ["COMPILE_ENV", "compiled_program", "discard_compiled"]

#: Set to ``1`` to compile the traced TRPO program wherever the traced one would be used.
COMPILE_ENV = "AUTOMETA_COMPILE"

_COMPILED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_FAILED = object()


def compiled_program(program: TRPOProgram) -> ProgramParts | None:
    """``program``'s static and dynamic parts under ``torch.compile`` (compiled on their first
    call, then cached with the program), or None when compiling failed before."""
    if program not in _COMPILED:
        _COMPILED[program] = ProgramParts(
            torch.compile(program.static, backend="inductor", dynamic=False),
            torch.compile(program.dynamic, backend="inductor", dynamic=False),
            program.num_outputs,
        )
    compiled = _COMPILED[program]
    return None if compiled is _FAILED else compiled


def discard_compiled(program: TRPOProgram) -> None:
    """Mark ``program``'s compiled form failed: the traced program serves from now on."""
    _COMPILED[program] = _FAILED
