"""The ``bounded_semaphore``: options and verbs, facts, backings (see ``tracer.prims``)."""

from __future__ import annotations

NAME = "bounded_semaphore"


# --- options and verbs (read by tracer.scenario) -----------------------------------------



# --- facts (read by the trace's state pass) -------------------------------------------------

from tracer.prims._facts import Channel, Counter, Facts, HoldMode, Op  # noqa: E402

# a semaphore whose releases may not outnumber its acquires
FACTS = Facts(
    ops={"acquire": Op(hold="take"), "release": Op(hold="give")},
    channels={"released": Channel("all", mutex=True, signal=("value", 0, 1))},
    modes={"": HoldMode("counted", gives=("released",), takes=("released",),
                        ordered=False)},
    reentrant=frozenset({"*"}),
    counter=Counter({"acquire": 1, "release": -1}, about=("value", 1),
                    misuse="{actor} releases bounded semaphore {name} (seq {seq}) more times "
                           "than it was acquired: its value would rise above {about} — "
                           "release it only after acquiring it, once per acquire"),
)


# --- backings (read by tracer.engine) -------------------------------------------------------
