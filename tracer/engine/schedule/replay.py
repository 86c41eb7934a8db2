"""Replay: a scheduler that admits each actor's operations in a recorded order.

Every instrumented operation asks the scheduler for its turn before it is recorded and
performed (``Scheduler.turn``, called by the seam). The replay scheduler holds the recorded
sequence of actor events and lets an actor through only when its operation is the next one
in the recording. A blocking call is split the same way as in the trace: its ``call`` is
admitted at its turn, then the actor waits (without blocking in the real primitive) until the
recording says the call returns, and only then performs the real operation, which must
succeed at once, since every operation that enabled it in the recording has been performed.
Sleeps take no time (``--real-time`` keeps them). So the real primitives do the real work, in
exactly the recorded order, and a recorded deadlock forms again, where the watchdog sees it.

An access of a shared variable (read, write, append) is performed just after its turn, so
the replay admits nobody else until that actor comes back for its next turn: the value it
read or stored is then the one the recording has at that seq, whatever the backing (a write
to a Manager is a round trip, which another actor's turn would otherwise overtake).

A recording that ended in a livelock (an exploration's ``stall`` whose waits say who spun in
which loop) ends the same way: those spinners come to their next turn past its end, where the
scheduler holds them for good (``spinning``), and the watchdog judges them as the exploration
did.

When the actor whose turn it is does not come (the trace was edited, or the scenario
changed), the replay stops after ``patience`` seconds with a divergence: what the recording
expected, and which actors were waiting for their turn.
"""

from __future__ import annotations

import asyncio
import bisect
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from operator import attrgetter
from typing import Any

from tracer.engine._seam import Abort, ActorCtx, Runtime, Tag
from tracer.engine.schedule._protocol import AsyncAttempt, Attempt, Scheduler, Spin
from tracer.engine.schedule._remote import Remote, reply

VAR_OPS = frozenset({"read", "write", "append"})  # the accesses of a shared variable
PATIENCE = 2.0  # seconds without progress before a replay is declared divergent
LAG = 1.0  # seconds a replayed operation may take to become possible (a release is logged
#            before it happens, so the operation it enabled may find it not done yet)


# The steps a process actor's child may be granted ahead (``turn_granting``): after its turn
# for one of these, the child comes back to the scheduler (its next turn, or the question of
# a blocking call) without blocking for real on what another actor must do first. Returns;
# log lines; a release; the call of an acquire (it asks when its recorded return comes: the
# child answers that itself when the return is granted too, see RemoteScheduler._wait). Not
# an actor's end (the child says nothing after it), nor waits, queue operations, notifies,
# barriers, sleeps, whose real operation may wait for others.
GRANTABLE_OPS = frozenset({"log", "release"})
GRANT_MAX = 1024  # steps granted at once


def _grantable(st: Step) -> bool:
    if st.op == "end":
        return False
    if st.phase == "return":
        return True
    return st.op in GRANTABLE_OPS or (st.op == "acquire" and st.phase == "call")


@dataclass(frozen=True)
class Step:
    """One recorded actor event, as the replay compares it."""

    seq: int
    actor: str
    op: str
    target: str | None
    phase: str | None
    result: str | None

    def what(self) -> str:
        """The operation, without the actor: 'acquire B (return, ok)'."""
        what = f"{self.op} {self.target}" if self.target else self.op
        if self.phase:
            what += f" ({self.phase}{', ' + self.result if self.result else ''})"
        elif self.result:
            what += f" ({self.result})"
        return what

    def describe(self) -> str:
        return f"seq {self.seq}: {self.actor} {self.what()}"


@dataclass(frozen=True)
class Divergence:
    """Where a replay left the recording."""

    seq: int
    expected: str
    got: str
    waiting: tuple[str, ...]

    def message(self) -> str:
        who = ", ".join(self.waiting) or "none"
        return (f"diverged at seq {self.seq}: the recording expected {self.expected}, but "
                f"{self.got}; actors waiting for their turn: {who}")


def attempt_within(attempt: Callable[[float], bool], lag: float,
                   closed: Callable[[], bool]) -> bool:
    """Try a real operation until it succeeds or ``lag`` seconds pass (Abort if closed)."""
    deadline = time.monotonic() + lag
    while not attempt(0.005):
        if closed():
            raise Abort
        if time.monotonic() > deadline:
            return False
    return True


def _columns(events: Sequence[Any], keys: tuple[str, ...]) -> list[tuple[Any, ...]]:
    """``keys`` of each event, as a tuple: by attribute when the events are a trace's compact
    ones (each key a slot of theirs; a million of them are read in one pass), else by
    ``get`` (JSON objects)."""
    kinds = set(map(type, events))
    if len(kinds) == 1:
        slots = getattr(next(iter(kinds)), "__slots__", ())
        if all(k in slots for k in keys):
            return list(map(attrgetter(*keys), events))
    return [tuple(e.get(k) for k in keys) for e in events]


_STEP_KEYS = ("seq", "actor", "op", "target", "phase", "result")


def recorded_steps(events: Sequence[Any]) -> list[Step]:
    """The actor events of a trace, in order (the engine's own events are not replayed)."""
    return [Step(int(seq), actor, op, target, phase, result)
            for seq, actor, op, target, phase, result in _columns(events, _STEP_KEYS)
            if actor is not None and not _engine_op(op, result)]


def _engine_op(op: Any, result: Any) -> bool:
    """Whether an event of this op and result is one the engine records for an actor (not
    the actor's own operation): a daemon's abandoned end, a process pool's callback."""
    return bool(op == "callback" or (op == "end" and result == "abandoned"))


def recorded_spins(events: Sequence[Any]) -> dict[str, Spin]:
    """The actors a recorded ``stall`` found spinning (its waits of kind ``spin``)."""
    out: dict[str, Spin] = {}
    for e in events:
        if e.get("actor") is not None or e.get("op") != "stall":
            continue
        for w in e.get("waits") or ():
            if not isinstance(w, dict) or w.get("kind") != "spin":
                continue
            actor, watched, seq = w.get("actor"), w.get("watched"), w.get("call_seq")
            if isinstance(actor, str) and isinstance(watched, list):
                out[actor] = Spin(tuple(str(x) for x in watched), str(w.get("loop") or ""),
                                  seq if isinstance(seq, int) else -1)
    return out


class ReplayScheduler(Scheduler):
    """Admits operations in the order of ``steps``; see the module's docstring."""

    def __init__(self, steps: list[Step], until: int | None = None, real_time: bool = False,
                 patience: float = PATIENCE, spins: dict[str, Spin] | None = None) -> None:
        self.steps = steps
        self.spins = spins or {}  # who the recording ended with spinning (recorded_spins)
        self.until = until
        self.real_time = real_time
        self.patience = patience
        self.pos = 0
        self.cond = threading.Condition()
        self.divergence: Divergence | None = None
        self.stopped_at: int | None = None  # the seq --until stopped after
        self.waiting: dict[str, str] = {}  # actor -> what it asks for, while it waits
        self.sleeping: set[str] = set()  # actors in a --real-time sleep
        self.rt: Runtime | None = None
        self.last_progress = time.monotonic()
        # for `early`: each step's next step of the same actor, and where each kind of return
        # (op, target) stands in the recording
        self.next_of = [len(steps)] * len(steps)
        last: dict[str, int] = {}
        self.returns: dict[tuple[str, str | None], list[int]] = {}
        for i, st in enumerate(steps):
            if st.actor in last:
                self.next_of[last[st.actor]] = i
            last[st.actor] = i
            if st.phase == "return":
                self.returns.setdefault((st.op, st.target), []).append(i)
        self.done: dict[str, int] = {}  # actor -> index of its last admitted step
        # the actor admitted to access a shared variable, until it comes back for its next
        # turn (nobody else goes meanwhile: the access happens after its turn)
        self.accessing: str | None = None
        # queue operations waiting for their recorded return that may take their item (or
        # room) before it, when first in line: actor -> the position it last tried at, and
        # those whose try is under way (see `chance`)
        self.eager: dict[str, int] = {}
        self.trying: set[str] = set()

    def attach(self, rt: Runtime, wake: Callable[[], object]) -> None:
        self.rt = rt

    # --- the protocol
    def child_side(self) -> str | None:
        return "replay"

    def serve(self, name: str, conn: Any, prims: dict[str, Any], finished: threading.Event,
              on_gone: Callable[[], object]) -> None:
        serve_child(self, name, conn)

    def _wait(self, actor: ActorCtx, attempt: Attempt, timeout: float | None,
              looks: bool = False, eager: bool = False, always: bool = False) -> bool:
        # a look may be made before the recorded return; a queue operation first in line
        # goes now if it can (see `early`); else when the recording says it returned
        if (looks or (eager and self.early(actor))) and attempt(0):
            return True
        return self.block(actor, attempt, timeout, always)

    async def await_(self, actor: ActorCtx, attempt: AsyncAttempt,
                     wait: Callable[[], Awaitable[bool]], timeout: float | None,
                     takes: bool = False) -> bool:
        if not takes:  # the real wait: the turns of the events around it give the order
            if await attempt():
                return True
            return False if timeout == 0 else await wait()
        # take it when the recording says the call returned, as it did then
        step = await self.aturn(actor)
        if not (step.phase == "return" and step.result == "ok"):
            return False
        return await attempt() or await wait()

    async def asleep(self, actor: ActorCtx, seconds: float) -> None:
        if self.real_time:
            await asyncio.sleep(seconds)

    def may_try(self, actor: ActorCtx, takes: bool) -> bool:
        return not takes

    def grants_as_recorded(self) -> bool:
        return True

    def turn(self, actor: ActorCtx, tag: Tag) -> int:
        got = Step(-1, actor.name, tag.op, tag.target, tag.phase, tag.result)
        with self.cond:
            self._wait_for(actor, got.what())
            exp = self.steps[self.pos]
            if (exp.op, exp.target, exp.phase, exp.result) != (tag.op, tag.target, tag.phase,
                                                                tag.result):
                self._diverge(exp, f"{actor.name} did {got.what()}")
            self.done[actor.name] = self.pos
            self.pos += 1
            if tag.op in VAR_OPS:
                self.accessing = actor.name
            assert self.rt is not None
            seq = next(self.rt.seq)  # under the lock: seqs follow the turns
            self.last_progress = time.monotonic()
            if self.until is not None and exp.seq >= self.until:
                self.stopped_at = exp.seq  # this event is recorded; nothing after it
            self.cond.notify_all()
            return seq

    def turn_granting(self, actor: Any, tag: Tag) -> tuple[int, list[tuple[Any, ...]]]:
        """``turn`` for a process actor's child, with the run of its own recorded steps that
        follow (``grant``): the child may go through them without asking, one round trip for
        the run instead of one per event. Until the child is back (its next question, which
        says how many it used), nobody else goes, as for an access of a shared variable:
        those steps come next in the recording, and their real operations are done by then.
        Only steps after which the child cannot block for real without asking again are
        granted (see ``GRANTABLE``), never past ``until`` or an actor's end."""
        seq = self.turn(actor, tag)
        grant: list[tuple[Any, ...]] = []
        with self.cond:
            if self.stopped_at is not None or self.eager:
                return seq, grant
            steps, name, until = self.steps, actor.name, self.until
            i = self.pos
            while i < len(steps) and len(grant) < GRANT_MAX:
                st = steps[i]
                if st.actor != name or not _grantable(st) or (
                        until is not None and st.seq >= until):
                    break
                grant.append((st.op, st.target, st.phase, st.result))
                i += 1
            if grant:
                self.accessing = name  # (until it is back)
        return seq, grant

    def used(self, actor: Any, count: int) -> None:
        """A process actor's child went through ``count`` steps of its grant: they are
        done (it is not back yet: nobody else goes until its question that follows)."""
        with self.cond:
            for _ in range(count):
                self.done[actor.name] = self.pos
                self.pos += 1
            self.last_progress = time.monotonic()
            self.cond.notify_all()

    def spinning(self) -> dict[str, Spin]:
        """The recorded spinners, once they wait for a turn past the recording's end."""
        if not self.spins:
            return {}
        with self.cond:
            if self.pos < len(self.steps):
                return {}
            return {n: s for n, s in self.spins.items() if n in self.waiting}

    def pending(self) -> bool:
        """Whether recorded steps are still to be replayed (a daemon's, once the others have
        ended: the run must not abandon it before it has done what the recording has)."""
        with self.cond:
            return self.pos < len(self.steps) and not self._closed()

    def block(self, actor: ActorCtx, attempt: Callable[[float], bool],
              timeout: float | None, always: bool = False) -> bool:
        took = False
        if actor.name in self.eager:  # a queue operation that asked `early`
            while self.chance(actor, took):
                took = attempt(0)
        if not self.wait_return(actor) and not always:
            return False  # timed out or failed in the recording: the same now
        if not took and not attempt_within(attempt, LAG, self._closed):
            self.cannot(actor)
        return True

    def early(self, actor: Any) -> bool:
        """Whether ``actor``'s blocking call (just admitted) may do its real operation now,
        before its recorded return: yes when no other actor's return of the same kind on the
        same object comes first in the recording. A queue's get records its return after the
        item left the queue, so a put recorded before that return may need the room: taking
        the item early gives it, and taking it only when first in line keeps who gets which
        item as recorded."""
        with self.cond:
            if actor.name not in self.done:
                return False
            self.eager[actor.name] = self.pos  # it may try again later: see `chance`
            if not self._first_in_line(actor.name):
                return False
            self.trying.add(actor.name)  # until it is back
            return True

    def _first_in_line(self, name: str) -> bool:
        """Whether no other actor's return of the same kind on the same object comes before
        the recorded return of ``name``'s blocking call (just admitted), and that return is
        ok (a call recorded as timed out or failed takes nothing)."""
        call = self.done[name]
        mine = self.next_of[call]
        if mine >= len(self.steps) or self.steps[mine].result != "ok":
            return False
        st = self.steps[call]
        places = self.returns.get((st.op, st.target), [])
        first = bisect.bisect_left(places, self.pos)
        return first < len(places) and places[first] == mine

    def chance(self, actor: Any, took: bool) -> bool:
        """For a queue operation that asked ``early`` and now waits for its recorded return
        (``took``: whether its last try succeeded): whether to try its real operation again
        now, which it may each time the recording has moved on while it is first in line.

        In the recording its real operation happened at some point before its return; an
        operation recorded in between may need it done (a put needs the room a get made).
        Whoever's turn that is waits until each such actor has had its try at the current
        position (see ``_owed``), so the order does not depend on how fast the actors are."""
        with self.cond:
            self.trying.discard(actor.name)
            self.cond.notify_all()
            self.waiting[actor.name] = "to try its queue operation"
            try:
                while not took and actor.name in self.eager:
                    if self._ready_now(actor):  # its recorded return: tried enough
                        break
                    if self.eager[actor.name] < self.pos and self._first_in_line(actor.name):
                        self.eager[actor.name] = self.pos
                        self.trying.add(actor.name)
                        return True
                    self.cond.wait(0.05)
            finally:
                self.waiting.pop(actor.name, None)
            self.eager.pop(actor.name, None)
            return False

    def _owed(self, name: str) -> bool:
        """Whether another actor's queue operation on the object of the next step must have
        its try first (see ``chance``)."""
        target = self.steps[self.pos].target
        return any(other != name and self.steps[self.done[other]].target == target and (
            other in self.trying or (tried < self.pos and self._first_in_line(other)))
            for other, tried in self.eager.items())

    def wait_return(self, actor: Any) -> bool:
        """Wait until the recording says ``actor``'s blocking call returns; whether it
        returned ok (its real operation must then succeed)."""
        with self.cond:
            self._wait_for(actor, "to return from its blocking call", returns=True)
            while self.eager and self._owed(actor.name):
                if self._closed():
                    raise Abort
                if time.monotonic() - self.last_progress > self.patience:
                    self._diverge(self.steps[self.pos], f"{', '.join(sorted(self.eager))} did "
                                  f"not try its queue operation within {self.patience:g} s")
                self.cond.wait(0.05)
            exp = self.steps[self.pos]
            if exp.phase != "return":
                self._diverge(exp, f"{actor.name} is still inside a blocking call")
            return exp.result == "ok"

    def cannot(self, actor: Any) -> None:
        """The real operation of ``actor``'s recorded return did not become possible."""
        with self.cond:
            exp = self.steps[self.pos]
            self._diverge(exp, f"{actor.name}'s {exp.op} {exp.target or ''} cannot succeed "
                               "now (what enabled it in the recording did not happen)")

    def sleep(self, actor: ActorCtx, seconds: float) -> None:
        if not self.real_time or self.rt is None:
            return
        with self.cond:
            self.sleeping.add(actor.name)
        try:
            if self.rt.abort_event.wait(seconds):
                raise Abort
        finally:
            with self.cond:
                self.sleeping.discard(actor.name)
                self.last_progress = time.monotonic()

    # --- helpers (called with self.cond held)
    def _closed(self) -> bool:
        return self.rt is not None and self.rt.closed

    def _wait_for(self, actor: Any, what: str, returns: bool = False) -> None:
        """Wait until the next recorded step is ``actor``'s; Abort if the run closes."""
        self.waiting[actor.name] = what
        if self.eager.pop(actor.name, None) is not None:  # back from its early try
            self.trying.discard(actor.name)
            self.cond.notify_all()
        try:
            while not self._ready_now(actor):
                self.cond.wait(0.05)
        finally:
            self.waiting.pop(actor.name, None)

    def _ready_now(self, actor: Any) -> bool:
        """Whether the next recorded step is ``actor``'s; Abort when the run closes or the
        replay diverges (nobody came to do the next step within the patience)."""
        if self.stopped_at is not None:
            self._close()
        if self._closed():
            raise Abort
        if self.accessing == actor.name:
            self.accessing = None  # it is back: its access is done
            self.cond.notify_all()
        if self.accessing is None and self.pos < len(self.steps) and \
                self.steps[self.pos].actor == actor.name:
            return True
        if self.pos >= len(self.steps):
            # the recording ends here (a deadlock, a stall, a timeout): wait to be stopped
            # by the watchdog or the timeout, as the recorded run was
            return False
        if time.monotonic() - self.last_progress > self.patience and not self._others_busy():
            exp = self.steps[self.pos]
            if self.accessing is not None:
                self._diverge(exp, f"{self.accessing} did not come back from its access of a "
                                   f"shared variable within {self.patience:g} s")
            self._diverge(exp, f"{exp.actor} did not come to do it within "
                               f"{self.patience:g} s")
        return False

    async def aturn(self, actor: ActorCtx, tag: Tag | None = None) -> Step:
        """For coroutine actors, which share one thread: await (without blocking the event
        loop) until the next recorded step is ``actor``'s, and return it."""
        while True:
            with self.cond:
                self.waiting[actor.name] = "its turn"
                if self._ready_now(actor):
                    self.waiting.pop(actor.name, None)
                    return self.steps[self.pos]
            await asyncio.sleep(0.0005)

    def _others_busy(self) -> bool:
        """Whether the actor whose turn it is is still on its way: in a --real-time sleep."""
        return self.pos < len(self.steps) and self.steps[self.pos].actor in self.sleeping

    def outcome(self) -> tuple[str, str] | None:
        """How the run ended, when the replay ended it."""
        if self.divergence is not None:
            return "error", f"replay {self.divergence.message()}"
        if self.stopped_at is not None:
            return "interrupted", f"replay stopped after seq {self.stopped_at} (--until)"
        return None

    def _diverge(self, exp: Step, got: str) -> None:
        if self.divergence is None:
            self.divergence = Divergence(exp.seq, exp.describe(), got,
                                         tuple(sorted(self.waiting)))
        self._close()
        raise Abort

    def _close(self) -> None:
        if self.rt is not None:
            self.rt.close()
        self.cond.notify_all()


# (not `line`: a replay of an older trace, or one whose scenario file was edited since, has
# other lines or none, and is still the same operation sequence)
_COMPARED = ("actor", "op", "target", "phase", "result", "item", "value")
_ROW_KEYS = ("seq", *_COMPARED)


def first_difference(recorded: Sequence[Any], replayed: Sequence[Any],
                     upto: int | None = None) -> str | None:
    """The first actor event where two traces differ (actor, op, target, phase, result, item,
    value), as a sentence; None when they are the same operation sequence."""
    # (seq, actor, op, target, phase, result, item, value) of each actor event
    a = [r for r in _columns(recorded, _ROW_KEYS) if r[1] is not None
         and not _engine_op(r[2], r[5]) and (upto is None or int(r[0]) <= upto)]
    b = [r for r in _columns(replayed, _ROW_KEYS) if r[1] is not None
         and not _engine_op(r[2], r[5])]
    for x, y in zip(a, b, strict=False):  # a length difference is reported below
        if x[1:] != y[1:]:
            return (f"at seq {x[0]} the recording has {_show(x[1:])}, the replay has "
                    f"{_show(y[1:])} (seq {y[0]})")
    if len(a) != len(b):
        longer, what = (a, "the recording") if len(a) > len(b) else (b, "the replay")
        extra = longer[min(len(a), len(b))]
        return f"{what} goes on after the other ends: seq {extra[0]} {_show(extra[1:])}"
    return None


def _show(fields: tuple[Any, ...]) -> str:
    return " ".join(f"{k}={v!r}" for k, v in zip(_COMPARED, fields, strict=True) if v is not None)


# ---------------------------------------------------------------------------------------------
# process actors: the child asks the parent's scheduler for its turns over a pipe


class RemoteScheduler(Remote):
    """A process actor's side of the replay: its questions go to the parent, which answers
    a turn with the run of the actor's next recorded steps it may go through without asking
    (``ReplayScheduler.turn_granting``). A step granted is taken here when the event is the
    recorded one (its seq from the run's shared counter: nobody else goes meanwhile); at the
    first that is not, the rest of the grant is dropped and the parent is asked, which
    judges it as before. The next question says how many were used."""

    def __init__(self, conn: Any) -> None:
        super().__init__(conn)
        self.eager = False  # its queue operation asked `early`: see ReplayScheduler.chance
        self.granted: deque[tuple[Any, ...]] = deque()
        self.used = 0  # granted steps gone through since the last question

    def _ask(self, *msg: Any) -> Any:
        if self.used:
            try:
                self.conn.send(("used", self.used))
            except (EOFError, OSError):
                raise Abort from None
            self.used = 0
        self.granted.clear()
        return super()._ask(*msg)

    def turn(self, actor: ActorCtx, tag: Tag) -> int:
        granted = self.granted
        if granted:
            if granted[0] == (tag.op, tag.target, tag.phase, tag.result):
                granted.popleft()
                self.used += 1
                assert self.rt is not None
                return next(self.rt.seq)
            granted.clear()
        seq, grant = self._ask("turn", tag.op, tag.target, tag.phase, tag.result)
        granted.extend(grant)
        return int(seq)

    def _wait(self, actor: ActorCtx, attempt: Attempt, timeout: float | None,
              looks: bool = False, eager: bool = False, always: bool = False) -> bool:
        if looks and attempt(0):
            return True
        granted = self.granted
        if granted and not eager and not self.eager and granted[0][2] == "return" and \
                granted[0][0] not in ("get", "put"):
            # its recorded return is granted: it comes next (what the parent would answer,
            # no queue operation being owed a try first), ok or not as recorded
            if granted[0][3] != "ok" and not always:
                return False
            if attempt_within(attempt, LAG, lambda: self.rt is not None and self.rt.closed):
                return True
            self._ask("cannot")
            return True
        if eager:
            self.eager = True
            if self._ask("early") and attempt(0):
                return True
        took = False
        if self.eager:  # see ReplayScheduler.chance
            self.eager = False
            while self._ask("chance", took):
                took = attempt(0)
        if not self._ask("return") and not always:
            return False
        rt = self.rt
        if not took and not attempt_within(attempt, LAG, lambda: rt is not None and rt.closed):
            self._ask("cannot")
        return True

    def grants_as_recorded(self) -> bool:
        return True

    def sleep(self, actor: ActorCtx, seconds: float) -> None:
        if self._ask("sleep") and self.rt is not None and self.rt.abort_event.wait(seconds):
            raise Abort


class _Named:
    def __init__(self, name: str) -> None:
        self.name = name


def serve_child(scheduler: ReplayScheduler, name: str, conn: Any) -> None:
    """The parent's thread for one process actor: answers its questions until it ends."""
    who = _Named(name)
    tags: dict[tuple[Any, ...], Tag] = {}
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            return
        try:
            if msg[0] == "used":  # (no answer)
                scheduler.used(who, msg[1])
                continue
            if msg[0] == "turn":
                key = (name, *msg[1:])
                tag = tags.get(key)
                if tag is None:
                    tag = tags[key] = Tag(name, msg[1], msg[2], msg[3], msg[4])
                answer: Any = scheduler.turn_granting(who, tag)
            elif msg[0] == "return":
                answer = scheduler.wait_return(who)
            elif msg[0] == "early":
                answer = scheduler.early(who)
            elif msg[0] == "chance":
                answer = scheduler.chance(who, msg[1])
            elif msg[0] == "cannot":
                scheduler.cannot(who)
                answer = "abort"
            else:  # sleep
                answer = scheduler.real_time
        except Abort:
            answer = "abort"
        if not reply(conn, answer):
            return
