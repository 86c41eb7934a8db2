"""``condition``: a condition variable on its own lock or on a named one
(``threading.Condition``, ``multiprocessing.Condition``, ``asyncio.Condition``): its options and
verbs, its facts, its backings."""

from __future__ import annotations

import asyncio
import threading
from functools import partial
from typing import TYPE_CHECKING, Any

from tracer.prims._shell import (
    Abort,
    ActorFailure,
    ALockLike,
    Env,
    LockLike,
    LockNotRetaken,
    OpTags,
    Prim,
    _take,
    _within,
    now_acquiring,
    ready,
    retaken,
)

if TYPE_CHECKING:
    from tracer.engine._seam import ActorCtx, Tag

NAME = "condition"


# --- options and verbs (read by tracer.scenario) -----------------------------------------

from typing import Literal

from tracer.prims._options import CheckContext, Name, PrimOptions, a_


class ConditionSpec(PrimOptions):
    type: Literal["condition"]
    lock: Name | None = None


OPTIONS = ConditionSpec
VERBS = ("acquire", "release", "with", "wait", "notify", "notify_all")


def check(ctx: CheckContext, name: str, spec: PrimOptions) -> None:
    """``lock`` must name a lock or an rlock of the scenario."""
    assert isinstance(spec, ConditionSpec)
    lname = spec.lock
    if lname is None:
        return
    loc = ("primitives", name, "lock")
    prims = ctx.primitives
    if lname not in prims:
        ctx.report(loc, f"condition lock '{lname}' is not a primitive"
                        f"{ctx.did_you_mean(lname, prims)}")
    elif prims[lname].type not in ("lock", "rlock"):
        ctx.report(loc, f"condition lock '{lname}' is {a_(prims[lname].type)}; it must be a "
                        "lock or rlock")


def also_uses(spec: PrimOptions) -> tuple[str, ...]:
    """A step on a condition also takes or waits for its lock."""
    assert isinstance(spec, ConditionSpec)
    return (spec.lock,) if spec.lock is not None else ()


# --- facts (read by the trace's state pass) -------------------------------------------------

from tracer.prims._facts import Channel, Facts, HoldMode, Op

# acquiring it takes its lock (the primitive its ``lock`` option names, else its own: an
# RLock, but asyncio's is not re-entrant); a wait lets the lock go at its call and takes it
# back at its return; a notify -> the waits that return ok after it
FACTS = Facts(
    ops={"acquire": Op(hold="take"), "release": Op(hold="give"),
         "wait": Op(hold="let_go", take=("notified",)),
         "notify": Op(publish=("notified",)), "notify_all": Op(publish=("notified",))},
    channels={"held": Channel("last", mutex=True), "notified": Channel("all")},
    modes={"": HoldMode("exclusive", gives=("held",), takes=("held",))},
    resource="lock",
    reentrant=frozenset({"thread", "process"}),
)


FREED_BY = {"wait": ("notify", "notify_all")}  # (the watchdog: what frees a waiter)


WAITS = {"wait": ("waits on condition {target}", "notify")}  # (how messages say it)
HELD_BY_OWNER = True  # an acquire waits for the holders of its lock


# --- backings (read by tracer.engine) -------------------------------------------------------


class Condition(LockLike):
    """A condition: acquire/release act on its lock (its own, or the named one)."""

    ptype = "condition"
    own_lock_owned = True  # threading's and multiprocessing's Condition() make a RLock

    def __init__(self, name: str, real: Any, lock: LockLike | None) -> None:
        super().__init__(name, real)
        if lock is not None:
            self.resource = lock
        else:
            self.owned = self.own_lock_owned
        self.doors: Doors | None = None  # a process condition's wake-ups (see Doors)

    def not_owner(self, a: ActorCtx, verb: str) -> str | None:
        """Why ``a`` may not wait on or notify this condition, if it may not.

        threading.Condition over a plain Lock (and asyncio.Condition) cannot tell who holds
        the lock: a waiter that does not hold it would silently release another actor's lock.
        The seam knows the holders, so tracer reports it as the error it is."""
        res = self.resource
        if a.name in res.holders:
            return None
        others = sorted(res.holders)
        lock = res.name if res is not self else "its lock"
        held = f"; {res.name} is held by {', '.join(others)}" if others else ""
        return f"{a.name} {verb} condition {self.name} without holding {lock}{held}"

    def wait(self, a: ActorCtx, t: OpTags, timeout: float | None) -> None:
        res = self.resource
        a.block(self, "wait", timeout, t.call)
        bad = self.not_owner(a, "waited on")
        if bad:
            a.waiting = None
            a.emit(t.error, {"error": bad})
            raise ActorFailure(bad)
        held = res.holders.pop(a.name, 0)
        try:
            ok = (_condition_wait(self.real, a, timeout, res) if self.doors is None
                  else self.doors.wait(self.real, a, timeout, res))
        except RuntimeError as exc:  # waited without holding the lock
            if held:
                res.holders[a.name] = held
            a.waiting = None
            msg = f"{a.name} waited on condition {self.name} without holding its lock ({exc})"
            a.emit(t.error, {"error": msg})
            raise ActorFailure(msg) from None
        except LockNotRetaken:
            raise  # it does not hold the lock: nothing to give back for it
        except Abort:
            # Condition.wait re-took the lock before returning: we hold it again
            if held:
                res.holders[a.name] = held
            raise
        retaken(a, res, held)  # (never seen waiting for what it holds: see retaken)
        a.emit(t.ok if ok else t.timeout, None)

    def notify(self, a: ActorCtx, tag: Tag, n: int | None) -> None:
        a.emit(tag, None)
        bad = self.not_owner(a, "notified")
        if bad:
            a.fail_last(bad)
            raise ActorFailure(bad)
        try:
            if self.doors is not None:
                self.doors.notify(self.real, n)
            elif n is None:
                self.real.notify_all()
            else:
                self.real.notify(n)
        except RuntimeError as exc:
            msg = f"{a.name} notified condition {self.name} without holding its lock ({exc})"
            a.fail_last(msg)
            raise ActorFailure(msg) from None

    def release_all(self, a: ActorCtx) -> None:
        if self.resource is self:
            super().release_all(a)

    def available_for(self, op: str, waiters: int, actor: str, mark: int) -> bool:
        res = self.resource
        if op == "wait" and actor in res.holders:
            # a wait that has not let its lock go yet (it is recorded first): it is between
            # two steps of its own, not waiting for anyone
            return True
        if op == "acquire" and res.acquired.of(actor) > mark:
            return True  # it has the lock again (or got it), its return is not recorded yet
        if op == "wait":
            if self.doors is not None:
                return self.doors.notified(actor)
            # a notified waiter leaves real._waiters before it wakes: if fewer are queued
            # there than our actors waiting, one was notified and is about to return
            return len(self.real._waiters) < waiters
        return not self.resource.holders


def _condition_wait(real: Any, a: ActorCtx, timeout: float | None,
                    res: LockLike | None = None) -> bool:
    """``real.wait(timeout)``, abortable, and without losing a notify.

    Waiting in slices with ``real.wait(POLL)`` would drop out of the condition's waiter list
    between slices, and a notify sent then would be lost: the instrumentation would create the
    lost wakeup it is meant to find. So this is CPython's own ``threading.Condition.wait``
    with the waits handed to the scheduler: the waiter stays registered from start to end,
    exactly as in an uninstrumented wait (a process condition waits through its
    :class:`Doors`). ``res``: the seam's view of the condition's lock (who holds it)."""
    sched = a.rt.scheduler
    if not real._is_owned():
        raise RuntimeError("cannot wait on un-acquired lock")
    waiter = threading.Lock()
    waiter.acquire()
    real._waiters.append(waiter)
    saved = real._release_save()
    gotit = False
    try:
        gotit = sched.wait(a, partial(waiter.acquire, True), timeout)
        return gotit
    finally:
        retaken = False
        try:
            retaken = _retake(real._lock, _depth(saved), a, res, res)
        except Abort:
            pass
        finally:
            if not gotit:
                try:
                    real._waiters.remove(waiter)
                except ValueError:
                    pass
        if not retaken:
            raise LockNotRetaken  # an abort wins over the wait's result


class Doors:
    """The waiters of a process condition, each with a wake-up of its own.

    multiprocessing's ``Condition`` wakes its sleepers through one semaphore and then waits
    until each has woken (``_woken_count``). Under a scheduler that runs one actor at a time
    that wait cannot end, and without it a wake-up meant for one sleeper can be taken by a
    later waiter (the notifier itself, waiting again: a wake-up stolen, a false deadlock). So a
    process condition keeps its waiters as threading's Condition does, one wake-up each: a
    slot per actor in shared memory (waiting, notified) with the order it began to wait, and a
    semaphore per actor. Everything but the wait itself happens under the condition's real
    lock; a notify wakes the longest waiting first and never waits."""

    WAITING, NOTIFIED = 1, 2

    def __init__(self, ctx: Any, actors: tuple[str, ...]) -> None:
        self.index = {name: i for i, name in enumerate(actors)}
        self.slots = ctx.RawArray("q", 2 * len(actors))  # per actor: state, the order it began
        self.order = ctx.RawValue("q", 1)
        self.bells = [ctx.Semaphore(0) for _ in actors]

    def wait(self, real: Any, a: ActorCtx, timeout: float | None, seam: LockLike) -> bool:
        lock = real._lock
        if not lock._semlock._is_mine():
            raise RuntimeError("cannot wait on un-acquired lock")
        i = self.index[a.name]
        slots, bell = self.slots, self.bells[i]
        slots[2 * i], slots[2 * i + 1] = self.WAITING, self.order.value
        self.order.value += 1
        count = lock._semlock._count()
        for _ in range(count):
            lock.release()
        gotit = False
        try:
            gotit = a.rt.scheduler.wait(a, partial(bell.acquire, True), timeout)
        finally:
            retaken = False
            try:
                retaken = _retake(lock, count, a, None, seam)
            except Abort:
                pass
            if retaken:
                # holding the lock again, no notify runs now: one that chose it after it timed
                # out still counts (it was waiting then), and its wake-up is taken
                if not gotit and slots[2 * i] == self.NOTIFIED:
                    gotit = bool(bell.acquire(False))
                slots[2 * i] = 0
            if not retaken:
                raise LockNotRetaken  # an abort wins over the wait's result
        return gotit

    def notify(self, real: Any, n: int | None) -> None:
        if not real._lock._semlock._is_mine():
            raise RuntimeError("cannot notify on un-acquired lock")
        slots = self.slots
        waiting = sorted((slots[2 * i + 1], i) for i in range(len(self.bells))
                         if slots[2 * i] == self.WAITING)
        for _, i in waiting if n is None else waiting[:n]:
            slots[2 * i] = self.NOTIFIED
            self.bells[i].release()

    def notified(self, actor: str) -> bool:
        """Whether ``actor``'s wait was notified (it is about to return)."""
        i = self.index.get(actor)
        return i is not None and self.slots[2 * i] == self.NOTIFIED


def _depth(saved: Any) -> int:
    """How many times a condition's lock was held, from what ``_release_save`` returned
    (``(count, owner)`` for an RLock, nothing for a Lock)."""
    if isinstance(saved, tuple) and saved and isinstance(saved[0], int):
        return max(1, saved[0])
    return 1


def _retake(lock: Any, count: int, a: ActorCtx, res: LockLike | None,
            seam: LockLike | None) -> bool:
    """Take a condition's lock back at the end of a wait, ``count`` times (an RLock's depth),
    through the scheduler (in slices when running free: the real wait would block for good on
    a lock whose holder has ended, and no abort could stop it; parked until it is free when
    one actor runs at a time). False when the run was closed first (it is not held then).
    ``res``: the owned lock whose real acquire is checked against its holders (see
    ``_take``); ``seam``: the lock in the seam's view (who holds it), for the watchdog."""
    now_acquiring(a, seam)  # the watchdog sees the waiter wait for the lock from here on
    if a.rt.closed or not a.rt.scheduler.wait(a, partial(_take, lock, res, a), None,
                                              always=True):
        return False
    for _ in range(count - 1):
        lock.acquire()  # reentrant: it is ours, this cannot block
    return True


async def _aretake(real: Any, a: ActorCtx) -> bool:
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


class ACondition(ALockLike, Condition):
    own_lock_owned = False  # asyncio's Condition() makes a Lock, which any task may release

    async def wait(  # type: ignore[override]
            self, a: ActorCtx, t: OpTags, timeout: float | None) -> None:
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
        except LockNotRetaken:
            raise  # the run ended before it took the lock back: it holds nothing
        except BaseException:
            if held:  # the wait re-took the lock, also when cancelled
                res.holders[a.name] = held
            raise
        retaken(a, res, held)  # (see Condition.wait)
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
            now_acquiring(a, self.resource)  # the watchdog sees it wait for the lock

            async def free() -> bool:
                if real.locked():
                    return False
                await real.acquire()  # free: returns without suspending
                return True
            if not await sched.await_(a, free, partial(_aretake, real, a), None):
                raise LockNotRetaken  # an abort wins over the wait's result

    def available_for(self, op: str, waiters: int, actor: str, mark: int) -> bool:
        res = self.resource
        if op == "wait" and actor in res.holders:
            return True  # it has not let its lock go yet (see Condition.available_for)
        if op == "wait":
            # a notified waiter's future is done before it wakes and leaves the deque
            queued = getattr(self.real, "_waiters", None)
            return queued is not None and sum(not f.done() for f in queued) < waiters
        if res.acquired.of(actor) > mark:
            return True  # it has the lock again (or got it), its return is not recorded yet
        return not res.holders


def backing(kind: str, name: str, spec: Any, made: dict[str, Prim], env: Env) -> Prim:
    """The condition for actors of ``kind``: on its own lock, or on lock ``spec.lock``."""
    lock = made.get(spec.lock) if spec.lock else None
    assert lock is None or isinstance(lock, LockLike)
    real_lock = lock.real if lock else None
    if kind == "coroutine":
        import asyncio  # noqa: PLC0415
        return ACondition(name, asyncio.Condition(real_lock), lock)
    if kind == "process":
        cond = Condition(name, env.mp.Condition(real_lock), lock)
        cond.doors = Doors(env.mp, env.actors)
        return cond
    return Condition(name, threading.Condition(real_lock), lock)
