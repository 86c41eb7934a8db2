"""The ``barrier``: its options and verbs, its facts, its backings (see ``tracer.prims``)."""

from __future__ import annotations

NAME = "barrier"


# --- options and verbs (read by tracer.scenario) -----------------------------------------

import sys  # noqa: E402
from typing import Annotated, Literal  # noqa: E402

from pydantic import Field  # noqa: E402

from tracer.prims._options import MAX_ACTORS, PrimOptions  # noqa: E402


class BarrierSpec(PrimOptions):
    type: Literal["barrier"]
    parties: Annotated[int, Field(ge=1, le=MAX_ACTORS)]


OPTIONS = BarrierSpec
VERBS = ("wait",)
KINDS = ("thread", "process", "coroutine") if sys.version_info >= (3, 11) else (
    "thread", "process")
KIND_REFUSALS = {"coroutine": "asyncio.Barrier needs Python 3.11 or newer"}


# --- facts (read by the trace's state pass) -------------------------------------------------



# --- backings (read by tracer.engine) -------------------------------------------------------
