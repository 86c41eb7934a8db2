"""Coroutine actors: asyncio tasks over real asyncio primitives.

All coroutine actors of a run are tasks of one event loop, which runs in a thread of its own
(``tracer-loop``) so coroutines can sit beside thread actors in one scenario. Each primitive
type's asyncio flavour (in its module of ``tracer.prims``) subclasses the thread one: its
non-blocking operations (release, set, notify, ...) are the same code through the same seam;
only the operations that wait become coroutines, and the step compiler builds a coroutine
function for the actor's program (``Compiler(coroutine=True)``). Ending the run cancels every
task: a ``CancelledError`` inside an actor is what ``Abort`` is for threads.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Coroutine
from functools import partial
from typing import Any

from tracer.engine._seam import Abort, ActorCtx, ActorFailure, end_tag, ending
from tracer.engine._state import RunState
from tracer.engine.actors import BaseHost
from tracer.prims._shell import OpTags, ready


class CoroutineHost(BaseHost):
    """The host of coroutine actors: tasks of one event loop (an exploration's runs share
    one: a new loop per run costs more than a small schedule)."""

    kind = "coroutine"
    coroutines = True

    def __init__(self, run: RunState) -> None:
        super().__init__(run)
        self.aio: AioHost | None = None
        if any(a.kind == "coroutine" for a in run.plan.actors):
            self.aio = run.workers.loop_host() if run.workers is not None else AioHost()

    def open(self) -> None:
        if self.aio is not None and self.run.workers is None:
            self.aio.start()

    def start(self, ctx: ActorCtx) -> None:
        assert self.aio is not None
        ctx.state = "running"
        self.aio.spawn(ctx.name, partial(self.main, ctx))

    async def main(self, ctx: ActorCtx) -> None:
        """The body of a coroutine actor: a thread's, with cancellation as the abort."""
        run = self.run
        raised: BaseException | None = None
        try:
            await ready(ctx, run.rt.life_tag(ctx.name, "start"))
            run.begin(ctx)
            await run.programs[ctx.name](ctx)  # type: ignore[misc]
        except (Exception, Abort, asyncio.CancelledError) as exc:
            raised = exc
        result, error = ending(raised)
        if result is not None:
            try:
                await ready(ctx, end_tag(ctx, result, error))
            except (Abort, asyncio.CancelledError):
                result, error = None, None
        run.finish(ctx, result, error)

    async def join(self, a: ActorCtx, name: str, timeout: float | None,
                   tags: OpTags) -> None:
        """`join` from a coroutine actor: await the task, or poll a thread's end."""
        target = self.run.ctx[name]
        await ready(a, tags.call)
        seq = a.emit(tags.call, None)
        if target.state == "pending":
            msg = f"{a.name} cannot join {name}: it was never started"
            a.emit(tags.error, {"error": msg})
            raise ActorFailure(msg)
        a.waiting = (name, "join", timeout is not None, seq, 0)

        async def ended() -> bool:
            return target.finished.is_set()

        async def poll() -> bool:
            deadline = None if timeout is None else time.monotonic() + timeout
            while not target.finished.is_set():
                if deadline is not None and time.monotonic() >= deadline:
                    return False
                await asyncio.sleep(0.002)  # the loop must not block on another thread
            return True
        await self.run.scheduler.await_(a, ended, poll, timeout)
        a.waiting = None
        await ready(a, tags.ok)
        a.emit(tags.ok if target.finished.is_set() else tags.timeout, None)

    def stop(self, end: float) -> list[str]:
        """Cancel every task and wait for them (and stop the loop, unless an exploration
        keeps it for its next run); names of tasks that would not end."""
        if self.aio is None:
            return []
        grace = max(0.0, end - time.monotonic())
        if self.run.workers is not None:
            return self.aio.cancel_tasks(grace)
        return self.aio.stop(grace)


class AioHost:
    """The event loop of a run's coroutine actors, in a thread of its own."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.tasks: dict[str, asyncio.Task[None]] = {}
        # actors spawned from another thread whose task the loop has yet to make (set.add and
        # set.discard are atomic under the GIL: spawning threads add, the loop discards)
        self.creating: set[str] = set()
        self.thread = threading.Thread(target=self._serve, name="tracer-actor:(event loop)",
                                       daemon=True)
        self._ready = threading.Event()

    def _serve(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.call_soon(self._ready.set)
        try:
            self.loop.run_forever()
        finally:
            self.loop.close()

    def start(self) -> None:
        self.thread.start()
        self._ready.wait()

    def in_loop(self) -> bool:
        return threading.current_thread() is self.thread

    def spawn(self, name: str, coro: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """Create the task of actor ``name`` (from any thread)."""
        def create() -> None:
            self.tasks[name] = self.loop.create_task(coro(), name=f"tracer:{name}")
        if self.in_loop():
            create()
            return

        def create_later() -> None:
            create()
            self.creating.discard(name)
        self.creating.add(name)
        self.loop.call_soon_threadsafe(create_later)

    def cancel_tasks(self, grace: float) -> list[str]:
        """Cancel every task of this run and wait for them (the loop goes on, for the next
        run of an exploration); names of tasks that would not end."""
        # a task still to be made would be left pending (and destroyed with the loop): then
        # cancel_all runs in the loop, after the callbacks that make them
        if not self.creating and all(t.done() for t in list(self.tasks.values())):
            self.tasks.clear()  # every task has ended (a finished run): nothing to cancel
            return []
        done = threading.Event()
        left: list[str] = []

        async def cancel_all() -> None:
            tasks = list(self.tasks.values())
            for t in tasks:
                t.cancel()
            if tasks:
                _, pending = await asyncio.wait(tasks, timeout=grace)
                left.extend(t.get_name() for t in pending)
            self.tasks.clear()
            done.set()

        if self.thread.is_alive():
            self.loop.call_soon_threadsafe(lambda: self.loop.create_task(cancel_all()))
            done.wait(grace + 1.0)
        return left

    def stop(self, grace: float) -> list[str]:
        """Cancel every task, wait for them, stop the loop; names of tasks that would not end."""
        left = self.cancel_tasks(grace)
        if self.thread.is_alive():
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(grace)
        return left
