"""The ``queue``: its options and verbs, its facts, its backings (see ``tracer.prims``)."""

from __future__ import annotations

NAME = "queue"


# --- options and verbs (read by tracer.scenario) -----------------------------------------

from typing import Annotated, Literal  # noqa: E402

from pydantic import Field  # noqa: E402

from tracer.prims._options import PrimOptions  # noqa: E402


class QueueSpec(PrimOptions):
    type: Literal["queue"]
    maxsize: Annotated[int, Field(ge=0, le=10_000_000)] = 0


OPTIONS = QueueSpec
VERBS = ("put", "get")


# --- facts (read by the trace's state pass) -------------------------------------------------



# --- backings (read by tracer.engine) -------------------------------------------------------
