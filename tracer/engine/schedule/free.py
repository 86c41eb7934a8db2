"""Free running (``tracer run``): every actor goes as fast as the OS lets it.

A blocking call first tries its real operation at once (the uncontended case costs no more
than that), then waits in the real primitive in short slices (``POLL``), so that an aborted run
can stop it; a coroutine awaits the real asyncio operation. Sleeps take their time, and so
does a compute's CPU work (in slices, for the same reason). Accesses of a shared variable take
the variable's lock with their seq (see ``engine/_compile``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from tracer.engine._seam import POLL, Abort
from tracer.engine.schedule._protocol import AsyncAttempt, Attempt, Scheduler

if TYPE_CHECKING:
    from tracer.engine._seam import ActorCtx, Runtime, Tag


COMPUTE_SLICE = 10.0  # units of a compute done between two looks at the abort flag (~10 ms)


class FreeRun(Scheduler):
    """No scheduling at all: the real primitives decide."""

    def __init__(self) -> None:
        self.rt: Runtime | None = None

    def attach(self, rt: Runtime, wake: Callable[[], object]) -> None:
        self.rt = rt

    def needs_var_locks(self) -> bool:
        return True

    def emitter(self, actor: ActorCtx) -> Callable[[Tag, dict[str, Any] | None], int]:
        return actor.emit_free

    def turn(self, actor: Any, tag: Tag) -> int:
        assert self.rt is not None
        return next(self.rt.seq)

    def wait(self, actor: ActorCtx, attempt: Attempt, timeout: float | None,
             looks: bool = False, eager: bool = False, always: bool = False,
             waiting: Callable[[], Any] | None = None) -> bool:
        if attempt(0):
            return True  # (the uncontended case: nobody needs to know it waited)
        if timeout == 0:
            return False
        if waiting is None:
            return wait_loop(actor.rt, attempt, timeout)
        actor.waiting = waiting()
        try:
            return wait_loop(actor.rt, attempt, timeout)
        finally:
            actor.waiting = None

    def sleep(self, actor: ActorCtx, seconds: float) -> None:
        if actor.rt.abort_event.wait(seconds):
            raise Abort

    def compute(self, actor: ActorCtx, units: float, work: Callable[[float], None]) -> None:
        # in slices, so that a run that ends meanwhile (its timeout, a deadlock elsewhere,
        # Ctrl-C) stops a long compute within a slice, as it wakes a sleep; between slices the
        # GIL is not given up any more than the interpreter does by itself
        abort = actor.rt.abort_event
        left = units
        while left > 0:
            if abort.is_set():
                raise Abort
            part = min(left, COMPUTE_SLICE)
            work(part)
            left -= part

    async def await_(self, actor: ActorCtx, attempt: AsyncAttempt,
                     wait: Callable[[], Awaitable[bool]], timeout: float | None,
                     takes: bool = False) -> bool:
        if await attempt():
            return True
        if timeout == 0:
            return False
        return await wait()

    async def asleep(self, actor: ActorCtx, seconds: float) -> None:
        await asyncio.sleep(seconds)


def wait_loop(rt: Runtime, attempt: Attempt, timeout: float | None) -> bool:
    """Call ``attempt(t)`` (a real blocking call with a timeout) until it succeeds, the step's
    own timeout passes (False), or the run is aborted (Abort)."""
    if timeout is None:
        while True:
            if rt.closed:
                raise Abort
            if attempt(POLL):
                return True
    deadline = time.monotonic() + timeout
    while True:
        if rt.closed:
            raise Abort
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        if attempt(min(POLL, left)):
            return True
