"""The ``queue``: its options and verbs, its facts, its backings (see ``tracer.prims``)."""

from __future__ import annotations

NAME = "queue"


# --- options and verbs (read by tracer.scenario) -----------------------------------------



# --- facts (read by the trace's state pass) -------------------------------------------------

from tracer.prims._facts import Channel, Facts, Op  # noqa: E402

# a put -> the get that received its item
FACTS = Facts(
    ops={"put": Op(publish=("items",)), "get": Op(take=("items",))},
    channels={"items": Channel("mail")},
)


# --- backings (read by tracer.engine) -------------------------------------------------------
