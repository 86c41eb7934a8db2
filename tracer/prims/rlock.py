"""The ``rlock``: its options and verbs, its facts, its backings (see ``tracer.prims``)."""

from __future__ import annotations

NAME = "rlock"


# --- options and verbs (read by tracer.scenario) -----------------------------------------

from typing import Literal  # noqa: E402

from tracer.prims._options import PrimOptions  # noqa: E402


class RLockSpec(PrimOptions):
    type: Literal["rlock"]


OPTIONS = RLockSpec
VERBS = ("acquire", "release", "with")
KINDS = ("thread", "process")
KIND_REFUSALS = {
    "coroutine": "'{name}' is an rlock used by coroutine actors, but asyncio has no rlock: "
                 "use a lock (re-entry deadlocks a coroutine)",
}


# --- facts (read by the trace's state pass) -------------------------------------------------



# --- backings (read by tracer.engine) -------------------------------------------------------
