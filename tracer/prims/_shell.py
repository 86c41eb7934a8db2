"""The base of every instrumented primitive: the shell over a real one that a type module
of this package builds on.

Each operation follows one pattern through the seam (``tracer/engine/_seam.py``): a blocking op
records its ``call``, hands its real operation to the run's scheduler as a non-blocking or
bounded *attempt* (``scheduler.wait``; free running it tries at once, then waits in short
slices so that an aborted run can stop it), updates who-holds-what, then records its
``return``; a releasing op records first, then acts. What a waiter waits for is the actor's
``waiting`` description; whether it would go on now is the primitive's ``available_for``. The
real primitive decides everything: if a semaphore of 2 lets a third actor in, the trace shows
it. The actor and the seam are duck-typed here: this package imports nothing of the engine.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tracer.engine._seam import ActorCtx, Tag

POLL = 0.02  # seconds a real blocking call waits before it checks whether the run was aborted


class Abort(BaseException):
    """Raised inside an actor when the run is over (deadlock, timeout, Ctrl-C, daemon end).

    A BaseException so that an actor's own error handling (``fail``) never swallows it."""


class ActorFailure(Exception):
    """An actor ended with an error: a ``fail`` step or a real primitive refusing an op.

    The innermost compiled block it passes through records, on the actor, the step it came
    from (``ActorCtx.failed_at``), before any ``with`` around it releases its lock."""


@dataclass(frozen=True)
class Env:
    """What a type's ``backing`` needs to build a process flavour: the run's multiprocessing
    context and its Manager (None when no process actor takes part)."""

    mp: Any = None
    manager: Any = None
    actors: tuple[str, ...] = ()  # every actor of the run (a backing may need a slot each)


def ready(a: ActorCtx, tag: Tag | None = None) -> Awaitable[Any]:
    """Await coroutine actor ``a``'s turn before it records ``tag`` (the seam's turn would
    block the event loop, which every coroutine shares)."""
    return a.rt.scheduler.aturn(a, tag)


class Unsupported(Exception):
    """A valid scenario asks for a flavour this type has no backing for."""


@dataclass(frozen=True)
class OpTags:
    """The tags one step records: the call and each possible return."""

    call: Tag
    ok: Tag
    timeout: Tag
    fail: Tag
    error: Tag
    broken: Tag


# the payload of a non-blocking attempt's ``call`` (an acquire, put or get made with
# ``blocking: false``): such an attempt never waits, so it is no lock-order edge. One dict
# shared by every such event, never mutated (what adds to a payload copies it).
NONBLOCKING: dict[str, Any] = {"blocking": False}


class Tally:
    """A count that many actors add to without a lock: each actor has its own cell, and only
    its own thread writes it (dict stores of distinct keys are atomic under the GIL)."""

    __slots__ = ("cells",)

    def __init__(self) -> None:
        self.cells: dict[str, int] = {}

    def add(self, who: str) -> None:
        cells = self.cells
        cells[who] = cells.get(who, 0) + 1

    def total(self) -> int:
        return sum(self.cells.values())

    def of(self, who: str) -> int:
        return self.cells.get(who, 0)

    def sub(self, who: str) -> None:
        """Take back one of ``who``'s counts (an arrival that left again)."""
        cells = self.cells
        cells[who] = cells.get(who, 0) - 1


class Prim:
    """Base of every instrumented primitive.

    ``available_for`` answers the watchdog's question "would this waiter proceed now?". A
    waiter that the real primitive has already let through, but that has not recorded its
    return yet, must count as free, or the watchdog would see a stall that is not there. So
    primitives keep tallies updated on the actor's side of each real call (a release before
    it, an acquire after it) and compare them."""

    ptype = "?"
    judged_together = False  # the watchdog asks once for all its waiters (a barrier's round)

    def __init__(self, name: str, real: Any) -> None:
        self.name = name
        self.real = real
        self.holders: dict[str, int] = {}  # actor name -> times held (locks, semaphores)

    # --- for the watchdog
    def available_for(self, op: str, waiters: int, actor: str, mark: int) -> bool:
        """Whether an actor waiting with ``op`` would proceed now (a transient wait)."""
        return False

    def abort(self) -> None:
        """Wake anything blocked inside the real primitive that cannot poll (barriers)."""

    def close(self) -> None:
        """Close what the real primitive holds of the OS (pipes), once its actors are gone or
        cannot be stopped otherwise (a thread blocked in a full pipe)."""

    def release_all(self, a: ActorCtx) -> None:
        """Release, without recording, what ``a`` holds: used when an aborted actor exits."""

    def wait_mode(self, mark: int) -> str | None:
        """The mode a waiter waits to hold it in, from its watchdog mark (an rwlock's read or
        write); None for a type with one mode."""
        return None

    # --- for the step compiler
    def compile_step(self, step: Any, c: Any) -> Callable[[ActorCtx], object]:
        """A step of a verb the type adds (``tracer.prims``: its "options and verbs"), as the
        function that performs it for an actor (a coroutine function for the asyncio
        flavour). ``c`` is the compiler: ``c.tags(op, target)`` gives the step's tags,
        ``c.tag(actor, op, target)`` one tag (at the step's line), ``c.actor`` the actor's name."""
        raise NotImplementedError(f"{self.ptype} {self.name} has no step {step.verb!r}")


class LockLike(Prim):
    """lock, rlock, semaphore, bounded_semaphore: acquire/release on ``real``.

    An ``owned`` one (a rlock, a thread or process condition's own RLock) belongs to the
    actor that took it. The real RLock knows its owner by thread ident, and CPython gives a
    new thread the ident of one that has ended: the new actor would "own" what the ended one
    still holds (release it, or take it again at once). The seam knows the holders by actor,
    so it refuses both: such a release is the misuse it is, such an acquire waits."""

    owned = False
    counted = False  # a semaphore: ``initial`` holds at once, counted by the tallies
    # a plain lock: another actor may release it, and then nobody holds it
    released_by_anyone = False

    def __init__(self, name: str, real: Any, initial: int = 1) -> None:
        super().__init__(name, real)
        self.resource: LockLike = self  # what acquire/release hold (a condition's lock)
        self.initial = initial  # a semaphore's value
        self.acquired = Tally()  # successful acquires, tallied after the real call
        self.released = Tally()  # releases, tallied before the real call
        # the attempt of an acquire (0: a try; s > 0: up to s seconds); a condition's lock is
        # its resource's (see ``Condition``)
        self.take: Callable[[float], bool] = partial(real.acquire, True) \
            if real is not None else _never

    def __getstate__(self) -> dict[str, Any]:
        # (to a process actor's child: ``take`` is a method of the real lock's C object,
        # which pickles only as part of that lock)
        state = dict(self.__dict__)
        state.pop("take", None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        real = self.real
        self.take = partial(real.acquire, True) if real is not None else _never

    def acquire(self, t: OpTags, timeout: float | None, blocking: bool, a: ActorCtx) -> bool:
        res = self.resource
        emit = a.emit
        seq = emit(t.call, None if blocking else NONBLOCKING)
        # the scheduler tries the real acquire (at once when running free: the uncontended
        # case costs little more; a replay takes the lock when the recording says the call
        # returned, never before); the watchdog sees what it waits for until it returns (its
        # mark: the acquires it had made, so that one made and not yet recorded shows)
        name = a.name
        ok = a.rt.scheduler.wait(a, partial(_take_owned, res, a) if res.owned else res.take,
                                 timeout if blocking else 0.0,
                                 waiting=partial(self._waiting, a, seq, timeout is not None
                                                 or not blocking))
        if ok:
            # in this order: the watchdog reads holders first, then waits and tallies, and
            # must never see an actor wait for what it holds
            res.acquired.add(name)
            h = res.holders
            h[name] = h.get(name, 0) + 1
        emit(t.ok if ok else (t.timeout if blocking else t.fail), None)
        return ok

    def _waiting(self, a: ActorCtx, seq: int, timed: bool) -> tuple[Any, str, bool, int, int]:
        """What an acquire waits for (made only when it waits)."""
        return (self, "acquire", timed, seq, self.resource.acquired.of(a.name))

    def acquirer(self, step: Any) -> Callable[[OpTags, float | None, bool, ActorCtx], Any]:
        """The acquire that an ``acquire`` or ``with`` step calls (``acquire(tags, timeout,
        blocking, actor)``); a type whose steps have options of their own (an rwlock's
        ``mode``) gives one bound to them."""
        return self.acquire

    def release(self, tag: Tag, a: ActorCtx) -> None:
        res = self.resource
        a.emit(tag, None)
        h = res.holders
        name = a.name
        if res.owned and name not in h:
            # refused here, not by the real RLock: a thread that reuses an ended one's ident
            # would release what that actor holds
            msg = self._release_error(a, RuntimeError("cannot release un-acquired lock"))
            a.fail_last(msg)
            raise ActorFailure(msg)
        n = h.pop(name, 0)
        if n > 1:
            h[name] = n - 1
        res.released.add(name)
        try:
            res.real.release()
        except (RuntimeError, ValueError, AssertionError) as exc:
            # a multiprocessing RLock or Condition refuses with an AssertionError: say what
            # threading says, so that both flavours read alike
            why = RuntimeError("cannot release un-acquired lock") \
                if isinstance(exc, AssertionError) else exc
            msg = self._release_error(a, why)
            a.fail_last(msg)
            raise ActorFailure(msg) from None
        if n == 0 and res.released_by_anyone:
            h.clear()  # another actor's lock, released by this one: nobody holds it now

    def _release_error(self, a: ActorCtx, exc: Exception) -> str:
        return f"{a.name} released {self.ptype} {self.name}, which it does not hold ({exc})"

    def release_all(self, a: ActorCtx) -> None:
        n = self.holders.pop(a.name, 0)
        for _ in range(n):
            try:
                self.real.release()
            except (RuntimeError, ValueError, AssertionError):
                # not held after all (a multiprocessing lock asserts): an aborted condition
                # wait under explore does not take its lock back
                break

    def available_for(self, op: str, waiters: int, actor: str, mark: int) -> bool:
        if self.counted:
            # the real value, from our tallies: an acquire not yet tallied leaves it above 0
            return self.initial + self.released.total() - self.acquired.total() > 0
        if self.acquired.of(actor) > mark:
            return True  # it got it, its return is not recorded yet
        return not self.holders


def _never(s: float) -> bool:
    return False


def _take_owned(res: LockLike, a: ActorCtx, s: float) -> bool:
    """Take owned lock ``res`` for ``a`` (without blocking when ``s`` is 0, else for up to
    ``s`` seconds): a real acquire that succeeds while another actor holds it is a re-entry by
    a reused thread ident, which is undone (the attempt waits out its slice, then fails)."""
    return _take(res.real, res, a, s)


def _take(lock: Any, res: LockLike | None, a: ActorCtx, s: float) -> bool:
    """Take ``lock`` (0: a try; else for up to ``s`` seconds). When it is the real lock of
    owned ``res``, an acquire that succeeds while another actor holds ``res`` is a re-entry by a
    reused thread ident, which is undone (the attempt waits out its slice, then fails)."""
    if not (lock.acquire(False) if s <= 0 else lock.acquire(True, s)):
        return False
    if res is not None and res.owned:
        h = res.holders
        if len(h) > (1 if a.name in h else 0):  # held by another actor: one that has ended
            lock.release()
            if s > 0:
                a.rt.abort_event.wait(s)
            return False
    return True


class LockNotRetaken(Abort):
    """A condition wait ended by the run's end before it took its lock back: the waiter does
    not hold the lock, so nothing is released for it."""


def now_acquiring(a: ActorCtx, res: LockLike | None = None) -> None:
    """A notified (or timed-out) waiter now waits for the condition's lock ``res``, not a
    notify (its mark: the acquires of ``res`` it had made, see ``LockLike.acquire``)."""
    w = a.waiting
    if w is not None:
        a.waiting = (w[0], "acquire", False, w[3],
                     res.acquired.of(a.name) if res is not None else w[4])


def retaken(a: ActorCtx, res: LockLike, held: int) -> None:
    """A condition's waiter holds its lock ``res`` again (``held`` times): no longer waiting,
    tallied, then a holder, in this order (see ``LockLike.acquire``)."""
    a.waiting = None
    res.acquired.add(a.name)
    if held:
        res.holders[a.name] = held


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


class ALockLike(LockLike):
    """acquire for asyncio Lock / Semaphore / BoundedSemaphore / Condition (its lock);
    release is the thread version's: asyncio's release does not wait."""

    async def acquire(  # type: ignore[override]
            self, t: OpTags, timeout: float | None, blocking: bool, a: ActorCtx) -> bool:
        res = self.resource
        real = res.real
        await ready(a, t.call)
        seq = a.emit(t.call, None if blocking else NONBLOCKING)
        sched = a.rt.scheduler
        if not real.locked() and sched.may_try(a, True):
            await real.acquire()  # free: returns without suspending (the uncontended case)
            ok = True
        else:
            a.waiting = (self, "acquire", timeout is not None or not blocking, seq,
                         res.acquired.of(a.name))

            async def attempt() -> bool:
                if real.locked():
                    return False
                await real.acquire()  # free: returns without suspending
                return True
            # takes: a replay takes it when the recording says the call returned, as it did
            ok = await sched.await_(a, attempt, lambda: _within(real.acquire(), timeout),
                                    timeout if blocking else 0.0, takes=True)
            a.waiting = None
        if ok:
            res.acquired.add(a.name)  # (before the hold: see LockLike.acquire)
            h = res.holders
            h[a.name] = h.get(a.name, 0) + 1
        await ready(a, t.ok)
        a.emit(t.ok if ok else (t.timeout if blocking else t.fail), None)
        return ok
