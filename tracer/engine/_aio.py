"""Coroutine actors: asyncio tasks over real asyncio primitives.

All coroutine actors of a run are tasks of one event loop, which runs in a thread of its own
(``tracer-loop``) so coroutines can sit beside thread actors in one scenario. The primitives
subclass the thread ones: their non-blocking operations (release, set, notify, ...) are the
same code through the same seam; only the operations that wait become coroutines. Ending the
run cancels every task: a ``CancelledError`` inside an actor is what ``Abort`` is for threads.

An ``add`` yields to the loop between its read and its write (``await asyncio.sleep(0)``), as
any real ``x = await f(); shared = x + 1`` does, so coroutines can lose updates too.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from functools import partial
from typing import Any

from tracer.engine import _prims as P
from tracer.engine._compile import Caps, Compiler, StepFn, added
from tracer.engine._seam import Abort, ActorCtx, ActorFailure
from tracer.scenario import _model as M

# asyncio.Barrier and its error exist from Python 3.11 (the checker refuses coroutine barriers
# before that)
_BROKEN: type[BaseException] = getattr(asyncio, "BrokenBarrierError", RuntimeError)


def ready(a: ActorCtx, tag: Any = None) -> Awaitable[Any]:
    """Await ``a``'s turn before it records anything (the seam's turn would block the event
    loop, which every coroutine shares); ``tag`` is the event it will record, when known."""
    return a.rt.scheduler.aturn(a, tag)


async def _retake(real: Any, a: ActorCtx) -> bool:
    """Take an asyncio condition's lock back at the end of a wait (running free): asyncio's
    own way, except that it gives up once the run is closed. A cancellation meanwhile is
    raised once the lock is held again, as asyncio's ``wait`` does."""
    cancelled = False
    while True:
        try:
            await real.acquire()
            break
        except asyncio.CancelledError:
            cancelled = True
            if a.rt.closed:
                return False
    if cancelled:
        raise asyncio.CancelledError
    return True


async def _within(aw: Awaitable[Any], timeout: float | None) -> bool:
    """Await ``aw``; False if ``timeout`` seconds pass first."""
    if timeout is None:
        await aw
        return True
    try:
        await asyncio.wait_for(aw, timeout)
    except asyncio.TimeoutError:
        return False
    return True


class ALockLike(P.LockLike):
    """acquire for asyncio Lock / Semaphore / BoundedSemaphore / Condition (its lock);
    release is the thread version's: asyncio's release does not wait."""

    async def acquire(  # type: ignore[override]
            self, t: P.OpTags, timeout: float | None, blocking: bool, a: ActorCtx) -> bool:
        res = self.resource
        real = res.real
        await ready(a, t.call)
        seq = a.emit(t.call, None if blocking else P.NONBLOCKING)
        a.waiting = (self, "acquire", timeout is not None or not blocking, seq, 0)

        async def attempt() -> bool:
            if real.locked():
                return False
            await real.acquire()  # free: returns without suspending
            return True
        # takes: a replay takes it when the recording says the call returned, as it did then
        ok = await a.rt.scheduler.await_(a, attempt, lambda: _within(real.acquire(), timeout),
                                         timeout if blocking else 0.0, takes=True)
        a.waiting = None
        if ok:
            h = res.holders
            h[a.name] = h.get(a.name, 0) + 1
            res.acquired.add(a.name)
        await ready(a, t.ok)
        a.emit(t.ok if ok else (t.timeout if blocking else t.fail), None)
        return ok


class ALock(ALockLike):
    ptype = "lock"


class ASemaphore(ALockLike):
    ptype = "semaphore"


class ABoundedSemaphore(ALockLike):
    ptype = "bounded_semaphore"


class ACondition(ALockLike, P.Condition):
    own_lock_owned = False  # asyncio's Condition() makes a Lock, which any task may release

    async def wait(  # type: ignore[override]
            self, a: ActorCtx, t: P.OpTags, timeout: float | None) -> None:
        res = self.resource
        await ready(a, t.call)
        seq = a.emit(t.call, None)
        bad = self.not_owner(a, "waited on")
        if bad:
            await ready(a)
            a.emit(t.error, {"error": bad})
            raise ActorFailure(bad)
        a.waiting = (self, "wait", timeout is not None, seq, 0)
        held = res.holders.pop(a.name, 0)
        try:
            ok = await self._wait(a, timeout)
        except RuntimeError as exc:
            if held:
                res.holders[a.name] = held
            a.waiting = None
            msg = f"{a.name} waited on condition {self.name} without holding its lock ({exc})"
            await ready(a)
            a.emit(t.error, {"error": msg})
            raise ActorFailure(msg) from None
        except P.LockNotRetaken:
            raise  # the run ended before it took the lock back: it holds nothing
        except BaseException:
            if held:  # the wait re-took the lock, also when cancelled
                res.holders[a.name] = held
            raise
        if held:
            res.holders[a.name] = held
        a.waiting = None
        await ready(a, t.ok)
        a.emit(t.ok if ok else t.timeout, None)

    def _enter_wait(self) -> asyncio.Future[None]:
        """The start of asyncio's ``Condition.wait``: register a waiter's future, then let the
        lock go (refused, as asyncio refuses it, when the lock is not held)."""
        real = self.real
        if not real.locked():
            raise RuntimeError("cannot wait on un-acquired lock")
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        real._waiters.append(fut)
        real.release()
        return fut

    async def _wait(self, a: ActorCtx, timeout: float | None) -> bool:
        """asyncio's own ``Condition.wait`` (register a future, let the lock go, wait for a
        notify, take the lock back), each wait handed to the scheduler; taking the lock back
        gives up when the run is closed (asyncio's retries for good, and a waiter whose lock is
        held by an ended actor could never be cancelled)."""
        real = self.real
        sched = a.rt.scheduler
        fut = self._enter_wait()
        try:
            async def woken() -> bool:
                return fut.done()
            return await sched.await_(a, woken, lambda: _within(fut, timeout), timeout)
        finally:
            try:
                real._waiters.remove(fut)
            except ValueError:
                pass
            P.now_acquiring(a)  # the watchdog sees it wait for the lock from here on

            async def free() -> bool:
                if real.locked():
                    return False
                await real.acquire()  # free: returns without suspending
                return True
            if not await sched.await_(a, free, partial(_retake, real, a), None):
                raise P.LockNotRetaken  # an abort wins over the wait's result

    def available_for(self, op: str, waiters: int, actor: str, mark: int) -> bool:
        if op == "wait":
            # a notified waiter's future is done before it wakes and leaves the deque
            queued = getattr(self.real, "_waiters", None)
            return queued is not None and sum(not f.done() for f in queued) < waiters
        return not self.resource.holders


class AEvent(P.Event):
    async def wait(  # type: ignore[override]
            self, a: ActorCtx, t: P.OpTags, timeout: float | None) -> None:
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


class ABarrier(P.Barrier):
    async def wait(  # type: ignore[override]
            self, a: ActorCtx, t: P.OpTags, timeout: float | None) -> None:
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


class AQueue(P.Queue):
    async def put(  # type: ignore[override]
            self, a: ActorCtx, t: P.OpTags, item: Any, timeout: float | None,
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
            self, a: ActorCtx, t: P.OpTags, timeout: float | None, blocking: bool) -> None:
        await ready(a, t.call)
        seq = a.emit(t.call, None if blocking else P.NONBLOCKING)
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


def make_aio(ptype: str, name: str, spec: Any, made: dict[str, P.Prim]) -> P.Prim:
    """The asyncio flavour of a primitive (only coroutine actors use it)."""
    if ptype == "lock":
        return ALock(name, asyncio.Lock())
    if ptype == "semaphore":
        return ASemaphore(name, asyncio.Semaphore(spec.value), spec.value)
    if ptype == "bounded_semaphore":
        return ABoundedSemaphore(name, asyncio.BoundedSemaphore(spec.value), spec.value)
    if ptype == "event":
        return AEvent(name, asyncio.Event())
    if ptype == "condition":
        lock = made.get(spec.lock) if spec.lock else None
        assert lock is None or isinstance(lock, P.LockLike)
        return ACondition(name, asyncio.Condition(lock.real if lock else None), lock)
    if ptype == "barrier":
        return ABarrier(name, asyncio.Barrier(spec.parties))  # type: ignore[attr-defined,unused-ignore]
    if ptype == "queue":
        return AQueue(name, asyncio.Queue(spec.maxsize), spec.maxsize)
    raise AssertionError(f"no asyncio flavour of {ptype}")  # the checker refuses these


# ---------------------------------------------------------------------------------------------


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
            return partial(lk.acquire, self.tags("acquire", lk.name), step.timeout,
                           step.blocking), True
        if isinstance(step, M.With):
            lk2 = self.prim(step.with_, ALockLike)
            ts = self.tags("acquire", lk2.name)
            rel = tag(n, "release", lk2.name)
            body, _ = self.block(step.steps, frozenset({("release", lk2.name)}) | cont)
            acquire, release = lk2.acquire, lk2.release

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
            assert isinstance(w, (AEvent, ACondition, ABarrier))
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
        return self.step(step, cont), False

    def _aif(self, step: M.If, cont: Caps) -> StepFn:
        test = self.condition(step)
        then, _ = self.block(step.then, cont)
        else_, _ = self.block(step.else_, cont)

        read = self.rt.tag(self.actor, "read", step.if_.var)

        async def if_(a: ActorCtx) -> None:
            await ready(a, read)  # a turn before the test reads the variable
            await (then if test(a) else else_)(a)  # type: ignore[misc]
        return if_


async def _call_wait(w: AEvent | ACondition | ABarrier, t: P.OpTags, timeout: float | None,
                     a: ActorCtx) -> None:
    await w.wait(a, t, timeout)


async def _call_get(q: AQueue, t: P.OpTags, timeout: float | None, blocking: bool,
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
