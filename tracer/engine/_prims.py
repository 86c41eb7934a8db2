"""Instrumented primitives: thin shells over the real ``threading``/``queue`` objects.

Each operation follows the same pattern through the seam (``_seam.py``): a blocking op records
its ``call``, performs the real call (in short slices, so an aborted run can stop it), updates
who-holds-what, then records its ``return``; a releasing op records first, then acts. The real
primitive decides everything: if a semaphore of 2 lets a third actor in, the trace shows it.
"""

from __future__ import annotations

import queue as queue_mod
import threading
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from multiprocessing.connection import Connection
from typing import Any

from tracer.engine._seam import POLL, Abort, ActorCtx, ActorFailure, Tag


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

    def release_all(self, a: ActorCtx) -> None:
        """Release, without recording, what ``a`` holds: used when an aborted actor exits."""


class LockLike(Prim):
    """lock, rlock, semaphore, bounded_semaphore: acquire/release on ``real``.

    An ``owned`` one (a rlock, a thread or process condition's own RLock) belongs to the
    actor that took it. The real RLock knows its owner by thread ident, and CPython gives a
    new thread the ident of one that has ended: the new actor would "own" what the ended one
    still holds (release it, or take it again at once). The seam knows the holders by actor,
    so it refuses both: such a release is the misuse it is, such an acquire waits."""

    owned = False

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
        # returned, never before); the watchdog sees what it waits for until it returns
        a.waiting = (self, "acquire", timeout is not None or not blocking, seq, 0)
        ok = a.rt.scheduler.wait(a, partial(_take_owned, res, a) if res.owned else res.take,
                                 timeout if blocking else 0.0)
        a.waiting = None
        if ok:
            h = res.holders
            name = a.name
            h[name] = h.get(name, 0) + 1
            res.acquired.add(name)
        emit(t.ok if ok else (t.timeout if blocking else t.fail), None)
        return ok

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
        if n == 0 and res.ptype == "lock":
            h.clear()  # another actor's lock, released by this one: nobody holds it now

    def _release_error(self, a: ActorCtx, exc: Exception) -> str:
        if self.ptype == "bounded_semaphore":
            return (f"{a.name} released bounded semaphore {self.name} more times than it was "
                    f"acquired ({exc})")
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
        if self.ptype in ("semaphore", "bounded_semaphore"):
            # the real value, from our tallies: an acquire not yet tallied leaves it above 0
            return self.initial + self.released.total() - self.acquired.total() > 0
        return not self.holders


class Lock(LockLike):
    ptype = "lock"


class RLock(LockLike):
    ptype = "rlock"
    owned = True


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


class Semaphore(LockLike):
    ptype = "semaphore"


class BoundedSemaphore(LockLike):
    ptype = "bounded_semaphore"


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
        self.notifies = Tally()  # for conditions whose waiters cannot be counted

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
        a.block(self, "wait", timeout, t.call, None, self.notifies.total())
        bad = self.not_owner(a, "waited on")
        if bad:
            a.waiting = None
            a.emit(t.error, {"error": bad})
            raise ActorFailure(bad)
        held = res.holders.pop(a.name, 0)
        try:
            ok = _condition_wait(self.real, a, timeout, res)
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
        if held:
            res.holders[a.name] = held
        a.waiting = None
        a.emit(t.ok if ok else t.timeout, None)

    def notify(self, a: ActorCtx, tag: Tag, n: int | None) -> None:
        a.emit(tag, None)
        bad = self.not_owner(a, "notified")
        if bad:
            a.fail_last(bad)
            raise ActorFailure(bad)
        self.notifies.add(a.name)
        try:
            if hasattr(self.real, "_woken_count"):  # multiprocessing's: see _mp_notify
                _mp_notify(self.real, n)
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
        if op == "wait":
            # a notified waiter leaves real._waiters before it wakes: if fewer are queued
            # there than our actors waiting, one was notified and is about to return
            queued = getattr(self.real, "_waiters", None)
            if queued is None:  # multiprocessing: any notify since it began may have woken it
                return self.notifies.total() > mark
            return len(queued) < waiters
        return not self.resource.holders


def _condition_wait(real: Any, a: ActorCtx, timeout: float | None,
                    res: LockLike | None = None) -> bool:
    """``real.wait(timeout)``, abortable, and without losing a notify.

    Waiting in slices with ``real.wait(POLL)`` would drop out of the condition's waiter list
    between slices, and a notify sent then would be lost: the instrumentation would create the
    lost wakeup it is meant to find. So this is CPython's own ``Condition.wait`` (threading's,
    or multiprocessing's) with the waits handed to the scheduler: the waiter stays registered
    from start to end, exactly as in an uninstrumented wait. ``res``: the seam's view of the
    condition's lock (who holds it)."""
    sched = a.rt.scheduler
    if isinstance(real, threading.Condition):
        if not real._is_owned():  # type: ignore[attr-defined]
            raise RuntimeError("cannot wait on un-acquired lock")
        waiter = threading.Lock()
        waiter.acquire()
        real._waiters.append(waiter)  # type: ignore[attr-defined]
        saved = real._release_save()  # type: ignore[attr-defined]
        gotit = False
        try:
            gotit = sched.wait(a, partial(waiter.acquire, True), timeout)
            return gotit
        finally:
            retaken = False
            try:
                retaken = _retake(real._lock, _depth(saved), a, res)  # type: ignore[attr-defined]
            except Abort:
                pass
            finally:
                if not gotit:
                    try:
                        real._waiters.remove(waiter)  # type: ignore[attr-defined]
                    except ValueError:
                        pass
            if not retaken:
                raise LockNotRetaken  # an abort wins over the wait's result
    sem = getattr(real, "_wait_semaphore", None)
    if sem is None:  # an unknown condition: plain slices
        return sched.wait(a, lambda s: bool(real.wait(s)), timeout)
    # multiprocessing.synchronize.Condition.wait, with the acknowledgement of _mp_notify
    if not real._lock._semlock._is_mine():
        raise RuntimeError("cannot wait on un-acquired lock")
    real._sleeping_count.release()
    count = real._lock._semlock._count()
    for _ in range(count):
        real._lock.release()
    gotit = False
    try:
        gotit = sched.wait(a, partial(sem.acquire, True), timeout)
    finally:
        retaken = False
        try:
            retaken = _retake(real._lock, count, a, None)
        except Abort:
            pass
        if not gotit:
            # it timed out. Holding the lock again, no notify runs now: one that came between
            # its time-out and now counted it as a sleeper and left it a wake-up, which it
            # takes (it was notified); else it tells the next notify to count it out
            if retaken and sem.acquire(False):
                gotit = True
            else:
                real._woken_count.release()
        if not retaken:
            raise LockNotRetaken  # an abort wins over the wait's result
    return gotit


class LockNotRetaken(Abort):
    """A condition wait ended by the run's end before it took its lock back: the waiter does
    not hold the lock, so nothing is released for it."""


def _depth(saved: Any) -> int:
    """How many times a condition's lock was held, from what ``_release_save`` returned
    (``(count, owner)`` for an RLock, nothing for a Lock)."""
    if isinstance(saved, tuple) and saved and isinstance(saved[0], int):
        return max(1, saved[0])
    return 1


def now_acquiring(a: ActorCtx) -> None:
    """A notified (or timed-out) waiter now waits for the condition's lock, not a notify."""
    w = a.waiting
    if w is not None:
        a.waiting = (w[0], "acquire", False, w[3], w[4])


def _retake(lock: Any, count: int, a: ActorCtx, res: LockLike | None) -> bool:
    """Take a condition's lock back at the end of a wait, ``count`` times (an RLock's depth),
    through the scheduler (in slices when running free: the real wait would block for good on
    a lock whose holder has ended, and no abort could stop it; parked until it is free when
    one actor runs at a time). False when the run was closed first (it is not held then)."""
    now_acquiring(a)  # the watchdog sees the waiter wait for the lock from here on
    if a.rt.closed or not a.rt.scheduler.wait(a, partial(_take, lock, res, a), None):
        return False
    for _ in range(count - 1):
        lock.acquire()  # reentrant: it is ours, this cannot block
    return True


def _mp_notify(real: Any, n: int | None) -> None:
    """multiprocessing's ``Condition.notify`` without its last step: the real one waits until
    each woken process has woken up (``_woken_count``), which cannot happen while only the
    notifier runs (explore), and would hang the notifier for good if a woken process was
    killed. So it wakes the sleepers and goes on; the woken ones do not acknowledge, and
    timed-out sleepers are still subtracted first (see ``_condition_wait``, which also takes
    the wake-up a notify left for a sleeper that had just timed out)."""
    if not real._lock._semlock._is_mine():
        raise RuntimeError("cannot notify on un-acquired lock")
    while real._woken_count.acquire(False):  # sleepers that timed out since the last notify
        real._sleeping_count.acquire(False)
    woken = 0
    while (n is None or woken < n) and real._sleeping_count.acquire(False):
        real._wait_semaphore.release()
        woken += 1


class Event(Prim):
    ptype = "event"

    def __init__(self, name: str, real: Any) -> None:
        super().__init__(name, real)
        self.sets = Tally()  # a waiter is woken by any set after it began to wait

    def set(self, a: ActorCtx, tag: Tag) -> None:
        a.emit(tag, None)
        self.sets.add(a.name)
        self.real.set()

    def clear(self, a: ActorCtx, tag: Tag) -> None:
        a.emit(tag, None)
        self.real.clear()

    def wait(self, a: ActorCtx, t: OpTags, timeout: float | None) -> None:
        a.block(self, "wait", timeout, t.call, None, self.sets.total())
        real = self.real
        ok = real.is_set() or a.rt.scheduler.wait(a, real.wait, timeout, looks=True)
        a.waiting = None
        a.emit(t.ok if ok else t.timeout, None)

    def available_for(self, op: str, waiters: int, actor: str, mark: int) -> bool:
        return bool(self.real.is_set()) or self.sets.total() > mark


class Barrier(Prim):
    """A barrier. It counts the arrivals of each round itself (``arrivals``), so that it can
    tell the scheduler what a real ``wait`` does: a party that is not the round's last blocks
    in it until the others come (``away``: one actor at a time, the others go meanwhile), and
    the last one lets them go on (``release_away``)."""

    ptype = "barrier"

    def __init__(self, name: str, real: Any) -> None:
        super().__init__(name, real)
        self.arrivals = Tally()  # arrivals at an unbroken barrier, by actor

    def arrive(self, a: ActorCtx, timed: bool) -> bool:
        """``a`` arrives; False when it cannot go on here and times out now (see ``away``).
        A party that times out breaks the round (threading's and multiprocessing's barrier)."""
        real = self.real
        if real.broken:
            return True  # its real wait raises at once
        sched = a.rt.scheduler
        self.arrivals.add(a.name)
        if self.arrivals.total() % real.parties == 0:  # the round is complete
            sched.release_away(a, self.name)
            return True
        if sched.away(a, self.name, timed):
            return True
        sched.release_away(a, self.name)  # it breaks the round: those inside see it broken
        return False

    def wait(self, a: ActorCtx, t: OpTags, timeout: float | None) -> None:
        a.block(self, "wait", timeout, t.call)
        real = self.real
        if not self.arrive(a, timeout is not None):
            timeout = 0.0  # it cannot go on: it times out, and breaks the round
        try:
            real.wait(timeout)
            tag = t.ok
        except threading.BrokenBarrierError:
            if a.rt.closed:
                raise Abort from None
            tag = t.timeout if timeout is not None else t.broken
        a.waiting = None
        a.emit(tag, None)

    def abort(self) -> None:
        self.real.abort()

    def available_for(self, op: str, waiters: int, actor: str, mark: int) -> bool:
        # n_waiting counts those still waiting for the round to fill: if it is below the
        # number of our actors inside wait, the round is complete and they are leaving
        real = self.real
        return bool(real.broken) or int(real.n_waiting) < waiters


class Queue(Prim):
    ptype = "queue"

    def __init__(self, name: str, real: Any, maxsize: int = 0) -> None:
        super().__init__(name, real)
        self.maxsize = maxsize
        self.puts = Tally()  # successful puts, tallied after the real call
        self.gets = Tally()  # successful gets, tallied after the real call

    def put(self, a: ActorCtx, t: OpTags, item: Any, timeout: float | None,
            blocking: bool) -> None:
        a.block(self, "put", timeout if blocking else 0.0, t.call,
                {"item": item} if blocking else {"item": item, "blocking": False})
        real = self.real

        def attempt(s: float) -> bool:
            try:
                real.put(item, True, s) if s > 0 else real.put_nowait(item)
            except queue_mod.Full:
                return False
            return True
        # eager: a replay puts it in as soon as it is first in line (a get recorded before
        # this put's return may need the item), else when the recording says it returned
        ok = a.rt.scheduler.wait(a, attempt, timeout if blocking else 0.0, eager=True)
        if ok:
            self.puts.add(a.name)
        a.waiting = None
        a.emit(t.ok if ok else (t.timeout if blocking else t.fail), None)

    def get(self, a: ActorCtx, t: OpTags, timeout: float | None, blocking: bool) -> None:
        a.block(self, "get", timeout if blocking else 0.0, t.call,
                None if blocking else NONBLOCKING)
        real = self.real
        box: list[Any] = []

        def attempt(s: float) -> bool:
            try:
                box.append(real.get(True, s) if s > 0 else real.get_nowait())
            except queue_mod.Empty:
                return False
            return True
        # eager: a replay takes an item as soon as it is first in line (a put recorded before
        # this get's return may need its room), else when the recording says it returned
        a.rt.scheduler.wait(a, attempt, timeout if blocking else 0.0, eager=True)
        if box:
            self.gets.add(a.name)
        a.waiting = None
        if box:
            a.emit(t.ok, {"item": box[0]})
        else:
            a.emit(t.timeout if blocking else t.fail, None)

    def available_for(self, op: str, waiters: int, actor: str, mark: int) -> bool:
        # the size by our tallies: a get that took an item but has not tallied it yet makes
        # it look one bigger (the getter is free), a put not yet tallied one smaller
        size = self.puts.total() - self.gets.total()
        if op == "get":
            return size > 0
        return self.maxsize <= 0 or size < self.maxsize


class Pipe(Prim):
    """A pipe: ``real`` is unused; each end actor has its own connection in ``ends``."""

    ptype = "pipe"

    def __init__(self, name: str, ends: dict[str, Connection]) -> None:
        super().__init__(name, None)
        self.ends = ends
        self.sent = Tally()  # by sender, tallied before the real send
        self.received = Tally()  # by receiver, tallied after the real recv

    def send(self, a: ActorCtx, t: OpTags, item: Any) -> None:
        # a send of a small item does not block (the OS pipe buffers it): not a wait
        a.emit(t.call, {"item": item})
        self.sent.add(a.name)
        try:
            self.ends[a.name].send(item)
        except (OSError, ValueError) as exc:
            if a.rt.closed:
                raise Abort from None
            a.waiting = None
            msg = f"{a.name} could not send on pipe {self.name}: {exc}"
            a.emit(t.error, {"error": msg})
            raise ActorFailure(msg) from None
        a.waiting = None
        a.emit(t.ok, None)

    def recv(self, a: ActorCtx, t: OpTags, timeout: float | None) -> None:
        a.block(self, "recv", timeout, t.call)
        conn = self.ends[a.name]
        try:
            ok = a.rt.scheduler.wait(a, conn.poll, timeout)
            item = conn.recv() if ok else None
            if ok:
                self.received.add(a.name)
        except (OSError, EOFError) as exc:
            if a.rt.closed:
                raise Abort from None
            a.waiting = None
            msg = f"{a.name} could not receive on pipe {self.name}: {exc}"
            a.emit(t.error, {"error": msg})
            raise ActorFailure(msg) from None
        a.waiting = None
        if ok:
            a.emit(t.ok, {"item": item})
        else:
            a.emit(t.timeout, None)

    def available_for(self, op: str, waiters: int, actor: str, mark: int) -> bool:
        # more was sent to this end than it has received: the data is there or in its hands
        other = next((n for n in self.ends if n != actor), actor)
        return self.sent.of(other) > self.received.of(actor)

    def abort(self) -> None:
        for conn in self.ends.values():
            try:
                conn.close()
            except OSError:
                pass


class Pool(Prim):
    """A pool of workers: actors with ``pool: NAME`` are its tasks."""

    ptype = "pool"

    def __init__(self, name: str, real: Any, workers: int) -> None:
        super().__init__(name, real)  # a ThreadPoolExecutor; a process pool's is made later
        self.workers = workers

    def abort(self) -> None:
        """The runner stops pools itself, after their tasks have seen the abort."""


__all__ = [
    "POLL",
    "Barrier",
    "BoundedSemaphore",
    "Condition",
    "Event",
    "Lock",
    "OpTags",
    "Pipe",
    "Pool",
    "Prim",
    "Queue",
    "RLock",
    "Semaphore",
]
