"""The scheduler protocol: everything the engine asks of whatever decides when actors go.

The seam (``engine/_seam.py``) and every primitive, actor host and the runner talk to the run's
scheduler only through the hooks declared here; none of them asks which scheduler it is. The
three implementations are :class:`~tracer.engine.schedule.free.FreeRun` (``tracer run``: every
actor goes as fast as the OS lets it, a blocking call waits in real-time slices),
:class:`~tracer.engine.schedule.replay.ReplayScheduler` (the recorded order) and
:class:`~tracer.engine.schedule.explore.ExploreScheduler` (one actor at a time, chosen by a
strategy). As trio's instruments, a hook a scheduler has nothing to do for is a declared no-op
here, never a ``getattr``.

What a primitive tells the scheduler is generic: "record this event" (``turn``), "I wait; here
is a non-blocking attempt" (``wait``), "I block in a real call that only other actors can end"
(``away``), "those away on me may go on" (``release_away``). What the primitive waits for is its
typed ``waiting`` description on the actor (target, op, timed, call seq, mark); whether it would
go on is the primitive's ``available_for``. No scheduler knows a primitive type.
"""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from multiprocessing.connection import Connection

    from tracer.engine._seam import ActorCtx, Runtime, Tag

# A non-blocking or bounded attempt of a blocking call's real operation: called with 0 it must
# not block; with s > 0 it may block up to s seconds. True when the operation happened.
Attempt = Callable[[float], bool]
# A coroutine's attempt: it must not suspend (it may await what returns at once).
AsyncAttempt = Callable[[], Awaitable[bool]]


class Spin(NamedTuple):
    """An actor held in a spin loop (see :meth:`Scheduler.spin`): what its last round read,
    the loop (``'while: flag == 0' (line 7)``), and the seq of the round's first event."""

    watched: tuple[str, ...]
    loop: str
    since: int


class Scheduler:
    """The protocol, with the defaults of a scheduler that does nothing at that hook.

    Thread and process actors call the plain hooks; coroutine actors, which share one event
    loop that must never block, call the ``a``-prefixed ones."""

    # --- set-up and the run's end
    def attach(self, rt: Runtime, wake: Callable[[], object]) -> None:
        """Called once, before any actor starts. ``wake`` wakes the run's watchdog (a scheduler
        that finds the run frozen calls it)."""

    def outcome(self) -> tuple[str, str] | None:
        """How the run ended when the scheduler ended it (status, detail), else None."""
        return None

    def closing(self) -> None:
        """The run is over: let every actor the scheduler holds go, so it sees the abort."""

    def pending(self) -> bool:
        """Whether the scheduler still has steps for the actors (a replay whose recording goes
        on: its daemon actors must not be abandoned before they did what it has)."""
        return False

    # --- actors
    def started(self, name: str) -> None:
        """Actor ``name`` is about to run (it will reach a first scheduling point)."""

    def ended(self, name: str) -> None:
        """Actor ``name`` has ended (told once per actor)."""

    def is_away(self, name: str) -> bool:
        """Whether ``name`` is blocked in a real call that other actors end (see ``away``)."""
        return False

    # --- the watchdog's questions
    def is_stuck(self) -> bool:
        """Whether the scheduler found that no actor can go on (every one is parked on what
        cannot let it through): the watchdog judges that state at once."""
        return False

    def retry(self) -> None:
        """The watchdog found the parked actors not stuck for good: let them try again."""

    def needs_var_locks(self) -> bool:
        """Whether an access of a shared variable must take the variable's lock with its seq
        (free running actors); not when the turns already order the accesses."""
        return False

    # --- the seam: recording
    def emitter(self, actor: ActorCtx) -> Callable[[Tag, dict[str, Any] | None], int]:
        """The function ``actor`` records an event with (bound once per actor): it takes the
        turn, the seq, and appends the event."""
        return actor.emit_scheduled

    def turn(self, actor: Any, tag: Tag) -> int:
        """Block the calling actor until ``tag`` may be recorded and performed; return the
        event's seq (taken in the same step, so the order of turns is the order of seqs)."""
        raise NotImplementedError

    # --- waiting
    def wait(self, actor: ActorCtx, attempt: Attempt, timeout: float | None,
             looks: bool = False, eager: bool = False, always: bool = False,
             waiting: Callable[[], Any] | None = None) -> bool:
        """Stand in for a real blocking call whose ``call`` event is recorded (and whose target
        is in ``actor.waiting``): return whether its real operation happened (``attempt``
        returned True) or not (it timed out; ``timeout`` 0 is a single try). Raises Abort when
        the run is closed. What the operation is, for a replay, which performs it in the
        recorded order: ``looks``, it takes nothing from other actors (is the event set? has
        the actor ended?), so it may be tried before its recorded return; ``eager``, it takes
        something (an item, room) that an operation recorded before its return may need, so
        it is made as soon as it is first in line (a queue's put and get); ``always``, it
        happens whatever the recorded result of the call it ends (a condition's lock, taken
        back at the end of a wait that timed out), when the recording says the call returns.
        ``waiting``: what the actor waits for (its ``waiting`` description, made only when it
        must wait), which the scheduler shows the watchdog while it really waits; without it
        the primitive has set ``actor.waiting`` itself."""
        if waiting is None:
            return self._wait(actor, attempt, timeout, looks, eager, always)
        actor.waiting = waiting()  # (a scheduler with no fast path waits at once)
        try:
            return self._wait(actor, attempt, timeout, looks, eager, always)
        finally:
            actor.waiting = None

    def _wait(self, actor: ActorCtx, attempt: Attempt, timeout: float | None,
              looks: bool = False, eager: bool = False, always: bool = False) -> bool:
        """:meth:`wait` once ``actor.waiting`` says what it waits for."""
        raise NotImplementedError

    def sleep(self, actor: ActorCtx, seconds: float) -> None:
        """Stand in for a sleep step."""

    def compute(self, actor: ActorCtx, units: float, work: Callable[[float], None]) -> None:
        """Stand in for a ``compute`` step's CPU work (``work(units)`` does it, holding the GIL
        as real Python code does): free running actors do it; a scheduler that orders the
        actors makes it take no time (a scheduling point like a sleep)."""

    # --- spin loops (the scenario language's ``while``)
    def parks_spins(self) -> bool:
        """Whether :meth:`spin` may park an actor (a systematic tester's fairness rule): the
        ``while`` steps then look at what each iteration did, which costs a little."""
        return False

    def spin(self, actor: ActorCtx, watched: frozenset[str], since: int,
             loop: str = "") -> None:
        """``actor`` went once round a ``while`` loop (from the event with seq ``since`` on)
        reading only the objects in ``watched`` (shared variables; primitives a non-blocking
        attempt failed on), writing nothing and changing no local: unless another actor has
        changed one of them since, its next round would do the same again. A scheduler that
        runs one actor at a time parks it until another actor changes one (and judges the run
        stuck when every unfinished actor is parked or blocked: a livelock is a ``stall``).
        Free running and replay: nothing (the loop just goes on, up to its ``max``). ``loop``
        says which loop, for the watchdog's message."""

    async def aspin(self, actor: ActorCtx, watched: frozenset[str], since: int,
                    loop: str = "") -> None:
        """:meth:`spin` for a coroutine actor (await, never block the event loop)."""

    def spinning(self) -> dict[str, Spin]:
        """The actors the scheduler holds in a spin loop for good, which the watchdog judges
        like actors blocked with nobody to free them: parked by :meth:`spin` while no actor
        can go on any more (an exploration found the run stuck), or, in a replay, waiting past
        the end of a recording that ended with them spinning."""
        return {}

    def away(self, actor: Any, target: Any, timed: bool) -> bool:
        """``actor`` is about to block in a real call on ``target`` that only other actors can
        end (a barrier's wait for its round): a scheduler that runs one actor at a time lets the
        others go meanwhile. False: the call cannot go on here and times out now (a timed call
        under such a scheduler: the schedule where it expired)."""
        return True

    def release_away(self, actor: Any, target: Any) -> None:
        """``actor``'s operation on ``target`` lets those away on it go on (they run again)."""

    # --- coroutine actors (on the event loop: never block it)
    async def aturn(self, actor: ActorCtx, tag: Tag | None = None) -> Any:
        """Await ``actor``'s turn before it records ``tag`` (when known); the seam's ``turn``
        then gives the seq without blocking."""
        return None

    async def await_(self, actor: ActorCtx, attempt: AsyncAttempt,
                     wait: Callable[[], Awaitable[bool]], timeout: float | None,
                     takes: bool = False) -> bool:
        """Stand in for a coroutine's blocking call: ``attempt`` is its real operation if it
        can happen now (without suspending), ``wait`` the real awaitable operation, which
        returns whether it happened within ``timeout`` (0: a single try). ``takes``: the
        operation takes what others compete for (a lock), so a replay performs it only when the
        recording says it returned."""
        raise NotImplementedError

    async def asleep(self, actor: ActorCtx, seconds: float) -> None:
        """Stand in for a coroutine's sleep step."""

    def grants_as_recorded(self) -> bool:
        """Whether a blocking call succeeds where a recording says it did, a primitive's own
        grant rules about *waiters* set aside (a replay): an rwlock's writer preference then
        does not hold back a read recorded as granted. The recording's order is the real
        one, but a return is recorded just after its real operation, so another actor's call
        (a writer announced from its call on) may come between the two."""
        return False

    def may_try(self, actor: ActorCtx, takes: bool) -> bool:
        """Whether a coroutine may make its operation at once, when it can, before it hands
        the wait to :meth:`await_` (the uncontended case without a coroutine more): not a
        ``takes`` operation under a replay, which makes it when the recording says."""
        return True

    # --- process actors: the child's side of the scheduler
    def child_side(self) -> str | None:
        """Which scheduler a process actor's child runs (see :func:`child_scheduler`), talking
        to this one over a pipe that :meth:`serve` answers; None: the child needs none."""
        return None

    def serve(self, name: str, conn: Connection, prims: dict[str, Any],
              finished: threading.Event, on_gone: Callable[[], object]) -> None:
        """The parent's thread for process actor ``name``: answer its child's questions until
        it ends (``finished``), the run is closed, or the pipe is gone (then ``on_gone``)."""
