"""The ``lock``: its options and verbs, its facts, its backings (see ``tracer.prims``)."""

from __future__ import annotations

NAME = "lock"


# --- options and verbs (read by tracer.scenario) -----------------------------------------



# --- facts (read by the trace's state pass) -------------------------------------------------

from tracer.prims._facts import Channel, Facts, HoldMode, Op  # noqa: E402

# one holder at a time, not re-entrant; any thread may release a threading.Lock, which frees it
FACTS = Facts(
    ops={"acquire": Op(hold="take"), "release": Op(hold="give")},
    channels={"held": Channel("last", mutex=True)},  # a release -> the next acquire
    modes={"": HoldMode("exclusive", gives=("held",), takes=("held",))},
    foreign_release_frees=True,
)


# --- backings (read by tracer.engine) -------------------------------------------------------
