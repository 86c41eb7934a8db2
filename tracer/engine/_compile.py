"""Compile an actor's steps into closures, once, before the run.

Interpreting step models on every iteration would cost more than the recording itself, so each
step becomes a small function with its tags and primitive bound in. Each step also carries the
set of ``(verb, target)`` the actor may still perform from there on (its *caps*): the watchdog
reads them to know who could still set an event or fill a queue.

Shared variables. A trace must never contradict itself: each ``read`` records the value of
the last ``write`` before it in seq. So an access of a variable and the seq of its event are
taken together, atomically with respect to every other access of that variable, by actors of
every kind: under ``run`` each variable has a lock (``Runtime.var_lock``; a
``multiprocessing.Lock`` in ``Shared`` when process actors take part, since the values then
live in a Manager and a write is a round trip), held from before the event's seq is taken to
after the value was read or stored. A lock per variable rather than one for all: accesses of
different variables still overlap, as they would without tracer. Its cost is one uncontended
lock (well under a microsecond) beside an access that costs about as much for threads and a
Manager round trip (tens of microseconds) for processes. Under a scheduler (replay, explore)
no lock is taken, the turns already order the accesses: an exploration runs one actor at a
time, and a replay admits nobody else until the actor that accessed a variable comes back
for its next turn (``ReplayScheduler``), so a lock held across a turn could only deadlock.
Nor is one taken for a variable that one actor alone accesses, or only coroutines (one event
loop, no ``await`` inside an access): see :func:`unlocked_variables`. A thread waits for a
variable's lock by giving up the GIL before it sleeps on it (see :func:`hold`).

No lock-free way for threads: taking the seq and the value in one C call (``next`` on a
``zip`` of the counter and a ``map`` of ``dict.__getitem__``) holds under the GIL only while no
Python code runs inside it, and on Python 3.10 and 3.11 a garbage collection may start at any
allocation and run finalizers there; an ``append`` changes a list in place, which a reader
then copies outside the call; and a free-threaded build (3.13t) has no GIL at all.
"""

from __future__ import annotations

import math
import operator
from _thread import LockType
from asyncio import CancelledError
from asyncio import sleep as asyncio_sleep
from collections.abc import Callable, MutableMapping, Sequence
from functools import partial
from inspect import iscoroutinefunction
from time import sleep
from typing import Any, Protocol, TypeVar

from tracer._show import show
from tracer.engine._compute import work
from tracer.engine._seam import (
    POLL,
    Abort,
    ActorCtx,
    ActorFailure,
    ActorReturn,
    Record,
    Runtime,
    Tag,
)
from tracer.prims import _shell as P
from tracer.prims._shell import ready
from tracer.prims.condition import Condition
from tracer.prims.event import Event
from tracer.prims.pipe import Pipe
from tracer.prims.queue import AQueue, Queue
from tracer.scenario import Plan, walk_steps
from tracer.scenario import _model as M
from tracer.scenario._expr import EvalError, evaluator, parse_expr
from tracer.scenario._load import format_loc

StepFn = Callable[[ActorCtx], object]
_P = TypeVar("_P", bound=P.Prim)
Caps = frozenset[tuple[str, str]]

COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "<": operator.lt, "<=": operator.le, "==": operator.eq,
    "!=": operator.ne, ">=": operator.ge, ">": operator.gt,
}


class Spawner(Protocol):
    """What `start` and `join` steps need from the engine: the host of the actor's kind
    (``tracer.engine.actors``). A coroutine actor's ``join`` is a coroutine function."""

    def spawn(self, a: ActorCtx, name: str, line: int | None = None) -> None: ...

    def join(self, a: ActorCtx, name: str, timeout: float | None, tags: P.OpTags) -> Any: ...


def copy_value(value: Any) -> Any:
    """A copy of a shared value (YAML data: lists, dicts and scalars), so that events keep
    the value as it was and actors never share a mutable list by accident."""
    getvalue = getattr(value, "_getvalue", None)  # a multiprocessing.Manager proxy
    if getvalue is not None:
        value = getvalue()
    if isinstance(value, list):
        return [copy_value(v) for v in value]
    if isinstance(value, dict):
        return {k: copy_value(v) for k, v in value.items()}
    return value


def step_locations(plan: Plan, actor: str) -> dict[int, dict[str, Any]]:
    """Each step of ``actor`` (by id) -> its path in the scenario (``actors[0].steps[1]``),
    its verb and, when the plan has them, its YAML line: where an actor that failed failed."""
    try:
        ap = plan.actor(actor)
    except StopIteration:
        return {}
    # the copies of a ``count:`` actor share their steps: their locations are made once
    # (10,000 coroutines walked the same steps 10,000 times), kept with the plan, read only
    cache: dict[tuple[Any, ...], dict[int, dict[str, Any]]] | None = \
        plan.__dict__.get("_step_locations")
    if cache is None:
        cache = {}
        object.__setattr__(plan, "_step_locations", cache)
    key = (ap.base, *map(id, ap.steps))  # (the copies' tuples differ, their steps do not)
    got = cache.get(key)
    if got is None:
        got = cache[key] = _step_locations(plan, ap.base, ap.steps)
    return got


def _step_locations(plan: Plan, base: str, steps: Sequence[M.Step]) -> dict[int, dict[str, Any]]:
    index = next((i for i, a in enumerate(plan.scenario.actors) if a.name == base), None)
    if index is None:
        return {}
    out: dict[int, dict[str, Any]] = {}
    for step, loc in walk_steps(steps, ("actors", index, "steps")):
        info: dict[str, Any] = {"step": format_loc(loc), "verb": step.verb}
        line = plan.lines.get(loc)
        if line is not None:
            info["line"] = line
        out[id(step)] = info
    return out


def _declaration_line(plan: Plan, actor: str) -> int | None:
    """The YAML line where ``actor`` is declared (a ``count:`` copy: its base actor's)."""
    try:
        base = plan.actor(actor).base
    except StopIteration:
        return None
    index = next((i for i, a in enumerate(plan.scenario.actors) if a.name == base), None)
    return None if index is None else plan.lines.get(("actors", index))


class Compiler:
    """Turns one actor's steps into a :data:`StepFn`: a plain function for a thread or
    process actor, a coroutine function for a coroutine actor (``coroutine=True``).

    Each step verb is compiled in one place; for a coroutine the differences are: every
    recorded operation first awaits the actor's turn (``ready``), what waits is awaited, an
    ``add`` yields to the loop between its read and its write (``await asyncio.sleep(0)``, as
    any real ``x = await f(); shared = x + 1`` does, so coroutines can lose updates too), a
    ``sleep`` sleeps through ``scheduler.asleep``, and a ``join`` awaits the host's join."""

    def __init__(self, rt: Runtime, plan: Plan, prims: dict[str, P.Prim],
                 shared: MutableMapping[str, Any], spawner: Spawner, actor: str,
                 coroutine: bool = False) -> None:
        self.coro = coroutine
        self.rt = rt
        self.plan = plan
        self.prims = prims
        self.shared = shared
        self.spawner = spawner
        self.actor = actor
        self.auto_items = 0
        self.caps_seen: list[Caps] = []  # every caps value, in compile order
        self.located = step_locations(plan, actor)
        self.line: int | None = None  # the line of the step being compiled
        decl = _declaration_line(plan, actor)
        if decl is not None:
            rt.actor_lines[actor] = decl
        self.atomic_vars = frozenset(plan.scenario.atomic)
        self.shared_names = frozenset(plan.scenario.shared)
        # compiled steps that record no event (a let over locals): a coroutine runs them
        # without awaiting a turn
        self.silent: set[int] = set()

    def program(self, steps: Sequence[M.Step]) -> tuple[StepFn, Caps]:
        """The actor's whole program: its steps, after setting its declared locals."""
        fn, caps = self.block(steps, frozenset())
        base = self.plan.actor(self.actor).base
        declared = next((a.locals for a in self.plan.scenario.actors if a.name == base), {})
        if not declared:
            return fn, caps
        initial = dict(declared)
        if self.coro:
            async def astart(a: ActorCtx) -> None:
                a.locals = copy_value(initial)
                await fn(a)  # type: ignore[misc]
            return astart, caps

        def start(a: ActorCtx) -> None:
            a.locals = copy_value(initial)
            fn(a)
        return start, caps

    def where(self, fns: Sequence[object], steps: Sequence[M.Step]) -> dict[int, dict[str, Any]]:
        """Compiled step (its id) -> where its step is in the scenario, for ``failed_at``."""
        return {id(fn): self.located[id(s)] for fn, s in zip(fns, steps, strict=True)
                if id(s) in self.located}

    # --- caps: what a step may do, nested steps included
    def own_caps(self, step: M.Step) -> Caps:
        out: set[tuple[str, str]] = set()
        target = M.step_target(step)
        if target is not None:
            if step.verb in ("start", "join"):
                out.update((step.verb, n) for n in self.plan.groups.get(target, (target,)))
            elif step.verb == "with":
                out.update({("acquire", target), ("release", target)})
            else:
                out.add((step.verb, target))
        for _key, block in M.child_blocks(step):
            for s in block:
                out |= self.own_caps(s)
        return frozenset(out)

    def block(self, steps: Sequence[M.Step], cont: Caps) -> tuple[StepFn, Caps]:
        """Compile a list of steps; ``cont`` is what the actor may do after the list."""
        if self.coro:
            return self._ablock(steps, cont)
        items: list[tuple[Caps, StepFn]] = []
        after = cont
        for step in reversed(steps):
            fn = self.step(step, after)
            here = self.own_caps(step) | after
            self.caps_seen.append(here)
            items.append((here, fn))
            after = here
        items.reverse()
        pairs = tuple(items)
        at = self.where([fn for _, fn in pairs], steps)
        if len({caps for caps, _ in pairs}) == 1:
            # the body of a repeat: every step may still do the same things
            same, fns = pairs[0][0], tuple(fn for _, fn in pairs)

            def run_same(a: ActorCtx) -> None:
                a.caps = same
                try:
                    for fn in fns:
                        fn(a)
                except ActorFailure:
                    if a.failed_at is None:  # the innermost block knows the step
                        a.failed_at = at.get(id(fn))
                    raise
            return run_same, after

        def run_block(a: ActorCtx) -> None:
            try:
                for caps, fn in pairs:
                    a.caps = caps
                    fn(a)
            except ActorFailure:
                if a.failed_at is None:
                    a.failed_at = at.get(id(fn))
                raise

        return run_block, after

    def _ablock(self, steps: Sequence[M.Step], cont: Caps) -> tuple[StepFn, Caps]:
        """:meth:`block` for a coroutine actor: a step that is a plain function (it records
        one event and does not wait) is run once the actor has its turn for that event."""
        items: list[tuple[Caps, StepFn, bool, Any]] = []
        after = cont
        for step in reversed(steps):
            fn = self.step(step, after)
            is_async = iscoroutinefunction(fn)
            here = self.own_caps(step) | after
            self.caps_seen.append(here)
            items.append((here, fn, is_async, None if is_async or id(fn) in self.silent else
                          self.tag(self.actor, step.verb, M.step_target(step),
                                   line=self.line_of(step))))
            after = here
        items.reverse()
        quads = tuple(items)
        at = self.where([item[1] for item in quads], steps)

        async def run_block(a: ActorCtx) -> None:
            try:
                for caps, fn, is_async, tag in quads:
                    a.caps = caps
                    if is_async:
                        await fn(a)  # type: ignore[misc]
                    elif tag is None:  # it records nothing (a let over locals)
                        fn(a)
                    else:
                        await ready(a, tag)  # a turn, before the step records its one event
                        fn(a)
            except ActorFailure:
                if a.failed_at is None:  # the innermost block knows the step
                    a.failed_at = at.get(id(fn))
                raise

        return run_block, after

    def prim(self, name: str, cls: type[_P] | tuple[type[_P], ...]) -> _P:
        """The primitive ``name``, which the checker guaranteed is a ``cls``."""
        p = self.prims[name]
        assert isinstance(p, cls), (name, cls)
        return p

    def waitable(self, name: str) -> Any:
        """The primitive ``name`` that a ``wait`` waits on (the checker guaranteed that its
        type has the verb: any type may, with its ``wait(a, tags, timeout)``)."""
        return self.prims[name]

    def tags(self, op: str, target: str) -> P.OpTags:
        t = self.tag
        n = self.actor
        return P.OpTags(t(n, op, target, "call"), t(n, op, target, "return", "ok"),
                        t(n, op, target, "return", "timeout"), t(n, op, target, "return", "fail"),
                        t(n, op, target, "return", "error"), t(n, op, target, "return", "broken"))

    def line_of(self, step: M.Step) -> int | None:
        """The YAML line of ``step`` (None for a plan made without lines)."""
        line: int | None = self.located.get(id(step), {}).get("line")
        return line

    def tag(self, actor: str | None, op: str, target: str | None = None,
            phase: str | None = None, result: str | None = None,
            line: int | None = None) -> Tag:
        """``Runtime.tag`` at the line of the step being compiled: every event a step makes
        carries its line, at no cost at run time (the line is part of the interned tag)."""
        return self.rt.tag(actor, op, target, phase, result,
                           self.line if line is None else line)

    def step(self, step: M.Step, cont: Caps) -> StepFn:
        outer, self.line = self.line, self.line_of(step)
        try:
            fn = self._step(step, cont)
        finally:
            self.line = outer  # (a block's steps are compiled inside its own step)
        if isinstance(step, M.Yields) and step.as_ is not None:
            return self._stores_result(fn, step.as_)
        return fn

    def _stores_result(self, fn: StepFn, name: str) -> StepFn:
        """``fn``, then its result in the local ``name`` (an ``as``): read from the actor's
        last event, the step's return (see :func:`result_of`)."""
        if iscoroutinefunction(fn):
            async def astore(a: ActorCtx) -> None:
                await fn(a)
                a.locals[name] = result_of(a.buf[-1])
            return astore

        def store(a: ActorCtx) -> None:
            fn(a)
            a.locals[name] = result_of(a.buf[-1])
        return store

    def _step(self, step: M.Step, cont: Caps) -> StepFn:
        n = self.actor
        tag = self.tag
        if isinstance(step, M.Acquire):
            lk = self.prim(step.acquire, P.LockLike)
            ts, timeout, blocking = self.tags("acquire", lk.name), step.timeout, step.blocking
            return partial(lk.acquirer(step), ts, timeout, blocking)
        if isinstance(step, M.Release):
            lk = self.prim(step.release, P.LockLike)
            rel = tag(n, "release", lk.name)
            return partial(lk.release, rel)
        if isinstance(step, M.With):
            return self._with(step, cont)
        if isinstance(step, M.Wait):
            w = self.waitable(step.wait)
            ts, timeout = self.tags("wait", w.name), step.timeout
            if self.coro:
                async def await_(a: ActorCtx) -> None:
                    await w.wait(a, ts, timeout)
                return await_
            return lambda a: w.wait(a, ts, timeout)
        if isinstance(step, M.Set):
            ev = self.prim(step.set, Event)
            st = tag(n, "set", ev.name)
            return lambda a: ev.set(a, st)
        if isinstance(step, M.Clear):
            ev = self.prim(step.clear, Event)
            ct = tag(n, "clear", ev.name)
            return lambda a: ev.clear(a, ct)
        if isinstance(step, (M.Notify, M.NotifyAll)):
            c = self.prim(step.notify if isinstance(step, M.Notify) else step.notify_all,
                          Condition)
            count = step.n if isinstance(step, M.Notify) else None
            nt = tag(n, step.verb, c.name)
            return lambda a: c.notify(a, nt, count)
        if isinstance(step, M.Put):
            q = self.prim(step.put, Queue)
            ts, timeout, blocking = self.tags("put", q.name), step.timeout, step.blocking
            item_of = self._item(step)
            if self.coro:
                aq = self.prim(step.put, AQueue)

                async def aput(a: ActorCtx) -> None:
                    await aq.put(a, ts, item_of(), timeout, blocking)
                return aput
            return lambda a: q.put(a, ts, item_of(), timeout, blocking)
        if isinstance(step, M.Get):
            q = self.prim(step.get, Queue)
            ts, timeout, blocking = self.tags("get", q.name), step.timeout, step.blocking
            if self.coro:
                aq2 = self.prim(step.get, AQueue)

                async def aget(a: ActorCtx) -> None:
                    await aq2.get(a, ts, timeout, blocking)
                return aget
            return lambda a: q.get(a, ts, timeout, blocking)
        if isinstance(step, M.Send):
            p = self.prim(step.send, Pipe)
            ts = self.tags("send", p.name)
            item_of = self._item(step)
            return lambda a: p.send(a, ts, item_of())
        if isinstance(step, M.Recv):
            p = self.prim(step.recv, Pipe)
            ts, timeout = self.tags("recv", p.name), step.timeout
            return lambda a: p.recv(a, ts, timeout)
        if isinstance(step, (M.Read, M.Write, M.Add, M.Append, M.If)):
            return self._var_step(step, cont)
        if isinstance(step, M.Sleep):
            return self._sleep(step.sleep)
        if isinstance(step, M.Log):
            lt, payload = tag(n, "log"), {"detail": step.log}
            return lambda a: a.emit(lt, payload)
        if isinstance(step, M.Start):
            names = self.plan.groups[step.start]
            sp, line = self.spawner, self.line

            def start(a: ActorCtx) -> None:
                for name in names:
                    sp.spawn(a, name, line)
            return start
        if isinstance(step, M.Join):
            names = self.plan.groups[step.join]
            sp, timeout = self.spawner, step.timeout
            tagsets = [(name, self.tags("join", name)) for name in names]

            if self.coro:
                async def ajoin(a: ActorCtx) -> None:
                    for name, ts in tagsets:
                        await sp.join(a, name, timeout, ts)
                return ajoin

            def join(a: ActorCtx) -> None:
                for name, ts in tagsets:
                    sp.join(a, name, timeout, ts)
            return join
        if isinstance(step, M.Repeat):
            body_caps = frozenset().union(*(self.own_caps(s) for s in step.steps)) \
                if step.steps else frozenset()
            body, _ = self.block(step.steps, body_caps | cont)
            times = step.repeat
            if self.coro:
                async def arepeat(a: ActorCtx) -> None:
                    rt = a.rt
                    for _ in range(times):
                        if rt.closed:  # (as below)
                            raise Abort
                        await body(a)  # type: ignore[misc]
                return arepeat

            def repeat(a: ActorCtx) -> None:
                rt = a.rt
                for _ in range(times):
                    if rt.closed:  # a body that records nothing must still stop with the run
                        raise Abort
                    body(a)
            return repeat
        if isinstance(step, M.While):
            return self._while(step, cont)
        if isinstance(step, M.Let):
            return self._let(step)
        if isinstance(step, M.Assert):
            return self._assert(step)
        if isinstance(step, M.Compute):
            return self._compute(step.compute)
        if isinstance(step, M.Return):
            def ret(a: ActorCtx) -> None:
                raise ActorReturn
            return ret
        if isinstance(step, M.Fail):
            message = step.fail

            def fail(a: ActorCtx) -> None:
                raise ActorFailure(message)
            return fail
        target = M.step_target(step)
        if target in self.prims:  # a verb its primitive's type compiles (tracer.prims)
            return self.prims[target].compile_step(step, self)
        raise AssertionError(f"no compiler for step {step.verb}")  # pragma: no cover

    def _item(self, step: M.Put | M.Send) -> Callable[[], Any]:
        if "item" in step.model_fields_set:
            item = step.item
            return lambda: copy_value(item)
        # a bare `put: Q` puts an automatic unique item: actor name and a counter
        prefix = f"{self.actor}#"

        def auto() -> str:
            self.auto_items += 1
            return f"{prefix}{self.auto_items}"
        return auto

    def _with(self, step: M.With, cont: Caps) -> StepFn:
        lk = self.prim(step.with_, P.LockLike)
        ts = self.tags("acquire", lk.name)
        rel = self.tag(self.actor, "release", lk.name)
        body, _ = self.block(step.steps, frozenset({("release", lk.name)}) | cont)

        acquire, release = lk.acquirer(step), lk.release
        if self.coro:
            async def awith(a: ActorCtx) -> None:
                await acquire(ts, None, True, a)
                try:
                    await body(a)  # type: ignore[misc]
                except (CancelledError, Abort):
                    raise
                except BaseException:
                    release(rel, a)
                    raise
                release(rel, a)
            return awith

        def with_(a: ActorCtx) -> None:
            acquire(ts, None, True, a)
            try:
                body(a)
            except Abort:
                raise
            except BaseException:
                # like Python's `with`: release on return and on errors, then go on unwinding
                release(rel, a)
                raise
            release(rel, a)
        return with_

    def lock_of(self, var: str) -> Any:
        """The lock the accesses of ``var`` take, or None when they need none: under a
        scheduler, or when what accesses ``var`` cannot come between another access and its
        seq (see the module's docstring)."""
        rt = self.rt
        if not rt.scheduler.needs_var_locks():
            return None
        if rt.unlocked_vars is None:
            rt.unlocked_vars = unlocked_variables(self.plan)
        return None if var in rt.unlocked_vars else rt.var_lock(var)

    def atomic(self, var: str, body: Callable[[ActorCtx], Any]) -> Callable[[ActorCtx], Any]:
        """``body(a)`` (one access of ``var`` and the seq of its event) under the variable's
        lock, so no other access of ``var`` comes between them (see the module's docstring);
        as it is under a scheduler, whose turns order the accesses. The lock is polled when
        taken (it may be a process's, killed while it held it: the run must still end)."""
        lock = self.lock_of(var)
        if lock is None:
            return body
        acquire, release = lock.acquire, lock.release

        def locked(a: ActorCtx) -> Any:
            if not acquire(False):
                hold(a, lock)
            try:
                return body(a)
            finally:
                release()
        return locked

    def var_read(self, var: str, fetch: Callable[[], Any]) -> Callable[[ActorCtx], Any]:
        """A recorded read of ``var`` (the value of ``fetch()``), atomic with its seq (as
        :meth:`atomic`, written out: reads are the hot path of a racy scenario, and
        ``self.atomic(var, lambda a: a.emit_read(rt_, fetch))`` costs one more call per read,
        measured at +0.1 µs on a 0.95 µs locked read; a write would need a closure per
        value on top)."""
        rt_ = self.tag(self.actor, "read", var)
        lock = self.lock_of(var)
        if var in self.atomic_vars:  # (a read of an ``atomic`` variable says so)
            extra = ATOMIC

            def aread(a: ActorCtx) -> Any:
                return a.emit_read(rt_, fetch, extra)
            return aread if lock is None else self.atomic(var, aread)
        if lock is None:
            return lambda a: a.emit_read(rt_, fetch)
        acquire, release = lock.acquire, lock.release

        def read(a: ActorCtx) -> Any:
            if not acquire(False):
                hold(a, lock)
            try:
                return a.emit_read(rt_, fetch)
            finally:
                release()
        return read

    def var_write(self, var: str) -> Callable[[Any, ActorCtx], None]:
        """``write(value, a)``: a recorded write of ``value`` to ``var``, atomic with its seq
        (as :meth:`atomic`; the value first, so that a step can bind it with ``partial``)."""
        shared = self.shared
        wt = self.tag(self.actor, "write", var)
        lock = self.lock_of(var)
        if var in self.atomic_vars:
            def write_atomic(value: Any, a: ActorCtx) -> None:
                a.emit(wt, {"value": value, "atomic": True})
                shared[var] = copy_value(value)
            if lock is None:
                return write_atomic
            acquire_, release_ = lock.acquire, lock.release

            def write_atomic_locked(value: Any, a: ActorCtx) -> None:
                if not acquire_(False):
                    hold(a, lock)
                try:
                    write_atomic(value, a)
                finally:
                    release_()
            return write_atomic_locked
        if lock is None:
            def write_free(value: Any, a: ActorCtx) -> None:
                a.emit(wt, {"value": value})
                shared[var] = copy_value(value)
            return write_free
        acquire, release = lock.acquire, lock.release

        def write(value: Any, a: ActorCtx) -> None:
            if not acquire(False):
                hold(a, lock)
            try:
                a.emit(wt, {"value": value})
                shared[var] = copy_value(value)
            finally:
                release()
        return write

    def _var_step(self, step: M.Step, cont: Caps) -> StepFn:
        shared = self.shared
        n = self.actor
        tag = self.tag
        if isinstance(step, M.Read):
            return self.var_read(step.read, partial(_copy_of, shared, step.read))
        if isinstance(step, M.Write):
            write = self.var_write(step.write.var)
            if step.write.expr is None:
                return partial(write, step.write.value)
            return self._write_expr(step.write.var, step.write.expr, write)
        if isinstance(step, M.Add) and (step.add.atomic or step.add.var in self.atomic_vars):
            return self._atomic_add(step.add.var, step.add.value)
        if isinstance(step, M.Add):
            var, delta = step.add.var, step.add.value
            read = self.var_read(var, partial(shared.__getitem__, var))
            write_new = self.var_write(var)
            if self.coro:
                rt_, wt = tag(n, "read", var), tag(n, "write", var)

                async def aadd(a: ActorCtx) -> None:
                    await ready(a, rt_)
                    old = read(a)
                    await asyncio_sleep(0)  # the await between read and write
                    await ready(a, wt)
                    write_new(added(n, var, old, delta), a)
                return aadd

            def add(a: ActorCtx) -> None:
                write_new(added(n, var, read(a), delta), a)
            return add
        if isinstance(step, M.Append):
            var, item = step.append.var, step.append.item
            at = tag(n, "append", var)

            pay = {"item": item, "atomic": True} if var in self.atomic_vars else {"item": item}

            def append(a: ActorCtx) -> None:
                target = shared[var]
                if not isinstance(target, list) and not hasattr(target, "_getvalue"):
                    raise ActorFailure(f"{n} cannot append to {var} = {show(target)}: not a list")
                a.emit(at, pay)
                target.append(copy_value(item))
                if isinstance(target, list) and not isinstance(shared, dict):
                    # a Manager dict hands out copies of plain lists: store the new one
                    shared[var] = target
            return self.atomic(var, append)
        assert isinstance(step, M.If)
        if isinstance(step.if_, str):
            return self._if_expr(step, step.if_, cont)
        test = self.condition(step)
        then, _ = self.block(step.then, cont)
        else_, _ = self.block(step.else_, cont)
        if self.coro:
            read_tag = tag(n, "read", step.if_.var)

            async def aif(a: ActorCtx) -> None:
                await ready(a, read_tag)  # a turn before the test reads the variable
                await (then if test(a) else else_)(a)  # type: ignore[misc]
            return aif

        def if_(a: ActorCtx) -> None:
            (then if test(a) else else_)(a)
        return if_

    # --- the language: expressions, let, if, while, assert, atomic add, compute
    def expr_fn(self, text: str) -> tuple[Callable[[ActorCtx], Any], bool]:
        """``(fn, is_async)``: the evaluation of expression ``text`` for this actor; a
        coroutine function when it reads a shared variable and the actor is a coroutine (each
        read first awaits its turn). A value that does not fit an operation ends the actor
        with an error that shows it."""
        expr = parse_expr(text)
        n = self.actor
        fn, is_async = evaluator(expr, self._loader)
        if is_async:
            afn = fn

            async def aevaluate(a: ActorCtx) -> Any:
                try:
                    return await afn(a)
                except EvalError as exc:
                    raise ActorFailure(f"{n} cannot evaluate {text!r}: {exc}") from None
                except RecursionError:
                    raise ActorFailure(f"{n} cannot evaluate {text!r}: nested too deeply for "
                                       "the stack here: split it with 'let'") from None
            return aevaluate, True

        def evaluate(a: ActorCtx) -> Any:
            try:
                return fn(a)
            except EvalError as exc:
                raise ActorFailure(f"{n} cannot evaluate {text!r}: {exc}") from None
            except RecursionError:
                raise ActorFailure(f"{n} cannot evaluate {text!r}: nested too deeply for the "
                                   "stack here: split it with 'let'") from None
        return evaluate, False

    def _loader(self, name: str) -> tuple[Callable[[ActorCtx], Any], bool]:
        """How an expression gets the value of ``name``: a recorded read of the shared
        variable, or the actor's local (the checker made sure it is one or the other)."""
        n = self.actor
        if name in self.shared_names:
            read = self.var_read(name, partial(_copy_of, self.shared, name))
            if not self.coro:
                return read, False
            rtag = self.tag(n, "read", name)

            async def aread(a: ActorCtx) -> Any:
                await ready(a, rtag)  # a turn before each read
                return read(a)
            return aread, True

        def local(a: ActorCtx) -> Any:
            try:
                return a.locals[name]
            except KeyError:
                raise ActorFailure(f"{n}: the local '{name}' has no value yet: give it one in "
                                   "the actor's 'locals' or with a 'let' before this step"
                                   ) from None
        return local, False

    def _let(self, step: M.Let) -> StepFn:
        parts = [(name, *self.expr_fn(text)) for name, text in step.let.items()]
        if any(is_async for _, _, is_async in parts):
            async def alet(a: ActorCtx) -> None:
                for name, fn, is_async in parts:
                    a.locals[name] = (await fn(a)) if is_async else fn(a)
            return alet

        def let(a: ActorCtx) -> None:
            for name, fn, _ in parts:
                a.locals[name] = fn(a)
        if not any(self._reads_shared(text) for text in step.let.values()):
            self.silent.add(id(let))
        return let

    def _reads_shared(self, text: str) -> bool:
        return any(n in self.shared_names for n in parse_expr(text).names)

    def _if_expr(self, step: M.If, text: str, cont: Caps) -> StepFn:
        test, test_async = self.expr_fn(text)
        then, _ = self.block(step.then, cont)
        else_, _ = self.block(step.else_, cont)
        if self.coro:
            async def aif(a: ActorCtx) -> None:
                value = (await test(a)) if test_async else test(a)
                await (then if value else else_)(a)  # type: ignore[misc]
            return aif

        def if_(a: ActorCtx) -> None:
            (then if test(a) else else_)(a)
        return if_

    def _assert(self, step: M.Assert) -> StepFn:
        text = step.assert_
        test, test_async = self.expr_fn(text)
        names = parse_expr(text).names
        n, message = self.actor, step.message

        def failed(a: ActorCtx, start: int) -> ActorFailure:
            seen = _values_seen(a, names, self.shared_names, start)
            values = ", ".join(f"{k} = {show(v)}" for k, v in seen.items())
            what = f"{message} (" if message else ""
            return ActorFailure(f"{n}: {what}assert {text!r} failed"
                                f"{f': {values}' if values else ''}{')' if message else ''}")
        if test_async:
            async def aassert(a: ActorCtx) -> None:
                start = len(a.buf)
                if not await test(a):
                    raise failed(a, start)
            return aassert

        def assert_(a: ActorCtx) -> None:
            start = len(a.buf)
            if not test(a):
                raise failed(a, start)
        if not self._reads_shared(text):
            self.silent.add(id(assert_))
        return assert_

    def _write_expr(self, var: str, text: str,
                    write: Callable[[Any, ActorCtx], None]) -> StepFn:
        value_of, is_async = self.expr_fn(text)
        if is_async:
            wt = self.tag(self.actor, "write", var)

            async def awrite(a: ActorCtx) -> None:
                value = await value_of(a)
                await ready(a, wt)
                write(value, a)
            return awrite

        def write_expr(a: ActorCtx) -> None:
            write(value_of(a), a)
        return write_expr

    def _atomic_add(self, var: str, delta: Any) -> StepFn:
        """An atomic ``add``: one indivisible read-modify-write, recorded as one ``write``
        event with ``atomic: true`` and the value it replaced in ``old``."""
        shared, n = self.shared, self.actor
        wt = self.tag(n, "write", var)

        def rmw(a: ActorCtx) -> None:
            payload: dict[str, Any] = {"atomic": True}
            a.emit(wt, payload)  # the buffer keeps this dict: filled once the turn came
            old = shared[var]
            try:
                new = added(n, var, old, delta)
            except ActorFailure:
                payload["value"] = payload["old"] = copy_value(old)
                raise
            payload["old"] = copy_value(old)
            payload["value"] = new
            shared[var] = new
        body = self.atomic(var, rmw)
        if self.coro:
            async def aadd(a: ActorCtx) -> None:
                await ready(a, wt)
                body(a)
            return aadd
        return body

    def _while(self, step: M.While, cont: Caps) -> StepFn:
        text, limit = step.while_, step.max
        test, test_async = self.expr_fn(text)
        body_caps = frozenset().union(*(self.own_caps(s) for s in step.steps)) \
            if step.steps else frozenset()
        body, _ = self.block(step.steps, body_caps | cont) if step.steps else (None, None)
        scheduler = self.rt.scheduler
        watch = scheduler.parks_spins()
        n = self.actor
        line = self.located.get(id(step), {}).get("line")
        loop = f"'while: {text}'" + (f" (line {line})" if line is not None else "")

        def too_long() -> ActorFailure:
            return ActorFailure(f"{n}: the loop 'while: {text}' is still true after {limit} "
                                f"rounds (its max): raise 'max', or make the loop end")

        if self.coro:
            async def awhile(a: ActorCtx) -> None:
                rt = a.rt
                rounds = 0
                while True:
                    if rt.closed:
                        raise Abort
                    mark = _mark(a) if watch else None
                    if not ((await test(a)) if test_async else test(a)):
                        return
                    if rounds == limit:
                        raise too_long()
                    rounds += 1
                    if body is not None:
                        await body(a)  # type: ignore[misc]
                    if mark is not None:
                        spun = _spun(a, mark)
                        if spun is not None:
                            await scheduler.aspin(a, *spun, loop)
            return awhile

        def while_(a: ActorCtx) -> None:
            rt = a.rt
            rounds = 0
            while True:
                if rt.closed:  # a loop that records nothing must still stop with the run
                    raise Abort
                mark = _mark(a) if watch else None
                if not test(a):
                    return
                if rounds == limit:
                    raise too_long()
                rounds += 1
                if body is not None:
                    body(a)
                if mark is not None:
                    spun = _spun(a, mark)
                    if spun is not None:
                        scheduler.spin(a, *spun, loop)
        return while_

    def _compute(self, units: float) -> StepFn:
        n, tag = self.actor, self.tag
        call, ok = tag(n, "compute", None, "call"), tag(n, "compute", None, "return", "ok")
        payload = {"value": units}
        scheduler = self.rt.scheduler
        if self.coro:
            async def acompute(a: ActorCtx) -> None:
                await ready(a, call)
                a.emit(call, payload)
                scheduler.compute(a, units, work)  # (CPU work blocks the loop, as it does)
                await ready(a, ok)
                a.emit(ok, None)
            return acompute

        def compute(a: ActorCtx) -> None:
            a.emit(call, payload)
            scheduler.compute(a, units, work)
            a.emit(ok, None)
        return compute

    def condition(self, step: M.If) -> Callable[[ActorCtx], bool]:
        """The test of an `if`: a fresh read of the variable (recorded), then the comparison."""
        cond = step.if_
        assert isinstance(cond, M.Compare)
        var, cmp, value, n = cond.var, COMPARE[cond.op], cond.value, self.actor
        read = self.var_read(var, partial(_copy_of, self.shared, var))

        def test(a: ActorCtx) -> bool:
            current = read(a)
            try:
                return bool(cmp(current, value))
            except TypeError:
                raise ActorFailure(f"{n} cannot compare {var} = {show(current)} {cond.op} "
                                   f"{show(value)}") from None
        return test

    def _sleep(self, seconds: float) -> StepFn:
        call = self.tag(self.actor, "sleep", None, "call")
        ok = self.tag(self.actor, "sleep", None, "return", "ok")
        payload = {"value": seconds}
        scheduler = self.rt.scheduler
        if self.coro:
            async def asleep(a: ActorCtx) -> None:
                await ready(a, call)
                a.emit(call, payload)
                await scheduler.asleep(a, seconds)
                await ready(a, ok)
                a.emit(ok, None)
            return asleep

        def sleep(a: ActorCtx) -> None:
            a.emit(call, payload)
            scheduler.sleep(a, seconds)
            a.emit(ok, None)
        return sleep


ATOMIC: dict[str, Any] = {"atomic": True}  # what an atomic access adds to its event's payload


def result_of(record: Record) -> Any:
    """What an ``as`` stores, from the step's last event (its return): the result (``"ok"``,
    ``"timeout"``, ``"fail"``, ``"broken"``); for a ``get`` or a ``recv`` that returned ok,
    the item received."""
    _seq, _ts, tag, payload = record
    if tag.result == "ok" and tag.op in ("get", "recv") and payload and "item" in payload:
        return copy_value(payload["item"])
    return tag.result


def _values_seen(a: ActorCtx, names: Sequence[str], shared: frozenset[str],
                 start: int) -> dict[str, Any]:
    """The values of ``names`` as the assert saw them: its locals, and for a shared variable
    the value its own evaluation read (the actor's events from ``start``; a variable on the
    side of an ``and``/``or`` it did not evaluate is not shown)."""
    out: dict[str, Any] = {}
    want = [x for x in names if x in shared]
    for _seq, _ts, tag, payload in reversed(a.buf[start:]):
        if tag.op == "read" and tag.target in want and tag.target not in out and payload:
            out[tag.target] = payload.get("value")
    return {x: (out.get(x) if x in shared else a.locals.get(x)) for x in names
            if x in out or x in a.locals}


# what a round of a spin loop may record and still have changed nothing
_LOOKS = frozenset({"read", "log", "sleep", "compute"})


def _mark(a: ActorCtx) -> tuple[int, dict[str, Any]]:
    """Where a round of a ``while`` starts: the actor's event count and its locals."""
    return a.progress(), dict(a.locals)


def _spun(a: ActorCtx, mark: tuple[int, dict[str, Any]]) -> tuple[frozenset[str], int] | None:
    """``(watched, since)`` when the round of a ``while`` since ``mark`` changed nothing: it
    recorded only reads, logs, sleeps, computes, calls that failed or timed out and locks it
    took and gave back, and left the locals as they were; ``watched`` is what it looked at
    (the variables read, the primitives tried or taken), ``since`` the seq of its first
    event. None otherwise, or when it looked at nothing (a loop over locals alone: it ends at
    its ``max``)."""
    count, before = mark
    k = a.progress() - count
    buf = a.buf
    if k <= 0 or k > len(buf) or a.locals != before:
        return None
    records = buf[-k:]
    watched: set[str] = set()
    calling = False  # a call, until its return says whether it happened
    held: dict[str, int] = {}  # locks taken in the round, less those released
    for _seq, _ts, tag, _payload in records:
        op = tag.op
        if op in _LOOKS:
            if op == "read" and tag.target is not None:
                watched.add(tag.target)
            continue
        target = tag.target
        if op == "acquire" and tag.phase == "return" and tag.result == "ok" \
                and target is not None:
            # taken, and given back before the round ends (a `with` around the reads, a
            # back-off's first lock): the lock is as it was, a look at it
            calling = False
            held[target] = held.get(target, 0) + 1
            watched.add(target)
            continue
        if op == "release" and target is not None and held.get(target, 0) > 0:
            held[target] -= 1
            continue
        if tag.phase == "call":
            # a try (blocking: false), or a timed call, which under a scheduler that parks
            # spins times out at once when it cannot go on: a look, if it fails
            calling = True
            continue
        if calling and tag.phase == "return" and tag.result in ("fail", "timeout"):
            calling = False
            if tag.target is not None:
                watched.add(tag.target)
            continue
        return None
    if calling or any(held.values()):
        return None
    if not watched:
        return None
    return frozenset(watched), records[0][0]


def added(actor: str, var: str, old: Any, delta: Any) -> Any:
    """``old + delta`` for an ``add`` step; an actor error when it cannot be added, or when
    the sum is a number no trace can hold (an integer beyond 64 bits, an infinite float)."""
    try:
        new = old + delta
    except TypeError:
        raise ActorFailure(f"{actor} cannot add {show(delta)} to {var} = {show(old)}") from None
    if (type(new) is float and not math.isfinite(new)) or \
            (type(new) is int and not -(2**63) <= new <= 2**64 - 1):
        raise ActorFailure(f"{actor}: {var} = {show(old)} + {show(delta)} is beyond what a "
                           "trace holds (64-bit integers, finite floats)")
    return new


def unlocked_variables(plan: Plan) -> frozenset[str]:
    """The shared variables whose accesses need no lock under ``run``: those that one actor
    alone accesses (an actor runs its steps one after another, whatever backs it; each copy
    of a ``count`` and each pool task is an actor of its own, so two of them count as two),
    and those that only coroutines access (they share one event loop, and an access takes
    its value and its seq with no ``await`` between them, so no other coroutine runs there;
    a lock there could only cost, or block the loop)."""
    who: dict[str, set[str]] = {}
    kinds = {ap.name: ap.kind for ap in plan.actors}
    shared = plan.scenario.shared

    def walk(name: str, steps: Sequence[M.Step]) -> None:
        for step in steps:
            if isinstance(step, (M.Read, M.Write, M.Add, M.Append, M.If)):
                var = step.read if isinstance(step, M.Read) else M.step_target(step)
                if var is not None:
                    who.setdefault(var, set()).add(name)
            for _path, text in M.step_exprs(step):
                for used in parse_expr(text).names:
                    if used in shared:
                        who.setdefault(used, set()).add(name)
            for _key, block in M.child_blocks(step):
                walk(name, block)

    for ap in plan.actors:
        walk(ap.name, ap.steps)
    return frozenset(var for var, names in who.items()
                     if len(names) == 1 or all(kinds[n] == "coroutine" for n in names))


SPINS = 100  # times a thread gives up the GIL for a variable's lock before it sleeps on it


def hold(a: ActorCtx, lock: Any) -> None:
    """Wait for a variable's lock that another actor holds for one access; polling, so that
    an aborted run still ends (the holder may be a process that was killed meanwhile).

    A thread's lock is first waited for by giving up the GIL (``sleep(0)``): the holder, a
    thread of this process that needs only the GIL to end its access, then goes on for its
    time slice. Sleeping on the lock instead hands it over at its release, and two threads
    that access one variable in a loop then take turns at every access, with two context
    switches each (the convoy that made a hot variable's accesses cost twice as much)."""
    rt = a.rt
    if type(lock) is LockType:
        for _ in range(SPINS):
            sleep(0)
            if lock.acquire(False):
                return
    while not lock.acquire(True, POLL):
        if rt.closed:
            raise Abort


def _copy_of(shared: Any, var: str) -> Any:
    """A copy of the shared variable ``var``'s value (what a read records)."""
    return copy_value(shared[var])
