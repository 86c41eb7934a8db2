"""Record asyncio in a traced program: its tasks as actors, its primitives, its sleeps.

Design. A task whose coroutine is the user's code (its code object is in a user file) is an
actor of kind ``coroutine``, named by its task name. ``BaseEventLoop.create_task`` (a Python
method: patched in place; every way of making a task goes through it -- ``create_task``,
``ensure_future``, ``gather``, ``asyncio.run``, ``TaskGroup``) records the ``spawn`` in the
creating actor and hands the task a *driver* in place of the user's coroutine: a coroutine of
tracer's that records the task's ``start``, steps the user's coroutine by hand (``send`` /
``throw``, so that it sees every future the task waits on) and records its ``end``. A future
the task waits on that is another task of the user's, or a ``gather`` of such tasks, is a
``join`` of each (call when the task starts waiting, return when it resumes), so
happens-before runs end -> join and a gather of correctly locked tasks is clean. The
recorder's ``current()`` maps the running task to its actor (``Recorder.tasks``).

The primitives (``asyncio.Lock``, ``Semaphore``, ``BoundedSemaphore``, ``Event``,
``Condition``, ``Queue`` and its subclasses) are patched in place on their classes, recorded
when the user's code makes them, with the shapes of the thread primitives. A blocking await
goes through the scheduler's ``ablock`` (the free run's awaits the real operation, with
``actor.waiting`` set for the watchdog): nothing here blocks the event loop.
"""

from __future__ import annotations

import asyncio
import asyncio.base_events
import asyncio.locks
import asyncio.queues
import asyncio.tasks
import os
import sys
import threading
import types
import weakref
from collections.abc import Callable, Generator
from typing import Any

from tracer.program import _names, _seam
from tracer.program._patch import (
    _avail_after,
    _constructor,
    _hold,
    _patch,
    _releasing,
    _unhold,
    last_user_site,
    user_traceback,
)
from tracer.program._seam import Actor, Prim, plain

_CancelledError = asyncio.CancelledError
_real_sleep = asyncio.sleep
_real_wait_for = asyncio.wait_for
_real_ensure_future = asyncio.ensure_future
_get_running_loop = asyncio.events._get_running_loop
_current_task = asyncio.current_task
_GatheringFuture: Any = getattr(asyncio.tasks, "_GatheringFuture", None)

# task -> its actor's name, for every task that runs the user's code (also once it ended:
# awaiting a task that is done is a join too)
_TASK_NAMES: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()


def _task_now() -> Any:
    """The task running in this thread, or None (cheap when no loop runs here)."""
    loop = _get_running_loop()
    if loop is None:
        return None
    return _current_task(loop)


# asyncio's files between the user's code and ``loop.create_task`` when the user makes a
# task (``create_task``, ``ensure_future``, ``gather``, ``shield``, ``TaskGroup``)
_TASK_FILES = frozenset(m.__file__ for m in (
    asyncio.tasks, asyncio.base_events, getattr(asyncio, "taskgroups", asyncio.tasks)))


def _made_by_user(depth: int = 2) -> bool:
    """Whether the user's code itself asks for the task being made (through asyncio's task
    functions only): a task of any coroutine it makes so runs its code."""
    f: Any = sys._getframe(depth)
    while f is not None and f.f_code.co_filename in _TASK_FILES:
        f = f.f_back
    return f is not None and _names.display(f.f_code.co_filename) is not None


def _is_user_coroutine(coro: Any) -> bool:
    code = getattr(coro, "cr_code", None)
    return code is not None and _names.display(code.co_filename) is not None


def _await_site(coro: Any) -> str | None:
    """Where the suspended coroutine ``coro`` waits: its innermost frame in a user file."""
    site = None
    depth = 0
    while coro is not None and depth < 64:
        frame = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None)
        if frame is not None:
            shown = _names.display(frame.f_code.co_filename)
            if shown is not None:
                site = f"{shown}:{frame.f_lineno}"
        coro = getattr(coro, "cr_await", None) or getattr(coro, "gi_yieldfrom", None)
        depth += 1
    return site


def _name_of(obj: Any) -> str | None:
    """The actor name of ``obj`` when it is a task of the user's."""
    try:
        return _TASK_NAMES.get(obj)
    except TypeError:  # (not weakly referable: no task)
        return None


def _joined(fut: Any) -> list[tuple[Any, str]]:
    """The user's tasks a future the task waits on stands for: the task itself, or the
    tasks of a ``gather``."""
    if fut is None or isinstance(fut, _TracedTask):  # (its __await__ records the join)
        return []
    name = _name_of(fut)
    if name is not None:
        return [(fut, name)]
    return []


class _TracedTask(asyncio.Task):  # type: ignore[type-arg]
    """The task of a user's coroutine on a loop with no task factory of the program's: a
    real ``asyncio.Task`` (``isinstance`` holds; its repr says ``Task``) whose ``__await__``
    records the join, also of a task that is done already."""

    def __await__(self) -> Generator[Any, None, Any]:
        return _awaiting(self, [self], super().__await__())

    __iter__ = __await__


_TracedTask.__name__ = _TracedTask.__qualname__ = "Task"


def _awaiting(fut: Any, tasks: list[Any], inner: Any) -> Generator[Any, None, Any]:
    """Await ``inner`` (``fut``'s own ``__await__``) as a join of each of the user's
    ``tasks`` by the current actor."""
    rec = _seam.REC
    named = [(t, _name_of(t)) for t in tasks]
    joins = [(t, n) for t, n in named if n is not None]
    if rec is None or rec.closed or not joins:
        return (yield from inner)
    a = rec.current()
    site = _names.user_site()
    for _, n in joins:
        rec.emit(a, "join", n, "call", None, site, None)
    a.waiting = (joins[0][1], "join", False)
    try:
        value = yield from inner
    finally:
        a.waiting = None
        for t, n in joins:
            rec.emit(a, "join", n, "return", _join_result(t), site, None)
    return value


def _gather_await(original: Any) -> Any:
    def __await__(self: Any) -> Any:
        return _awaiting(self, list(getattr(self, "_children", ())), original(self))
    return __await__


def _join_result(task: Any) -> str:
    if not task.done():
        return "cancelled"
    return "ok"


@types.coroutine
def _drive(coro: Any, box: dict[str, Any]) -> Generator[Any, Any, Any]:
    """Run the user's coroutine ``coro`` as the current task's actor (see the module's
    design), recording its start, its joins and its end."""
    rec = _seam.REC
    task = _task_now()
    if rec is None or rec.closed or task is None:
        return (yield from coro.__await__())
    _BOXES.pop(task, None)
    name = box.get("name") or rec.unique(task.get_name())
    box["name"] = name
    _TASK_NAMES[task] = name
    a = Actor(name, "coroutine", 0, True)
    a.tid = box.get("tid", 0)
    a.pid = box.get("pid", 0)
    a.thread = task
    rec.task_now = _task_now
    rec.register_task(task, a)
    rec.emit(a, "start", None, None, None, box.get("site"), None)
    send: Any = None
    exc: BaseException | None = None
    try:
        while True:
            try:
                fut = coro.send(send) if exc is None else coro.throw(exc)
            except StopIteration as stop:
                rec.end(a, site=None)
                return stop.value
            exc = None
            joins = _joined(fut) if not rec.closed else []
            if not joins:
                try:
                    send = yield fut
                except GeneratorExit:
                    coro.close()
                    raise
                except BaseException as e:  # (thrown in: a cancellation)
                    exc = e
                done = getattr(fut, "_tracer_done", None)
                if done is not None and exc is None and not rec.closed:
                    # (an executor's function returned: see _run_in_executor)
                    site = _await_site(coro)
                    rec.emit(a, "wait", done, "call", None, site, None)
                    rec.emit(a, "wait", done, "return", "ok", site, None)
                continue
            site = _await_site(coro)
            for _, n in joins:
                rec.emit(a, "join", n, "call", None, site, None)
            a.waiting = (joins[0][1], "join", False)
            try:
                send = yield fut
            except GeneratorExit:
                coro.close()
                raise
            except BaseException as e:
                exc = e
            finally:
                a.waiting = None
            for t, n in joins:
                rec.emit(a, "join", n, "return", _join_result(t), site, None)
    except _CancelledError:
        rec.end(a, result="cancelled")
        raise
    except (SystemExit, GeneratorExit):
        rec.end(a)
        raise
    except BaseException as e:
        rec.end(a, user_traceback(e), last_user_site(e))
        raise
    finally:
        rec.unregister_task(task)


async def _task_main(coro: Any, box: dict[str, Any]) -> Any:
    return await _drive(coro, box)


def _create_task(original: Any) -> Any:
    def create_task(self: Any, coro: Any, *args: Any, **kwargs: Any) -> Any:
        rec = _seam.REC
        if rec is None or rec.closed or not (_is_user_coroutine(coro) or (
                asyncio.iscoroutine(coro) and _made_by_user())):
            return original(self, coro, *args, **kwargs)
        a = rec.current()
        site = _names.user_site()
        box: dict[str, Any] = {"site": site}
        box["pid"] = os.getpid()
        box["tid"] = threading.get_native_id()
        seq = rec.emit(a, "spawn", None, None, None, site, None)
        index = len(a.buf) - 1
        driver: Any = _task_main(coro, box)
        driver.__qualname__ = getattr(coro, "__qualname__", driver.__qualname__)
        driver.__name__ = getattr(coro, "__name__", driver.__name__)
        try:
            if self._task_factory is None and not args:
                # (what BaseEventLoop.create_task does, with the traced task class)
                self._check_closed()
                task: Any = _TracedTask(driver, loop=self, **kwargs)
                if task._source_traceback:
                    del task._source_traceback[-1]
            else:
                task = original(self, driver, *args, **kwargs)
        except BaseException:
            driver.close()
            raise
        box["spawn"] = (a, index, seq)
        if "name" not in box:  # (not started yet: named now, renamed if named later)
            box["name"] = rec.unique(task.get_name())
            _TASK_NAMES[task] = box["name"]
            _BOXES[task] = box
        _name_spawn(box)
        return task
    return create_task


# task -> its box while it has not started (``asyncio.create_task`` before 3.12 names the
# task after ``loop.create_task`` returned)
_BOXES: dict[Any, dict[str, Any]] = {}


def _name_spawn(box: dict[str, Any]) -> None:
    """Give the creator's ``spawn`` event its target, the task's actor name."""
    a, index, seq = box["spawn"]
    if seq >= 0 and 0 <= index < len(a.buf) and a.buf[index][0] == seq:
        e = a.buf[index]
        a.buf[index] = (*e[:4], box["name"], *e[5:])


def _set_task_name(original: Any) -> Any:
    def set_task_name(task: Any, name: Any) -> None:
        original(task, name)
        box = _BOXES.get(task)
        rec = _seam.REC
        if box is None or name is None or rec is None:
            return
        box["name"] = rec.unique(task.get_name())
        _TASK_NAMES[task] = box["name"]
        _name_spawn(box)
    return set_task_name


def _run_until_complete(original: Any) -> Any:
    """The thread that runs a loop until a task of the user's ends joins that task."""
    def run_until_complete(self: Any, future: Any) -> Any:
        rec = _seam.REC
        if rec is None or rec.closed:
            return original(self, future)
        if asyncio.iscoroutine(future) and _is_user_coroutine(future):
            future = _real_ensure_future(future, loop=self)
        name = _name_of(future)
        if name is None:
            return original(self, future)
        a = rec.current()
        site = _names.user_site()
        rec.emit(a, "join", name, "call", None, site, None)
        a.waiting = (name, "join", False)
        try:
            value = original(self, future)
        except BaseException:
            a.waiting = None
            rec.emit(a, "join", name, "return", _join_result(future), site, None)
            raise
        a.waiting = None
        rec.emit(a, "join", name, "return", "ok", site, None)
        return value
    return run_until_complete


# --- primitives ------------------------------------------------------------------------------


def _ablocking(cls: Any, method: str, op: str, item_out: bool = False,
               on_ok: Callable[[Any, Actor, Prim], None] | None = None) -> None:
    """Record the coroutine method ``cls.method`` as a blocking op (call, then return when
    the await is over); its inner operations are not recorded."""

    def make(original: Any) -> Any:
        async def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
            p = self._tracer_p
            rec = _seam.REC
            if p is None or rec is None or rec.closed:
                return await original(self, *args, **kwargs)
            a = rec.current()
            site = _names.user_site()
            payload = None
            if op == "put":
                payload = {"item": plain(args[0] if args else kwargs.get("item"))}
            rec.emit(a, op, p.name, "call", None, site, payload)
            a.quiet += 1
            try:
                value = await rec.scheduler.ablock(
                    a, p, op, lambda: original(self, *args, **kwargs))
            except _CancelledError:
                a.quiet -= 1
                rec.emit(a, op, p.name, "return", "cancelled", site, None)
                raise
            except BaseException as exc:
                a.quiet -= 1
                rec.emit(a, op, p.name, "return", "error", site,
                         {"error": f"{type(exc).__name__}: {exc}"})
                raise
            a.quiet -= 1
            if on_ok is not None:
                on_ok(self, a, p)
            rec.emit(a, op, p.name, "return", "ok", site,
                     {"item": plain(value)} if item_out else None)
            return value
        return wrapper
    _patch(cls, method, make)


def _nowait(cls: Any, method: str, op: str, empty: type[BaseException]) -> None:
    """``put_nowait``/``get_nowait``: a non-blocking put/get (return ``fail`` when it could
    not)."""

    def make(original: Any) -> Any:
        def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
            p = self._tracer_p
            rec = _seam.REC
            if p is None or rec is None or rec.closed:
                return original(self, *args, **kwargs)
            a = rec.current()
            site = _names.user_site()
            payload: dict[str, Any] = {"blocking": False}
            if op == "put":
                payload["item"] = plain(args[0] if args else kwargs.get("item"))
            rec.emit(a, op, p.name, "call", None, site, payload)
            try:
                value = original(self, *args, **kwargs)
            except empty:
                rec.emit(a, op, p.name, "return", "fail", site, None)
                raise
            rec.emit(a, op, p.name, "return", "ok", site,
                     {"item": plain(value)} if op == "get" else None)
            return value
        return wrapper
    _patch(cls, method, make)


def _cond_options(self: Any, lock: Any = None, *args: Any, **kwargs: Any) -> dict[str, Any]:
    p = getattr(lock, "_tracer_p", None) if lock is not None else None
    return {"lock": p.name} if isinstance(p, Prim) else {}


def _cond_after(self: Any, p: Prim) -> None:
    """A user's condition with no lock of the user's: its own lock is recorded as the
    condition itself (``async with cond`` is an acquire of ``cond``)."""
    lock = self._lock
    if getattr(lock, "_tracer_p", None) is None:
        lock.__dict__["_tracer_p"] = p
        p.available = lambda op: not lock._locked if op == "acquire" else False


async def _sleep(delay: float, result: Any = None) -> Any:
    rec = _seam.REC
    if rec is None or rec.closed or _names.created_by_user(2) is None:
        return await _real_sleep(delay, result)
    a = rec.current()
    site = _names.user_site()
    rec.emit(a, "sleep", None, "call", None, site, {"value": plain(delay)})
    try:
        value = await rec.scheduler.asleep(a, delay, lambda s: _real_sleep(s, result))
    except _CancelledError:
        rec.emit(a, "sleep", None, "return", "cancelled", site, None)
        raise
    rec.emit(a, "sleep", None, "return", "ok", site, None)
    return value


async def _wait_for(fut: Any, timeout: float | None) -> Any:
    """Before 3.12 ``wait_for`` runs a coroutine as a task of its own and waits on a future
    of its own: the caller joins that task (from 3.12 the coroutine runs in the caller's
    task, and awaiting a task is seen by the driver)."""
    rec = _seam.REC
    if rec is None or rec.closed or _names.created_by_user(2) is None:
        return await _real_wait_for(fut, timeout)
    if asyncio.iscoroutine(fut) and _is_user_coroutine(fut):
        fut = _real_ensure_future(fut)
    name = _name_of(fut)
    if name is None:
        return await _real_wait_for(fut, timeout)
    a = rec.current()
    site = _names.user_site()
    rec.emit(a, "join", name, "call", None, site,
             {"timeout": timeout} if timeout is not None else None)
    a.waiting = (name, "join", True)
    try:
        value = await _real_wait_for(fut, timeout)
    except BaseException:
        a.waiting = None
        result = "ok" if fut.done() and not fut.cancelled() else \
            ("timeout" if fut.cancelled() else "cancelled")
        rec.emit(a, "join", name, "return", result, site, None)
        raise
    a.waiting = None
    rec.emit(a, "join", name, "return", "ok", site, None)
    return value


def _taskgroup_patches() -> None:
    """``async with TaskGroup()`` waits for its tasks on a future of its own: its exit is a
    join of each task of the user's it made."""
    tg: Any = getattr(asyncio, "TaskGroup", None)
    if tg is None:
        return

    def aexit(original: Any) -> Any:
        async def __aexit__(self: Any, *exc: Any) -> Any:
            rec = _seam.REC
            if rec is None or rec.closed:
                return await original(self, *exc)
            a = rec.current()
            mine = [(t, g[1]) for t, g in list(_GROUPS.items()) if g[0] is self]
            tasks = [t for t, _ in mine]
            children = [n for _, n in mine]
            site = _names.user_site()
            for n in children:
                rec.emit(a, "join", n, "call", None, site, None)
            if children:
                a.waiting = (children[0], "join", False)
            try:
                return await original(self, *exc)
            finally:
                a.waiting = None
                for t, n in zip(tasks, children, strict=True):
                    rec.emit(a, "join", n, "return", _join_result(t), site, None)
                    _GROUPS.pop(t, None)
        return __aexit__
    _patch(tg, "__aexit__", aexit)

    def create(original: Any) -> Any:
        def create_task(self: Any, *args: Any, **kwargs: Any) -> Any:
            task = original(self, *args, **kwargs)
            name = _TASK_NAMES.get(task)
            if name is not None:
                _GROUPS[task] = (self, name)
            return task
        return create_task
    _patch(tg, "create_task", create)


# task -> (its TaskGroup, its actor's name) until the group's exit (a C task takes no
# attributes of ours)
_GROUPS: dict[Any, tuple[Any, str]] = {}


def _add_await(cls: Any) -> None:
    """Give ``cls`` an ``__await__`` of its own (it inherits the C future's)."""
    inherited = cls.__await__
    cls.__await__ = _gather_await(inherited)


def _executor_name(base: str) -> str:
    """``base#1``, ``base#2``...: a name no other primitive has."""
    with _names._lock:
        n = _names._taken.get(base, 0) + 1
        _names._taken[base] = n
    return f"{base}#{n}"


def _run_in_executor(original: Any) -> Any:
    """``loop.run_in_executor(None, fn)`` (and ``asyncio.to_thread``, which calls it) from
    the user's code: the default executor is asyncio's, not recorded, so the hand-over is an
    event ``executor#k`` the caller sets and the worker waits on before ``fn`` runs, and an
    event ``executor#k.result`` the worker sets when ``fn`` has returned and the awaiting
    task waits on when it resumes (see ``_drive``): happens-before runs from the caller to
    ``fn`` and from ``fn`` to the code after the await."""
    def run_in_executor(self: Any, executor: Any, func: Any, *args: Any) -> Any:
        rec = _seam.REC
        site = _names.user_site()
        if rec is None or rec.closed or site is None or \
                getattr(executor, "_tracer_p", None) is not None:
            return original(self, executor, func, *args)
        a = rec.current()
        name = _executor_name("executor")
        result = f"{name}.result"
        rec.register(Prim(name, "event", site))
        rec.register(Prim(result, "event", site))
        rec.emit(a, "set", name, None, None, site, None)

        def call() -> Any:
            w = rec.current()
            if not rec.closed:
                rec.emit(w, "wait", name, "call", None, site, None)
                rec.emit(w, "wait", name, "return", "ok", site, None)
            try:
                return func(*args)
            finally:
                if not rec.closed:
                    rec.emit(w, "set", result, None, None, site, None)
        fut = original(self, executor, call)
        fut._tracer_done = result
        return fut
    return run_in_executor


_installed = False


def install() -> None:
    """Patch asyncio (once per process)."""
    global _installed
    if _installed:
        return
    _installed = True
    _patch(asyncio.base_events.BaseEventLoop, "create_task", _create_task)
    _patch(asyncio.base_events.BaseEventLoop, "run_until_complete", _run_until_complete)
    _patch(asyncio.base_events.BaseEventLoop, "run_in_executor", _run_in_executor)
    for mod in (asyncio, asyncio.tasks):
        setattr(mod, "sleep", _sleep)  # noqa: B010
        if sys.version_info < (3, 12):
            setattr(mod, "wait_for", _wait_for)  # noqa: B010
    _taskgroup_patches()
    if _GatheringFuture is not None:
        _add_await(_GatheringFuture)
    if "_set_task_name" in asyncio.tasks.__dict__:
        tasks_module: Any = asyncio.tasks
        tasks_module._set_task_name = _set_task_name(tasks_module._set_task_name)

    lock: Any = asyncio.locks.Lock
    _constructor(lock, "lock", None, _avail_after(lambda s, op: not s._locked))
    _ablocking(lock, "acquire", "acquire", on_ok=_hold)
    _releasing(lock, "release", "release", after=_unhold)

    sem: Any = asyncio.locks.Semaphore
    _constructor(sem, "semaphore", _sem_options, _avail_after(lambda s, op: s._value > 0))
    _constructor(asyncio.locks.BoundedSemaphore, "bounded_semaphore", _sem_options,
                 _avail_after(lambda s, op: s._value > 0))
    _ablocking(sem, "acquire", "acquire", on_ok=_hold)
    _releasing(sem, "release", "release", after=_unhold)
    if "release" in asyncio.locks.BoundedSemaphore.__dict__:
        # (it checks its bound, then calls Semaphore.release: that inner call, which gives
        # the unit back, is not recorded again)
        _releasing(asyncio.locks.BoundedSemaphore, "release", "release", quiet=True)

    ev: Any = asyncio.locks.Event
    _constructor(ev, "event", None, _avail_after(lambda s, op: s.is_set()))
    _ablocking(ev, "wait", "wait")
    _releasing(ev, "set", "set", quiet=True)
    _releasing(ev, "clear", "clear", quiet=True)

    cond: Any = asyncio.locks.Condition
    _constructor(cond, "condition", _cond_options, _cond_after)
    _ablocking(cond, "wait", "wait")
    _releasing(cond, "notify", "notify", quiet=True)
    _releasing(cond, "notify_all", "notify_all", quiet=True)

    q: Any = asyncio.queues.Queue
    _constructor(q, "queue", _queue_options,
                 _avail_after(lambda s, op: bool(s.qsize()) if op == "get" else not s.full()))
    _ablocking(q, "put", "put")
    _ablocking(q, "get", "get", item_out=True)
    _nowait(q, "put_nowait", "put", asyncio.queues.QueueFull)
    _nowait(q, "get_nowait", "get", asyncio.queues.QueueEmpty)


def _sem_options(self: Any, value: int = 1) -> dict[str, Any]:
    return {"value": value}


def _queue_options(self: Any, maxsize: int = 0, *args: Any, **kwargs: Any) -> dict[str, Any]:
    return {"maxsize": max(0, int(maxsize))}
