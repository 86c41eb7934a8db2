"""``bounded_semaphore``: a semaphore that refuses a release above its initial value
(``threading.BoundedSemaphore``, ...): its options and verbs, its facts, its backings."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tracer.engine._seam import ActorCtx

from tracer.prims._shell import ALockLike, Env, LockLike, Prim

NAME = "bounded_semaphore"


# --- options and verbs (read by tracer.scenario) -----------------------------------------

from typing import Annotated, Literal

from pydantic import Field

from tracer.prims._options import PrimOptions


class BoundedSemaphoreSpec(PrimOptions):
    type: Literal["bounded_semaphore"]
    value: Annotated[int, Field(ge=0, le=1_000_000)] = 1


OPTIONS = BoundedSemaphoreSpec
VERBS = ("acquire", "release", "with")


# --- facts (read by the trace's state pass) -------------------------------------------------

from tracer.prims._facts import Channel, Counter, Facts, HoldMode, Op

# a semaphore whose releases may not outnumber its acquires
FACTS = Facts(
    ops={"acquire": Op(hold="take"), "release": Op(hold="give")},
    channels={"released": Channel("all", mutex=True, signal=("value", 0, 1))},
    modes={"": HoldMode("counted", gives=("released",), takes=("released",),
                        ordered=False)},
    reentrant=frozenset({"*"}),
    counter=Counter({"acquire": 1, "release": -1}, about=("value", 1),
                    misuse="{actor} releases bounded semaphore {name} (seq {seq}) more times "
                           "than it was acquired: its value would rise above {about} — "
                           "release it only after acquiring it, once per acquire"),
)


FREED_BY = {"acquire": ("release",)}  # (the watchdog: besides the holders)
SELF_FREES = True  # its own later release counts (a semaphore has no owner)


WAITS = {"acquire": (None, "release")}  # (how messages say it)


# --- backings (read by tracer.engine) -------------------------------------------------------


class BoundedSemaphore(LockLike):
    ptype = "bounded_semaphore"
    counted = True

    def _release_error(self, a: ActorCtx, exc: Exception) -> str:
        return (f"{a.name} released bounded semaphore {self.name} more times than it was "
                f"acquired ({exc})")


class ABoundedSemaphore(ALockLike):
    ptype = "bounded_semaphore"
    counted = True

    def _release_error(self, a: ActorCtx, exc: Exception) -> str:
        return (f"{a.name} released bounded semaphore {self.name} more times than it was "
                f"acquired ({exc})")


def backing(kind: str, name: str, spec: Any, made: dict[str, Prim], env: Env) -> Prim:
    """The bounded semaphore for actors of ``kind``, starting at ``spec.value``."""
    if kind == "coroutine":
        import asyncio  # noqa: PLC0415
        return ABoundedSemaphore(name, asyncio.BoundedSemaphore(spec.value), spec.value)
    if kind == "process":
        return BoundedSemaphore(name, env.mp.BoundedSemaphore(spec.value), spec.value)
    import threading  # noqa: PLC0415
    return BoundedSemaphore(name, threading.BoundedSemaphore(spec.value), spec.value)
