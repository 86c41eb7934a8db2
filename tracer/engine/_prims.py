"""Instrumented primitives: thin shells over the real ``threading``/``queue`` objects.

Each operation follows the same pattern through the seam (``_seam.py``): a blocking op records
its ``call``, performs the real call (in short slices, so an aborted run can stop it), updates
who-holds-what, then records its ``return``; a releasing op records first, then acts. The real
primitive decides everything: if a semaphore of 2 lets a third actor in, the trace shows it.
"""

from __future__ import annotations

import queue as queue_mod
import threading
from dataclasses import dataclass
from functools import partial
from multiprocessing.connection import Connection
from typing import Any

from tracer.engine._seam import POLL, Abort, ActorCtx, ActorFailure, Tag, wait_loop


@dataclass(frozen=True)
class OpTags:
    """The tags one step records: the call and each possible return."""

    call: Tag
    ok: Tag
    timeout: Tag
    fail: Tag
    error: Tag
    broken: Tag


class Prim:
    """Base of every instrumented primitive."""

    ptype = "?"

    def __init__(self, name: str, real: Any) -> None:
        self.name = name
        self.real = real
        self.holders: dict[str, int] = {}  # actor name -> times held (locks, semaphores)
        self.resource: Prim = self  # what acquire/release hold (a condition's lock)

    # --- for the watchdog
    def available_for(self, op: str, waiters: int) -> bool:
        """Whether an actor waiting with ``op`` would proceed now (a transient wait)."""
        return False

    def abort(self) -> None:
        """Wake anything blocked inside the real primitive that cannot poll (barriers)."""

    def release_all(self, a: ActorCtx) -> None:
        """Release, without recording, what ``a`` holds: used when an aborted actor exits."""


class LockLike(Prim):
    """lock, rlock, semaphore, bounded_semaphore: acquire/release on ``real``."""

    def acquire(self, t: OpTags, timeout: float | None, blocking: bool, a: ActorCtx) -> bool:
        res = self.resource
        emit = a.emit
        seq = emit(t.call, None)
        real = res.real
        if real.acquire(False):  # the uncontended case costs no more than this
            ok = True
        elif not blocking:
            ok = False
        else:
            # tell the watchdog before blocking; cleared before the return is recorded
            a.waiting = (self, "acquire", timeout is not None, seq)
            ok = wait_loop(a, partial(real.acquire, True), timeout)
            a.waiting = None
        if ok:
            h = res.holders
            name = a.name
            h[name] = h.get(name, 0) + 1
        emit(t.ok if ok else (t.timeout if blocking else t.fail), None)
        return ok

    def release(self, tag: Tag, a: ActorCtx) -> None:
        res = self.resource
        a.emit(tag, None)
        h = res.holders
        name = a.name
        n = h.pop(name, 0)
        if n > 1:
            h[name] = n - 1
        try:
            res.real.release()
        except (RuntimeError, ValueError) as exc:
            msg = self._release_error(a, exc)
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
            except (RuntimeError, ValueError):
                break

    def available_for(self, op: str, waiters: int) -> bool:
        if self.ptype in ("semaphore", "bounded_semaphore"):
            return int(getattr(self.real, "_value", 0)) > 0
        return not self.holders


class Lock(LockLike):
    ptype = "lock"


class RLock(LockLike):
    ptype = "rlock"


class Semaphore(LockLike):
    ptype = "semaphore"


class BoundedSemaphore(LockLike):
    ptype = "bounded_semaphore"


class Condition(LockLike):
    """A condition: acquire/release act on its lock (its own, or the named one)."""

    ptype = "condition"

    def __init__(self, name: str, real: Any, lock: LockLike | None) -> None:
        super().__init__(name, real)
        if lock is not None:
            self.resource = lock

    def wait(self, a: ActorCtx, t: OpTags, timeout: float | None) -> None:
        res = self.resource
        a.block(self, "wait", timeout, t.call)
        held = res.holders.pop(a.name, 0)
        real = self.real
        try:
            ok = wait_loop(a, lambda s: bool(real.wait(s)), timeout)
        except RuntimeError as exc:  # waited without holding the lock
            if held:
                res.holders[a.name] = held
            a.waiting = None
            msg = f"{a.name} waited on condition {self.name} without holding its lock ({exc})"
            a.emit(t.error, {"error": msg})
            raise ActorFailure(msg) from None
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
        try:
            if n is None:
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

    def available_for(self, op: str, waiters: int) -> bool:
        if op == "wait":
            # a notified waiter leaves real._waiters before it wakes: if fewer are queued
            # there than our actors waiting, one was notified and is about to return
            queued = getattr(self.real, "_waiters", None)
            return queued is not None and len(queued) < waiters
        return not self.resource.holders


class Event(Prim):
    ptype = "event"

    def set(self, a: ActorCtx, tag: Tag) -> None:
        a.emit(tag, None)
        self.real.set()

    def clear(self, a: ActorCtx, tag: Tag) -> None:
        a.emit(tag, None)
        self.real.clear()

    def wait(self, a: ActorCtx, t: OpTags, timeout: float | None) -> None:
        a.block(self, "wait", timeout, t.call)
        real = self.real
        ok = real.is_set() or wait_loop(a, real.wait, timeout)
        a.waiting = None
        a.emit(t.ok if ok else t.timeout, None)

    def available_for(self, op: str, waiters: int) -> bool:
        return bool(self.real.is_set())


class Barrier(Prim):
    ptype = "barrier"

    def wait(self, a: ActorCtx, t: OpTags, timeout: float | None) -> None:
        a.block(self, "wait", timeout, t.call)
        try:
            self.real.wait(timeout)
            tag = t.ok
        except threading.BrokenBarrierError:
            if a.rt.closed:
                raise Abort from None
            tag = t.timeout if timeout is not None else t.broken
        a.waiting = None
        a.emit(tag, None)

    def abort(self) -> None:
        self.real.abort()

    def available_for(self, op: str, waiters: int) -> bool:
        return bool(self.real.broken)


class Queue(Prim):
    ptype = "queue"

    def put(self, a: ActorCtx, t: OpTags, item: Any, timeout: float | None,
            blocking: bool) -> None:
        a.block(self, "put", timeout if blocking else 0.0, t.call, {"item": item})
        real = self.real
        try:
            real.put_nowait(item)
            ok = True
        except queue_mod.Full:
            if blocking:
                def attempt(s: float) -> bool:
                    try:
                        real.put(item, True, s)
                    except queue_mod.Full:
                        return False
                    return True
                ok = wait_loop(a, attempt, timeout)
            else:
                ok = False
        a.waiting = None
        a.emit(t.ok if ok else (t.timeout if blocking else t.fail), None)

    def get(self, a: ActorCtx, t: OpTags, timeout: float | None, blocking: bool) -> None:
        a.block(self, "get", timeout if blocking else 0.0, t.call)
        real = self.real
        box: list[Any] = []
        try:
            box.append(real.get_nowait())
        except queue_mod.Empty:
            if blocking:
                def attempt(s: float) -> bool:
                    try:
                        box.append(real.get(True, s))
                    except queue_mod.Empty:
                        return False
                    return True
                wait_loop(a, attempt, timeout)
        a.waiting = None
        if box:
            a.emit(t.ok, {"item": box[0]})
        else:
            a.emit(t.timeout if blocking else t.fail, None)

    def available_for(self, op: str, waiters: int) -> bool:
        size = self.real.qsize()
        if op == "get":
            return bool(size > 0)
        return bool(self.real.maxsize <= 0 or size < self.real.maxsize)


class Pipe(Prim):
    """A pipe: ``real`` is unused; each end actor has its own connection in ``ends``."""

    ptype = "pipe"

    def __init__(self, name: str, ends: dict[str, Connection]) -> None:
        super().__init__(name, None)
        self.ends = ends

    def send(self, a: ActorCtx, t: OpTags, item: Any) -> None:
        a.block(self, "send", None, t.call, {"item": item})
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
            ok = wait_loop(a, conn.poll, timeout)
            item = conn.recv() if ok else None
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

    def available_for(self, op: str, waiters: int) -> bool:
        # the watchdog thread may poll: it only asks whether data is there
        return any(_poll(c) for c in self.ends.values())

    def abort(self) -> None:
        for conn in self.ends.values():
            try:
                conn.close()
            except OSError:
                pass


def _poll(conn: Connection) -> bool:
    try:
        return bool(conn.poll(0))
    except (OSError, EOFError, ValueError):
        return True


class Pool(Prim):
    """A pool of workers: actors with ``pool: NAME`` are its tasks."""

    ptype = "pool"

    def __init__(self, name: str, real: Any, workers: int) -> None:
        super().__init__(name, real)
        self.workers = workers
        self.running: set[str] = set()

    def abort(self) -> None:
        self.real.shutdown(wait=False, cancel_futures=True)


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
