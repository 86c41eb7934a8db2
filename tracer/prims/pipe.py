"""The ``pipe``: its options and verbs, its facts, its backings (see ``tracer.prims``)."""

from __future__ import annotations

NAME = "pipe"


# --- options and verbs (read by tracer.scenario) -----------------------------------------



# --- facts (read by the trace's state pass) -------------------------------------------------

from tracer.prims._facts import Channel, Facts, Op  # noqa: E402

# a send -> the recv of that item at the other end (``between`` names the two ends)
FACTS = Facts(
    ops={"send": Op(publish=("items",)), "recv": Op(take=("items",))},
    channels={"items": Channel("mail", endpoints="between")},
)


# --- backings (read by tracer.engine) -------------------------------------------------------
