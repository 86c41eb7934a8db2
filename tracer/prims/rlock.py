"""``rlock``: a re-entrant lock owned by the actor that took it (``threading.RLock``,
``multiprocessing.RLock``): its options and verbs, its facts, its backings."""

from __future__ import annotations

from typing import Any

from tracer.prims._shell import Env, LockLike, Prim, Unsupported

NAME = "rlock"


# --- options and verbs (read by tracer.scenario) -----------------------------------------

from typing import Literal

from tracer.prims._options import PrimOptions


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

from tracer.prims._facts import Channel, Facts, HoldMode, Op

# one holder at a time, who may take it again (each take needs its release)
FACTS = Facts(
    ops={"acquire": Op(hold="take"), "release": Op(hold="give")},
    channels={"held": Channel("last", mutex=True)},  # a release -> the next acquire
    modes={"": HoldMode("exclusive", gives=("held",), takes=("held",))},
    reentrant=frozenset({"*"}),
)


HELD_BY_OWNER = True  # (the watchdog) an acquire waits for the lock's holders


# --- backings (read by tracer.engine) -------------------------------------------------------


class RLock(LockLike):
    ptype = "rlock"
    owned = True


def backing(kind: str, name: str, spec: Any, made: dict[str, Prim], env: Env) -> Prim:
    """The rlock for actors of ``kind`` (asyncio has none: the checker refuses it)."""
    if kind == "coroutine":
        raise Unsupported("asyncio has no re-entrant lock")
    if kind == "process":
        return RLock(name, env.mp.RLock())
    import threading  # noqa: PLC0415
    return RLock(name, threading.RLock())
