"""The seam: the one place every instrumented primitive calls.

Design. Each actor owns an :class:`ActorCtx` with a private event buffer, so recording takes
no lock: an event is ``(seq, ts, tag, payload)`` appended to the actor's own list. ``seq``
comes from one ``itertools.count`` shared by all actors; ``next()`` on it is atomic under the
GIL, which gives a total order. Because a blocking op is recorded as ``call`` before the real
call and ``return`` after it, and a releasing op before the real call, that order is consistent
with what really happened (a release's seq is below the seq of the acquire return it enabled).

``tag`` is an interned :class:`Tag` holding the constant part of an event (actor, op, target,
phase, result) together with its JSON text, so the hot path allocates one small tuple and the
trace writer formats each event with one ``%``.

Besides recording, the seam keeps the little state the watchdog needs: what each actor waits
for (``waiting``), what it may still do (``caps``, set by each compiled step), and per primitive
who holds it. The run's scheduler sits behind the seam (``engine/schedule``): free running
under ``run``, the recorded order under ``replay``, one actor at a time under ``explore``; the
seam only calls the hooks its protocol declares.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import orjson

from tracer.prims._shell import POLL, Abort, ActorFailure

if TYPE_CHECKING:
    from tracer.engine.schedule._protocol import Scheduler


class ActorReturn(Exception):
    """A ``return`` step: end this actor now (``with`` blocks still release)."""


def ending(exc: BaseException | None) -> tuple[str | None, str | None]:
    """How an actor's program ended, from what it raised (None: it ran to its end): the
    result of its `end` event (None when the run was closed under it) and its error."""
    if exc is None or isinstance(exc, ActorReturn):
        return "ok", None
    if isinstance(exc, ActorFailure):
        return "error", str(exc)
    if isinstance(exc, (Abort, asyncio.CancelledError)):
        return None, None
    if isinstance(exc, (ConnectionError, EOFError)):
        # pipes report their own errors: only a Manager's proxy (shared variables, process
        # queues) fails so, when the Manager process has died under the run
        return "error", (f"lost the connection to the Manager process, which holds the shared "
                         f"variables and process queues ({type(exc).__name__}: {exc})")
    # a bug of ours must not hang or crash the run: it ends this actor, and says so
    return "error", f"internal error in tracer: {type(exc).__name__}: {exc}"


def end_payload(ctx: ActorCtx, error: str | None) -> dict[str, Any] | None:
    """The payload of an actor's ``end`` event: its error, and the step it failed at (that
    step's line is the event's own ``line``: see :func:`end_tag`)."""
    if not error:
        return None
    return {"error": error, **{k: v for k, v in (ctx.failed_at or {}).items() if k != "line"}}


def end_tag(ctx: ActorCtx, result: str, error: str | None) -> Tag:
    """The tag of an actor's ``end``: at the line of the step it failed at, if it failed at
    one, else at the line of its declaration."""
    line = (ctx.failed_at or {}).get("line") if error else None
    if line is None:
        return ctx.rt.life_tag(ctx.name, "end", result)
    return ctx.rt.tag(ctx.name, "end", None, None, result, line)


def _js(value: str) -> str:
    return orjson.dumps(value).decode()


class Tag:
    """The constant part of an event, with its JSON text made once (``json``).

    The text is made when first asked for, by the trace writer: a step's tags are made when
    it is compiled, six per blocking op (call, and each result it may return), most of which
    no event of the run ever carries (10,000 coroutine actors made 90,000 tags)."""

    __slots__ = ("actor", "json", "line", "op", "phase", "result", "target")
    json: str

    def __init__(self, actor: str | None, op: str, target: str | None, phase: str | None,
                 result: str | None, line: int | None = None) -> None:
        self.actor = actor
        self.op = op
        self.target = target
        self.phase = phase
        self.result = result
        # the YAML line of the step that makes the event: a tag is made per step when the
        # step is compiled, so the line costs nothing at run time (it is in ``json``)
        self.line = line

    def __getattr__(self, name: str) -> str:
        """``json``, the first time: the slot is filled, later reads do not come here."""
        if name != "json":
            raise AttributeError(name)
        actor, op, target, phase = self.actor, self.op, self.target, self.phase
        result, line = self.result, self.line
        parts = [f'"actor":{_js(actor) if actor is not None else "null"}', f'"op":"{op}"']
        if target is not None:
            parts.append(f'"target":{_js(target)}')
        if phase is not None:
            parts.append(f'"phase":"{phase}"')
        if result is not None:
            parts.append(f'"result":"{result}"')
        if line is not None:
            parts.append(f'"line":{int(line)}')
        text = self.json = ",".join(parts)
        return text


Record = tuple[int, float, Tag, "dict[str, Any] | None"]
# what a tag is interned by: (actor, op, target, phase, result, line)
TagKey = tuple[str | None, str, str | None, str | None, str | None, int | None]


class Runtime:
    """State shared by all actors of one run: the clock, the seq counter, the abort flag."""

    def __init__(self, scheduler: Scheduler,
                 tags: dict[TagKey, Tag] | None = None) -> None:
        self.seq = itertools.count()
        self.clock = time.perf_counter
        self.t0 = self.clock()
        self.closed = False
        self.abort_event = threading.Event()  # set together with `closed`, wakes sleepers
        self.scheduler = scheduler
        self.engine_buf: list[Record] = []
        self.actors: dict[str, ActorCtx] = {}
        # variable -> the lock under which its accesses take their seq (see _compile's
        # "Shared variables"); a process run puts multiprocessing locks here
        self.var_locks: dict[str, Any] = {}
        # the variables whose accesses need no lock (``_compile.unlocked_variables``), once
        # the first actor was compiled
        self.unlocked_vars: frozenset[str] | None = None
        # interned tags; runs of one exploration share them (a tag is immutable)
        self._tags: dict[TagKey, Tag] = {} if tags is None else tags
        # actor -> the YAML line of its declaration (a ``count:`` copy: its base's), for its
        # ``start`` and ``end`` events; filled when the actor's program is compiled
        self.actor_lines: dict[str, int] = {}

    def tag(self, actor: str | None, op: str, target: str | None = None,
            phase: str | None = None, result: str | None = None,
            line: int | None = None) -> Tag:
        key = (actor, op, target, phase, result, line)
        t = self._tags.get(key)
        if t is None:
            t = self._tags[key] = Tag(actor, op, target, phase, result, line)
        return t

    def life_tag(self, actor: str, op: str, result: str | None = None) -> Tag:
        """The tag of an actor's ``start`` or ``end``: at the line of its declaration."""
        return self.tag(actor, op, None, None, result, self.actor_lines.get(actor))

    def var_lock(self, var: str) -> Any:
        """The lock of shared variable ``var`` (made at compile time, before any actor runs)."""
        lock = self.var_locks.get(var)
        if lock is None:
            lock = self.var_locks[var] = threading.Lock()
        return lock

    def close(self) -> None:
        """End the run: every actor's next seam call or poll raises Abort."""
        self.closed = True
        self.abort_event.set()

    def engine_event(self, op: str, actor: str | None = None, target: str | None = None,
                     result: str | None = None, ts: float | None = None,
                     **payload: Any) -> int:
        """Record an event of the engine itself (deadlock, stall, timeout, abandoned). An
        actor's ``end`` that the engine records (it was killed, or abandoned) is at the line
        of the actor's declaration, as the actor's own ``end`` is; the others have no line."""
        seq = next(self.seq)
        when = self.clock() if ts is None else ts
        line = self.actor_lines.get(actor) if op == "end" and actor is not None else None
        self.engine_buf.append((seq, when, self.tag(actor, op, target, None, result, line),
                                payload or None))
        return seq


class ActorCtx:
    """One actor's recording buffer and watchdog-visible state. Only its own thread writes."""

    __slots__ = ("_append", "_clock", "_next", "buf", "caps", "daemon", "emit", "failed_at",
                 "finished", "kind", "locals", "name", "pid", "rt", "state", "thread", "tid",
                 "waiting")

    def __init__(self, rt: Runtime, name: str, kind: str, daemon: bool) -> None:
        self.rt = rt
        self.name = name
        self.kind = kind
        self.daemon = daemon
        self.buf: list[Record] = []
        self.caps: frozenset[tuple[str, str]] = frozenset()
        # (primitive or actor name, op, has_timeout, call seq, mark) while in a blocking call;
        # `mark` is what the primitive needs to tell a finished wait from a real one
        self.waiting: tuple[Any, str, bool, int, int] | None = None
        # pending (autostart: false, not started yet) or starting (to be started by the engine)
        # -> queued (a pool task waiting for a worker) -> running -> done
        self.state = "pending"
        self.finished = threading.Event()  # set when it has ended (joins of coroutines use it)
        self.pid = 0
        self.tid = 0
        self.thread: Any = None
        # the step an ActorFailure came from: {"step": "actors[0].steps[1]", "verb", "line"}
        self.failed_at: dict[str, Any] | None = None
        # the actor's locals (the scenario language's ``locals``, ``let`` and ``as``): private
        # and untraced; the compiled program sets the declared ones when it starts
        self.locals: dict[str, Any] = {}
        # bound once: the hot path below does no lookups it can avoid
        self._next = rt.seq.__next__
        self._clock = rt.clock
        self._append = self.buf.append
        self.emit: Callable[[Tag, dict[str, Any] | None], int] = rt.scheduler.emitter(self)

    def emit_free(self, tag: Tag, payload: dict[str, Any] | None = None) -> int:
        if self.rt.closed:
            raise Abort
        seq = self._next()
        self._append((seq, self._clock(), tag, payload))
        return seq

    def emit_scheduled(self, tag: Tag, payload: dict[str, Any] | None = None) -> int:
        rt = self.rt
        if rt.closed:
            raise Abort
        seq = rt.scheduler.turn(self, tag)
        # a turn given is recorded, even if the run closes now: the scheduler
        # counted it (a replay ends once the recording's last turn was given)
        self.buf.append((seq, rt.clock(), tag, payload))
        return seq

    def emit_read(self, tag: Tag, fetch: Callable[[], Any],
                  extra: dict[str, Any] | None = None) -> Any:
        """Record a read of ``fetch()`` and return the value. The value is read once the event
        has its turn and seq, not before: under a scheduler another actor may write it
        meanwhile, and under ``run`` the variable's lock is held across both (see
        ``_compile``). ``extra``: more of the payload (``{"atomic": True}``)."""
        payload: dict[str, Any] = {} if extra is None else dict(extra)
        self.emit(tag, payload)  # the buffer keeps this dict: fill it once the turn came
        try:
            value = payload["value"] = fetch()
        except BaseException:
            payload["value"] = None  # (the trace stays well-formed; the actor fails)
            raise
        return value

    def block(self, target: Any, op: str, timeout: float | None, tag: Tag,
              payload: dict[str, Any] | None = None, mark: int = 0) -> int:
        """Record the ``call`` of a blocking op and tell the watchdog what we wait for."""
        self.waiting = (target, op, timeout is not None, -1, mark)
        seq = self.emit(tag, payload)
        self.waiting = (target, op, timeout is not None, seq, mark)
        return seq

    def progress(self) -> int:
        """How many events this actor has recorded (the watchdog compares it)."""
        return len(self.buf)

    def fail_last(self, message: str) -> None:
        """Attach an error to this actor's last event (one logged before its real call)."""
        seq, ts, tag, payload = self.buf[-1]
        self.buf[-1] = (seq, ts, tag, {**(payload or {}), "error": message})


__all__ = ["POLL", "Abort", "ActorCtx", "ActorFailure", "ActorReturn", "Record", "Runtime", "Tag",
           "end_payload", "end_tag", "ending"]
