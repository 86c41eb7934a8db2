"""The ``latch``: its options and verbs, its facts, its backings (see ``tracer.prims``).

A latch is Go's ``sync.WaitGroup`` and C#'s ``CountdownEvent``: a count that actors lower
(``count_down``) and raise (``count_up``); a ``wait`` returns once the count is zero. Python
ships none, so the backings are built the way its users build one, on a real condition
variable (threading's, multiprocessing's) or a real asyncio event.

Design of the backings. Each keeps the count and an *epoch*: how many times the count has
reached zero. A waiter notes the epoch when it starts to wait and returns when the count is
zero **or** the epoch has moved on. So every waiter that was waiting when the count reached
zero is released, even if a ``count_up`` raises it again before the waiter is scheduled (Go's
rule: the waiters of a round are released by the round's last ``Done``); checking the count
alone would lose that wake-up. A caller that waits in turns (time slices under a free run,
parking under explore) passes the epoch of its first turn as ``since`` to every later
``try_wait``/``wait``, so no zero between two turns is missed.

Choices where Go and C# differ:

- ``count_up`` on a latch at zero is allowed (Go's reuse after ``Wait`` returned; C#'s
  ``AddCount`` refuses it): a new round starts, later waiters wait for it, waiters already
  released stay released.
- ``n`` is an integer of at least 1 for both verbs (C#'s ``Signal(0)``/``AddCount(0)`` refuse
  0; a step that changes nothing is a mistake in a scenario). Lowering the count below zero is
  refused: :class:`LatchCountError` (a ``ValueError``), the count unchanged. So is raising it
  beyond :data:`MAX_COUNT`, which is what the shared memory of the process flavour holds.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal

from pydantic import Field

from tracer.prims._facts import Channel, Counter, Facts, Op
from tracer.prims._options import Name, PrimOptions, Step
from tracer.prims._shell import ActorFailure, Env, OpTags, Prim, Tally, _within, ready

if TYPE_CHECKING:
    import asyncio

    from tracer.engine._seam import ActorCtx, Tag

NAME = "latch"


# --- options and verbs (read by tracer.scenario) -----------------------------------------

_N = Annotated[int, Field(ge=1, le=1_000_000)]


class LatchSpec(PrimOptions):
    type: Literal["latch"]
    count: Annotated[int, Field(ge=0, le=1_000_000)] = 0


class CountDown(Step):
    """``{count_down: L}``, ``{count_down: L, n: 2}``: lower the count (never waits)."""

    verb: ClassVar[str] = "count_down"
    count_down: Name
    n: _N = 1


class CountUp(Step):
    """``{count_up: L}``, ``{count_up: L, n: 2}``: raise the count (Go's ``wg.Add``)."""

    verb: ClassVar[str] = "count_up"
    count_up: Name
    n: _N = 1


OPTIONS = LatchSpec
VERBS = ("wait",)
STEPS = (CountDown, CountUp)


# --- facts (read by the trace's state pass) -------------------------------------------------

# every count_down -> the wait that returns; the count may not go below zero (misuse)
FACTS = Facts(
    ops={"count_down": Op(publish=("down",)), "wait": Op(take=("down",))},
    channels={"down": Channel("all")},
    counter=Counter({"count_down": -1, "count_up": 1}, option="count", amount="n",
                    misuse="{actor} counts latch {name} down below zero (seq {seq}: the count "
                           "would be {count}) — count down once for each count, or count up "
                           "first (count_up)"),
)


FREED_BY = {"wait": ("count_down",)}  # (the watchdog: whoever may still count down)


WAITS = {"wait": ("waits for latch {target}", "count it down")}  # (how messages say it)


# --- backings (read by tracer.engine) -------------------------------------------------------

MAX_COUNT = 2**63 - 1  # a signed 64-bit integer: the process flavour's shared count


@dataclass(frozen=True)
class LatchState:
    """What a latch is at one moment: its count (zero: a ``wait`` returns at once)."""

    count: int


class LatchCountError(ValueError):
    """A ``count_down`` that would take a latch below zero (or a ``count_up`` beyond
    :data:`MAX_COUNT`). It was refused: the count is unchanged. The fields say what was
    asked of which latch at which count, for the misuse analysis and the message."""

    def __init__(self, latch: str, verb: str, n: int, count: int, actor: str | None) -> None:
        self.latch = latch
        self.verb = verb  # "count_down" or "count_up"
        self.n = n
        self.count = count
        self.actor = actor
        way = "down" if verb == "count_down" else "up"
        limit = ("a count cannot go below zero" if verb == "count_down"
                 else f"a count cannot go above {MAX_COUNT}")
        if actor is None:
            text = f"latch {latch} was counted {way} by {n} from {count}: {limit}"
        else:
            text = f"{actor} counted latch {latch} {way} by {n} from {count}: {limit}"
        super().__init__(text)

    def __reduce__(self) -> tuple[Any, ...]:  # so it crosses a process boundary intact
        return (type(self), (self.latch, self.verb, self.n, self.count, self.actor))


def check_count(count: object) -> int:
    """A latch's initial count: an integer from 0 to :data:`MAX_COUNT`."""
    if not isinstance(count, int) or isinstance(count, bool):
        raise TypeError(f"a latch's count is a whole number, not {count!r}")
    if not 0 <= count <= MAX_COUNT:
        raise ValueError(f"a latch's count is 0 to {MAX_COUNT}, not {count}")
    return count


def check_n(n: object, verb: str) -> int:
    """The ``n`` of a ``count_down``/``count_up``: an integer of at least 1."""
    if not isinstance(n, int) or isinstance(n, bool):
        raise TypeError(f"{verb} takes a whole number n, not {n!r}")
    if n < 1:
        raise ValueError(f"{verb} takes n of at least 1, not {n}")
    return n


class _Box:
    """A plain integer cell, the thread flavour's stand-in for a shared ``RawValue``."""

    __slots__ = ("value",)

    def __init__(self, value: int) -> None:
        self.value = value


class _CondLatch:
    """The latch over a condition variable and two integer cells (the count and the epoch),
    both read and written only while the condition's lock is held. The thread and process
    flavours differ only in what they are built from."""

    name: str
    _cond: Any  # threading.Condition or multiprocessing.synchronize.Condition
    _count: Any  # an object with an int ``value``
    _epoch: Any

    def count_down(self, n: int = 1, *, actor: str | None = None) -> int:
        """Lower the count by ``n`` and return the new count; at zero, release every waiter.
        Never waits for the count. Below zero: :class:`LatchCountError`, nothing changed."""
        n = check_n(n, "count_down")
        with self._cond:
            count = int(self._count.value)
            if n > count:
                raise LatchCountError(self.name, "count_down", n, count, actor)
            self._count.value = count - n
            if count == n:
                self._epoch.value += 1
                self._cond.notify_all()
            return count - n

    def count_up(self, n: int = 1, *, actor: str | None = None) -> int:
        """Raise the count by ``n`` and return the new count (from zero: a new round)."""
        n = check_n(n, "count_up")
        with self._cond:
            count = int(self._count.value)
            if count + n > MAX_COUNT:
                raise LatchCountError(self.name, "count_up", n, count, actor)
            self._count.value = count + n
            return count + n

    def epoch(self) -> int:
        """How many times the count has reached zero (the ``since`` of a waiter's first turn)."""
        with self._cond:
            return int(self._epoch.value)

    def _open(self, since: int | None) -> bool:
        return self._count.value == 0 or (since is not None and self._epoch.value != since)

    def try_wait(self, since: int | None = None) -> bool:
        """Whether a ``wait`` would return now: the count is zero, or (given the epoch of an
        earlier turn) it has reached zero since then. Never blocks."""
        with self._cond:
            return self._open(since)

    def wait(self, timeout: float | None = None, since: int | None = None) -> bool:
        """Block until the count reaches zero (True) or ``timeout`` seconds pass (False).
        ``since``: the epoch of this waiter's first turn, when it waits in several calls."""
        with self._cond:
            if since is None:
                since = int(self._epoch.value)
            first = since

            def opened() -> bool:
                return self._open(first)

            return bool(self._cond.wait_for(opened, timeout))

    def state(self) -> LatchState:
        with self._cond:
            return LatchState(int(self._count.value))

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} count={self.state().count}>"


class ThreadLatch(_CondLatch):
    """The latch of thread actors, on a ``threading.Condition``."""

    def __init__(self, name: str, count: int) -> None:
        self.name = name
        self._count = _Box(check_count(count))
        self._epoch = _Box(0)
        self._cond = threading.Condition()  # on an RLock, as by default


class ProcessLatch(_CondLatch):
    """The latch of process actors, on a ``multiprocessing.Condition``, the count and epoch in
    shared memory. Build it in the parent from the run's multiprocessing context ``ctx`` and
    hand it to children as a ``Process`` argument (it pickles under forkserver and spawn, and
    is inherited under fork).

    The ``count_down`` that reaches zero calls multiprocessing's ``notify_all``, which waits
    until every process it wakes has woken (a moment). A process killed while sleeping in
    ``wait`` never wakes, so that ``count_down`` would wait for good, as on any
    ``multiprocessing.Condition`` (the run's timeout still ends such a run; waiting in turns
    with ``wait(slice, since=...)`` narrows the window to the moments a waiter is inside the
    condition, it does not close it)."""

    def __init__(self, name: str, count: int, ctx: Any) -> None:
        self.name = name
        self._count = ctx.RawValue("q", check_count(count))
        self._epoch = ctx.RawValue("q", 0)
        self._cond = ctx.Condition()  # on an RLock, as by default


def _asyncio() -> Any:
    """asyncio, imported on first use: ``import tracer.prims`` stays cheap (~30 ms saved in
    every process child, which never runs a coroutine)."""
    import asyncio  # noqa: PLC0415 (see the docstring)

    return asyncio


class AsyncLatch:
    """The latch of coroutine actors, on ``asyncio.Event``: one event per round, set when the
    count reaches zero, replaced by a fresh one when a ``count_up`` starts the next round. A
    waiter waits on its round's event, so it is released by the zero it waited for even if
    the count is raised again before it runs. ``count_down``/``count_up``/``try_wait`` are
    plain calls (they never await); all calls belong to the one event loop of the run's
    coroutines (like asyncio's primitives, this is not thread-safe)."""

    def __init__(self, name: str, count: int) -> None:
        self.name = name
        self._count = check_count(count)
        self._epoch = 0
        self._zero: asyncio.Event = _asyncio().Event()  # this round's: set when the count is 0
        if self._count == 0:
            self._zero.set()

    def count_down(self, n: int = 1, *, actor: str | None = None) -> int:
        """As :meth:`ThreadLatch.count_down`."""
        n = check_n(n, "count_down")
        if n > self._count:
            raise LatchCountError(self.name, "count_down", n, self._count, actor)
        self._count -= n
        if self._count == 0:
            self._epoch += 1
            self._zero.set()
        return self._count

    def count_up(self, n: int = 1, *, actor: str | None = None) -> int:
        """As :meth:`ThreadLatch.count_up`."""
        n = check_n(n, "count_up")
        if self._count + n > MAX_COUNT:
            raise LatchCountError(self.name, "count_up", n, self._count, actor)
        if self._count == 0:
            self._zero = _asyncio().Event()  # a new round; the last one's waiters were released
        self._count += n
        return self._count

    def epoch(self) -> int:
        """How many times the count has reached zero."""
        return self._epoch

    def try_wait(self, since: int | None = None) -> bool:
        """As :meth:`ThreadLatch.try_wait`."""
        return self._count == 0 or (since is not None and self._epoch != since)

    async def wait(self, timeout: float | None = None, since: int | None = None) -> bool:
        """Await the count reaching zero (True) or ``timeout`` seconds (False)."""
        if self.try_wait(since):
            return True
        # since is None or the current epoch: the current round's event is the one to await
        zero = self._zero
        aio = _asyncio()
        if timeout is not None and timeout <= 0:
            return False
        try:
            await aio.wait_for(zero.wait(), timeout)
        except aio.TimeoutError:
            return False
        return True

    def state(self) -> LatchState:
        return LatchState(self._count)

    def __repr__(self) -> str:
        return f"<AsyncLatch {self.name} count={self._count}>"


def make_latch(flavour: str, name: str, count: int, ctx: Any = None) -> Any:
    """The latch ``name`` with ``count`` for actors of ``flavour`` (thread, process, coroutine;
    ``ctx``: the multiprocessing context of a process flavour)."""
    if flavour == "thread":
        return ThreadLatch(name, count)
    if flavour == "process":
        if ctx is None:
            raise ValueError("a process latch needs the run's multiprocessing context")
        return ProcessLatch(name, count, ctx)
    if flavour == "coroutine":
        return AsyncLatch(name, count)
    raise ValueError(f"no latch for {flavour!r} actors (thread, process or coroutine)")


# the instrumented shells: count_down and count_up record first, then act (a count_down
# below zero is refused by the real latch: the actor fails, the count stays); a wait is a
# look (it takes nothing), tried at once, then waited through the scheduler; its watchdog
# mark is the latch's epoch when it began (a zero reached since lets it through)


class Latch(Prim):
    """A latch of thread or process actors (``real``: a ThreadLatch or ProcessLatch)."""

    ptype = "latch"

    def __init__(self, name: str, real: Any) -> None:
        super().__init__(name, real)
        self.downs = Tally()  # count_downs, tallied before the real call

    def compile_step(self, step: Any, c: Any) -> Callable[[ActorCtx], object]:
        if isinstance(step, (CountDown, CountUp)):
            down = isinstance(step, CountDown)
            tag = c.tag(c.actor, step.verb, self.name)
            return partial(self.count, down, tag, step.n, {"n": step.n})
        return super().compile_step(step, c)

    def count(self, down: bool, tag: Tag, n: int, payload: dict[str, Any], a: ActorCtx) -> None:
        a.emit(tag, payload)  # (shared by every event of the step, never changed)
        if down:
            self.downs.add(a.name)
        real = self.real
        try:
            (real.count_down if down else real.count_up)(n, actor=a.name)
        except ValueError as exc:  # below zero (or beyond what a count holds)
            msg = str(exc)
            a.fail_last(msg)
            raise ActorFailure(msg) from None

    def wait(self, a: ActorCtx, t: OpTags, timeout: float | None) -> None:
        real = self.real
        since = real.epoch()
        a.block(self, "wait", timeout, t.call, None, since)
        ok = real.try_wait(since) or a.rt.scheduler.wait(
            a, partial(self._attempt, since), timeout, looks=True)
        a.waiting = None
        a.emit(t.ok if ok else t.timeout, None)

    def _attempt(self, since: int, s: float) -> bool:
        real = self.real
        return bool(real.try_wait(since) if s <= 0 else real.wait(s, since))

    def available_for(self, op: str, waiters: int, actor: str, mark: int) -> bool:
        return bool(self.real.try_wait(mark))


class ALatch(Latch):
    """A latch of coroutine actors (``real``: an AsyncLatch)."""

    async def wait(  # type: ignore[override]
            self, a: ActorCtx, t: OpTags, timeout: float | None) -> None:
        real = self.real
        since = real.epoch()
        await ready(a, t.call)
        seq = a.emit(t.call, None)
        ok = real.try_wait(since)
        if not ok:
            a.waiting = (self, "wait", timeout is not None, seq, since)

            async def attempt() -> bool:
                return bool(real.try_wait(since))
            ok = await a.rt.scheduler.await_(
                a, attempt, lambda: _within(real.wait(None, since), timeout), timeout)
            a.waiting = None
        await ready(a, t.ok)
        a.emit(t.ok if ok else t.timeout, None)


def backing(kind: str, name: str, spec: Any, made: dict[str, Prim], env: Env) -> Prim:
    """The latch of ``spec.count`` for actors of ``kind``."""
    if kind == "coroutine":
        return ALatch(name, AsyncLatch(name, spec.count))
    if kind == "process":
        return Latch(name, ProcessLatch(name, spec.count, env.mp))
    return Latch(name, ThreadLatch(name, spec.count))
