"""The primitive registry: one module per primitive type.

Each module of this package holds everything about one type of shared primitive (a scenario's
``primitives:`` entry), in three sections:

- **options and verbs** (read by ``tracer.scenario``): the type's options model, the step verbs
  that apply to it and their extra options, and its checks;
- **facts** (read by the trace's state pass, ``tracer.trace``, for every analysis and
  renderer): what its operations mean for who holds what and for happens-before;
- **backings** (read by ``tracer.engine``): its real object per actor kind (thread, process,
  coroutine) and the instrumented shell over it, which offers a non-blocking *try* and a typed
  description of what a waiter waits for; all waiting is the scheduler's.

This package imports nothing of the engine, the analyses or the renderers: they import it. A
new type is one module here and one line in :data:`MODULES`.
"""

from __future__ import annotations

from importlib import import_module

from tracer.prims._base import PrimType

# the registry: one line per primitive type (its module's name is the type's name)
MODULES: tuple[str, ...] = (
    "lock",
    "rlock",
    "semaphore",
    "bounded_semaphore",
    "event",
    "condition",
    "barrier",
    "queue",
    "pipe",
    "pool",
    "rwlock",
    "latch",
)

REGISTRY: dict[str, PrimType] = {
    name: PrimType.of(import_module(f"tracer.prims.{name}")) for name in MODULES
}


def prim_type(name: str) -> PrimType:
    """The registered type ``name`` (KeyError if there is none)."""
    return REGISTRY[name]


__all__ = ["MODULES", "REGISTRY", "PrimType", "prim_type"]
