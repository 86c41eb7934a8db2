"""The ``event``: its options and verbs, its facts, its backings (see ``tracer.prims``)."""

from __future__ import annotations

NAME = "event"


# --- options and verbs (read by tracer.scenario) -----------------------------------------



# --- facts (read by the trace's state pass) -------------------------------------------------

from tracer.prims._facts import Channel, Facts, Op  # noqa: E402

# every set -> the waits that return ok after it
FACTS = Facts(
    ops={"set": Op(publish=("set",)), "wait": Op(take=("set",))},
    channels={"set": Channel("all")},
)


# --- backings (read by tracer.engine) -------------------------------------------------------
