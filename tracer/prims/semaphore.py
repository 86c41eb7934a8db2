"""The ``semaphore``: its options and verbs, its facts, its backings (see ``tracer.prims``)."""

from __future__ import annotations

NAME = "semaphore"


# --- options and verbs (read by tracer.scenario) -----------------------------------------

from typing import Annotated, Literal  # noqa: E402

from pydantic import Field  # noqa: E402

from tracer.prims._options import PrimOptions  # noqa: E402


class SemaphoreSpec(PrimOptions):
    type: Literal["semaphore"]
    value: Annotated[int, Field(ge=0, le=1_000_000)] = 1


OPTIONS = SemaphoreSpec
VERBS = ("acquire", "release", "with")


# --- facts (read by the trace's state pass) -------------------------------------------------



# --- backings (read by tracer.engine) -------------------------------------------------------
