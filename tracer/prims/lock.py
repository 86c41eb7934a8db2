"""The ``lock``: its options and verbs, its facts, its backings (see ``tracer.prims``)."""

from __future__ import annotations

NAME = "lock"


# --- options and verbs (read by tracer.scenario) -----------------------------------------

from typing import Literal  # noqa: E402

from tracer.prims._options import PrimOptions  # noqa: E402


class LockSpec(PrimOptions):
    type: Literal["lock"]


OPTIONS = LockSpec
VERBS = ("acquire", "release", "with")


# --- facts (read by the trace's state pass) -------------------------------------------------



# --- backings (read by tracer.engine) -------------------------------------------------------
