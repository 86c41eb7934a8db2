"""``queue``: a FIFO queue of items (``queue.Queue``, a Manager's queue for processes,
``asyncio.Queue``): its options and verbs, its facts, its backings."""

from __future__ import annotations

import asyncio
import queue as queue_mod
from typing import TYPE_CHECKING, Any

from tracer.prims._shell import NONBLOCKING, Env, OpTags, Prim, Tally, _within, ready

if TYPE_CHECKING:
    from tracer.engine._seam import ActorCtx

NAME = "queue"


# --- options and verbs (read by tracer.scenario) -----------------------------------------

from typing import Annotated, Literal

from pydantic import Field

from tracer.prims._options import PrimOptions


class QueueSpec(PrimOptions):
    type: Literal["queue"]
    maxsize: Annotated[int, Field(ge=0, le=10_000_000)] = 0


OPTIONS = QueueSpec
VERBS = ("put", "get")


# --- facts (read by the trace's state pass) -------------------------------------------------

from tracer.prims._facts import Channel, Facts, Op

# a put -> the get that received its item
FACTS = Facts(
    ops={"put": Op(publish=("items",)), "get": Op(take=("items",))},
    channels={"items": Channel("mail")},
)


FREED_BY = {"get": ("put",), "put": ("get",)}  # (the watchdog: what frees a waiter)


WAITS = {"get": ("waits to get from queue {target}", "put into"),
         "put": ("waits to put into full queue {target}", "get from")}


NEEDS_MANAGER = True  # a process run's queue lives in the Manager process (see backing)


# --- backings (read by tracer.engine) -------------------------------------------------------


class Queue(Prim):
    ptype = "queue"

    def __init__(self, name: str, real: Any, maxsize: int = 0) -> None:
        super().__init__(name, real)
        self.maxsize = maxsize
        self.puts = Tally()  # successful puts, tallied after the real call
        self.gets = Tally()  # successful gets, tallied after the real call

    def put(self, a: ActorCtx, t: OpTags, item: Any, timeout: float | None,
            blocking: bool) -> None:
        a.block(self, "put", timeout if blocking else 0.0, t.call,
                {"item": item} if blocking else {"item": item, "blocking": False})
        real = self.real

        def attempt(s: float) -> bool:
            try:
                real.put(item, True, s) if s > 0 else real.put_nowait(item)
            except queue_mod.Full:
                return False
            return True
        # eager: a replay puts it in as soon as it is first in line (a get recorded before
        # this put's return may need the item), else when the recording says it returned
        ok = a.rt.scheduler.wait(a, attempt, timeout if blocking else 0.0, eager=True)
        if ok:
            self.puts.add(a.name)
        a.waiting = None
        a.emit(t.ok if ok else (t.timeout if blocking else t.fail), None)

    def get(self, a: ActorCtx, t: OpTags, timeout: float | None, blocking: bool) -> None:
        a.block(self, "get", timeout if blocking else 0.0, t.call,
                None if blocking else NONBLOCKING)
        real = self.real
        box: list[Any] = []

        def attempt(s: float) -> bool:
            try:
                box.append(real.get(True, s) if s > 0 else real.get_nowait())
            except queue_mod.Empty:
                return False
            return True
        # eager: a replay takes an item as soon as it is first in line (a put recorded before
        # this get's return may need its room), else when the recording says it returned
        a.rt.scheduler.wait(a, attempt, timeout if blocking else 0.0, eager=True)
        if box:
            self.gets.add(a.name)
        a.waiting = None
        if box:
            a.emit(t.ok, {"item": box[0]})
        else:
            a.emit(t.timeout if blocking else t.fail, None)

    def available_for(self, op: str, waiters: int, actor: str, mark: int) -> bool:
        # the size by our tallies: a get that took an item but has not tallied it yet makes
        # it look one bigger (the getter is free), a put not yet tallied one smaller
        size = self.puts.total() - self.gets.total()
        if op == "get":
            return size > 0
        return self.maxsize <= 0 or size < self.maxsize


class AQueue(Queue):
    async def put(  # type: ignore[override]
            self, a: ActorCtx, t: OpTags, item: Any, timeout: float | None,
            blocking: bool) -> None:
        await ready(a, t.call)
        seq = a.emit(t.call, {"item": item} if blocking else {"item": item, "blocking": False})
        real = self.real

        async def put() -> bool:
            try:
                real.put_nowait(item)
            except asyncio.QueueFull:
                return False
            return True
        ok = await put()
        if not ok:
            a.waiting = (self, "put", timeout is not None, seq, 0)
            ok = await a.rt.scheduler.await_(a, put, lambda: _within(real.put(item), timeout),
                                             timeout if blocking else 0.0)
            a.waiting = None
        if ok:
            self.puts.add(a.name)
        await ready(a, t.ok)
        a.emit(t.ok if ok else (t.timeout if blocking else t.fail), None)

    async def get(  # type: ignore[override]
            self, a: ActorCtx, t: OpTags, timeout: float | None, blocking: bool) -> None:
        await ready(a, t.call)
        seq = a.emit(t.call, None if blocking else NONBLOCKING)
        real = self.real
        box: list[Any] = []

        async def get() -> bool:
            try:
                box.append(real.get_nowait())
            except asyncio.QueueEmpty:
                return False
            return True

        async def take() -> None:
            box.append(await real.get())
        if not await get():
            a.waiting = (self, "get", timeout is not None, seq, 0)
            await a.rt.scheduler.await_(a, get, lambda: _within(take(), timeout),
                                        timeout if blocking else 0.0)
            a.waiting = None
        await ready(a, t.ok)
        if box:
            self.gets.add(a.name)
            a.emit(t.ok, {"item": box[0]})
        else:
            a.emit(t.timeout if blocking else t.fail, None)


def backing(kind: str, name: str, spec: Any, made: dict[str, Prim], env: Env) -> Prim:
    """The queue of ``spec.maxsize`` for actors of ``kind``. With process actors it is a
    Manager queue, as in the tutorial: items live in the Manager process, so a put that
    returned is never lost when its process ends (a multiprocessing.Queue's feeder thread may
    still hold it)."""
    if kind == "coroutine":
        return AQueue(name, asyncio.Queue(spec.maxsize), spec.maxsize)
    if kind == "process":
        return Queue(name, env.manager.Queue(spec.maxsize), spec.maxsize)
    return Queue(name, queue_mod.Queue(spec.maxsize), spec.maxsize)
