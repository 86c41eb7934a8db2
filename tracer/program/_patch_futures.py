"""Record the user's ``concurrent.futures`` thread pools, so that happens-before is complete.

Design. A ``ThreadPoolExecutor`` the user's code makes is recorded as a primitive of type
``queue`` (named after the user's variable: ``pool``): ``submit`` records a ``put`` (call and
return) whose item names the task, and the worker thread that takes the task records the
``get`` that returns the same item before it runs the function -- the state pass joins the
worker's clock with the submitter's there (a put -> the get of its item). Each Future of a
user's submit is a primitive of type ``event`` (named after the variable the future goes in,
``fut`` or ``futures[0]``, else ``pool.submit#1``): the worker records ``set`` on it once the
function returned (before the result is set), and ``result()``, ``exception()``,
``concurrent.futures.wait``, ``as_completed`` and the iteration of ``executor.map`` record a
``wait`` on it (an event's set -> the waits that return after it). The worker threads are
actors (adopted, named by their thread names: ``ThreadPoolExecutor-0_0``); while idle they
wait in ``get`` on the pool, and ``shutdown(wait=True)`` (the end of ``with ... as pool:``)
is a ``join`` of each, so a deadlock inside tasks is still seen live.

Patched in place like the rest (as ``_patch`` does): methods of ``ThreadPoolExecutor``,
``Future`` and ``_WorkItem``, and the module functions ``_worker``, ``wait`` and
``as_completed`` (the package's names too, before the program imports them). A
``ProcessPoolExecutor`` is left alone: its futures are not recorded, and work as they do bare.
"""

from __future__ import annotations

import ast
import concurrent.futures as cf
import linecache
import queue
import threading
import time
import weakref
from collections.abc import Iterable, Iterator
from concurrent.futures import _base
from concurrent.futures import thread as cf_thread
from types import FrameType
from typing import Any

from tracer.program import _names, _seam
from tracer.program._seam import Actor, Prim

_pools: list[weakref.ref[Any]] = []  # the recorded pools, in the order they were made
_pending = threading.local()  # .slot: (future's Prim, item, pool's name) while in submit
_orig_wait = _base.wait
_orig_as_completed = _base.as_completed
_orig_worker: Any = cf_thread._worker


# --- names -------------------------------------------------------------------------------------


def _fresh(base: str) -> str:
    """``base``, or ``base#2``... when it is taken (the names ``_names`` gives)."""
    with _names._lock:
        n = _names._taken.get(base, 0) + 1
        _names._taken[base] = n
    return base if n == 1 else f"{base}#{n}"


def _with_target(frame: FrameType) -> str | None:
    """``pool`` of ``with ThreadPoolExecutor() as pool:`` on the frame's line, else None."""
    line = linecache.getline(frame.f_code.co_filename, frame.f_lineno).strip()
    if not line.startswith(("with ", "async with ")) or not line.endswith(":"):
        return None
    try:
        tree = ast.parse(line + " pass")
    except SyntaxError:
        return None
    node = tree.body[0] if tree.body else None
    if not isinstance(node, (ast.With, ast.AsyncWith)):
        return None
    for item in node.items:
        if isinstance(item.context_expr, ast.Call) and isinstance(item.optional_vars, ast.Name):
            return item.optional_vars.id
    return None


def _pool_name(frame: FrameType) -> str:
    found = _names._target_of(_names._statement(frame.f_code.co_filename, frame.f_lineno))
    if found is not None:
        return _names.name_at(frame, "executor")
    return _fresh(_with_target(frame) or "ThreadPoolExecutor")


def _is_submit(node: ast.expr) -> bool:
    """Whether ``node`` is ``x.submit(...)`` or a comprehension of them."""
    if isinstance(node, (ast.ListComp, ast.GeneratorExp, ast.SetComp)):
        node = node.elt
    elif isinstance(node, ast.DictComp):
        node = node.key
    return (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
            and node.func.attr == "submit")


def _future_name(frame: FrameType | None, pool: str, k: int) -> str:
    """The variable a user's ``fut = pool.submit(...)`` puts the future in, else
    ``pool.submit#k`` (the pool's k-th task: a bare submit, or one of ``map``'s)."""
    if frame is not None:
        found = _names._target_of(_names._statement(frame.f_code.co_filename, frame.f_lineno))
        if found is not None and _is_submit(found[1]):
            return _names.name_at(frame, "event")
    return _fresh(f"{pool}.submit#{k}")


def _code_site(fn: Any) -> str | None:
    """``prog.py:12``: where the task's function is defined, when it is the user's."""
    code = getattr(fn, "__code__", None)
    if code is None:
        code = getattr(getattr(fn, "__func__", None), "__code__", None)
    if code is None:
        return None
    shown = _names.display(code.co_filename)
    return f"{shown}:{code.co_firstlineno}" if shown is not None else None


# --- the executor --------------------------------------------------------------------------------


def _init(original: Any) -> Any:
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        if "_tracer_p" in self.__dict__ or _seam.REC is None:
            original(self, *args, **kwargs)
            return
        frame = _names.created_by_user(2)
        self.__dict__["_tracer_p"] = None
        original(self, *args, **kwargs)
        rec = _seam.REC
        if frame is None or rec is None:
            return
        site = f"{_names.display(frame.f_code.co_filename)}:{frame.f_lineno}"
        p = rec.register(Prim(_pool_name(frame), "queue", site, {"maxsize": 0}))
        p.real = self
        work = self._work_queue
        p.available = lambda op: (not work.empty()) if op == "get" else True
        self._tracer_p = p
        self._tracer_n = 0
        _pools.append(weakref.ref(self))
    return __init__


def _submit(original: Any) -> Any:
    def submit(self: Any, fn: Any, /, *args: Any, **kwargs: Any) -> Any:
        p: Prim | None = self._tracer_p
        rec = _seam.REC
        if p is None or rec is None or rec.closed:
            return original(self, fn, *args, **kwargs)
        a = rec.current()
        site = _names.user_site()
        self._tracer_n += 1
        name = _future_name(_names.created_by_user(2), p.name, self._tracer_n)
        fp = rec.register(Prim(name, "event", site))
        rec.emit(a, "put", p.name, "call", None, site, {"item": name})
        _pending.slot = (fp, name, p.name)
        try:
            fut = original(self, fn, *args, **kwargs)
        except BaseException as exc:
            rec.emit(a, "put", p.name, "return", "error", site,
                     {"error": f"{type(exc).__name__}: {exc}"})
            raise
        finally:
            _pending.slot = None
        rec.emit(a, "put", p.name, "return", "ok", site, None)
        return fut
    return submit


def _work_init(original: Any) -> Any:
    def __init__(self: Any, future: Any, fn: Any, args: Any, kwargs: Any) -> None:
        original(self, future, fn, args, kwargs)
        slot = getattr(_pending, "slot", None)
        if slot is None:
            return
        _pending.slot = None  # (one work item per submit)
        fp, item, pool = slot
        fp.real = future
        fp.available = lambda op: bool(future.done())
        future._tracer_p = fp
        self._tracer_task = (item, pool)
    return __init__


def _work_run(original: Any) -> Any:
    def run(self: Any) -> None:
        task = self.__dict__.get("_tracer_task")
        rec = _seam.REC
        if task is None or rec is None or rec.closed:
            original(self)
            return
        fp: Prim = self.future._tracer_p  # (the worker's get of the task is recorded)
        a = rec.current()
        site = _code_site(self.fn)
        # (what _WorkItem.run does on 3.10-3.13, with the event's set before the result)
        if not self.future.set_running_or_notify_cancel():
            return
        try:
            result = self.fn(*self.args, **self.kwargs)
        except BaseException as exc:
            rec.emit(a, "set", fp.name, None, None, site, {"error": f"{type(exc).__name__}"})
            self.future.set_exception(exc)
            self = None  # (breaks the cycle with exc, as the original does)
        else:
            rec.emit(a, "set", fp.name, None, None, site, None)
            self.future.set_result(result)
    return run


class _IdleGet:
    """The work queue as a recorded pool's worker sees it: taking a task is a recorded ``get``
    on the pool (call, then the real take, then the return with the task's item), so that
    who takes which task is decided at the call's turn (a scheduler that runs one actor at a
    time decides it as recorded), and an idle worker waits in ``get`` for the watchdog."""

    __slots__ = ("_a", "_p", "_q", "_rec")

    def __init__(self, q: Any, rec: _seam.Recorder, a: Actor, p: Prim) -> None:
        self._q, self._rec, self._a, self._p = q, rec, a, p

    def get(self, block: bool = True, timeout: float | None = None) -> Any:
        q, rec, a, p = self._q, self._rec, self._a, self._p
        if not block or rec.closed:
            return q.get(block, timeout)
        box: list[Any] = []

        def attempt(t: float | None) -> bool:
            try:
                box.append(q.get(True, t) if t != 0 else q.get(False))
            except Exception:  # queue.Empty
                return False
            return True
        rec.emit(a, "get", p.name, "call", None, None, None)
        if (rec.scheduler.tries_first and attempt(0)) or \
                rec.scheduler.block(a, p, "get", attempt, timeout):
            work = box[-1]
            task = work.__dict__.get("_tracer_task") if work is not None else None
            rec.emit(a, "get", p.name, "return", "ok",
                     _code_site(work.fn) if work is not None else None,
                     {"item": task[0] if task is not None else None})
            return work
        rec.emit(a, "get", p.name, "return", "timeout", None, None)
        return q.get(False)  # (raises Empty, as the real get would)

    def get_nowait(self) -> Any:
        """(3.12+: a worker tries before it waits.) Always empty here: a task is taken by the
        recorded ``get``; the worker then counts itself idle, as it does after each task
        before 3.12."""
        raise queue.Empty

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        self._q.put(item, block, timeout)

    def __getattr__(self, name: str) -> Any:  # (anything else a later _worker may ask)
        return getattr(self._q, name)


def _worker(executor_reference: Any, work_queue: Any, *rest: Any) -> None:
    """A pool's worker thread: an actor while its pool is recorded, which ends with it."""
    rec = _seam.REC
    ex = executor_reference()
    p: Prim | None = getattr(ex, "_tracer_p", None) if ex is not None else None
    del ex
    if p is None or rec is None or rec.closed:
        # (a pool the standard library made, asyncio's for to_thread: its worker became an
        # actor if it ran the user's code on a recorded primitive; it ends with its thread,
        # so that the run does not wait for it)
        try:
            _orig_worker(executor_reference, work_queue, *rest)
        finally:
            rec = _seam.REC
            w = rec.by_ident.get(threading.get_ident()) if rec is not None else None
            if w is not None and rec is not None and not rec.closed:
                rec.end(w)
        return
    a = rec.current()
    threading.current_thread().__dict__["_tracer_worker"] = a.name  # (for shutdown's join)
    try:
        _orig_worker(executor_reference, _IdleGet(work_queue, rec, a, p), *rest)
    finally:
        if not rec.closed:
            rec.end(a)


class _NeverIdle:
    """A recorded pool's idle count as its submit sees it: never idle, so each submit starts a
    worker until there are ``max_workers`` (how many workers a pool has does not depend on
    how fast the others came back: a replay has the same workers); the workers' releases go
    to the real count."""

    __slots__ = ("_real",)

    def __init__(self, real: Any) -> None:
        self._real = real

    def acquire(self, blocking: bool = True, timeout: float | None = None) -> bool:
        return False

    def release(self, n: int = 1) -> None:
        self._real.release(n)


def _adjust(original: Any) -> Any:
    def _adjust_thread_count(self: Any) -> None:
        if self.__dict__.get("_tracer_p") is None:
            original(self)
            return
        real = self._idle_semaphore
        self._idle_semaphore = _NeverIdle(real)
        try:
            original(self)
        finally:
            self._idle_semaphore = real
    return _adjust_thread_count


def _shutdown(original: Any) -> Any:
    def shutdown(self: Any, wait: bool = True, *args: Any, **kwargs: Any) -> None:
        p: Prim | None = self.__dict__.get("_tracer_p")
        rec = _seam.REC
        if p is None or rec is None or rec.closed or not wait:
            original(self, wait, *args, **kwargs)
            return
        original(self, False, *args, **kwargs)  # (tells the workers to leave)
        a = rec.current()
        site = _names.user_site()
        for t in sorted(self._threads, key=lambda t: t.name):  # (a fixed order)
            w = t.__dict__.get("_tracer_worker")
            if w is None:  # (not an actor yet: it may become one and run a task still)
                t.join()
                w = t.__dict__.get("_tracer_worker")
                if w is not None:
                    rec.emit(a, "join", w, "call", None, site, None)
                    rec.emit(a, "join", w, "return", "ok", site, None)
                continue
            rec.emit(a, "join", w, "call", None, site, None)

            def attempt(timeout: float | None, t: Any = t) -> bool:
                t.join(timeout)
                return not t.is_alive()
            ok = attempt(0) or rec.scheduler.block(a, w, "join", attempt, None)
            rec.emit(a, "join", w, "return", "ok" if ok else "timeout", site, None)
    return shutdown


# --- the futures -------------------------------------------------------------------------------


def _await(fut: Any, timeout: float | None) -> bool:
    """Record ``wait`` (call and return) on a recorded future until it is done or the
    timeout passes: whether it is done."""
    p: Prim = fut._tracer_p
    rec = _seam.REC
    assert rec is not None
    a = rec.current()
    site = _names.user_site()
    rec.emit(a, "wait", p.name, "call", None, site,
             {"timeout": timeout} if timeout is not None else None)

    def attempt(t: float | None) -> bool:
        _orig_wait([fut], timeout=t)
        return bool(fut.done())
    ok = bool(fut.done()) or rec.scheduler.block(a, p, "wait", attempt, timeout)
    rec.emit(a, "wait", p.name, "return", "ok" if ok else "timeout", site, None)
    return ok


def _future_method(original: Any) -> Any:
    def method(self: Any, timeout: float | None = None) -> Any:
        rec = _seam.REC
        if self._tracer_p is None or rec is None or rec.closed:
            return original(self, timeout)
        _await(self, timeout)
        return original(self, 0)  # (done: its value; else TimeoutError, as it would)
    return method


def _recorded(fs: Iterable[Any]) -> list[Any]:
    return [f for f in fs if getattr(f, "_tracer_p", None) is not None]


def wait(fs: Any, timeout: float | None = None, return_when: str = cf.ALL_COMPLETED) -> Any:
    """``concurrent.futures.wait``, recording a ``wait`` on each recorded future it saw done
    (the others: a ``wait`` that timed out)."""
    rec = _seam.REC
    fs = set(fs)
    mine = _recorded(fs)
    if not mine or rec is None or rec.closed:
        return _orig_wait(fs, timeout, return_when)
    a = rec.current()
    site = _names.user_site()
    pending = [f for f in mine if not f.done()]
    box: list[Any] = []

    def attempt(t: float | None) -> bool:
        res = _orig_wait(fs, t, return_when)
        box.append(res)
        if return_when == cf.ALL_COMPLETED:
            return not res.not_done
        return bool(res.done)
    if pending:
        first: Prim = pending[0]._tracer_p
        rec.emit(a, "wait", first.name, "call", None, site,
                 {"timeout": timeout} if timeout is not None else None)
        attempt(0) or rec.scheduler.block(a, first, "wait", attempt, timeout)
        res = box[-1]
        rec.emit(a, "wait", first.name, "return", "ok" if first.real in res.done else "timeout",
                 site, None)
    else:
        res = _orig_wait(fs, 0, return_when)
    for f in mine:
        if f in res.done and (not pending or f is not pending[0]):
            rec.emit(a, "wait", f._tracer_p.name, "call", None, site, None)
            rec.emit(a, "wait", f._tracer_p.name, "return", "ok", site, None)
    return res


def as_completed(fs: Any, timeout: float | None = None) -> Iterator[Any]:
    """``concurrent.futures.as_completed``, recording a ``wait`` on each recorded future as it
    is handed out; while none of those left is done, the iteration waits (through the run's
    scheduler) in ``wait`` on one of them."""
    rec = _seam.REC
    fs = set(fs)
    if not _recorded(fs) or rec is None or rec.closed:
        yield from _orig_as_completed(fs, timeout)
        return
    end = None if timeout is None else time.monotonic() + timeout
    it = _orig_as_completed(fs, timeout)
    handed: set[Any] = set()
    while True:
        rest = fs - handed
        left = _recorded(rest)
        waited: Any = None
        if left and not any(f.done() for f in rest) and not rec.closed:
            # (recorded as a wait on one of them: 'ok' when it is the one that came)
            a = rec.current()
            waited = left[0]
            site = _names.user_site()
            rec.emit(a, "wait", waited._tracer_p.name, "call", None, site, None)

            def attempt(t: float | None, rest: set[Any] = rest) -> bool:
                _orig_wait(rest, t, cf.FIRST_COMPLETED)
                return any(f.done() for f in rest)
            limit = None if end is None else max(0.0, end - time.monotonic())
            rec.scheduler.block(a, waited._tracer_p, "wait", attempt, limit)
            if not waited.done():
                waited = None  # (another came first: this wait on it did not end ok)
            rec.emit(a, "wait", left[0]._tracer_p.name, "return",
                     "ok" if waited is not None else "timeout", site, None)
        try:
            f = next(it)  # (one is done now, or the timeout passed: its TimeoutError)
        except StopIteration:
            return
        handed.add(f)
        fp: Prim | None = getattr(f, "_tracer_p", None)
        if fp is not None and not rec.closed and f is not waited:
            a = rec.current()
            site = _names.user_site()
            rec.emit(a, "wait", fp.name, "call", None, site, None)
            rec.emit(a, "wait", fp.name, "return", "ok", site, None)
        yield f


def run_threading_atexits() -> None:
    """What the interpreter does when the main thread's code is done: the standard library's
    thread exit hooks (a pool nobody shut down lets its workers go and joins them)."""
    # (a recorded pool first, through its shutdown: the joins of its workers are recorded,
    # so a task that never ends is seen live rather than as the run's timeout)
    for ref in list(_pools):  # (in a fixed order: a replay does the same)
        pool = ref()
        if pool is None or not any(t.is_alive() for t in list(pool._threads)):
            continue
        try:
            pool.shutdown(wait=True)
        except Exception:  # pragma: no cover - (as below)
            pass
    hooks = list(getattr(threading, "_threading_atexits", []))
    for hook in reversed(hooks):
        try:
            hook()
        except Exception:  # pragma: no cover - (the interpreter ignores them too)
            pass


def _patch(cls: Any, name: str, make: Any) -> None:
    """Replace ``cls.name`` by ``make(original)`` in place (as ``_patch._patch`` does: this
    module is installed by ``_patch`` and so does not import it)."""
    original = cls.__dict__[name]
    wrapper = make(original)
    wrapper.__name__ = getattr(original, "__name__", name)
    wrapper.__qualname__ = getattr(original, "__qualname__", name)
    wrapper.__doc__ = getattr(original, "__doc__", None)
    wrapper.__wrapped__ = original
    setattr(cls, name, wrapper)


_installed = False


def install() -> None:
    """Patch ``concurrent.futures`` (once per process)."""
    global _installed
    if _installed:
        return
    _installed = True
    tpe: Any = cf_thread.ThreadPoolExecutor
    tpe._tracer_p = None
    _patch(tpe, "__init__", _init)
    _patch(tpe, "submit", _submit)
    _patch(tpe, "shutdown", _shutdown)
    _patch(tpe, "_adjust_thread_count", _adjust)
    _patch(cf_thread._WorkItem, "__init__", _work_init)
    _patch(cf_thread._WorkItem, "run", _work_run)
    cf_thread._worker = _worker  # type: ignore[assignment]  # (looked up when a worker starts)
    fut: Any = _base.Future
    fut._tracer_p = None
    _patch(fut, "result", _future_method)
    _patch(fut, "exception", _future_method)
    mods: tuple[Any, ...] = (_base, cf)
    for mod in mods:
        mod.wait = wait
        mod.as_completed = as_completed
