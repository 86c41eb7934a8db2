"""The ``bounded_semaphore``: options and verbs, facts, backings (see ``tracer.prims``)."""

from __future__ import annotations

NAME = "bounded_semaphore"


# --- options and verbs (read by tracer.scenario) -----------------------------------------

from typing import Annotated, Literal  # noqa: E402

from pydantic import Field  # noqa: E402

from tracer.prims._options import PrimOptions  # noqa: E402


class BoundedSemaphoreSpec(PrimOptions):
    type: Literal["bounded_semaphore"]
    value: Annotated[int, Field(ge=0, le=1_000_000)] = 1


OPTIONS = BoundedSemaphoreSpec
VERBS = ("acquire", "release", "with")


# --- facts (read by the trace's state pass) -------------------------------------------------



# --- backings (read by tracer.engine) -------------------------------------------------------
