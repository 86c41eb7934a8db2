"""The ``event``: its options and verbs, its facts, its backings (see ``tracer.prims``)."""

from __future__ import annotations

NAME = "event"


# --- options and verbs (read by tracer.scenario) -----------------------------------------

from typing import Literal  # noqa: E402

from tracer.prims._options import PrimOptions  # noqa: E402


class EventSpec(PrimOptions):
    type: Literal["event"]


OPTIONS = EventSpec
VERBS = ("wait", "set", "clear")


# --- facts (read by the trace's state pass) -------------------------------------------------



# --- backings (read by tracer.engine) -------------------------------------------------------
