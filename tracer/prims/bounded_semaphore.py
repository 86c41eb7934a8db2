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

from dataclasses import replace

from tracer.prims import semaphore
from tracer.prims._facts import Counter

# a semaphore whose releases may not outnumber its acquires
FACTS = replace(
    semaphore.FACTS,
    counter=Counter({"acquire": 1, "release": -1}, about=("value", 1),
                    misuse="{actor} releases bounded semaphore {name} (seq {seq}) more times "
                           "than it was acquired: its value would rise above {about} — "
                           "release it only after acquiring it, once per acquire"),
)

# the watchdog's words: a semaphore's
FREED_BY = semaphore.FREED_BY
SELF_FREES = semaphore.SELF_FREES
WAITS = semaphore.WAITS


# --- backings (read by tracer.engine) -------------------------------------------------------


class _Bounded:
    """What the two flavours of a bounded semaphore share."""

    ptype = "bounded_semaphore"
    counted = True
    name: str

    def _release_error(self, a: ActorCtx, exc: Exception) -> str:
        return (f"{a.name} released bounded semaphore {self.name} more times than it was "
                f"acquired ({exc})")


class BoundedSemaphore(_Bounded, LockLike):
    pass


class ABoundedSemaphore(_Bounded, ALockLike):
    pass


def backing(kind: str, name: str, spec: Any, made: dict[str, Prim], env: Env) -> Prim:
    """The bounded semaphore for actors of ``kind``, starting at ``spec.value``."""
    return semaphore.counted(kind, name, spec.value, env, "BoundedSemaphore",
                             BoundedSemaphore, ABoundedSemaphore)
