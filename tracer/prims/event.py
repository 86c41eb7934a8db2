"""``event``: a flag that actors set, clear and wait for (``threading.Event``,
``multiprocessing.Event``, ``asyncio.Event``): its options and verbs, its facts, its backings."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tracer.engine._seam import ActorCtx, Tag

from tracer.prims._shell import Env, OpTags, Prim, Tally, _within, ready

NAME = "event"


# --- options and verbs (read by tracer.scenario) -----------------------------------------

from typing import Literal

from tracer.prims._options import PrimOptions


class EventSpec(PrimOptions):
    type: Literal["event"]


OPTIONS = EventSpec
VERBS = ("wait", "set", "clear")


# --- facts (read by the trace's state pass) -------------------------------------------------

from tracer.prims._facts import Channel, Facts, Op

# every set -> the waits that return ok after it
FACTS = Facts(
    ops={"set": Op(publish=("set",)), "wait": Op(take=("set",))},
    channels={"set": Channel("all")},
)


FREED_BY = {"wait": ("set",)}  # (the watchdog: what frees a waiter)


WAITS = {"wait": ("waits for event {target}", "set")}  # (how messages say it)


# --- backings (read by tracer.engine) -------------------------------------------------------


class Event(Prim):
    ptype = "event"

    def __init__(self, name: str, real: Any) -> None:
        super().__init__(name, real)
        self.sets = Tally()  # a waiter is woken by any set after it began to wait

    def set(self, a: ActorCtx, tag: Tag) -> None:
        a.emit(tag, None)
        self.sets.add(a.name)
        self.real.set()

    def clear(self, a: ActorCtx, tag: Tag) -> None:
        a.emit(tag, None)
        self.real.clear()

    def wait(self, a: ActorCtx, t: OpTags, timeout: float | None) -> None:
        a.block(self, "wait", timeout, t.call, None, self.sets.total())
        real = self.real
        ok = real.is_set() or a.rt.scheduler.wait(a, real.wait, timeout, looks=True)
        a.waiting = None
        a.emit(t.ok if ok else t.timeout, None)

    def available_for(self, op: str, waiters: int, actor: str, mark: int) -> bool:
        return bool(self.real.is_set()) or self.sets.total() > mark


class AEvent(Event):
    async def wait(  # type: ignore[override]
            self, a: ActorCtx, t: OpTags, timeout: float | None) -> None:
        mark = self.sets.total()
        await ready(a, t.call)
        seq = a.emit(t.call, None)
        ok = True
        real = self.real
        if not real.is_set():
            a.waiting = (self, "wait", timeout is not None, seq, mark)

            async def is_set() -> bool:
                return bool(real.is_set())
            ok = await a.rt.scheduler.await_(a, is_set, lambda: _within(real.wait(), timeout),
                                             timeout)
            a.waiting = None
        await ready(a, t.ok)
        a.emit(t.ok if ok else t.timeout, None)


def backing(kind: str, name: str, spec: Any, made: dict[str, Prim], env: Env) -> Prim:
    """The event for actors of ``kind``."""
    if kind == "coroutine":
        import asyncio  # noqa: PLC0415
        return AEvent(name, asyncio.Event())
    if kind == "process":
        return Event(name, env.mp.Event())
    import threading  # noqa: PLC0415
    return Event(name, threading.Event())
