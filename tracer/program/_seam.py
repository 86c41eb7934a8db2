"""The seam of a traced program: the one place every patched primitive calls.

An *actor* is a thread of the program (the main thread, the threads it starts, and the
standard library's threads that run the user's code, such as a thread pool's workers); an
asyncio task is one too once ``_patch`` registers it. Each actor records into its own buffer,
taking no lock: an event is ``(seq, ts, actor, op, target, phase, result, site, payload)``
with ``seq`` from one ``itertools.count`` (atomic under the GIL) -- the same discipline as the
scenario engine's seam (``tracer/engine/_seam.py``): a blocking op records its ``call`` before
the real call and its ``return`` after, a releasing op records before it acts, so the order
of ``seq`` is consistent with what really happened.

An event's ``payload`` is None, a dict of its extra fields, or ``(value,)``: the shorthand of
``{"value": value}`` that every recorded shared access uses; a free run's access whose value
is a bare int, float, str or bool records the value itself (one allocation less, one object
less for the collector). A tuple of plain values is one the cyclic garbage collector stops
tracking; one holding a dict it walks at every collection, as long as the run lasts -- with a
dict per access the collector cost a program's access about 1 µs more (bench/programs.py).
:func:`payload_fields` reads every form.

What blocks is handed to the run's scheduler (:class:`Scheduler`): free running it is the
real call; a scheduler that runs one actor at a time (replay, explore) makes it an attempt.
The watchdog reads each actor's ``waiting`` and each primitive's ``holders``.
"""

from __future__ import annotations

import itertools
import math
import os
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

# a blocking call's real operation: called with a timeout in seconds (None: no limit; 0: one
# try), True when it happened
Attempt = Callable[[float | None], bool]

Event = tuple[int, float, str, str, "str | None", "str | None", "str | None", "str | None",
              "dict[str, Any] | tuple[Any] | None"]

_SCALARS = (str, int, float, bool, type(None))


def plain(value: Any, depth: int = 0) -> Any:
    """``value`` as a trace can hold it: JSON scalars and lists/dicts of them as they are,
    anything else as its ``repr`` (cut at 200 characters)."""
    if isinstance(value, _SCALARS):
        if isinstance(value, float) and math.isnan(value):
            return None
        return value
    if depth < 3 and isinstance(value, (list, tuple)) and len(value) <= 50:
        return [plain(v, depth + 1) for v in value]
    if depth < 3 and isinstance(value, dict) and len(value) <= 50:
        return {str(k): plain(v, depth + 1) for k, v in value.items()}
    try:
        text = repr(value)
    except Exception:  # a user's __repr__ may fail: the trace stays whole
        text = f"<{type(value).__name__}>"
    return text if len(text) <= 200 else text[:197] + "..."


_INT64 = (-(2**63), 2**64)  # the integers orjson writes


def json_safe(value: Any) -> Any:
    """``value`` with what JSON writers refuse made writable, for a document the events'
    writer refused (its fast path lets ints and strs through): an integer beyond 64 bits
    (``10**30``) as its ``repr``, a string with a lone surrogate (``"\\udc80"``: a file name
    ``os.fsdecode`` could not decode) with it escaped (``"\\\\udc80"``)."""
    if isinstance(value, int) and not isinstance(value, bool) and \
            not _INT64[0] <= value < _INT64[1]:
        return repr(int(value))
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, dict):
        return {json_safe(k) if isinstance(k, str) else k: json_safe(v)
                for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def dump_events(doc: Any) -> bytes:
    """``doc`` (a document of events) as JSON bytes, whatever integers the program wrote."""
    import orjson  # noqa: PLC0415  (a spawned child imports it only when it writes)

    try:
        return orjson.dumps(doc, option=orjson.OPT_NON_STR_KEYS)
    except orjson.JSONEncodeError:
        return orjson.dumps(json_safe(doc), option=orjson.OPT_NON_STR_KEYS)


class Actor:
    """One actor's buffer and watchdog-visible state. Only its own thread writes them."""

    __slots__ = ("access", "buf", "daemon", "ended", "error", "ident", "kind", "name", "pid",
                 "quiet", "result", "state", "thread", "tid", "turned", "waiting")

    def __init__(self, name: str, kind: str, ident: int, daemon: bool) -> None:
        self.name = name
        self.kind = kind  # thread, coroutine
        self.ident = ident
        self.daemon = daemon
        self.buf: list[Event] = []
        # (primitive or actor name, op, timed) while in a blocking call
        self.waiting: tuple[Any, str, bool] | None = None
        self.state = "running"  # -> done
        self.ended = threading.Event()  # (a real event: tracer's own)
        self.error: str | None = None
        self.result: str | None = None  # how it ended: ok, error, cancelled
        self.pid = 0
        self.tid = 0
        self.thread: Any = None
        self.quiet = 0  # > 0: inside a recorded op whose inner ops are not recorded
        # a shared access under a scheduler that orders them: its turn is taken before the
        # access is made (``access`` while it is taken), and its event is recorded without
        # another (``turned``)
        self.access = False
        self.turned = False


class Prim:
    """A recorded primitive: its name, type (a scenario primitive type: ``lock``...), where it
    was made, its options as a scenario would declare them, and who holds it now."""

    __slots__ = ("available", "name", "options", "real", "shown", "site", "type")

    def __init__(self, name: str, ptype: str, site: str | None,
                 options: dict[str, Any] | None = None) -> None:
        self.name = name
        self.type = ptype
        self.shown = f"<{ptype} {name}>"  # (the value of a variable holding it: Recorder.shown)
        self.site = site
        self.options = options or {}
        # whether a waiter on it would go on now (op -> bool), for the watchdog
        self.available: Callable[[str], bool] = lambda op: False
        self.real: Any = None

    def spec(self) -> dict[str, Any]:
        return {"type": self.type, **self.options, **({"site": self.site} if self.site else {})}


class Scheduler:
    """What decides when the program's actors go (see ``engine/schedule/_protocol`` for the
    scenario engine's richer protocol, which this mirrors). The free run's is this one."""

    # whether a blocking op may try its real operation once before it calls ``block`` (a
    # free run: yes; a scheduler that runs one actor at a time tries it in ``block``, when
    # the op's turn comes: a get tried at once may take the item another's get took first)
    tries_first = True

    def try_first(self, actor: Actor, blocking: bool, timeout: float | None) -> bool:
        """Whether a blocking op tries its real operation once before ``block``: a free run's
        does, and under any scheduler a non-blocking or timeout-0 op (that try is the op) and
        a quiet one (inside another's recording: no op of the schedule's)."""
        return self.tries_first or not blocking or timeout == 0 or actor.quiet > 0

    def turn(self, actor: Actor) -> None:
        """Before ``actor`` records an event (one-at-a-time schedulers: wait for its turn)."""

    def block(self, actor: Actor, target: Any, op: str, attempt: Attempt,
              timeout: float | None) -> bool:
        """Stand in for a blocking call on ``target`` whose ``call`` is recorded: whether its
        real operation happened (``attempt``) before ``timeout``."""
        actor.waiting = (target, op, timeout is not None)
        try:
            return attempt(timeout)
        finally:
            actor.waiting = None

    def sleep(self, actor: Actor, seconds: float, real: Callable[[float], None]) -> None:
        """Stand in for ``time.sleep(seconds)``."""
        real(seconds)

    async def ablock(self, actor: Actor, target: Any, op: str,
                     attempt: Callable[[], Awaitable[Any]]) -> Any:
        """Stand in for a blocking await of a coroutine actor on ``target`` (an asyncio
        primitive's ``acquire``, ``wait``, ``put``, ``get``) whose ``call`` is recorded:
        ``attempt()`` is the real operation, awaited to its end; its value is returned. It
        must never block the event loop's thread (a coroutine actor shares it)."""
        actor.waiting = (target, op, False)
        try:
            return await attempt()
        finally:
            actor.waiting = None

    async def asleep(self, actor: Actor, seconds: float,
                     real: Callable[[float], Awaitable[Any]]) -> Any:
        """Stand in for ``await asyncio.sleep(seconds)``."""
        return await real(seconds)

    def started(self, actor: Actor) -> None:
        """``actor`` begins (its first event is next)."""

    def ended(self, actor: Actor) -> None:
        """``actor`` has recorded its end."""


class Recorder:
    """The events of one process of the program, and what the watchdog reads."""

    def __init__(self, t0: float, scheduler: Scheduler | None = None) -> None:
        self.t0 = t0
        self.clock = time.perf_counter
        self.seq = itertools.count()
        self.scheduler = scheduler or Scheduler()
        self.by_ident: dict[int, Actor] = {}
        # asyncio task -> its actor, for the tasks that run the user's code
        self.tasks: dict[Any, Actor] = {}
        # the task running in the calling thread, or None (set by _patch_asyncio)
        self.task_now: Callable[[], Any] = lambda: None
        self.actors: dict[str, Actor] = {}
        self.prims: dict[str, Prim] = {}
        self.holders: dict[str, dict[str, int]] = {}
        self.engine: list[Event] = []
        self.closed = False
        self._mu = threading.Lock()  # registering actors and primitives
        self._names: dict[str, int] = {}
        # called when an actor ends (wakes the watchdog)
        self.on_change: Callable[[], object] = lambda: None

    # --- actors
    def current(self) -> Actor:
        """The calling task's actor inside a task of the user's, else the calling thread's
        (a thread never seen yet becomes one)."""
        if self.tasks:
            task = self.task_now()
            if task is not None:
                t = self.tasks.get(task)
                if t is not None:
                    return t
        ident = threading.get_ident()
        a = self.by_ident.get(ident)
        if a is None:
            a = self.adopt(threading.current_thread())
        return a

    def unique(self, name: str) -> str:
        with self._mu:
            n = self._names.get(name, 0) + 1
            self._names[name] = n
        return name if n == 1 else f"{name}#{n}"

    def adopt(self, thread: threading.Thread, kind: str = "thread",
              name: str | None = None) -> Actor:
        """Make ``thread`` (the calling thread) an actor, and record its start (``name``:
        the one its ``spawn`` gave it)."""
        ident = threading.get_ident()
        a = Actor(name or self.unique(thread.name), kind, ident, bool(thread.daemon))
        a.thread = thread
        a.tid = threading.get_native_id()
        a.pid = os.getpid()
        with self._mu:
            self.by_ident[ident] = a
            self.actors[a.name] = a
        self.scheduler.started(a)
        self.emit(a, "start", None, None, None, None, None)
        return a

    def register_task(self, task: Any, a: Actor) -> None:
        """Make ``a`` the actor of the asyncio task ``task`` (its ``start`` is next)."""
        with self._mu:
            self.actors[a.name] = a
            self.tasks[task] = a
        self.scheduler.started(a)

    def unregister_task(self, task: Any) -> None:
        with self._mu:
            self.tasks.pop(task, None)

    def end(self, a: Actor, error: str | None = None, site: str | None = None,
            extra: dict[str, Any] | None = None, result: str | None = None) -> None:
        """Record ``a``'s end (``error``: how it failed; ``result``: ``cancelled`` for a
        cancelled task)."""
        if a.state == "done":
            return
        a.error = error
        a.result = result or ("error" if error else "ok")
        payload = {"error": error, **(extra or {})} if error else (extra or None)
        self.emit(a, "end", None, None, a.result, site, payload)
        a.state = "done"
        a.waiting = None
        with self._mu:
            self.by_ident.pop(a.ident, None)
        a.ended.set()
        self.scheduler.ended(a)
        self.on_change()

    # --- primitives
    def register(self, prim: Prim) -> Prim:
        with self._mu:
            self.prims[prim.name] = prim
            self.holders.setdefault(prim.name, {})
        return prim

    def hold(self, a: Actor, name: str, n: int = 1) -> None:
        h = self.holders[name]
        h[a.name] = h.get(a.name, 0) + n

    def unhold(self, a: Actor, name: str, n: int = 1) -> None:
        h = self.holders[name]
        k = h.get(a.name, 0)
        if k > n:
            h[a.name] = k - n
        elif k:
            del h[a.name]
        elif h:  # (a semaphore has no owner: a release by another gives one back)
            other = next(iter(h))
            if h[other] > n:
                h[other] -= n
            else:
                del h[other]

    def shown(self, a: Actor, value: Any) -> Any:
        """``value`` as the trace holds it (see :func:`plain`), made without recording: its
        ``repr`` may be the user's code, whose accesses are not the program's. A recorded
        primitive is shown by its type and name (``<lock lock_a>``): its ``repr`` cost a read
        of a global lock 1 µs, and said what the replay need not reproduce (its address,
        whether it is held at that moment)."""
        of = PRIM_OF.get(value.__class__)
        if of is not None:
            p = of(value)
            if p.__class__ is Prim:
                return p.shown
        a.quiet += 1
        try:
            return plain(value)
        finally:
            a.quiet -= 1

    def access_turn(self, a: Actor) -> None:
        """A shared access's turn, before it is made (under a baton: the scheduler knows what
        the actor is about to do); its record then takes no second turn."""
        a.access = True
        try:
            self.scheduler.turn(a)
        finally:
            a.access = False
        a.turned = True

    # --- recording
    def emit(self, a: Actor, op: str, target: str | None, phase: str | None,
             result: str | None, site: str | None,
             payload: dict[str, Any] | tuple[Any] | None) -> int:
        if a.quiet:
            return -1
        if a.turned:
            a.turned = False
        else:
            self.scheduler.turn(a)
        seq = next(self.seq)
        a.buf.append((seq, self.clock() - self.t0, a.name, op, target, phase, result, site,
                      payload))
        return seq

    def engine_event(self, op: str, payload: dict[str, Any]) -> int:
        seq = next(self.seq)
        self.engine.append((seq, self.clock() - self.t0, "", op, None, None, None, None,
                            payload))
        return seq

    def events(self) -> list[Event]:
        """Every event so far, in ``seq`` order (a snapshot: actors may go on recording)."""
        out: list[Event] = list(self.engine)
        for a in list(self.actors.values()):
            out += a.buf[:]
        out.sort(key=lambda e: e[0])
        return out

    def progress(self) -> tuple[int, int]:
        """(events recorded, actors ended): changes whenever anyone moves."""
        actors = list(self.actors.values())
        return (sum(len(a.buf) for a in actors), sum(a.state == "done" for a in actors))


# the classes of a value that is its own payload (exact classes)
BARE_PAYLOAD = frozenset((int, float, str, bool))


def payload_fields(payload: Any) -> dict[str, Any]:
    """An event's payload as a dict, empty for None (``(value,)``, a JSON list once written,
    and a bare int, float, str or bool are ``{"value": value}``)."""
    if payload is None:
        return {}
    cls = payload.__class__
    if cls is dict:
        fields: dict[str, Any] = payload
        return fields
    if cls is tuple or cls is list:
        return {"value": payload[0]}
    return {"value": payload}


# class -> how to find an instance's Prim (None: not recorded), for the classes whose
# instances the patches record (exact classes: a user's subclass may have its own repr)
PRIM_OF: dict[type, Callable[[Any], Any]] = {}


# the recorder of this process: None until the host installs one (the patches then record)
REC: Recorder | None = None


def install(rec: Recorder | None) -> None:
    global REC
    REC = rec
