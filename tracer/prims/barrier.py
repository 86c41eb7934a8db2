"""``barrier``: a rendezvous of ``parties`` actors (``threading.Barrier``,
``multiprocessing.Barrier``, ``asyncio.Barrier`` from Python 3.11): its options and verbs, its
facts, its backings."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import TYPE_CHECKING, Any

from tracer.prims._shell import Abort, Env, OpTags, Prim, Tally, _within, ready

if TYPE_CHECKING:
    from tracer.engine._seam import ActorCtx

# asyncio.Barrier and its error exist from Python 3.11 (the checker refuses coroutine barriers
# before that)
_BROKEN: type[BaseException] = getattr(asyncio, "BrokenBarrierError", RuntimeError)

NAME = "barrier"


# --- options and verbs (read by tracer.scenario) -----------------------------------------

import sys
from typing import Annotated, Literal

from pydantic import Field

from tracer.prims._options import MAX_ACTORS, PrimOptions


class BarrierSpec(PrimOptions):
    type: Literal["barrier"]
    parties: Annotated[int, Field(ge=1, le=MAX_ACTORS)]


OPTIONS = BarrierSpec
VERBS = ("wait",)
KINDS = ("thread", "process", "coroutine") if sys.version_info >= (3, 11) else (
    "thread", "process")
KIND_REFUSALS = {"coroutine": "asyncio.Barrier needs Python 3.11 or newer"}


# --- facts (read by the trace's state pass) -------------------------------------------------

from tracer.prims._facts import Channel, Facts, Op

# every arrival of a round (a wait's call) -> every departure of it (the returns)
FACTS = Facts(
    ops={"wait": Op(publish=("round",), take=("round",))},
    channels={"round": Channel("round", parties="parties")},
)


FREED_BY = {"wait": ("wait",)}  # (the watchdog: the other parties' arrival)
ARRIVES_ONCE = True  # a party already at the barrier cannot arrive again


WAITS = {"wait": ("waits at barrier {target}", "arrive at")}  # (how messages say it)


# --- backings (read by tracer.engine) -------------------------------------------------------


class Barrier(Prim):
    """A barrier. It counts the arrivals of each round itself (``arrivals``), so that it can
    tell the scheduler what a real ``wait`` does: a party that is not the round's last blocks
    in it until the others come (``away``: one actor at a time, the others go meanwhile), and
    the last one lets them go on (``release_away``)."""

    ptype = "barrier"
    judged_together = True

    def __init__(self, name: str, real: Any) -> None:
        super().__init__(name, real)
        self.arrivals = Tally()  # arrivals at an unbroken barrier, by actor

    def arrive(self, a: ActorCtx, timed: bool) -> bool:
        """``a`` arrives; False when it cannot go on here and times out now (see ``away``).
        A party that times out breaks the round (threading's and multiprocessing's barrier)."""
        real = self.real
        if real.broken:
            return True  # its real wait raises at once
        sched = a.rt.scheduler
        self.arrivals.add(a.name)
        if self.arrivals.total() % real.parties == 0:  # the round is complete
            sched.release_away(a, self.name)
            return True
        if sched.away(a, self.name, timed):
            return True
        sched.release_away(a, self.name)  # it breaks the round: those inside see it broken
        return False

    def wait(self, a: ActorCtx, t: OpTags, timeout: float | None) -> None:
        a.block(self, "wait", timeout, t.call)
        real = self.real
        was_broken = bool(real.broken)
        own = False  # whether its own timeout ran out (then it broke the round)
        if not self.arrive(a, timeout is not None):
            timeout, own = 0.0, True  # it cannot go on: it times out, and breaks the round
        start = time.monotonic()
        try:
            real.wait(timeout)
            tag = t.ok
        except threading.BrokenBarrierError:
            if a.rt.closed:
                raise Abort from None
            # the real barrier raises the same error whoever broke it: this party timed out
            # only if its own timeout can have run out (a wait that found the barrier broken,
            # or saw another party break it sooner, returns "broken", as `as:` promises)
            own = own or (not was_broken and timeout is not None
                          and time.monotonic() - start >= timeout)
            tag = t.timeout if own else t.broken
        a.waiting = None
        a.emit(tag, None)

    def abort(self) -> None:
        self.real.abort()

    def available_for(self, op: str, waiters: int, actor: str, mark: int) -> bool:
        # n_waiting counts those still waiting for the round to fill: if it is below the
        # number of our actors inside wait, the round is complete and they are leaving
        real = self.real
        return bool(real.broken) or int(real.n_waiting) < waiters


class ABarrier(Barrier):
    async def wait(  # type: ignore[override]
            self, a: ActorCtx, t: OpTags, timeout: float | None) -> None:
        await ready(a, t.call)
        seq = a.emit(t.call, None)
        a.waiting = (self, "wait", timeout is not None, seq, 0)
        real = self.real
        try:
            if not self.arrive(a, timeout is not None):
                tag = t.timeout  # it cannot go on: it times out without entering
            else:
                tag = t.ok if await _within(real.wait(), timeout) else t.timeout
        except _BROKEN:
            tag = t.broken
        a.waiting = None
        await ready(a, t.ok)
        a.emit(tag, None)

    def arrive(self, a: ActorCtx, timed: bool) -> bool:
        """As a thread barrier's, except that a party which times out does not break an
        asyncio barrier: it leaves, and its arrival is taken back."""
        real = self.real
        if real.broken:
            return True
        sched = a.rt.scheduler
        self.arrivals.add(a.name)
        if self.arrivals.total() % real.parties == 0:
            sched.release_away(a, self.name)
            return True
        if sched.away(a, self.name, timed):
            return True
        self.arrivals.sub(a.name)
        return False

    def abort(self) -> None:
        """Aborting an asyncio barrier must happen in its loop: cancellation does it."""


def backing(kind: str, name: str, spec: Any, made: dict[str, Prim], env: Env) -> Prim:
    """The barrier of ``spec.parties`` for actors of ``kind``."""
    if kind == "coroutine":
        return ABarrier(name, asyncio.Barrier(spec.parties))  # type: ignore[attr-defined,unused-ignore]
    if kind == "process":
        return Barrier(name, env.mp.Barrier(spec.parties))
    return Barrier(name, threading.Barrier(spec.parties))
