"""The ``barrier``: its options and verbs, its facts, its backings (see ``tracer.prims``)."""

from __future__ import annotations

NAME = "barrier"


# --- options and verbs (read by tracer.scenario) -----------------------------------------



# --- facts (read by the trace's state pass) -------------------------------------------------

from tracer.prims._facts import Channel, Facts, Op  # noqa: E402

# every arrival of a round (a wait's call) -> every departure of it (the returns)
FACTS = Facts(
    ops={"wait": Op(publish=("round",), take=("round",))},
    channels={"round": Channel("round", parties="parties")},
)


# --- backings (read by tracer.engine) -------------------------------------------------------
