"""Exploration: a scheduler that runs exactly one actor at a time and chooses, at every
scheduling point, which one goes next.

Every instrumented operation that touches an object (a primitive, a variable, an actor it
starts or joins, its own start and end) is a scheduling point: the seam asks ``turn`` before
it records the operation, and the actor parks there with its *pending operation* (the object
it will touch and how). An event that touches nothing (a sleep, the return of a blocking call,
whose real operation happened before) is recorded without a choice: going on or letting others
go first gives the same schedule. When no actor is running any more, the scheduler lets one
parked actor go. Which one is the strategy's choice: a seeded random walk, PCT, or a
systematic search (DFS) that follows a prefix of choices and then a default.

A blocking call tries its real operation without blocking (``block``); if it cannot proceed,
the actor parks as *blocked* and is not chosen again until an operation on the object it waits
for has happened (or an actor it joins has ended): retrying before that could not succeed,
and would only make the same state look like a new choice. Sleeps take no time: their call
and return are scheduling points like any other. When every unfinished actor is blocked the
state is frozen, and the run's own watchdog judges it at once (a deadlock or a stall).

Actors of every kind park here: a thread waits on a gate of its own (a lock released to let
it go); a coroutine awaits a future of the event loop (``aready``/``ablock``), so the loop is
never blocked; a process actor's questions come over a pipe to a thread of the parent that
parks in its place (see ``serve_explore``). An actor blocked in a real call that only others
can end (a barrier's wait for its round) is *away*: not chosen, until the operation that ends
it (the round's last arrival) brings it back (``away``, ``release_away``: the scheduler knows
no barrier, the primitive counts its rounds).

A ``while`` round that read only shared values nobody changed since, and changed nothing
itself, would do the same again: the loop calls ``spin`` and its actor is *spinning* (the
fairness rule of CHESS): parked at its next operation like a blocked actor, not chosen, until
another actor *changes* one of the objects the round looked at (a write, append or atomic add
of a variable read; an operation on a primitive tried, other than a failed try). Reads do not
wake it: two actors spinning on one flag would otherwise wake each other for ever. So the
search of a spin-wait ends, and when every unfinished actor is spinning or blocked the run is
stuck: a livelock, judged by the watchdog as a ``stall`` (``spinning``).

The record of a schedule is ``log``: at each choice, the actors that could go on, the one
whose turn just ended when it could go on too (choosing another is a preemption), the one
chosen, and the sleep set. The systematic search (``tracer.explore``) reads it to decide the
next schedule. Sleep sets (Godefroid 1996) skip schedules that only reorder independent
operations: two operations are independent when they touch different objects; a lock and the
condition built on it are one object.
"""

from __future__ import annotations

import asyncio
import random
import threading
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from tracer.engine._seam import Abort, ActorCtx, Runtime, Tag
from tracer.engine.schedule._protocol import AsyncAttempt, Attempt, Scheduler, Spin
from tracer.engine.schedule._remote import Remote, reply
from tracer.prims import prim_type
from tracer.scenario import Plan

ANY = "*"  # the object of an operation whose object is unknown: dependent on everything
Pending = tuple[str | None, str]  # (object, op) of an actor's next operation


def object_groups(plan: Plan) -> dict[str, str]:
    """Which object each primitive's operations touch: the primitive its type says a step on
    it also uses (a condition built on a lock is that lock), else itself."""
    out = {}
    for name, spec in plan.scenario.primitives.items():
        uses = prim_type(spec.type).also_uses(spec)
        out[name] = uses[0] if uses else name
    return out


def operation_object(actor: str, tag: Tag, groups: dict[str, str]) -> str | None:
    """The object an event's operation touches (None: nothing). A blocking call's return
    touches nothing (its real operation happened in the call); an actor's start and end touch
    the actor (the spawn that starts it, the joins that wait for it touch it too)."""
    if tag.phase == "return":
        return None
    if tag.target is not None:
        return groups.get(tag.target, tag.target)
    if tag.op in ("start", "end"):
        return actor
    return None  # a sleep, a log


def dependent(u: Pending, v: Pending) -> bool:
    """Whether two operations may not commute: they touch the same object. An operation with
    no object (a sleep, or what follows a blocking call's return) commutes with everything."""
    if u[0] is None or v[0] is None:
        return False
    return u[0] == v[0] or u[0] == ANY or v[0] == ANY


@dataclass(frozen=True)
class Point:
    """One choice of a schedule."""

    ready: tuple[str, ...]  # the actors that could go on, in the plan's order
    prev: str | None  # the actor whose turn just ended, when it could go on too
    chosen: str
    sleep: frozenset[str]  # actors asleep here (their operation was explored before)
    doing: Pending  # what the chosen actor does until its next scheduling point
    pending: tuple[tuple[str, Pending], ...] = ()  # every parked actor's next operation


class Strategy(Protocol):
    """Chooses who goes next."""

    sleep_sets: bool  # whether the scheduler keeps sleep sets for it (a systematic search)

    def choose(self, index: int, ready: tuple[str, ...], prev: str | None,
               awake: tuple[str, ...]) -> str:
        """``index``: the choice's number in this schedule; ``ready``: the actors that can go
        on; ``prev``: the one that just ran, if in ``ready``; ``awake``: those of ``ready``
        not asleep (never empty; the choice must be one of them)."""
        ...

    def extra_sleep(self, index: int) -> frozenset[str]:
        """Actors to put to sleep at choice ``index`` (a systematic search's explored
        siblings); empty for the other strategies."""
        ...


class RandomWalk:
    """A seeded random walk: at every choice, one of those that can go on, at random."""

    sleep_sets = False

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)

    def choose(self, index: int, ready: tuple[str, ...], prev: str | None,
               awake: tuple[str, ...]) -> str:
        return awake[self.rng.randrange(len(awake))]

    def extra_sleep(self, index: int) -> frozenset[str]:
        return frozenset()


class PCT(RandomWalk):
    """PCT (Burckhardt et al., ASPLOS 2010): each actor gets a random priority; the highest
    that can go on runs; at d-1 random points of the schedule (among the first ``length``
    choices) the running actor's priority drops below all others. A bug of depth d is found
    with probability at least 1/(n k^(d-1)) per schedule."""

    def __init__(self, seed: int, depth: int = 3, length: int = 64) -> None:
        super().__init__(seed)
        self.priorities: dict[str, float] = {}
        self.change_points = set(self.rng.sample(range(1, max(2, length)),
                                                 k=min(max(0, depth - 1), max(1, length - 1))))
        self.low = 0.0

    def choose(self, index: int, ready: tuple[str, ...], prev: str | None,
               awake: tuple[str, ...]) -> str:
        for name in awake:
            if name not in self.priorities:
                self.priorities[name] = 1.0 + self.rng.random()
        chosen = max(awake, key=lambda n: self.priorities[n])
        if index + 1 in self.change_points:
            self.low -= 1.0
            self.priorities[chosen] = self.low  # demoted: below every other actor
            chosen = max(awake, key=lambda n: self.priorities[n])
        return chosen


class Systematic:
    """One schedule of a depth-first search: follow ``prefix`` (the choices that lead to the
    branch to explore), then the default choice: the actor that just ran if it can go on
    (no preemption), else the first that can, in the plan's order."""

    sleep_sets = True

    def __init__(self, prefix: Sequence[str] = (),
                 extra: Sequence[frozenset[str]] = (), sleep_sets: bool = True) -> None:
        self.prefix = list(prefix)
        self.extra = list(extra)
        self.sleep_sets = sleep_sets
        self.diverged: int | None = None  # the first choice where the prefix could not be followed

    def choose(self, index: int, ready: tuple[str, ...], prev: str | None,
               awake: tuple[str, ...]) -> str:
        if index < len(self.prefix):
            want = self.prefix[index]
            if want in awake:
                return want
            if self.diverged is None:
                self.diverged = index
        return prev if prev is not None and prev in awake else awake[0]

    def extra_sleep(self, index: int) -> frozenset[str]:
        return self.extra[index] if index < len(self.extra) else frozenset()


class ExploreScheduler(Scheduler):
    """Runs one actor at a time; the strategy chooses who goes next. See the module's
    docstring."""

    def __init__(self, strategy: Strategy, order: Sequence[str] = (),
                 groups: dict[str, str] | None = None) -> None:
        self.strategy = strategy
        self.sleep_sets = strategy.sleep_sets
        self.rank = {n: i for i, n in enumerate(order)}
        self.mu = threading.Lock()
        self.running: set[str] = set()  # actors between two scheduling points
        self.parked: dict[str, Pending] = {}  # actors waiting to be chosen, with what they do
        # blocked actors: (object, its version, changes, epoch) when they blocked, and what
        # to ask the primitive whether it would let them through: (primitive, op, mark)
        self.blocked: dict[str, tuple[str | None, int, int, int, Any]] = {}
        self.probes: dict[str, Any] = {}  # actor -> (primitive, op, mark) of its blocked call
        self.gone: dict[str, str] = {}  # actors away (blocked in a real call) -> its object
        self.current: dict[str, Pending] = {}  # what each running actor is doing
        self.finished: set[str] = set()  # actors that have ended
        self.retrying: set[str] = set()  # running actors let go to retry a blocked call
        self.versions: dict[str | None, int] = {}  # per object: operations done on it
        self.changes = 0
        self.epoch = 0  # bumped when the watchdog lets every blocked actor retry
        self.gates: dict[str, threading.Lock] = {}
        self.futures: dict[str, asyncio.Future[None]] = {}
        self.loop: asyncio.AbstractEventLoop | None = None
        self.granted_async: set[str] = set()  # coroutines let go by aready, before their turn
        self.groups = groups or {}  # primitive -> the object it operates on (object_groups)
        self.prev: str | None = None
        self.dozing: frozenset[str] = frozenset()
        self.log: list[Point] = []
        self.pruned = False  # every actor that could go on was asleep: a redundant schedule
        self.rt: Runtime | None = None
        self.stuck = threading.Event()  # every unfinished actor is blocked: a deadlock
        self.on_stuck: Callable[[], object] | None = None  # wakes the run's watchdog
        # spin loops: the actors spinning (the objects they wait for a change of, and what
        # the watchdog says of them), per object the seq of its latest change, and per actor
        # the object and seq of a blocking call made but not yet known to have changed anything
        self.spinners: dict[str, tuple[frozenset[str], Spin]] = {}
        # object -> actor -> the seq of that actor's last change of it (a spinner's own
        # changes in its round, a lock it took and gave back, do not count)
        self.changed: dict[str, dict[str, int]] = {}
        self.calls: dict[str, tuple[str, int]] = {}

    # --- set-up
    def attach(self, rt: Runtime, wake: Callable[[], object]) -> None:
        self.rt = rt
        self.on_stuck = wake

    def child_side(self) -> str | None:
        return "explore"

    def serve(self, name: str, conn: Any, prims: dict[str, Any], finished: threading.Event,
              on_gone: Callable[[], object]) -> None:
        serve_explore(self, name, conn, prims, finished, on_gone)

    def is_stuck(self) -> bool:
        """Whether nobody runs and no parked actor can go on, now (the flag is set when that
        was found; an actor started or ended since, from another thread, may have changed
        it: a process actor's end comes from the runner's watchdog)."""
        if not self.stuck.is_set():
            return False
        with self.mu:
            stuck = not self.running and not any(self._can_go(n) for n in self.parked)
            if not stuck:
                self.stuck.clear()
            return stuck

    def is_away(self, name: str) -> bool:
        return name in self.gone

    # --- the Scheduler protocol
    def started(self, name: str) -> None:
        """An actor was started: it runs until its first scheduling point."""
        with self.mu:
            self.running.add(name)

    def ended(self, name: str) -> None:
        with self.mu:
            self.finished.add(name)
            self.spinners.pop(name, None)
            self._settle(name)
            self._end_segment(name, failed=False)
            self._bump(name)  # whoever joins it may go on
            self.running.discard(name)
            self.prev = name
            self._choose()

    def turn(self, actor: Any, tag: Tag) -> int:
        rt = self.rt
        assert rt is not None
        name = actor.name
        if name in self.granted_async:  # a coroutine that awaited its turn (aready)
            self.granted_async.discard(name)
        elif actor.kind != "coroutine":  # (a coroutine's: the loop must not block)
            pending = self._pending(name, tag)
            if pending[0] is not None:
                # (one that touches nothing, a sleep, what follows a blocking call's return:
                # going on now or after others is the same schedule, not a scheduling point)
                self._park(name, pending, blocked=False)
        seq = next(rt.seq)
        if tag.op != "read" and (tag.target is not None or tag.op == "end"):
            with self.mu:
                self._note(name, tag, seq)
        return seq

    def _wait(self, actor: ActorCtx, attempt: Attempt, timeout: float | None,
              looks: bool = False, eager: bool = False, always: bool = False) -> bool:
        return try_or_park(self.rt, attempt, timeout, lambda: self.park_blocked(actor))

    def park_blocked(self, actor: Any) -> None:
        """Park ``actor`` as blocked on what its ``waiting`` names until that has changed (and
        would let it through). Also called by the parent's thread of a process actor, which
        parks in its place (``_replay.serve_explore``)."""
        self.probes[actor.name] = _probe(actor)
        self._park(actor.name, self._waiting_on(actor), blocked=True)

    def sleep(self, actor: ActorCtx, seconds: float) -> None:
        """No time passes: a sleep touches nothing, so the next operation after it is where
        others may go first (virtual time: a sleep hides no interleaving)."""

    # --- spin loops (see the module's docstring)
    def parks_spins(self) -> bool:
        return True

    def spin(self, actor: Any, watched: frozenset[str], since: int,
             loop: str = "") -> None:
        """``actor``'s round of a ``while`` since seq ``since`` changed nothing and looked at
        ``watched``: unless another actor changed one of them since, it spins, parked at its
        next operation until one does. (It goes on to that operation now: the next round's
        first read or try is where it parks, like any operation.)"""
        with self.mu:
            self._spin(actor.name, watched, since, loop)

    async def aspin(self, actor: ActorCtx, watched: frozenset[str], since: int,
                    loop: str = "") -> None:
        """:meth:`spin` for a coroutine: it parks (on a future) at its next turn."""
        with self.mu:
            self._spin(actor.name, watched, since, loop)

    def spinning(self) -> dict[str, Spin]:
        """The spinners, once no actor can go on (before that, one may still free them)."""
        if not self.stuck.is_set():
            return {}
        with self.mu:
            if self.running:
                return {}
            return {n: spin for n, (_, spin) in self.spinners.items() if n in self.parked}

    def _spin(self, name: str, watched: frozenset[str], since: int, loop: str) -> None:
        objects = frozenset(self.groups.get(w, w) for w in watched)
        if any(seq > since for o in objects
               for who, seq in self.changed.get(o, {}).items() if who != name):
            return  # changed while the round went on: the next one may see something new
        self.spinners[name] = (objects, Spin(tuple(sorted(watched)), loop, since))

    def _note(self, name: str, tag: Tag, seq: int) -> None:
        """An event of ``name`` on an object (a read aside): what it changes. A blocking
        call's ``call`` is held (``calls``) until its return says whether it happened: a
        try that failed or timed out changed nothing (two actors spinning on a try of one
        lock would otherwise wake each other for ever)."""
        obj = self.groups.get(tag.target, tag.target) if tag.target is not None else (
            name if tag.op == "end" else None)  # an actor's end changes it (a timed join)
        if obj is None:
            return
        if tag.phase == "call":
            self.calls[name] = (obj, seq)
            return
        if tag.phase == "return":
            obj = self.calls.pop(name, (obj, seq))[0]
            if tag.result in ("fail", "timeout"):
                return
        self._changes(name, obj, seq)

    def _settle(self, name: str) -> None:
        """``name`` blocks (or ends) inside a call whose result is not known yet: count it as
        a change (a condition's wait lets go of its lock), so that no spinner misses one."""
        call = self.calls.pop(name, None)
        if call is not None:
            self._changes(name, *call)

    def _changes(self, name: str, obj: str, seq: int) -> None:
        """``name`` changed ``obj`` at ``seq``: those spinning on it may go on."""
        by = self.changed.setdefault(obj, {})
        if by.get(name, -1) < seq:
            by[name] = seq
        for other, (objects, _) in list(self.spinners.items()):
            if other != name and (obj in objects or obj == ANY):
                del self.spinners[other]

    def retry(self) -> None:
        """The watchdog found the blocked actors not stuck for good (what one waits for is
        there): let them try again (and the spinners go round again)."""
        with self.mu:
            self.stuck.clear()
            self.epoch += 1
            self.spinners.clear()
            self._choose()

    def closing(self) -> None:
        """The run is over: let every parked actor go, so it sees the abort."""
        with self.mu:
            for name in list(self.parked):
                self._wake(name)
            self.parked.clear()

    def outcome(self) -> tuple[str, str] | None:
        if self.pruned:
            return "interrupted", "schedule cut: it only reorders operations explored before"
        return None

    # --- coroutines: the same, awaited on the event loop
    async def aturn(self, actor: ActorCtx, tag: Tag | None = None) -> None:
        """Park coroutine ``actor`` before its next operation (``tag``) until it is chosen."""
        name = actor.name
        pending = self._pending(name, tag) if tag is not None else (ANY, "?")
        if pending[0] is None:
            return  # it touches nothing: not a scheduling point (see turn)
        await self._apark(name, pending, blocked=False)
        self.granted_async.add(name)

    async def await_(self, actor: ActorCtx, attempt: AsyncAttempt,
                     wait: Callable[[], Awaitable[bool]], timeout: float | None,
                     takes: bool = False) -> bool:
        """``wait`` for a coroutine: ``attempt`` must not suspend (the real ``wait`` is never
        awaited: the coroutine parks instead)."""
        rt = self.rt
        while True:
            if rt is not None and rt.closed:
                raise Abort
            if await attempt():
                return True
            if timeout is not None:
                return False
            self.probes[actor.name] = _probe(actor)
            await self._apark(actor.name, self._waiting_on(actor), blocked=True)

    async def _apark(self, name: str, pending: Pending, blocked: bool) -> None:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        with self.mu:
            self.loop = loop
            self.futures[name] = fut
            self._arrive(name, pending, blocked)
        await fut
        if self.rt is not None and self.rt.closed:
            raise Abort

    # --- a real blocking call that others end (a barrier's round), while the others go
    def away(self, actor: Any, target: Any, timed: bool) -> bool:
        """``actor`` is about to block in a real call on ``target`` that others must end: it
        goes *away* (not chosen; the others go meanwhile) until an operation brings it back
        (``release_away``). Only one actor runs at a time, so a timed call cannot go on: False,
        it times out now (the schedule where its timeout expired)."""
        if timed:
            return False
        with self.mu:
            self._go_away(actor.name, target)
        return True

    def release_away(self, actor: Any, target: Any) -> None:
        """Those away on ``target`` run again, until their next scheduling point."""
        with self.mu:
            self._come_back(target)

    def _go_away(self, name: str, target: str) -> None:
        """``name`` is about to block in a real call on ``target`` that others end."""
        self._end_segment(name, failed=False)
        self.running.discard(name)
        self.gone[name] = target
        self.prev = name
        self._choose()

    def _come_back(self, target: str) -> None:
        """The real call on ``target`` ends (its round is complete, or broken): those inside
        it run again, until their next scheduling point."""
        for name in [n for n, b in self.gone.items() if b == target]:
            del self.gone[name]
            self.running.add(name)
            self._bump(target)

    # --- helpers (with self.mu held, except _park)
    def _pending(self, name: str, tag: Tag) -> Pending:
        return operation_object(name, tag, self.groups), tag.op

    def _waiting_on(self, actor: Any) -> Pending:
        w = actor.waiting
        if w is None:
            return ANY, "wait"
        target = w[0]
        if isinstance(target, str):  # an actor (join)
            return target, w[1]
        name = target.name
        return self.groups.get(name, name), w[1]

    def _park(self, name: str, pending: Pending, blocked: bool) -> None:
        gate = self.gates.get(name)
        if gate is None:
            gate = self.gates[name] = threading.Lock()
            gate.acquire()
        with self.mu:
            self._arrive(name, pending, blocked)
        rt = self.rt
        while not gate.acquire(True, 0.05):
            if rt is not None and rt.closed:
                with self.mu:
                    self.parked.pop(name, None)
                    self.blocked.pop(name, None)
                raise Abort
        if rt is not None and rt.closed:
            raise Abort

    def _arrive(self, name: str, pending: Pending, blocked: bool) -> None:
        if blocked:
            self._settle(name)
        self._end_segment(name, failed=blocked)
        self.running.discard(name)
        self.parked[name] = pending
        if blocked:
            obj = pending[0]
            self.blocked[name] = (obj, self.versions.get(obj, 0), self.changes, self.epoch,
                                  self.probes.pop(name, None))
        self.prev = name
        self._choose()

    def _end_segment(self, name: str, failed: bool) -> None:
        """``name``'s run between two scheduling points is over: it changed its object,
        unless it was a retry of a blocked call that failed again (no change at all)."""
        doing = self.current.pop(name, None)
        retry = name in self.retrying
        self.retrying.discard(name)
        if doing is not None and doing[0] is not None and not (failed and retry):
            self._bump(doing[0])

    def _bump(self, obj: str | None) -> None:
        self.versions[obj] = self.versions.get(obj, 0) + 1
        self.changes += 1

    def _can_go(self, name: str) -> bool:
        """Whether ``name`` can go on: it is not blocked, or what it waits for has changed
        since and (as far as the primitive can tell) would now let it through. A retry that
        would fail again is not a new choice: it would only repeat the same state."""
        if name in self.spinners:
            return False
        b = self.blocked.get(name)
        if b is None:
            return True
        obj, version, changes, epoch, probe = b
        if epoch != self.epoch:
            return True
        if (changes == self.changes) if obj == ANY else (self.versions.get(obj, 0) == version):
            return False
        if probe is not None:
            prim, op, mark = probe
            if prim is None:  # a join: it goes on once the actor has ended, not before
                ok = op in self.finished
            else:
                waiters = sum(1 for o in self.blocked.values()
                              if o[4] is not None and o[4][0] is prim and o[4][1] == op)
                ok = prim.available_for(op, waiters, name, mark)
            if not ok:
                # changed, but still closed to it: wait for the next change
                self.blocked[name] = (obj, self.versions.get(obj, 0), self.changes, epoch,
                                      probe)
                return False
        return True

    def _choose(self) -> None:
        """When nobody runs, let one parked actor go (see the module's docstring)."""
        rt = self.rt
        if self.running or (rt is not None and rt.closed):
            return
        if not self.parked and not self.gone:
            return
        rank = self.rank
        ready = tuple(sorted((n for n in self.parked if self._can_go(n)),
                             key=lambda n: (rank.get(n, len(rank)), n)))
        if not ready:
            # everyone is blocked and nobody runs: the state is frozen, the watchdog may
            # judge it at once
            self.stuck.set()
            if self.on_stuck is not None:
                self.on_stuck()
            return
        self.stuck.clear()  # (someone can go on)
        index = len(self.log)
        prev = self.prev if self.prev in ready else None
        sleep = self.dozing | self.strategy.extra_sleep(index) if self.sleep_sets else frozenset()
        awake = tuple(n for n in ready if n not in sleep)
        if not awake:
            self.pruned = True  # every way on was explored in an equivalent order before
            if rt is not None:
                rt.close()
            if self.on_stuck is not None:
                self.on_stuck()
            return
        chosen = self.strategy.choose(index, ready, prev, awake)
        pending = tuple(self.parked.items()) if self.sleep_sets else ()
        doing = self.parked.pop(chosen)
        self.log.append(Point(ready, prev, chosen, sleep, doing, pending))
        if self.sleep_sets:
            parked = self.parked
            self.dozing = frozenset(u for u in sleep if u in parked and u != chosen
                                   and not dependent(parked[u], doing))
        if self.blocked.pop(chosen, None) is not None:
            self.retrying.add(chosen)
        self.current[chosen] = doing
        self.running.add(chosen)
        self._wake(chosen)

    def _wake(self, name: str) -> None:
        fut = self.futures.pop(name, None)
        if fut is not None:
            loop = self.loop
            assert loop is not None
            if _in_loop(loop):
                if not fut.done():
                    fut.set_result(None)
            else:
                loop.call_soon_threadsafe(_resolve, fut)
            return
        gate = self.gates.get(name)
        if gate is not None and gate.locked():
            gate.release()


def try_or_park(rt: Runtime | None, attempt: Callable[[float], bool], timeout: float | None,
                park: Callable[[], object]) -> bool:
    """A blocking call under exploration: try the real operation without blocking; if it
    cannot proceed, ``park`` (as blocked, until what it waits for has changed) and try again.
    A call with a timeout times out when it cannot go on (the schedule where it expired)."""
    while True:
        if rt is not None and rt.closed:
            raise Abort
        if attempt(0):
            return True
        if timeout is not None:
            return False
        park()


def _probe(actor: Any) -> Any:
    """What to ask whether ``actor``'s blocked call would go through now: (primitive, op,
    mark) from what it waits for, or (None, actor name, 0) for a join."""
    w = actor.waiting
    if w is None:
        return None
    if isinstance(w[0], str):
        return (None, w[0], 0)
    if not hasattr(w[0], "available_for"):
        return None
    return (w[0], w[1], w[4])


def _in_loop(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False


def _resolve(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


def make_strategy(strategy: str, seed: int, depth: int = 3, length: int = 64) -> Strategy:
    """The strategy of one schedule of ``strategy`` (random, pct; ``length``: PCT's estimate
    of the number of choices in a schedule, where its change points fall)."""
    if strategy == "pct":
        return PCT(seed, depth, length)
    return RandomWalk(seed)


def make_scheduler(strategy: str, seed: int, depth: int = 3, order: Sequence[str] = (),
                   length: int = 64, groups: dict[str, str] | None = None) -> ExploreScheduler:
    """The scheduler of one schedule for ``strategy`` (random, pct)."""
    return ExploreScheduler(make_strategy(strategy, seed, depth, length), order, groups)


def schedule_seed(seed: int, run: int) -> int:
    """The seed of schedule ``run`` of an exploration started with ``seed``."""
    return seed * 1_000_003 + run


# ---------------------------------------------------------------------------------------------
# process actors under exploration: a pipe to the parent, where a thread parks in their place


class RemoteExplorer(Remote):
    """A process actor's side of an exploration: turns come from the parent's scheduler; a
    blocking call is tried here, and when it cannot go on the parent parks (as blocked) in
    the actor's place until what it waits for has changed, then it is tried again."""

    def _wait(self, actor: ActorCtx, attempt: Attempt, timeout: float | None,
              looks: bool = False, eager: bool = False, always: bool = False) -> bool:
        def park() -> None:
            w = actor.waiting
            target = None if w is None else (w[0] if isinstance(w[0], str) else w[0].name)
            self._ask("blocked", target, "wait" if w is None else w[1])
        return try_or_park(self.rt, attempt, timeout, park)

    def turn(self, actor: ActorCtx, tag: Tag) -> int:
        """A scheduling point asks the parent. An event that touches nothing (a blocking
        call's return, a log, a sleep: ``operation_object`` is None) is not one: the parent
        would give the next seq at once, so it is taken here, from the run's shared counter
        (nobody else runs meanwhile); a return on an object is told to the parent without
        waiting for an answer (what it changed, for the spinners: ``_note``), which the
        parent takes in before this child's next question."""
        if tag.phase == "return" or (tag.target is None and tag.op not in ("start", "end")):
            assert self.rt is not None
            seq = next(self.rt.seq)
            if tag.target is not None and tag.op != "read":
                try:
                    self.conn.send(("note", tag.op, tag.target, tag.phase, tag.result, seq))
                except (EOFError, OSError):
                    raise Abort from None
            return seq
        return super().turn(actor, tag)

    def sleep(self, actor: ActorCtx, seconds: float) -> None:
        """No time passes (a sleep touches nothing: not a scheduling point)."""

    def parks_spins(self) -> bool:
        return True

    def spin(self, actor: ActorCtx, watched: frozenset[str], since: int,
             loop: str = "") -> None:
        """The parent's scheduler holds the spinner (it parks at its next turn, there)."""
        self._ask("spin", sorted(watched), since, loop)

    def away(self, actor: Any, target: Any, timed: bool) -> bool:
        return bool(self._ask("away", target, timed))

    def release_away(self, actor: Any, target: Any) -> None:
        self._ask("release", target)


class _Parked:
    """Stands in for a process actor in the parent, where its server thread parks."""

    kind = "process"  # parks on a gate like a thread (never the coroutine path)

    def __init__(self, name: str) -> None:
        self.name = name
        self.waiting: tuple[Any, str, bool, int, int] | None = None


def serve_explore(scheduler: ExploreScheduler, name: str, conn: Any, prims: dict[str, Any],
                  finished: threading.Event, on_gone: Callable[[], object]) -> None:
    """The parent's thread for one process actor under exploration: answers its turns (and
    parks for it in ``scheduler``) until the actor has ended, the run is closed or the child's
    end of the pipe is gone."""
    who = _Parked(name)
    tags: dict[tuple[Any, ...], Tag] = {}
    rt = scheduler.rt
    try:
        while True:
            try:
                if not conn.poll(0.05):
                    if finished.is_set() or (rt is not None and rt.closed):
                        return
                    continue
                msg = conn.recv()
            except (EOFError, OSError):
                return
            answer: Any
            if msg[0] == "note":  # ("note", op, target, phase, result, seq): no answer
                key = tuple(msg[1:5])
                tag = tags.get(key)
                if tag is None:
                    tag = tags[key] = Tag(name, msg[1], msg[2], msg[3], msg[4])
                with scheduler.mu:
                    scheduler._note(name, tag, msg[5])
                continue
            try:
                if msg[0] == "turn":
                    key = tuple(msg[1:])
                    tag = tags.get(key)
                    if tag is None:
                        tag = tags[key] = Tag(name, msg[1], msg[2], msg[3], msg[4])
                    answer = scheduler.turn(who, tag)
                elif msg[0] == "away":  # ("away", target, timed)
                    answer = scheduler.away(who, msg[1], msg[2])
                elif msg[0] == "release":  # ("release", target)
                    scheduler.release_away(who, msg[1])
                    answer = True
                elif msg[0] == "spin":  # ("spin", watched, since, loop)
                    scheduler.spin(who, frozenset(msg[1]), msg[2], msg[3])
                    answer = True
                else:  # ("blocked", target, op): park until what it waits for has changed
                    target = None if msg[1] is None else prims.get(msg[1], msg[1])
                    who.waiting = None if target is None else (target, msg[2], False, -1, 0)
                    scheduler.park_blocked(who)
                    answer = True
            except Abort:
                answer = "abort"
            if not reply(conn, answer):
                return
    finally:
        conn.close()
        on_gone()
