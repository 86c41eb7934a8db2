"""Coroutine actors: asyncio tasks over real asyncio primitives.

All coroutine actors of a run are tasks of one event loop, which runs in a thread of its own
(``tracer-loop``) so coroutines can sit beside thread actors in one scenario. Each primitive
type's asyncio flavour (in its module of ``tracer.prims``) subclasses the thread one: its
non-blocking operations (release, set, notify, ...) are the same code through the same seam;
only the operations that wait become coroutines. Ending the run cancels every task: a
``CancelledError`` inside an actor is what ``Abort`` is for threads.

An ``add`` yields to the loop between its read and its write (``await asyncio.sleep(0)``), as
any real ``x = await f(); shared = x + 1`` does, so coroutines can lose updates too.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine, Sequence
from functools import partial
from typing import Any

from tracer.engine._compile import Caps, Compiler, StepFn, added
from tracer.engine._seam import Abort, ActorCtx, ActorFailure
from tracer.prims._shell import ALockLike, OpTags, ready
from tracer.prims.queue import AQueue
from tracer.scenario import _model as M


class AioCompiler(Compiler):
    """Compiles a coroutine actor: steps that wait become coroutines, the rest is shared."""

    def block(self, steps: Sequence[M.Step], cont: Caps) -> tuple[StepFn, Caps]:
        items: list[tuple[Caps, StepFn, bool, Any]] = []
        after = cont
        for step in reversed(steps):
            fn, is_async = self.astep(step, after)
            here = self.own_caps(step) | after
            self.caps_seen.append(here)
            target = M.step_target(step)
            items.append((here, fn, is_async, None if is_async else
                          self.rt.tag(self.actor, step.verb, target)))
            after = here
        items.reverse()
        pairs = tuple(items)
        at = self.where([item[1] for item in pairs], steps)

        async def run_block(a: ActorCtx) -> None:
            try:
                for caps, fn, is_async, tag in pairs:
                    a.caps = caps
                    if is_async:
                        await fn(a)  # type: ignore[misc]
                    else:
                        await ready(a, tag)  # a turn, before the step records its one event
                        fn(a)
            except ActorFailure:
                if a.failed_at is None:  # the innermost block knows the step
                    a.failed_at = at.get(id(fn))
                raise

        return run_block, after

    def astep(self, step: M.Step, cont: Caps) -> tuple[StepFn, bool]:
        """A step's function and whether it is a coroutine function."""
        n = self.actor
        tag = self.rt.tag
        if isinstance(step, M.Acquire):
            lk = self.prim(step.acquire, ALockLike)
            return partial(lk.acquirer(step), self.tags("acquire", lk.name), step.timeout,
                           step.blocking), True
        if isinstance(step, M.With):
            lk2 = self.prim(step.with_, ALockLike)
            ts = self.tags("acquire", lk2.name)
            rel = tag(n, "release", lk2.name)
            body, _ = self.block(step.steps, frozenset({("release", lk2.name)}) | cont)
            acquire, release = lk2.acquirer(step), lk2.release

            async def with_(a: ActorCtx) -> None:
                await acquire(ts, None, True, a)
                try:
                    await body(a)  # type: ignore[misc]
                except (asyncio.CancelledError, Abort):
                    raise
                except BaseException:
                    release(rel, a)
                    raise
                release(rel, a)
            return with_, True
        if isinstance(step, M.Wait):
            w = self.prims[step.wait]
            return partial(_call_wait, w, self.tags("wait", w.name), step.timeout), True
        if isinstance(step, M.Put):
            q = self.prim(step.put, AQueue)
            ts, timeout, blocking = self.tags("put", q.name), step.timeout, step.blocking
            item_of = self._item(step)

            async def put(a: ActorCtx) -> None:
                await q.put(a, ts, item_of(), timeout, blocking)
            return put, True
        if isinstance(step, M.Get):
            q2 = self.prim(step.get, AQueue)
            return partial(_call_get, q2, self.tags("get", q2.name), step.timeout,
                           step.blocking), True
        if isinstance(step, M.Sleep):
            call, ok = tag(n, "sleep", None, "call"), tag(n, "sleep", None, "return", "ok")
            payload, seconds = {"value": step.sleep}, step.sleep

            async def sleep(a: ActorCtx) -> None:
                await ready(a, call)
                a.emit(call, payload)
                await a.rt.scheduler.asleep(a, seconds)
                await ready(a, ok)
                a.emit(ok, None)
            return sleep, True
        if isinstance(step, M.Add):
            var, delta = step.add.var, step.add.value
            rt_, wt = tag(n, "read", var), tag(n, "write", var)
            read = self.var_read(var, partial(self.shared.__getitem__, var))
            write_new = self.var_write(var)

            async def add(a: ActorCtx) -> None:
                await ready(a, rt_)
                old = read(a)
                await asyncio.sleep(0)  # the await between read and write
                await ready(a, wt)
                write_new(added(n, var, old, delta), a)
            return add, True
        if isinstance(step, M.Join):
            names = self.plan.groups[step.join]
            sp, timeout = self.spawner, step.timeout
            tagsets = [(name, self.tags("join", name)) for name in names]

            async def join(a: ActorCtx) -> None:
                for name, ts in tagsets:
                    await sp.ajoin(a, name, timeout, ts)  # type: ignore[attr-defined]
            return join, True
        if isinstance(step, M.Repeat):
            body_caps = frozenset().union(*(self.own_caps(s) for s in step.steps)) \
                if step.steps else frozenset()
            body, _ = self.block(step.steps, body_caps | cont)
            times = step.repeat

            async def repeat(a: ActorCtx) -> None:
                rt = a.rt
                for _ in range(times):
                    if rt.closed:  # a body that records nothing must still stop with the run
                        raise Abort
                    await body(a)  # type: ignore[misc]
            return repeat, True
        if isinstance(step, M.If):
            return self._aif(step, cont), True
        fn = self.step(step, cont)  # a type's own verb may compile to a coroutine function
        return fn, asyncio.iscoroutinefunction(fn)

    def _aif(self, step: M.If, cont: Caps) -> StepFn:
        test = self.condition(step)
        then, _ = self.block(step.then, cont)
        else_, _ = self.block(step.else_, cont)

        read = self.rt.tag(self.actor, "read", step.if_.var)

        async def if_(a: ActorCtx) -> None:
            await ready(a, read)  # a turn before the test reads the variable
            await (then if test(a) else else_)(a)  # type: ignore[misc]
        return if_


async def _call_wait(w: Any, t: OpTags, timeout: float | None,
                     a: ActorCtx) -> None:
    await w.wait(a, t, timeout)


async def _call_get(q: AQueue, t: OpTags, timeout: float | None, blocking: bool,
                    a: ActorCtx) -> None:
    await q.get(a, t, timeout, blocking)


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
