"""The ``rwlock``: its options and verbs, its facts, its backings (see ``tracer.prims``).

Python ships no readers-writer lock, so tracer builds one the way its users do: a
writer-preferring lock on the real condition variable of each actor kind —
``threading.Condition`` (thread actors), ``multiprocessing.Condition`` with the state in shared
memory (process actors), ``asyncio.Condition`` (coroutine actors).

Design (the backings below):

- *Readers share, a writer is exclusive.* A read is granted when no writer holds the lock and
  **no writer waits** (writer preference: once a writer waits, new readers wait behind it,
  the readers already in keep reading, so a stream of readers cannot starve a writer). A
  write is granted when nobody holds the lock. Writers are not queued in order among
  themselves: whichever waiting (or trying) writer comes first when the lock frees takes it,
  as with ``threading.Lock``.
- *One hold per owner, not re-entrant.* An owner (an actor's name) holds at most one read or
  one write, so ``release(owner)`` releases exactly that. Asking again while holding is refused
  with a ``RuntimeError``: a write asked while holding a read (an *upgrade*) would wait for the
  owner's own read forever, a write behind one's own write likewise, and a second read deadlocks
  as soon as a writer waits between the two (writer preference). A real RWLock would hang;
  tracer says what is wrong instead.
- *Waiting is visible.* A waiting writer is registered (``announce_writer``) for as long as it
  waits, also when the waiting is done by a scheduler that parks it and retries
  ``try_acquire`` (explore, replay), or by a caller that waits in slices of ``acquire``
  (the free run): writer preference then holds under every scheduler, and
  ``state()`` names the waiting writers (the wait-for graph needs them: a reader waiting behind
  a waiting writer waits for that writer). A waiter that gives up (its timeout) withdraws and
  wakes the readers it held back.
- Every change that can let someone in (a release, a writer's withdrawal) wakes all waiters
  (``notify_all``); each re-checks the grant under the condition's lock. The mutex inside the
  condition is held only for these few lines, so ``try_acquire`` never waits for the rwlock
  (only for that mutex: a process killed inside those lines would leave it taken, as it
  would any ``multiprocessing.Lock``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any, Literal, Protocol

from tracer.prims._facts import Channel, Facts, HoldMode, Op
from tracer.prims._options import PrimOptions, VerbOption
from tracer.prims._shell import ActorFailure, ALockLike, Env, LockLike, OpTags, Prim, _never, ready

if TYPE_CHECKING:
    import asyncio

    from tracer.engine._seam import ActorCtx, Tag

NAME = "rwlock"


# --- options and verbs (read by tracer.scenario) -----------------------------------------


class RWLockSpec(PrimOptions):
    type: Literal["rwlock"]


MODE = VerbOption(Literal["read", "write"], "write", "read or write")

OPTIONS = RWLockSpec
VERBS = ("acquire", "release", "with")
# {acquire: RW, mode: read}, {with: RW, mode: read}: a write when not given
VERB_OPTIONS = {"acquire": {"mode": MODE}, "with": {"mode": MODE}}
MISUSE_HINT = " (an rwlock is taken with acquire or with, for a read or a write: mode)"


# --- facts (read by the trace's state pass) -------------------------------------------------

# readers share, a writer is exclusive (the acquire call's payload says which: "mode"); a
# writer's release orders the next readers and writers, a reader's release only the next
# writer: readers do not order each other, so a write made under a read lock races with
# another reader's access
FACTS = Facts(
    ops={"acquire": Op(hold="take"), "release": Op(hold="give")},
    channels={"w": Channel("last", mutex=True), "r": Channel("all", mutex=True)},
    modes={"read": HoldMode("shared", gives=("r",), takes=("w",)),
           "write": HoldMode("exclusive", gives=("w",), takes=("w", "r"))},
    mode_field="mode",
    default_mode="write",
)


WAITS = {"acquire": (None, "release")}  # (how messages say it)


# --- backings (read by tracer.engine) -------------------------------------------------------

Mode = Literal["read", "write"]
MODES: tuple[Mode, ...] = ("read", "write")


@dataclass(frozen=True)
class RWState:
    """What a rwlock is doing now.

    ``readers`` hold it for reading (in the order they took it), ``writer`` holds it for
    writing, ``writers_waiting`` writers wait for it; ``waiting_writers`` are their names (in
    the order they began to wait).
    """

    readers: tuple[str, ...]
    writer: str | None
    writers_waiting: int
    waiting_writers: tuple[str, ...] = ()

    def blockers(self, mode: Mode) -> tuple[str, ...]:
        """Who a new request of ``mode`` waits for now (empty: it would be granted).

        A read waits for the writer holding the lock, else for the writers waiting (writer
        preference); a write waits for the writer or every reader.
        """
        if self.writer is not None:
            return (self.writer,)
        if mode == "read":
            return self.waiting_writers
        return self.readers


class _Store(Protocol):
    """Where a rwlock keeps its state: process memory or shared memory."""

    def held_by(self, owner: str) -> Mode | None: ...
    def take(self, owner: str, mode: Mode) -> None: ...
    def drop(self, owner: str) -> Mode | None: ...
    def queue(self, owner: str) -> bool: ...  # False: it was waiting already
    def unqueue(self, owner: str) -> bool: ...
    def counts(self) -> tuple[int, bool, int]: ...  # readers, writer held, writers waiting
    def snapshot(self) -> RWState: ...


class _LocalStore:
    """The state in this process's memory (thread and coroutine flavours)."""

    def __init__(self) -> None:
        self.readers: dict[str, None] = {}  # insertion order = the order they took it
        self.writer: str | None = None
        self.waiting: dict[str, None] = {}

    def held_by(self, owner: str) -> Mode | None:
        if self.writer == owner:
            return "write"
        return "read" if owner in self.readers else None

    def take(self, owner: str, mode: Mode) -> None:
        self.waiting.pop(owner, None)
        if mode == "write":
            self.writer = owner
        else:
            self.readers[owner] = None

    def drop(self, owner: str) -> Mode | None:
        if self.writer == owner:
            self.writer = None
            return "write"
        if owner in self.readers:
            del self.readers[owner]
            return "read"
        return None

    def queue(self, owner: str) -> bool:
        if owner in self.waiting:
            return False
        self.waiting[owner] = None
        return True

    def unqueue(self, owner: str) -> bool:
        if owner not in self.waiting:
            return False
        del self.waiting[owner]
        return True

    def counts(self) -> tuple[int, bool, int]:
        return len(self.readers), self.writer is not None, len(self.waiting)

    def snapshot(self) -> RWState:
        return RWState(tuple(self.readers), self.writer, len(self.waiting),
                       tuple(self.waiting))


# the shared counters of a _SharedStore, by index
_READERS, _WRITER, _WAITING, _TICKET = range(4)


class _SharedStore:
    """The state in shared memory (process flavour), for a fixed set of owners.

    Per owner (by its index in ``owners``): ``hold`` is 0 (nothing), -1 (the write) or the
    ticket of its read; ``wait`` is 0 or the ticket from which it waits as a writer. Tickets
    only order readers and waiting writers for :meth:`snapshot`. ``n`` keeps the counts the
    grant reads, so that a grant costs no scan. All of it is read and written under the
    rwlock's condition's lock, so plain ``RawArray``s (no lock of their own) suffice.
    """

    def __init__(self, ctx: Any, name: str, owners: Sequence[str]) -> None:
        self.name = name
        self.owners = tuple(owners)
        if not self.owners:
            raise ValueError(f"rwlock {name}: a process rwlock needs the names of the actors "
                             "that use it (owners), none were given")
        if len(set(self.owners)) != len(self.owners):
            raise ValueError(f"rwlock {name}: owners must be distinct names, got "
                             f"{list(self.owners)}")
        self.index = {o: i for i, o in enumerate(self.owners)}
        self.hold = ctx.RawArray("q", len(self.owners))
        self.wait = ctx.RawArray("q", len(self.owners))
        self.n = ctx.RawArray("q", 4)  # _READERS, _WRITER (its index + 1, 0: none), ...

    def _ix(self, owner: str) -> int:
        try:
            return self.index[owner]
        except KeyError:
            raise ValueError(f"{owner} is not one of the actors rwlock {self.name} was built "
                             f"for ({', '.join(self.owners)})") from None

    def _ticket(self) -> int:
        self.n[_TICKET] += 1
        return int(self.n[_TICKET])

    def held_by(self, owner: str) -> Mode | None:
        h = self.hold[self._ix(owner)]
        return None if h == 0 else "write" if h < 0 else "read"

    def take(self, owner: str, mode: Mode) -> None:
        self.unqueue(owner)
        i = self._ix(owner)
        if mode == "write":
            self.hold[i] = -1
            self.n[_WRITER] = i + 1
        else:
            self.hold[i] = self._ticket()
            self.n[_READERS] += 1

    def drop(self, owner: str) -> Mode | None:
        i = self._ix(owner)
        h = self.hold[i]
        if h == 0:
            return None
        self.hold[i] = 0
        if h < 0:
            self.n[_WRITER] = 0
            return "write"
        self.n[_READERS] -= 1
        return "read"

    def queue(self, owner: str) -> bool:
        i = self._ix(owner)
        if self.wait[i] != 0:
            return False
        self.wait[i] = self._ticket()
        self.n[_WAITING] += 1
        return True

    def unqueue(self, owner: str) -> bool:
        i = self._ix(owner)
        if self.wait[i] == 0:
            return False
        self.wait[i] = 0
        self.n[_WAITING] -= 1
        return True

    def counts(self) -> tuple[int, bool, int]:
        n = self.n
        return int(n[_READERS]), n[_WRITER] != 0, int(n[_WAITING])

    def snapshot(self) -> RWState:
        hold, wait, owners = self.hold[:], self.wait[:], self.owners
        readers = sorted((h, owners[i]) for i, h in enumerate(hold) if h > 0)
        waiting = sorted((w, owners[i]) for i, w in enumerate(wait) if w > 0)
        w = int(self.n[_WRITER])
        return RWState(tuple(o for _, o in readers), owners[w - 1] if w else None,
                       len(waiting), tuple(o for _, o in waiting))


def _mode(name: str, mode: str) -> Mode:
    if mode == "read":
        return "read"
    if mode == "write":
        return "write"
    raise ValueError(f"rwlock {name}: mode must be 'read' or 'write', not {mode!r}")


def _grants(store: _Store, mode: Mode, prefer: bool = True) -> bool:
    """Whether a request of ``mode`` by an owner holding nothing is granted now; ``prefer``:
    a waiting writer holds a read back (writer preference; a replay, which follows the
    recorded grants, turns it off: see ``RWLock.acquire_as``)."""
    readers, writer, waiting = store.counts()
    if mode == "read":
        return not writer and (waiting == 0 or not prefer)
    return not writer and readers == 0


def _refuse_second(name: str, store: _Store, mode: Mode, owner: str) -> None:
    """Refuse a request by an owner that already holds the rwlock (see the module's design)."""
    held = store.held_by(owner)
    if held is None:
        return
    if held == "read" and mode == "write":
        raise RuntimeError(
            f"{owner} asks for a write of rwlock {name} while it holds a read: a rwlock cannot "
            f"be upgraded (the write would wait for {owner}'s own read forever); release the "
            "read first")
    raise RuntimeError(
        f"{owner} asks for a {mode} of rwlock {name} while it holds a {held}: a rwlock is not "
        f"re-entrant; release the {held} first")


def _not_held(name: str, store: _Store, owner: str) -> RuntimeError:
    st = store.snapshot()
    if st.writer is not None:
        now = f"{st.writer} holds it for writing"
    elif st.readers:
        now = f"{', '.join(st.readers)} {'hold' if len(st.readers) > 1 else 'holds'} it for " \
              "reading"
    else:
        now = "nobody holds it"
    return RuntimeError(f"{owner} released rwlock {name}, which it does not hold ({now})")


class _CondRWLock:
    """The logic of the thread and process flavours, on a blocking condition variable."""

    name: str
    _cond: Any  # threading.Condition or multiprocessing's Condition
    _store: _Store

    def try_acquire(self, mode: str, owner: str, prefer: bool = True) -> bool:
        """Take the lock for ``mode`` now if it is granted (``prefer``: see :func:`_grants`);
        never waits for the rwlock."""
        m = _mode(self.name, mode)
        with self._cond:
            _refuse_second(self.name, self._store, m, owner)
            if not _grants(self._store, m, prefer):
                return False
            self._store.take(owner, m)
            return True

    def acquire(self, mode: str, owner: str, timeout: float | None = None,
                prefer: bool = True) -> bool:
        """Take the lock for ``mode``, waiting up to ``timeout`` seconds (None: for good);
        False when it timed out. A waiting writer holds new readers back while it waits
        (unless not ``prefer``: see :func:`_grants`).

        A caller that waits in slices (several calls with a short timeout, checking for the
        end of the run in between) announces its writer first (:meth:`announce_writer`) and
        withdraws it when it gives up: then no reader slips in between two slices."""
        m = _mode(self.name, mode)
        store, cond = self._store, self._cond
        with cond:
            _refuse_second(self.name, store, m, owner)
            if _grants(store, m, prefer):
                store.take(owner, m)
                return True
            if timeout is not None and timeout <= 0:
                return False
            # a writer announced before (one waiting in slices) stays waiting when this
            # slice times out: its caller withdraws it when it gives up
            mine = m == "write" and store.queue(owner)
            try:
                got = bool(cond.wait_for(lambda: _grants(store, m, prefer), timeout))
                if got:
                    store.take(owner, m)  # also ends its wait
                return got
            finally:
                if mine and store.unqueue(owner):
                    cond.notify_all()  # it gave up: the readers it held back may go

    def release(self, owner: str) -> Mode:
        """Release what ``owner`` holds (its read or its write) and say which it was."""
        with self._cond:
            held = self._store.drop(owner)
            if held is None:
                raise _not_held(self.name, self._store, owner)
            if held == "write" or self._store.counts()[0] == 0:
                self._cond.notify_all()  # the next readers and writers / the next writer
            return held

    def announce_writer(self, owner: str) -> None:
        """``owner`` waits for a write from now on (a scheduler parks it): new readers wait
        behind it until it takes the lock (``try_acquire``) or withdraws."""
        with self._cond:
            _refuse_second(self.name, self._store, "write", owner)
            self._store.queue(owner)

    def withdraw_writer(self, owner: str) -> bool:
        """``owner`` no longer waits for a write (it gave up); False if it was not waiting."""
        with self._cond:
            if not self._store.unqueue(owner):
                return False
            self._cond.notify_all()
            return True

    def would_grant(self, mode: str) -> bool:
        """Whether a ``try_acquire(mode, ...)`` by an owner holding nothing would succeed now
        (nothing is taken)."""
        m = _mode(self.name, mode)
        with self._cond:
            return _grants(self._store, m)

    def held_by(self, owner: str) -> Mode | None:
        """What ``owner`` holds: ``"read"``, ``"write"`` or None."""
        with self._cond:
            return self._store.held_by(owner)

    def state(self) -> RWState:
        """Who holds the lock and how many writers wait (one consistent snapshot)."""
        with self._cond:
            return self._store.snapshot()

    def __repr__(self) -> str:
        # without the condition's lock: a repr made while holding it must not hang
        return f"<{type(self).__name__} {self.name} {self._store.snapshot()}>"


class ThreadRWLock(_CondRWLock):
    """A writer-preferring readers-writer lock for the threads of one process, on a
    ``threading.Condition`` over a ``threading.Lock``. Not re-entrant."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._cond = threading.Condition(threading.Lock())
        self._store = _LocalStore()


class ProcessRWLock(_CondRWLock):
    """A writer-preferring readers-writer lock shared by processes: a
    ``multiprocessing.Condition`` (over a ``multiprocessing.Lock``) of the context ``ctx``,
    and the state in its shared memory (``RawArray``).

    ``owners`` are the names of every actor that may use it (the state has one slot per
    owner). Build it in the parent and hand it to a child as multiprocessing objects are
    handed: as an argument of ``ctx.Process`` (any start method: fork, forkserver, spawn).
    Its threads may use it too. Not re-entrant.
    """

    def __init__(self, name: str, ctx: Any, owners: Sequence[str]) -> None:
        self.name = name
        self._shared = _SharedStore(ctx, name, owners)
        self._store = self._shared
        self._cond = ctx.Condition(ctx.Lock())

    @property
    def owners(self) -> tuple[str, ...]:
        """The actors it was built for."""
        return self._shared.owners


class AsyncRWLock:
    """A writer-preferring readers-writer lock for the coroutines of one event loop, on an
    ``asyncio.Condition``. Not re-entrant.

    Use it from its loop's thread only. ``try_acquire``, ``would_grant``, ``state`` and
    ``announce_writer`` are plain calls (each runs without a suspension point, so it is atomic
    on the loop); ``acquire``, ``release`` and ``withdraw_writer`` are coroutines, since waking
    the waiters of an ``asyncio.Condition`` needs its lock. ``release`` changes the state
    before its first suspension point: the lock is released when the call is made.
    """

    def __init__(self, name: str) -> None:
        import asyncio  # noqa: PLC0415 (lazily: thread and process actors never pay for it)

        self.name = name
        self._asyncio = asyncio
        # asyncio primitives bind to the running loop on first use (Python >= 3.10)
        self._cond: asyncio.Condition = asyncio.Condition()
        self._store = _LocalStore()
        self._waking: set[asyncio.Task[None]] = set()

    def try_acquire(self, mode: str, owner: str, prefer: bool = True) -> bool:
        """Take the lock for ``mode`` now if it is granted (``prefer``: see :func:`_grants`);
        never waits."""
        m = _mode(self.name, mode)
        _refuse_second(self.name, self._store, m, owner)
        if not _grants(self._store, m, prefer):
            return False
        self._store.take(owner, m)
        return True

    async def acquire(self, mode: str, owner: str, timeout: float | None = None) -> bool:
        """Take the lock for ``mode``, waiting up to ``timeout`` seconds (None: for good);
        False when it timed out."""
        m = _mode(self.name, mode)
        store, cond, aio = self._store, self._cond, self._asyncio
        if self.try_acquire(m, owner):  # refuses a second hold, and the uncontended case
            return True
        if timeout is not None and timeout <= 0:
            return False
        # at once: from now on new readers wait behind it (one announced before stays so)
        mine = m == "write" and store.queue(owner)

        def grant() -> bool:
            return _grants(store, m)

        got = False
        try:
            async with cond:
                if timeout is None:
                    await cond.wait_for(grant)
                else:
                    # the grant is only tested in there and taken here: a timeout that
                    # strikes as the grant comes loses nothing
                    await aio.wait_for(cond.wait_for(grant), timeout)
                store.take(owner, m)  # also ends its wait
                got = True
        except aio.TimeoutError:
            pass
        finally:
            if mine and store.unqueue(owner):
                async with cond:  # it gave up: the readers it held back may go
                    cond.notify_all()
        return got

    async def release(self, owner: str) -> Mode:
        """Release what ``owner`` holds (its read or its write) and say which it was."""
        held = self._store.drop(owner)
        if held is None:
            raise _not_held(self.name, self._store, owner)
        if held == "write" or self._store.counts()[0] == 0:
            async with self._cond:
                self._cond.notify_all()
        return held

    def release_nowait(self, owner: str) -> Mode:
        """:meth:`release` as a plain call (from the loop's thread): the state changes now, the
        waiters are woken by a task of the loop (waking them needs the condition's lock)."""
        held = self._store.drop(owner)
        if held is None:
            raise _not_held(self.name, self._store, owner)
        if held == "write" or self._store.counts()[0] == 0:
            self._wake_soon()
        return held

    def withdraw_nowait(self, owner: str) -> bool:
        """:meth:`withdraw_writer` as a plain call (the waiters woken by a task)."""
        if not self._store.unqueue(owner):
            return False
        self._wake_soon()
        return True

    def _wake_soon(self) -> None:
        async def wake() -> None:
            async with self._cond:
                self._cond.notify_all()
        task = self._asyncio.get_running_loop().create_task(wake())
        self._waking.add(task)  # (a task nobody holds may be collected before it runs)
        task.add_done_callback(self._waking.discard)

    def announce_writer(self, owner: str) -> None:
        """``owner`` waits for a write from now on (see :meth:`ThreadRWLock.announce_writer`)."""
        _refuse_second(self.name, self._store, "write", owner)
        self._store.queue(owner)

    async def withdraw_writer(self, owner: str) -> bool:
        """``owner`` no longer waits for a write; False if it was not waiting."""
        if not self._store.unqueue(owner):
            return False
        async with self._cond:
            self._cond.notify_all()
        return True

    def would_grant(self, mode: str) -> bool:
        """Whether a ``try_acquire(mode, ...)`` by an owner holding nothing would succeed now."""
        return _grants(self._store, _mode(self.name, mode))

    def held_by(self, owner: str) -> Mode | None:
        """What ``owner`` holds: ``"read"``, ``"write"`` or None."""
        return self._store.held_by(owner)

    def state(self) -> RWState:
        """Who holds the lock and how many writers wait."""
        return self._store.snapshot()

    def __repr__(self) -> str:
        return f"<AsyncRWLock {self.name} {self.state()}>"


def new_backing(kind: str, name: str, *, ctx: Any = None,
                owners: Sequence[str] = ()) -> ThreadRWLock | ProcessRWLock | AsyncRWLock:
    """The real rwlock for actors of ``kind`` (``thread``, ``process`` or ``coroutine``);
    a process one needs the multiprocessing context ``ctx`` and the ``owners``."""
    if kind == "thread":
        return ThreadRWLock(name)
    if kind == "process":
        if ctx is None:
            raise ValueError(f"rwlock {name}: a process rwlock needs a multiprocessing context")
        return ProcessRWLock(name, ctx, owners)
    if kind == "coroutine":
        return AsyncRWLock(name)
    raise ValueError(f"rwlock {name}: no backing for actors of kind {kind!r} "
                     "(thread, process or coroutine)")


# the instrumented shells: an acquire records its mode ("mode" in the call's payload), takes
# the lock through the scheduler (a try at once, then slices when running free; parked when
# one actor runs at a time, where a waiting writer is announced, so that new readers wait
# behind it: writer preference under every scheduler); the watchdog's mark of a waiter is 1
# for a read, 0 for a write

_CALLS = {(mode, blocking): {"mode": mode} if blocking else {"mode": mode, "blocking": False}
          for mode in MODES for blocking in (True, False)}


def _mode_of(step: Any) -> Mode:
    mode = getattr(step, "mode", None)
    return "read" if mode == "read" else "write"


class RWLock(LockLike):
    """An rwlock of thread or process actors (``real``: a ThreadRWLock or ProcessRWLock)."""

    ptype = "rwlock"
    owned = True  # (a release by an actor that holds nothing is refused by the real one)

    def __init__(self, name: str, real: Any) -> None:
        super().__init__(name, real)
        self.take = _never  # an acquire always says its mode: see acquire_as

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.take = _never

    def acquirer(self, step: Any) -> Callable[[OpTags, float | None, bool, ActorCtx], bool]:
        return partial(self.acquire_as, _mode_of(step))

    def acquire(self, t: OpTags, timeout: float | None, blocking: bool, a: ActorCtx) -> bool:
        return self.acquire_as("write", t, timeout, blocking, a)

    def _attempt(self, mode: Mode, owner: str, prefer: bool, s: float) -> bool:
        real = self.real
        if (real.try_acquire(mode, owner, prefer) if s <= 0
                else real.acquire(mode, owner, s, prefer)):
            return True
        if mode == "write":
            real.announce_writer(owner)  # it waits: new readers wait behind it
        return False

    def acquire_as(self, mode: Mode, t: OpTags, timeout: float | None, blocking: bool,
                   a: ActorCtx) -> bool:
        seq = a.emit(t.call, _CALLS[(mode, blocking)])
        name = a.name
        a.waiting = (self, "acquire", timeout is not None or not blocking, seq,
                     1 if mode == "read" else 0)
        ok = False
        try:
            if mode == "write" and blocking:
                # a writer waits from its call on (new readers wait behind it), whoever does
                # the waiting: a replay takes the lock only at its recorded return
                self.real.announce_writer(name)
            # a replay grants a read where the recording did: there a writer's call may come
            # before a read's return whose grant came before that writer was announced (the
            # return is recorded just after the real acquire)
            sched = a.rt.scheduler
            prefer = not sched.grants_as_recorded()
            ok = sched.wait(a, partial(self._attempt, mode, name, prefer),
                            timeout if blocking else 0.0)
        except RuntimeError as exc:  # a second hold, an upgrade: refused, with the reason
            a.waiting = None
            msg = str(exc)
            a.emit(t.error, {"error": msg})
            raise ActorFailure(msg) from None
        finally:
            if not ok and mode == "write":
                self.real.withdraw_writer(name)  # it gave up (timed out, or the run ended)
        a.waiting = None
        if ok:
            self.holders[name] = 1
            self.acquired.add(name)
        a.emit(t.ok if ok else (t.timeout if blocking else t.fail), None)
        return ok

    def release(self, tag: Tag, a: ActorCtx) -> None:
        a.emit(tag, None)
        self.holders.pop(a.name, None)
        self.released.add(a.name)
        try:
            self._release(a.name)
        except RuntimeError as exc:
            msg = str(exc)
            a.fail_last(msg)
            raise ActorFailure(msg) from None

    def _release(self, owner: str) -> None:
        self.real.release(owner)

    def release_all(self, a: ActorCtx) -> None:
        if self.holders.pop(a.name, 0):
            try:
                self._release(a.name)
            except RuntimeError:
                pass

    def available_for(self, op: str, waiters: int, actor: str, mark: int) -> bool:
        if self.real.held_by(actor) is not None:
            return True  # granted, its return not recorded yet
        return bool(self.real.would_grant("read" if mark else "write"))

    def wait_mode(self, mark: int) -> str:
        """The mode of a waiter's acquire, from its watchdog mark."""
        return "read" if mark else "write"


class ARWLock(ALockLike, RWLock):
    """An rwlock of coroutine actors (``real``: an AsyncRWLock)."""

    def acquirer(self, step: Any) -> Callable[[OpTags, float | None, bool, ActorCtx], Any]:
        return partial(self.aacquire_as, _mode_of(step))

    async def acquire(  # type: ignore[override]
            self, t: OpTags, timeout: float | None, blocking: bool, a: ActorCtx) -> bool:
        return await self.aacquire_as("write", t, timeout, blocking, a)

    async def aacquire_as(self, mode: Mode, t: OpTags, timeout: float | None, blocking: bool,
                          a: ActorCtx) -> bool:
        real = self.real
        name = a.name
        await ready(a, t.call)
        seq = a.emit(t.call, _CALLS[(mode, blocking)])
        a.waiting = (self, "acquire", timeout is not None or not blocking, seq,
                     1 if mode == "read" else 0)

        async def attempt() -> bool:
            if real.try_acquire(mode, name):
                return True
            if mode == "write":
                real.announce_writer(name)
            return False

        async def wait() -> bool:
            return bool(await real.acquire(mode, name, timeout))
        ok = False
        try:
            if mode == "write" and blocking:
                real.announce_writer(name)  # (as for threads: a writer waits from its call)
            ok = await a.rt.scheduler.await_(a, attempt, wait, timeout if blocking else 0.0,
                                             takes=True)
        except RuntimeError as exc:
            a.waiting = None
            msg = str(exc)
            await ready(a)
            a.emit(t.error, {"error": msg})
            raise ActorFailure(msg) from None
        finally:
            if not ok and mode == "write":
                real.withdraw_nowait(name)
        a.waiting = None
        if ok:
            self.holders[name] = 1
            self.acquired.add(name)
        await ready(a, t.ok)
        a.emit(t.ok if ok else (t.timeout if blocking else t.fail), None)
        return ok

    def _release(self, owner: str) -> None:
        self.real.release_nowait(owner)


def backing(kind: str, name: str, spec: Any, made: dict[str, Prim], env: Env) -> Prim:
    """The rwlock for actors of ``kind`` (a process one has a slot for every actor)."""
    if kind == "coroutine":
        return ARWLock(name, AsyncRWLock(name))
    if kind == "process":
        return RWLock(name, ProcessRWLock(name, env.mp, env.actors))
    return RWLock(name, ThreadRWLock(name))
