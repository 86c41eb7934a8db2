"""The ``semaphore``: its options and verbs, its facts, its backings (see ``tracer.prims``)."""

from __future__ import annotations

NAME = "semaphore"


# --- options and verbs (read by tracer.scenario) -----------------------------------------



# --- facts (read by the trace's state pass) -------------------------------------------------

from tracer.prims._facts import Channel, Facts, HoldMode, Op  # noqa: E402

# counted holders; its releases accumulate and order later acquires (mutual exclusion,
# unless it starts at 0: then every acquire needs a release, a signal)
FACTS = Facts(
    ops={"acquire": Op(hold="take"), "release": Op(hold="give")},
    channels={"released": Channel("all", mutex=True, signal=("value", 0, 1))},
    modes={"": HoldMode("counted", gives=("released",), takes=("released",),
                        ordered=False)},
    reentrant=frozenset({"*"}),
)


# --- backings (read by tracer.engine) -------------------------------------------------------
