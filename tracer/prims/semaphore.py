"""``semaphore``: a counting semaphore (``threading.Semaphore``, ``multiprocessing.Semaphore``,
``asyncio.Semaphore``): its options and verbs, its facts, its backings."""

from __future__ import annotations

from typing import Any

from tracer.prims._shell import ALockLike, Env, LockLike, Prim

NAME = "semaphore"


# --- options and verbs (read by tracer.scenario) -----------------------------------------

from typing import Annotated, Literal

from pydantic import Field

from tracer.prims._options import PrimOptions


class SemaphoreSpec(PrimOptions):
    type: Literal["semaphore"]
    value: Annotated[int, Field(ge=0, le=1_000_000)] = 1


OPTIONS = SemaphoreSpec
VERBS = ("acquire", "release", "with")


# --- facts (read by the trace's state pass) -------------------------------------------------

from tracer.prims._facts import Channel, Facts, HoldMode, Op

# counted holders; its releases accumulate and order later acquires (mutual exclusion,
# unless it starts at 0: then every acquire needs a release, a signal)
FACTS = Facts(
    ops={"acquire": Op(hold="take"), "release": Op(hold="give")},
    channels={"released": Channel("all", mutex=True, signal=("value", 0, 1))},
    modes={"": HoldMode("counted", gives=("released",), takes=("released",),
                        ordered=False)},
    reentrant=frozenset({"*"}),
)


FREED_BY = {"acquire": ("release",)}  # (the watchdog: besides the holders)
SELF_FREES = True  # its own later release counts (a semaphore has no owner)


WAITS = {"acquire": (None, "release")}  # (how messages say it)


# --- backings (read by tracer.engine) -------------------------------------------------------


class Semaphore(LockLike):
    ptype = "semaphore"
    counted = True


class ASemaphore(ALockLike):
    ptype = "semaphore"
    counted = True


def counted(kind: str, name: str, value: int, env: Env, real: str,
            cls: type[LockLike], acls: type[LockLike]) -> Prim:
    """A semaphore of ``value`` for actors of ``kind``: the ``real`` class (``Semaphore``,
    ``BoundedSemaphore``) of asyncio, the run's multiprocessing context or threading, in the
    shell ``acls`` (coroutines) or ``cls``."""
    if kind == "coroutine":
        import asyncio  # noqa: PLC0415
        return acls(name, getattr(asyncio, real)(value), value)
    if kind == "process":
        return cls(name, getattr(env.mp, real)(value), value)
    import threading  # noqa: PLC0415
    return cls(name, getattr(threading, real)(value), value)


def backing(kind: str, name: str, spec: Any, made: dict[str, Prim], env: Env) -> Prim:
    """The semaphore for actors of ``kind``, starting at ``spec.value``."""
    return counted(kind, name, spec.value, env, "Semaphore", Semaphore, ASemaphore)
