"""The ``condition``: its options and verbs, its facts, its backings (see ``tracer.prims``)."""

from __future__ import annotations

NAME = "condition"


# --- options and verbs (read by tracer.scenario) -----------------------------------------



# --- facts (read by the trace's state pass) -------------------------------------------------

from tracer.prims._facts import Channel, Facts, HoldMode, Op  # noqa: E402

# acquiring it takes its lock (the primitive its ``lock`` option names, else its own: an
# RLock, but asyncio's is not re-entrant); a wait lets the lock go at its call and takes it
# back at its return; a notify -> the waits that return ok after it
FACTS = Facts(
    ops={"acquire": Op(hold="take"), "release": Op(hold="give"),
         "wait": Op(hold="let_go", take=("notified",)),
         "notify": Op(publish=("notified",)), "notify_all": Op(publish=("notified",))},
    channels={"held": Channel("last", mutex=True), "notified": Channel("all")},
    modes={"": HoldMode("exclusive", gives=("held",), takes=("held",))},
    resource="lock",
    reentrant=frozenset({"thread", "process"}),
)


# --- backings (read by tracer.engine) -------------------------------------------------------
