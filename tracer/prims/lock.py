"""``lock``: a mutual-exclusion lock (``threading.Lock``, ``multiprocessing.Lock``,
``asyncio.Lock``): its options and verbs, its facts, its backings (see ``tracer.prims``)."""

from __future__ import annotations

from typing import Any

from tracer.prims._shell import ALockLike, Env, LockLike, Prim

NAME = "lock"


# --- options and verbs (read by tracer.scenario) -----------------------------------------

from typing import Literal

from tracer.prims._options import PrimOptions


class LockSpec(PrimOptions):
    type: Literal["lock"]


OPTIONS = LockSpec
VERBS = ("acquire", "release", "with")


# --- facts (read by the trace's state pass) -------------------------------------------------

from tracer.prims._facts import Channel, Facts, HoldMode, Op

# one holder at a time, not re-entrant; any thread may release a threading.Lock, which frees it
FACTS = Facts(
    ops={"acquire": Op(hold="take"), "release": Op(hold="give")},
    channels={"held": Channel("last", mutex=True)},  # a release -> the next acquire
    modes={"": HoldMode("exclusive", gives=("held",), takes=("held",))},
    foreign_release_frees=True,
)


HELD_BY_OWNER = True  # (the watchdog) an acquire waits for the lock's holders


# --- backings (read by tracer.engine) -------------------------------------------------------


class Lock(LockLike):
    ptype = "lock"
    released_by_anyone = True


class ALock(ALockLike):
    ptype = "lock"
    released_by_anyone = True


def backing(kind: str, name: str, spec: Any, made: dict[str, Prim], env: Env) -> Prim:
    """The lock for actors of ``kind``."""
    if kind == "coroutine":
        import asyncio  # noqa: PLC0415
        return ALock(name, asyncio.Lock())
    if kind == "process":
        return Lock(name, env.mp.Lock())
    import threading  # noqa: PLC0415
    return Lock(name, threading.Lock())
