"""Record the standard library's primitives when the user's code makes and uses them.

Patched in place: the methods of the Python classes (``threading.Semaphore``, ``Event``,
``Condition``, ``Barrier``, ``Thread``, ``queue.Queue``...) are replaced on their class, so
that the classes stay the same objects (pickling under spawn, ``isinstance``, Manager
proxies keep working); what this module adds to them is private (``_tracer_p``). The C locks
cannot be patched: ``threading.Lock`` and ``RLock`` become factories that give the user's code
a :class:`TracedLock` around a real lock, and everyone else the real lock.

An object is recorded when the frame that makes it is the user's (``_names.created_by_user``):
the locks inside an Event, a Queue, logging or Thread start-up stay bare. A recorded object's
operations record events through the seam (``_seam``) whatever code calls them.
"""

from __future__ import annotations

import _thread
import queue
import sys
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any

from tracer.program import _names, _seam
from tracer.program._seam import Actor, Prim, payload_fields

_real_lock = _thread.allocate_lock
_real_rlock: Callable[[], Any] = getattr(_thread, "RLock", None) or threading._PyRLock  # type: ignore[attr-defined]
_real_sleep = time.sleep
_get_ident = threading.get_ident
_display = _names._display  # (the one dict: set_root clears it, never replaces it)
_ORIGINAL: dict[tuple[Any, str], Any] = {}


def _new_prim(obj: Any, ptype: str, frame: Any, options: dict[str, Any] | None = None) -> Prim:
    rec = _seam.REC
    assert rec is not None
    name = _names.name_at(frame, ptype)
    site = f"{_names.display(frame.f_code.co_filename)}:{frame.f_lineno}" if frame else None
    p = rec.register(Prim(name, ptype, site, options))
    p.real = obj
    return p


def user_traceback(exc: BaseException) -> str:
    """The program's traceback of ``exc``: its own frames only (none of tracer's or of the
    standard library's), then the exception."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__)
              if _names.display(f.filename) is not None]
    lines = ["Traceback (most recent call last):"]
    for f in frames:
        lines.append(f'  File "{_names.display(f.filename)}", line {f.lineno}, in {f.name}')
        if f.line:
            lines.append(f"    {f.line.strip()}")
    lines += [ln.rstrip("\n") for ln in traceback.format_exception_only(type(exc), exc)]
    return "\n".join(lines)


def last_user_site(exc: BaseException) -> str | None:
    """``bank.py:12``: the innermost frame of the user's code in ``exc``'s traceback."""
    site = None
    for f in traceback.extract_tb(exc.__traceback__):
        shown = _names.display(f.filename)
        if shown is not None:
            site = f"{shown}:{f.lineno}"
    return site


# --- the C locks -------------------------------------------------------------------------------


# a free run's thread that finds a recorded lock taken naps and tries again, a few times,
# before it waits for the lock in the OS: a waiter woken by the release takes the lock while
# the releaser still runs, then waits for the GIL, and the two go by turns, a GIL hand-off
# per operation (a lock convoy), where the bare program's releaser takes the lock again
# before the waiter wakes; a nap lets the holder run on, as the bare program's does
_NAPS = 3
_NAP = 5e-5  # seconds (the OS makes it ~60 us)


def _nap_for(rec: _seam.Recorder, real: Any) -> bool:
    """Whether ``real`` was taken after a few naps (a free run only: a schedule's baton
    decides who waits)."""
    if rec.scheduler.__class__ is not _seam.Scheduler:
        return False
    for _ in range(_NAPS):
        _real_sleep(_NAP)
        if real.acquire(False):
            return True
    return False


class TracedLock:
    """A real ``threading.Lock`` the user's code made, recorded."""

    # (_at: (code, line, site) of the last ``with`` line, which a thread's ``__exit__`` and
    # the next ``__enter__`` on the same line reuse; one tuple, read and written at once)
    __slots__ = ("__weakref__", "_at", "_lock", "_p")
    _kind = "lock"

    def __init__(self, real: Any, p: Prim) -> None:
        self._lock = real
        self._p = p
        self._at: tuple[Any, int, str] = (None, 0, "")
        p.available = lambda op: not real.locked()

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        rec = _seam.REC
        real = self._lock
        if rec is None or rec.closed:
            return bool(real.acquire(blocking, timeout))
        a = rec.current()
        name = self._p.name
        site = _names.user_site()
        payload: dict[str, Any] | None = None
        if not blocking:
            payload = {"blocking": False}
        elif timeout is not None and timeout >= 0:
            payload = {"timeout": timeout}
        rec.emit(a, "acquire", name, "call", None, site, payload)
        ok = rec.scheduler.try_first(a, blocking, timeout) and bool(real.acquire(False))
        if not ok and blocking and (timeout is None or timeout < 0):
            ok = _nap_for(rec, real)
        if not ok and blocking and timeout != 0:
            limit = None if timeout is None or timeout < 0 else timeout
            ok = rec.scheduler.block(a, self._p, "acquire",
                                     lambda t: bool(real.acquire(True, -1 if t is None else t)),
                                     limit)
        if ok:
            rec.hold(a, name)
        rec.emit(a, "acquire", name, "return",
                 "ok" if ok else ("fail" if not blocking else "timeout"), site, None)
        return ok

    def release(self) -> None:
        rec = _seam.REC
        if rec is None or rec.closed:
            self._lock.release()
            return
        a = rec.current()
        self._released(rec, a, _names.user_site())

    def locked(self) -> bool:
        return bool(self._lock.locked())

    # ``with lock:`` is the hot path of most programs: acquire() and release() written out
    # for it (the same events), with the site read from the calling frame when it is the
    # user's (one frame, not a walk up the stack; the last one kept for the same line) and the
    # actor from the thread's ident; a free run's events appended here, the lock's holders
    # counted inline, and a lock taken at once takes the call's time for its return
    def _with_site(self) -> str | None:
        f = sys._getframe(2)
        code = f.f_code
        line = f.f_lineno
        at = self._at
        if at[0] is code and at[1] == line:
            return at[2]
        shown = _display.get(code.co_filename)
        if not shown:
            return _names.user_site()
        site = f"{shown}:{line}"
        self._at = (code, line, site)
        return site

    def __enter__(self) -> bool:
        rec = _seam.REC
        real = self._lock
        if rec is None or rec.closed:
            return bool(real.acquire())
        a = rec.by_ident.get(_get_ident()) or rec.current()
        site = self._with_site()
        p = self._p
        name = p.name
        if a.quiet or a.turned or rec.scheduler.__class__ is not _seam.Scheduler:
            rec.emit(a, "acquire", name, "call", None, site, None)
            ok = (rec.scheduler.try_first(a, True, None) and bool(real.acquire(False))) or \
                rec.scheduler.block(
                a, p, "acquire", lambda t: bool(real.acquire(True, -1 if t is None else t)),
                None)
            if ok:
                rec.hold(a, name)
            rec.emit(a, "acquire", name, "return", "ok" if ok else "timeout", site, None)
            return ok
        buf = a.buf
        actor = a.name
        t = rec.clock() - rec.t0
        buf.append((next(rec.seq), t, actor, "acquire", name, "call", None, site, None))
        if not real.acquire(False):
            ok = _nap_for(rec, real) or rec.scheduler.block(
                a, p, "acquire", lambda t: bool(real.acquire(True, -1 if t is None else t)),
                None)
            t = rec.clock() - rec.t0
            if not ok:  # (a free run's untimed wait ends with the lock: not seen)
                buf.append((next(rec.seq), t, actor, "acquire", name, "return", "timeout",
                            site, None))
                return False
        h = rec.holders[name]
        h[actor] = h.get(actor, 0) + 1
        buf.append((next(rec.seq), t, actor, "acquire", name, "return", "ok", site, None))
        return True

    def __exit__(self, *exc: object) -> None:
        rec = _seam.REC
        if rec is None or rec.closed:
            self._lock.release()
            return
        a = rec.by_ident.get(_get_ident()) or rec.current()
        site = self._with_site()
        if a.quiet or a.turned or rec.scheduler.__class__ is not _seam.Scheduler:
            self._released(rec, a, site)
            return
        name = self._p.name
        actor = a.name
        buf = a.buf
        buf.append((next(rec.seq), rec.clock() - rec.t0, actor, "release", name, None, None,
                    site, None))
        try:
            self._lock.release()
        except RuntimeError as err:
            buf[-1] = (*buf[-1][:8], {"error": str(err)})
            raise
        h = rec.holders[name]
        if h.get(actor) == 1:
            del h[actor]
        else:  # (an rlock taken again, a lock another thread took)
            rec.unhold(a, name)

    def _released(self, rec: _seam.Recorder, a: Actor, site: str | None) -> None:
        """The release's event, then the real release (a failed one: its event says why)."""
        name = self._p.name
        seq = rec.emit(a, "release", name, None, None, site, None)
        try:
            self._lock.release()
        except RuntimeError as err:
            if seq >= 0:
                e = a.buf[-1]
                a.buf[-1] = (*e[:8], {"error": str(err)})
            raise
        rec.unhold(a, name)

    def _at_fork_reinit(self) -> None:
        self._lock._at_fork_reinit()

    def __repr__(self) -> str:
        return f"<traced {self._kind} {self._p.name} {self._lock!r}>"


class TracedRLock(TracedLock):
    """A real ``threading.RLock`` the user's code made (or a user's Condition's own lock),
    recorded."""

    __slots__ = ()
    _kind = "rlock"

    def __init__(self, real: Any, p: Prim) -> None:
        self._lock = real
        self._p = p
        self._at = (None, 0, "")
        rec = _seam.REC
        holders = rec.holders if rec is not None else {}

        def available(op: str) -> bool:
            return not holders.get(p.name)
        p.available = available

    def locked(self) -> bool:
        # (RLock has no locked() before 3.14: whether anyone holds it)
        rec = _seam.REC
        return bool(rec is not None and rec.holders.get(self._p.name))

    def _is_owned(self) -> bool:
        return bool(self._lock._is_owned())

    def _release_save(self) -> Any:
        state = self._lock._release_save()
        rec = _seam.REC
        if rec is not None:
            rec.holders[self._p.name].pop(rec.current().name, None)
        return state

    def _acquire_restore(self, state: Any) -> None:
        self._lock._acquire_restore(state)
        rec = _seam.REC
        if rec is not None:
            count = state[0] if isinstance(state, tuple) else 1
            rec.hold(rec.current(), self._p.name, count)


def _lock_factory() -> Any:
    frame = _names.created_by_user(2)
    if frame is None or _seam.REC is None:
        return _real_lock()
    real = _real_lock()
    return TracedLock(real, _new_prim(real, "lock", frame))


def _rlock_factory(*args: Any, **kwargs: Any) -> Any:
    frame = _names.created_by_user(2)
    if frame is None or _seam.REC is None:
        return _real_rlock(*args, **kwargs)
    real = _real_rlock()
    return TracedRLock(real, _new_prim(real, "rlock", frame))


# --- the Python classes: patched in place -------------------------------------------------------


def _patch(cls: Any, name: str, make: Callable[[Any], Any]) -> None:
    original = cls.__dict__[name]
    _ORIGINAL[(cls, name)] = original
    wrapper = make(original)
    wrapper.__name__ = getattr(original, "__name__", name)
    wrapper.__qualname__ = getattr(original, "__qualname__", name)
    wrapper.__doc__ = getattr(original, "__doc__", None)
    wrapper.__wrapped__ = original
    setattr(cls, name, wrapper)


def _traced_prim(lock: TracedLock) -> Prim:
    return lock._p


def _own_prim(obj: Any) -> Any:
    return obj.__dict__.get("_tracer_p")


def _constructor(cls: Any, ptype: str, options: Callable[..., dict[str, Any]] | None = None,
                 after: Callable[[Any, Prim], None] | None = None) -> None:
    """Record the instances of ``cls`` the user's code makes (the outermost constructor of a
    class hierarchy decides: a BoundedSemaphore is not also a Semaphore)."""
    cls._tracer_p = None
    _seam.PRIM_OF[cls] = _own_prim

    def make(init: Any) -> Any:
        def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
            if "_tracer_p" in self.__dict__ or _seam.REC is None:
                init(self, *args, **kwargs)
                return
            frame = _names.created_by_user(2)
            self.__dict__["_tracer_p"] = None  # (an inner constructor leaves it alone)
            init(self, *args, **kwargs)
            if frame is not None:
                opts = options(self, *args, **kwargs) if options is not None else None
                p = _new_prim(self, ptype, frame, opts)
                if after is not None:
                    after(self, p)
                self._tracer_p = p
        return __init__
    _patch(cls, "__init__", make)


def _blocking(cls: Any, method: str, op: str, wait: Callable[..., tuple[bool, Any]],
              on_ok: Callable[[Any, Actor, Prim], None] | None = None,
              item_out: bool = False, try_first: bool = True) -> None:
    """Record ``cls.method`` as a blocking op: ``wait(original, self, timeout, *args)`` makes
    the real call with that timeout and says (whether it happened, its return value).
    ``try_first``: a try that cannot block comes first (not for a condition's wait, which
    lets its lock go, nor a barrier's, which a timeout breaks). The real call's own inner
    operations (a condition's lock let go and taken back) are not recorded: the state pass
    knows what the op does."""

    def make(original: Any) -> Any:
        def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
            p = self._tracer_p
            rec = _seam.REC
            if p is None or rec is None or rec.closed:
                return original(self, *args, **kwargs)
            call, blocking, timeout = _call_args(op, args, kwargs)
            return record_blocking(
                rec, p, op, lambda t: wait(original, self, t, *call), blocking, timeout,
                try_first, (op == "put", call[0] if call else None), item_out,
                None if on_ok is None else lambda a: on_ok(self, a, p))
        return wrapper
    _patch(cls, method, make)


def record_blocking(rec: _seam.Recorder, p: Prim, op: str,
                    wait: Callable[[float | None], tuple[bool, Any]], blocking: bool,
                    timeout: float | None, try_first: bool,
                    item: tuple[bool, Any] = (False, None), item_out: bool = False,
                    on_ok: Callable[[Actor], None] | None = None) -> Any:
    """A recorded blocking op on ``p`` (every patched type's, the Manager proxies' too):
    ``wait(t)`` is the real operation with timeout t (0: one try; None: for ever),
    returning (whether it happened, its value). ``item``: (whether the call carries one,
    the item put); ``item_out``: the return carries the value got; ``on_ok``: what a
    success does besides (a hold taken)."""
    a = rec.current()
    quiet = a.quiet > 0  # (a quiet op is not one of the schedule's: tried at once)
    site = _names.user_site()
    payload: dict[str, Any] = {}
    if item[0]:
        payload["item"] = rec.shown(a, item[1])
    if not blocking:
        payload["blocking"] = False
    elif timeout is not None:
        payload["timeout"] = timeout
    rec.emit(a, op, p.name, "call", None, site, payload or None)
    value: Any = None
    a.quiet += 1
    try:
        # (the op's own quiet already counts here: the actor's quiet from before it decides)
        first = try_first and (quiet or rec.scheduler.tries_first or not blocking or
                               timeout == 0)
        ok, value = wait(0) if first else (False, None)
        if not ok and blocking and (timeout != 0 or not try_first):
            box: list[Any] = []

            def attempt(t: float | None) -> bool:
                done, v = wait(t)
                box.append(v)
                return bool(done)
            ok = rec.scheduler.block(a, p, op, attempt, timeout)
            value = box[-1] if box else None
    except BaseException as exc:
        a.quiet -= 1
        result = "broken" if isinstance(exc, threading.BrokenBarrierError) else "error"
        rec.emit(a, op, p.name, "return", result, site,
                 None if result == "broken" else {"error": f"{type(exc).__name__}: {exc}"})
        raise
    a.quiet -= 1
    if ok and on_ok is not None:
        on_ok(a)
    out = {"item": rec.shown(a, value)} if ok and item_out else None
    result = "ok" if ok else ("fail" if not blocking else "timeout")
    rec.emit(a, op, p.name, "return", result, site, out)
    if not ok and op in ("put", "get"):
        raise (queue.Full if op == "put" else queue.Empty)()
    return value


def _call_args(op: str, args: tuple[Any, ...], kwargs: dict[str, Any]
               ) -> tuple[tuple[Any, ...], bool, float | None]:
    """(the op's own arguments, blocking, timeout) of a patched call."""
    if op == "put":
        item = args[0] if args else kwargs.get("item")
        rest = args[1:]
        block = rest[0] if rest else kwargs.get("block", True)
        timeout = rest[1] if len(rest) > 1 else kwargs.get("timeout")
        return (item,), bool(block), timeout
    if op == "get":
        block = args[0] if args else kwargs.get("block", True)
        timeout = args[1] if len(args) > 1 else kwargs.get("timeout")
        return (), bool(block), timeout
    if op == "acquire":
        blocking = args[0] if args else kwargs.get("blocking", True)
        timeout = args[1] if len(args) > 1 else kwargs.get("timeout")
        return (), bool(blocking), timeout
    timeout = args[0] if args else kwargs.get("timeout")  # wait
    return (), True, timeout


def _releasing(cls: Any, method: str, op: str,
               after: Callable[[Any, Actor, Prim, tuple[Any, ...]], None] | None = None,
               quiet: bool = False) -> None:
    """Record ``cls.method`` as a releasing op: recorded before it acts."""

    def make(original: Any) -> Any:
        def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
            p = self._tracer_p
            rec = _seam.REC
            if p is None or rec is None or rec.closed:
                return original(self, *args, **kwargs)
            a = rec.current()
            n = args[0] if args else kwargs.get("n", 1)
            payload = {"n": n} if op == "release" and n != 1 else None
            seq = rec.emit(a, op, p.name, None, None, _names.user_site(), payload)
            if quiet:
                a.quiet += 1
            try:
                value = original(self, *args, **kwargs)
            except (RuntimeError, ValueError) as exc:
                if seq >= 0:
                    e = a.buf[-1]
                    a.buf[-1] = (*e[:8], {**payload_fields(e[8]), "error": str(exc)})
                raise
            finally:
                if quiet:
                    a.quiet -= 1
            if after is not None:
                after(self, a, p, args)
            return value
        return wrapper
    _patch(cls, method, make)


# waits: (original, self, timeout, *call) -> (happened, value)

def _sem_acquire(original: Any, self: Any, t: float | None) -> tuple[bool, Any]:
    ok = original(self, False) if t == 0 else original(self, True, t)
    return bool(ok), bool(ok)


def _wait_flag(original: Any, self: Any, t: float | None) -> tuple[bool, Any]:
    ok = original(self, t)
    return bool(ok), bool(ok)


def _cond_wait(original: Any, self: Any, t: float | None) -> tuple[bool, Any]:
    ok = original(self, t)
    return bool(ok), bool(ok)


def _barrier_wait(original: Any, self: Any, t: float | None) -> tuple[bool, Any]:
    index = original(self, t)
    return True, index


def _queue_put(original: Any, self: Any, t: float | None, item: Any) -> tuple[bool, Any]:
    try:
        if t == 0:
            original(self, item, False)
        else:
            original(self, item, True, t)
    except queue.Full:
        return False, None
    return True, None


def _queue_get(original: Any, self: Any, t: float | None) -> tuple[bool, Any]:
    try:
        if t == 0:
            return True, original(self, False)
        return True, original(self, True, t)
    except queue.Empty:
        return False, None


def _hold(self: Any, a: Actor, p: Prim) -> None:
    rec = _seam.REC
    if rec is not None:
        rec.hold(a, p.name)


def _unhold(self: Any, a: Actor, p: Prim, args: tuple[Any, ...]) -> None:
    rec = _seam.REC
    if rec is not None:
        rec.unhold(a, p.name, int(args[0]) if args else 1)


def _cond_options(self: Any, lock: Any = None) -> dict[str, Any]:
    if isinstance(lock, TracedLock):
        return {"lock": lock._p.name}
    return {}


def _cond_own_lock(self: Any, p: Prim) -> None:
    """A user's condition with no lock of the user's: its own lock is recorded as the
    condition itself (``with cond:`` is an acquire of ``cond``)."""
    if isinstance(self._lock, TracedLock):
        return
    real = _real_rlock()
    traced = TracedRLock(real, p)
    # what Condition.__init__ took from its lock, taken again from the traced one
    self._lock = traced
    self.acquire = traced.acquire
    self.release = traced.release
    self._release_save = traced._release_save
    self._acquire_restore = traced._acquire_restore
    self._is_owned = traced._is_owned


def _thread_init_after(self: Any, p: Prim) -> None:
    rec = _seam.REC
    assert rec is not None
    del rec.prims[p.name]  # (a thread is an actor, not a primitive)
    del rec.holders[p.name]


def _thread_patches() -> None:
    cls: Any = threading.Thread
    cls._tracer_p = None
    cls._tracer_name = None

    def init(original: Any) -> Any:
        def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
            if "_tracer_p" in self.__dict__ or _seam.REC is None:
                original(self, *args, **kwargs)
                return
            frame = _names.created_by_user(2)
            self.__dict__["_tracer_p"] = None
            original(self, *args, **kwargs)
            if frame is not None:
                self._tracer_p = True
        return __init__
    _patch(cls, "__init__", init)
    _patch(threading.Timer, "__init__", init)

    def start(original: Any) -> Any:
        def start(self: Any) -> None:
            rec = _seam.REC
            if not self._tracer_p or rec is None or rec.closed:
                original(self)
                return
            a = rec.current()
            self._tracer_name = rec.unique(self.name)
            rec.emit(a, "spawn", self._tracer_name, None, None, _names.user_site(), None)
            original(self)
        return start
    _patch(cls, "start", start)

    def bootstrap(original: Any) -> Any:
        def _bootstrap_inner(self: Any) -> None:
            rec = _seam.REC
            if not self._tracer_p or rec is None or rec.closed:
                original(self)
                return
            a = rec.adopt(self, name=self._tracer_name)
            run = self.run

            def traced_run() -> None:
                try:
                    run()
                except SystemExit:
                    rec.end(a)
                    raise
                except BaseException as exc:
                    rec.end(a, user_traceback(exc), last_user_site(exc))
                    # (the interpreter prints it: without this frame, as a bare run would;
                    # a bare raise adds no frame; 3.10's restores the traceback it caught)
                    if exc.__traceback__ is not None:
                        exc.__traceback__ = exc.__traceback__.tb_next
                    raise
                rec.end(a)
            self.run = traced_run
            original(self)
        return _bootstrap_inner
    _patch(cls, "_bootstrap_inner", bootstrap)

    def join(original: Any) -> Any:
        def join(self: Any, timeout: float | None = None) -> None:
            rec = _seam.REC
            name = self._tracer_name
            if name is None or rec is None or rec.closed or self is threading.current_thread():
                original(self, timeout)
                return
            record_join(rec, name, lambda t: original(self, t),
                        lambda: not self.is_alive(), timeout)
        return join
    _patch(cls, "join", join)


def _enter(self: Any) -> Any:
    return self.acquire()


def record_join(rec: _seam.Recorder, name: str, wait: Callable[[float | None], None],
                finished: Callable[[], bool], timeout: float | None) -> None:
    """A recorded join of actor ``name`` (a thread, a process): ``wait(t)`` is the real join
    with timeout ``t``, ``finished()`` whether the actor has ended."""
    a = rec.current()
    site = _names.user_site(3)
    rec.emit(a, "join", name, "call", None, site,
             {"timeout": timeout} if timeout is not None else None)

    def attempt(t: float | None) -> bool:
        wait(t)
        return finished()
    ok = attempt(0) or rec.scheduler.block(a, name, "join", attempt, timeout)
    rec.emit(a, "join", name, "return", "ok" if ok else "timeout", site, None)


def _sleep(seconds: float) -> None:
    rec = _seam.REC
    if rec is None or rec.closed or _names.created_by_user(2) is None:
        _real_sleep(seconds)
        return
    a = rec.current()
    site = _names.user_site()
    rec.emit(a, "sleep", None, "call", None, site, {"value": rec.shown(a, seconds)})
    rec.scheduler.sleep(a, seconds, _real_sleep)
    rec.emit(a, "sleep", None, "return", "ok", site, None)


def _sem_options(self: Any, value: int = 1) -> dict[str, Any]:
    return {"value": value}


def _barrier_options(self: Any, parties: int, *args: Any, **kwargs: Any) -> dict[str, Any]:
    return {"parties": parties}


def _queue_options(self: Any, maxsize: int = 0) -> dict[str, Any]:
    return {"maxsize": max(0, int(maxsize))}


def _avail_after(avail: Callable[[Any, str], bool]) -> Callable[[Any, Prim], None]:
    def after(self: Any, p: Prim) -> None:
        p.available = lambda op: avail(self, op)
    return after


class _SimpleQueue(queue.SimpleQueue):  # type: ignore[type-arg]
    """``queue.SimpleQueue``, recorded as a ``queue`` when the user's code makes one: a C
    type, whose methods cannot be patched in place, so ``queue.SimpleQueue`` becomes this
    subclass (the standard library's own, a thread pool's work queue, stay bare)."""

    def __init__(self) -> None:
        pass

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        super().put(item, block, timeout)

    def get(self, block: bool = True, timeout: float | None = None) -> Any:
        return super().get(block, timeout)

    def put_nowait(self, item: Any) -> None:
        self.put(item, False)

    def get_nowait(self) -> Any:
        return self.get(False)


_installed = False


def install() -> None:
    """Patch the standard library (once per process)."""
    global _installed
    if _installed:
        return
    _installed = True
    setattr(threading, "Lock", _lock_factory)  # noqa: B010 (replaced: a C type)
    setattr(threading, "RLock", _rlock_factory)  # noqa: B010
    setattr(time, "sleep", _sleep)  # noqa: B010
    for traced in (TracedLock, TracedRLock):
        _seam.PRIM_OF[traced] = _traced_prim

    sem: Any = threading.Semaphore
    _constructor(sem, "semaphore", _sem_options,
                 _avail_after(lambda s, op: s._value > 0))
    _constructor(threading.BoundedSemaphore, "bounded_semaphore", _sem_options,
                 _avail_after(lambda s, op: s._value > 0))
    _blocking(sem, "acquire", "acquire", _sem_acquire, on_ok=_hold)
    _releasing(sem, "release", "release", after=_unhold)
    if "release" in threading.BoundedSemaphore.__dict__:
        _releasing(threading.BoundedSemaphore, "release", "release", after=_unhold)
    for c in (sem, threading.BoundedSemaphore):
        if "__enter__" in c.__dict__:  # (an alias of the original acquire)
            c.__enter__ = _enter  # type: ignore[method-assign]

    ev = threading.Event
    _constructor(ev, "event", None, _avail_after(lambda s, op: s.is_set()))
    _blocking(ev, "wait", "wait", _wait_flag)
    _releasing(ev, "set", "set", quiet=True)
    _releasing(ev, "clear", "clear", quiet=True)

    cond = threading.Condition
    _constructor(cond, "condition", _cond_options, _cond_own_lock)
    _blocking(cond, "wait", "wait", _cond_wait, try_first=False)
    _releasing(cond, "notify", "notify", quiet=True)
    _releasing(cond, "notify_all", "notify_all", quiet=True)

    bar = threading.Barrier
    _constructor(bar, "barrier", _barrier_options,
                 _avail_after(lambda s, op: False))
    _blocking(bar, "wait", "wait", _barrier_wait, try_first=False)

    q = queue.Queue
    _constructor(q, "queue", _queue_options,
                 _avail_after(lambda s, op: bool(s.qsize()) if op == "get" else not s.full()))
    _blocking(q, "put", "put", _queue_put)
    _blocking(q, "get", "get", _queue_get, item_out=True)
    _constructor(_SimpleQueue, "queue", lambda self: {"maxsize": 0},
                 _avail_after(lambda s, op: not s.empty() if op == "get" else True))
    _blocking(_SimpleQueue, "put", "put", _queue_put)
    _blocking(_SimpleQueue, "get", "get", _queue_get, item_out=True)
    setattr(queue, "SimpleQueue", _SimpleQueue)  # noqa: B010 (replaced: a C type)

    _thread_patches()

    # concurrent.futures (and the logging it imports) only once something imports it: a
    # program that has no pool, a spawned child, start up without it
    if "concurrent.futures" in sys.modules:
        _install_futures()
    else:
        sys.meta_path.insert(0, _OnImport("concurrent.futures", _install_futures))


def _install_futures() -> None:
    from tracer.program import _patch_futures  # noqa: PLC0415 (only when it is needed)
    _patch_futures.install()


def at_exit() -> None:
    """What the interpreter does when the main thread's code is done and before it waits for
    the other threads (the thread exit hooks: pools nobody shut down let their workers go)."""
    futures = sys.modules.get("tracer.program._patch_futures")
    if futures is not None:
        futures.run_threading_atexits()


class _OnImport:
    """A one-shot import hook: once the module ``name`` has been executed, call ``then``."""

    def __init__(self, name: str, then: Callable[[], None]) -> None:
        self.name = name
        self.then = then

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        if fullname != self.name:
            return None
        sys.meta_path.remove(self)
        import importlib.util  # noqa: PLC0415 (once, when the module is imported)
        spec = importlib.util.find_spec(fullname)
        if spec is None or spec.loader is None:
            return spec
        loader = spec.loader
        then = self.then

        class _Loader:
            def create_module(self, spec: Any) -> Any:
                return loader.create_module(spec)

            def exec_module(self, module: Any) -> None:
                loader.exec_module(module)
                then()

            def __getattr__(self, name: str) -> Any:  # (get_source, is_package...)
                return getattr(loader, name)
        spec.loader = _Loader()  # type: ignore[assignment]
        return spec
