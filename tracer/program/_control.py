"""One actor at a time: the host's scheduler for ``tracer explore prog.py`` and ``tracer
replay`` of a program's trace (the free run's is :class:`_seam.Scheduler`).

Design. A *baton*: only the actor that holds it records. ``turn`` (before every recorded
event) gives the baton back and lets the strategy choose who records next; ``block`` tries
the real operation once (``attempt(0)``) while holding the baton, and when it cannot go on
the actor is *blocked*: it is tried again only once some actor recorded something since it
failed (the ``version`` counter). When no actor can be chosen and none is *away*, the actors
are stuck: the verdict is :func:`tracer.trace.waits.find_blocked`'s over the watchdog's
picture, and the host ends the run with it.

Time is virtual: ``sleep`` takes no real time, a sleeper goes only when no other actor can,
in the order of the deadlines (a timed wait's expiry is such a deadline too).

What the recorder cannot see (an OS pipe, a socket, a join of an untraced thread, a
``Future.result()``): a holder that has not come back within ``AWAY`` seconds of real time
while its thread sleeps in the kernel (or within ``SPIN`` seconds while it runs: a loop that
records nothing) is *away*, and the baton goes to another; it rejoins at its next ``turn``.
A condition's or a barrier's wait cannot be tried without effect (a wait of 0 loses a notify,
breaks a barrier): it is a real wait during which its actor is away. A new thread records
its ``start`` without the baton (its parent waits in ``Thread.start`` meanwhile) and the next
choice waits for it to come to the scheduler. Coroutine actors (``ablock``): see the note in
:class:`Baton`.
"""

from __future__ import annotations

import _thread
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from tracer.program._proc_control import BOOT
from tracer.program._seam import Actor, Attempt, Prim, Scheduler

if TYPE_CHECKING:
    from tracer.program._host import Host

AWAY = 0.02  # real seconds a holder may stay out of the scheduler before it is away
SPIN = 0.5  # real seconds a holder that runs (not waits in the OS) may stay out
PATIENCE = 5.0  # real seconds with nobody to choose and only away actors: not controllable
# at a recorded shared access (a read or write of a global, an attribute, an item: many per
# operation on a primitive) an exploration switches actors with this probability only; at
# every other recorded event the strategy chooses among all who can go on
ACCESS_SWITCH = 0.25
_REAL_WAITS = {("condition", "wait"), ("barrier", "wait")}
# a multiprocessing queue's item (a pipe's message) is on its way for a while after its put
# (a feeder thread writes it): with child processes, a get that failed is tried again every
# FLIGHT_TRY s for up to FLIGHT s before nobody is judged able to go on
FLIGHT = 0.25
FLIGHT_TRY = 0.01
_FLIGHT_OPS = {("queue", "get"), ("pipe", "recv"), ("queue", "put")}
_LOOK_AHEAD = 10_000  # recorded events a replay's blocking op looks through (_attempt_in_turn)
_clock = time.monotonic


class _Slot:
    """What the scheduler knows of one actor."""

    __slots__ = ("actor", "deadline", "expire", "first", "gate", "name", "order", "since",
                 "state", "tried")

    def __init__(self, actor: Actor, order: int) -> None:
        self.actor = actor
        self.name = actor.name
        self.order = order
        # fresh (started, not at the scheduler yet), ready, running, blocked, sleeping,
        # away, real (in a real wait), done
        self.state = "fresh"
        self.first = True  # its start event is recorded without the baton
        self.gate = _thread.allocate_lock()
        self.gate.acquire()
        self.tried = -1  # the version at which its blocked operation last failed
        self.deadline: float | None = None  # virtual: a sleep's end, a timed wait's expiry
        self.expire = False
        self.since = _clock()


class Baton(Scheduler):
    """Runs a program's actors one at a time; ``choose(index, ready, prev, awake)`` (an engine
    strategy: RandomWalk, PCT) picks who goes, or the recording does (``replay``).

    (Coroutine actors: an ``ablock`` hook, when ``_seam.Scheduler`` gets one, would park the
    task's turn the same way: a slot per task, its gate an asyncio future.)"""

    tries_first = False  # (every blocking op is first tried in block: see _attempt_in_turn)

    def __init__(self, host: Host, strategy: Any = None,
                 replay: list[dict[str, Any]] | None = None,
                 divergence_out: str | None = None) -> None:
        self.host = host
        self.strategy = strategy
        self.want = replay  # the recorded actor events, in order (replay)
        # the verdict the recording ended with ({"op", "payload"}: a deadlock, a stall)
        self.ending: dict[str, Any] | None = None
        self.divergence_out = divergence_out
        self.diverged: str | None = None
        self.mu = _thread.allocate_lock()
        self.slots: dict[str, _Slot] = {}
        self.holder: _Slot | None = None
        self.grant = 0
        self.granted_at = _clock()
        self.version = 0
        self.recorded = 0  # actor events let through (replay: the position in ``want``)
        self.index = 0  # choices made
        self.prev: str | None = None
        self.now = 0.0  # virtual seconds
        self.idle_since: float | None = None  # nobody to choose, away actors: since when
        self.loop_of: dict[str, str] = {}  # a coroutine actor -> the thread running its loop
        # the actors of the program's child processes (see _proc_control), by name
        self.remote: dict[str, Actor] = {}
        self.flight: tuple[int, float, float] | None = None  # (version, since, last try)
        self.retried_at = 0.0  # (a replay's last try of such a get)
        self.retrying: tuple[int, float] | None = None  # (at which event, since when)

    # --- the hooks of the seam
    def _as_thread(self, actor: Actor) -> Actor | None:
        """The actor the baton schedules for ``actor``: a coroutine actor (an asyncio task)
        goes with the thread that runs its event loop, whose tasks interleave as the loop
        decides (an await suspends the task, never the thread); None: that thread is no
        actor yet."""
        if actor.kind != "coroutine":
            return actor
        thread = self.host.rec.by_ident.get(threading.get_ident())
        if thread is not None:
            self.loop_of[actor.name] = thread.name
        return thread

    def started(self, actor: Actor) -> None:
        if actor.kind == "coroutine":
            return
        with self.mu:
            self.slots[actor.name] = _Slot(actor, len(self.slots))

    def turn(self, actor: Actor) -> None:
        thread = self._as_thread(actor)
        if thread is None:
            return
        s = self._slot(thread)
        with self.mu:
            if s.first:  # its start: recorded at once (see the module's docstring)
                s.first = False
                self._started_at_once(s)
                if self.holder is None and getattr(s.actor, "alive", None) is not None:
                    self._choose()  # (a process's start: its parent went on)
                return
            if self.holder is s and self._keeps(s):
                self.version += 1
                self.recorded += 1
                self.granted_at = _clock()
                return
            s.state = "ready"
            if self.holder is s:
                self.holder = None
            if self.holder is None:
                self._choose()
        self._wait(s)
        with self.mu:
            s.state = "running"
            self.version += 1
            self.recorded += 1
            self.prev = s.name

    def block(self, actor: Actor, target: Any, op: str, attempt: Attempt,
              timeout: float | None) -> bool:
        before = actor.waiting
        actor.waiting = (target, op, timeout is not None)
        try:
            if isinstance(target, Prim) and (target.type, op) in _REAL_WAITS:
                return self._real_wait(actor, attempt, timeout)
            joined = self._named(target) if isinstance(target, str) else None
            if isinstance(target, str) and joined is None:
                return attempt(timeout)
            s = self._slot(actor)
            deadline = None if timeout is None else self.now + max(0.0, timeout)
            wait_turn = self._attempt_in_turn(actor, target, op)
            while True:
                if joined is not None and joined.state == "done":
                    return attempt(timeout)  # (it recorded its end: its thread is leaving)
                tried = self.version  # (before: a child process may end meanwhile)
                if wait_turn:  # (not tried: it is tried when chosen)
                    wait_turn = False
                    tried = -1
                elif attempt(0):
                    return True
                with self.mu:
                    s.state = "blocked"
                    s.tried = tried
                    s.deadline = deadline
                    s.expire = False
                    if self.holder is s:
                        self.holder = None
                    if self.holder is None:
                        self._choose()
                self._wait(s)
                with self.mu:
                    s.state = "running"
                    if s.expire:
                        s.expire = False
                        if deadline is not None:
                            self.now = max(self.now, deadline)
                        return False
        finally:
            actor.waiting = before

    def sleep(self, actor: Actor, seconds: float, real: Callable[[float], None]) -> None:
        s = self._slot(actor)
        with self.mu:
            s.state = "sleeping"
            s.deadline = self.now + max(0.0, float(seconds))
            if self.holder is s:
                self.holder = None
            if self.holder is None:
                self._choose()
        self._wait(s)
        with self.mu:
            s.state = "running"
            if s.deadline is not None:
                self.now = max(self.now, s.deadline)
            s.deadline = None

    def ended(self, actor: Actor) -> None:
        if actor.kind == "coroutine":
            return
        with self.mu:
            s = self.slots.get(actor.name)
            if s is None:
                return
            s.state = "done"
            self.version += 1
            if self.holder is s:
                self.holder = None
            if self.holder is None:
                self._choose()

    # --- inside
    def _named(self, name: str) -> Actor | None:
        """The actor ``name``: a thread of this process or an actor of a child's."""
        return self.host.rec.actors.get(name) or self.remote.get(name)

    def _keeps(self, s: _Slot) -> bool:
        """Whether the holder ``s`` goes on without a choice: an exploration's turn for a
        shared access, most of the time (see ``ACCESS_SWITCH``)."""
        rng = getattr(self.strategy, "rng", None)
        if rng is None or self.want is not None:
            return False
        if not s.actor.access:  # (the turn before a shared access: see Host.before_access)
            return False
        if any(x.state == "fresh" for x in self.slots.values()):
            return False
        return bool(rng.random() >= ACCESS_SWITCH)

    def _started_at_once(self, s: _Slot) -> None:
        """Count ``s``'s start (``mu`` held). A replay takes it out of the recording where
        it is: a free run records a start when the new thread comes, so other threads' events
        may come between the spawn and it, where the replay records it at once."""
        want = self.want
        if want is not None:
            for i in range(self.recorded, len(want)):
                e = want[i]
                if e.get("actor") == s.name:
                    if e.get("op") == "start" and i > self.recorded:
                        want.insert(self.recorded, want.pop(i))
                    break
        self.recorded += 1

    def _slot(self, actor: Actor) -> _Slot:
        s = self.slots.get(actor.name)
        if s is None:  # (an actor adopted before this scheduler was installed)
            with self.mu:
                s = self.slots[actor.name] = _Slot(actor, len(self.slots))
                s.first = False
        return s

    def _attempt_in_turn(self, actor: Actor, target: Any, op: str) -> bool:
        """Whether a replay's blocking operation waits for its turn before it is first tried
        (it is then tried when its actor is chosen, for its return): when the recording has
        another actor's same operation on the same object succeed before this actor's next
        event. Tried at once, a get called first but answered second would take the item the
        recording gave to the other (a manager queue's getters), an acquire the lock the
        other took first. Anything else is tried at once, as a free run does: a put another's
        get waits for. A Pool's worker takes its next task only when the recording's next
        event is its own (a take records no event; for a task whose run records nothing see
        ``_pool_tasks``): else the first worker back would take the task the recording gave
        to a worker that came back later."""
        want = self.want
        if want is None or self.diverged is not None or not isinstance(target, Prim):
            return False
        name = actor.name
        with self.mu:
            start = self.recorded
            if target.options.get("pool"):
                return start < len(want) and want[start].get("actor") != name
            for e in want[start:start + _LOOK_AHEAD]:
                if e.get("actor") == name:
                    return False
                if e.get("target") == target.name and e.get("op") == op and \
                        e.get("phase") == "return" and e.get("result") == "ok":
                    return True
        return False

    def _real_wait(self, actor: Actor, attempt: Attempt, timeout: float | None) -> bool:
        s = self._slot(actor)
        with self.mu:
            self.into_real(s)
        return attempt(timeout)

    def into_real(self, s: _Slot) -> None:
        """(Under ``mu``.) ``s`` goes into a real wait: it gives the turn up, and another is
        chosen."""
        s.state = "real"
        s.since = _clock()
        if self.holder is s:
            self.holder = None
        if self.holder is None:
            self._choose()

    def _give(self, s: _Slot) -> None:
        self.holder = s
        self.grant += 1
        self.granted_at = _clock()
        self.idle_since = None
        s.gate.release()

    def _wait(self, s: _Slot) -> None:
        """Until ``s`` is given the baton; meanwhile, every ``AWAY`` seconds, take the baton
        from a holder that did not come back."""
        while not s.gate.acquire(True, AWAY):
            with self.mu:
                self._poll()

    def _poll(self) -> None:
        now = _clock()
        h = self.holder
        if h is not None:
            age = now - self.granted_at
            if h.state == "running" and age > AWAY and (age > SPIN or _waits_in_os(h.actor)):
                h.state = "away"
                h.since = now
                self.holder = None
                self._choose()
            return
        real = any(s.state == "real" for s in self.slots.values())
        for s in list(self.slots.values()):
            if real and s.state == "blocked":
                # (a real wait, a condition's, gives its lock back when it is under way,
                # which records nothing: what is blocked is tried again)
                s.tried = -1
            if s.state == "fresh" and now - s.since > AWAY:
                alive = getattr(s.actor, "alive", None)
                if alive is None or not s.first:  # (a process that came: as a thread)
                    s.state = "away"
                elif not alive():  # (a process that died before it came)
                    s.state = "done"
                    s.actor.state = "done"
                    self.version += 1
                elif now - s.since > BOOT:  # (a process that boots for too long)
                    s.state = "away"
        self._choose()

    def _live(self) -> list[_Slot]:
        return [s for s in self.slots.values() if s.state != "done"]

    def _choose(self) -> None:
        """Give the baton to the next actor (``mu`` held, nobody holds the baton)."""
        if self.host.finished:
            return
        live = self._live()
        if not live:
            return
        if any(s.state == "fresh" for s in live):
            return  # (a new thread first: it comes, or _poll calls it away)
        ready = [s for s in live if s.state == "ready" or
                 (s.state == "blocked" and s.tried < self.version)]
        timers = sorted((s for s in live if s.deadline is not None and
                         s.state in ("sleeping", "blocked")),
                        key=lambda s: (s.deadline, s.order))
        if not ready and self.remote and self._in_flight(live, ready):
            return
        if self.want is not None and self.diverged is None and \
                self._replay_choice(live, ready, timers):
            return
        if ready:
            names = tuple(s.name for s in ready)
            if self.strategy is None:
                chosen = self.prev if self.prev in names else names[0]
            else:
                prev = self.prev if self.prev in names else None
                chosen = self.strategy.choose(self.index, names, prev, names)
            self.index += 1
            self._give(self.slots[chosen])
            return
        if timers:
            s = timers[0]
            s.expire = s.state == "blocked"
            self.index += 1
            self._give(s)
            return
        waiting = [s for s in live if s.state in ("away", "real")]
        if waiting:
            now = _clock()
            if any(s.state == "real" and now - s.since <= AWAY for s in waiting):
                return  # (a real wait just begun: a condition's gives its lock back in it)
            if self.idle_since is None:
                self.idle_since = now
            if now - self.idle_since > PATIENCE:
                self._uncontrolled(waiting)
            self._verdict(deadlocks_only=True)
            return
        self._verdict()

    def _in_flight(self, live: list[_Slot], ready: list[_Slot]) -> bool:
        """Whether to wait a little for an item on its way between processes (see
        ``FLIGHT``; ``mu`` held): the blocked gets are made ready again (into ``ready``), or
        True: nothing to do until the next poll."""
        flying = [s for s in live if s.state == "blocked" and _flies(s)]
        if not flying:
            return False
        now = _clock()
        if self.flight is None or self.flight[0] != self.version:
            self.flight = (self.version, now, now)
            return True
        version, since, last = self.flight
        if now - since > FLIGHT:
            return False
        if now - last < FLIGHT_TRY:
            return True
        self.flight = (version, since, now)
        for s in flying:
            s.tried = -1
        ready.extend(flying)
        return False

    def _pool_tasks(self, live: list[_Slot]) -> bool:
        """While a replay waits for an actor that is away (the main thread in a Pool's
        ``map``), a Pool's worker waiting for a task that has no recorded operation left but
        its end tries again now and then: which worker takes a task whose run records nothing
        is not in the recording. True: one goes."""
        now = _clock()
        if now - self.retried_at < FLIGHT_TRY:
            return False
        want = self.want or []
        for s in live:
            w = s.actor.waiting
            if s.state == "blocked" and w is not None and isinstance(w[0], Prim) and \
                    w[0].options.get("pool") and not any(
                        e.get("actor") == s.name and e.get("op") != "end"
                        for e in want[self.recorded:]):  # (none of its tasks is to come)
                self.retried_at = now
                self.index += 1
                self._give(s)
                return True
        return False

    def _replay_choice(self, live: list[_Slot], ready: list[_Slot],
                       timers: list[_Slot]) -> bool:
        """Give the baton as the recording did: True when done (or waiting for its actor)."""
        want = self.want
        assert want is not None
        if self.recorded >= len(want):
            # the recording ends here: a run that ended blocked (its verdict made while a
            # thread was on its way out of a real wait, a barrier's) ends so again, before
            # the replay makes what the recording never did
            ending = self.ending
            if ending is not None and any(x.state in ("blocked", "real") for x in live):
                # (the recording's verdict was made as a thread was on its way out of a real
                # wait, a barrier's: its return is no part of it)
                payload = dict(ending["payload"])
                self.host.finish(ending["op"], str(payload.get("detail", "")), payload,
                                 ending["op"])
                return True
            return False
        e = want[self.recorded]
        name = str(e.get("actor"))
        s = self.slots.get(self.loop_of.get(name, name))  # (a task goes with its loop)
        if s is None or s.state in ("fresh", "away", "real"):
            if self._pool_tasks(live):
                return True
            if self.idle_since is None:
                self.idle_since = _clock()
            if _clock() - self.idle_since <= PATIENCE:
                return True  # (it comes: a new thread, or one away)
            self._diverge(e, f"{e.get('actor')} did not come to that operation within "
                             f"{PATIENCE:g} s")
            return False
        if s in ready and not (s.state == "blocked" and e.get("result") == "timeout"):
            self.index += 1
            self._give(s)
            return True
        if s in timers:
            s.expire = s.state == "blocked"
            self.index += 1
            self._give(s)
            return True
        if s.state == "blocked" and self.remote and _flies(s) and \
                e.get("result") != "timeout":
            # (what it gets is on its way from another process: try again a little later)
            now = _clock()
            if self.retrying is None or self.retrying[0] != self.recorded:
                self.retrying = (self.recorded, now)
            if now - self.retrying[1] <= PATIENCE:
                if now - self.retried_at >= FLIGHT_TRY:
                    self.retried_at = now
                    self.index += 1
                    self._give(s)
                return True
        if s.state == "blocked" and any(x.state in ("away", "real") for x in live):
            # (another may still change what it waits for: a process on its way out)
            if self.idle_since is None:
                self.idle_since = _clock()
            if _clock() - self.idle_since <= PATIENCE:
                return True
        what = ("has ended" if s.state == "done" else
                f"cannot go on ({self._doing(s)})")
        self._diverge(e, f"{s.name} {what}")
        return False

    def _doing(self, s: _Slot) -> str:
        w = s.actor.waiting
        if w is None:
            return s.state
        target = w[0] if isinstance(w[0], str) else w[0].name
        return f"it waits in {w[1]} {target}"

    def _diverge(self, e: dict[str, Any], got: str) -> None:
        what = " ".join(str(e[k]) for k in ("actor", "op", "target", "phase", "result")
                        if e.get(k) is not None)
        waiting = ", ".join(s.name for s in self._live() if s.state in ("ready", "blocked"))
        self.diverged = (f"diverged at seq {e.get('seq')}: the recording expected {what}, but "
                         f"{got}; actors waiting for their turn: {waiting or 'none'}")
        if self.divergence_out is not None:
            with open(self.divergence_out, "w", encoding="utf-8") as f:
                f.write(self.diverged)

    def _uncontrolled(self, waiting: list[_Slot]) -> None:
        doing = []
        for s in waiting:
            last = s.actor.buf[-1] if s.actor.buf else None
            where = f" after {last[7]}" if last is not None and last[7] else ""
            doing.append(f"{s.name} runs code tracer does not see{where}" if s.state == "away"
                         else f"{s.name} waits in a real {self._doing(s)}{where}")
        detail = (f"the program could not be run one thread at a time: for {PATIENCE:g} s "
                  "every other thread waited and none of these came back to a recorded "
                  "operation: " + "; ".join(doing) + " (a blocking call tracer does not "
                  "record, such as a socket or a pipe, that no recorded thread can end)")
        self.host.finish("timeout", detail, {"actors": [s.name for s in waiting],
                                             "detail": detail}, "timeout")

    def _verdict(self, deadlocks_only: bool = False) -> None:
        """Every live actor is stuck (blocked, failed at this version): end the run with the
        verdict of the wait-for reasoning (``deadlocks_only``: some actors are away, so only
        a lock cycle is certain)."""
        from tracer.program._watch import Watchdog  # noqa: PLC0415
        from tracer.trace.waits import find_blocked  # noqa: PLC0415

        state = Watchdog(self.host, 0, None).picture()
        blocked = find_blocked(state) if state is not None else []
        if deadlocks_only:
            blocked = [b for b in blocked if b.kind == "deadlock"]
            if not blocked:
                return
        if blocked:
            b = blocked[0]
            detail = "; ".join(x.message for x in blocked)
            self.host.finish(b.kind, detail, {"actors": list(b.actors),
                                              "objects": list(b.objects), "detail": detail,
                                              "waits": [dict(w) for w in b.waits]}, b.kind)
            return
        names = [s.name for s in self._live()]
        detail = ("every thread waits and none can go on: "
                  + "; ".join(f"{s.name} {self._doing(s)}" for s in self._live()))
        self.host.finish("stall", detail, {"actors": names, "objects": [], "detail": detail},
                         "stall")


def _flies(s: _Slot) -> bool:
    """Whether ``s`` waits for what may be on its way from another process."""
    w = s.actor.waiting
    return w is not None and isinstance(w[0], Prim) and (w[0].type, w[1]) in _FLIGHT_OPS


def _waits_in_os(actor: Actor) -> bool:
    """Whether ``actor``'s thread sleeps in the kernel (a read, a lock, a wait) rather than
    runs or waits for a CPU: a holder the OS merely has not run yet (a loaded machine) is not
    away. Where /proc is not there, every late holder is."""
    in_os = getattr(actor, "in_os", None)
    if in_os is not None:  # (an actor of a child process: see _proc_control)
        return bool(in_os())
    try:
        with open(f"/proc/self/task/{actor.tid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return True
    state = stat[stat.rfind(b")") + 2:][:1]
    return state != b"R"


def make_scheduler(control: dict[str, Any], host: Host) -> Baton:
    """The scheduler of one run under control (``control``: the host config's)."""
    strategy = control.get("strategy", "random")
    if strategy == "replay":
        baton = Baton(host, None, list(control.get("replay") or ()),
                      control.get("divergence_out"))
        baton.ending = control.get("ending")
        return baton
    if strategy == "first":  # no preemption: the one that just went goes on while it can
        return Baton(host)
    from tracer.engine.schedule.explore.scheduler import make_strategy  # noqa: PLC0415

    return Baton(host, make_strategy(strategy, int(control["seed"]),
                                     int(control.get("depth", 3)),
                                     int(control.get("length", 64))))


def read_divergence(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read() or None
    except OSError:
        return None


def replay_events(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The recorded actor events a replay follows, in order (not those the host made for an
    actor: a daemon's abandoned end)."""
    return [{k: e.get(k) for k in ("seq", "actor", "op", "target", "phase", "result")}
            for e in events if e.get("actor") is not None
            and not (e.get("op") == "end" and e.get("result") == "abandoned")]


__all__ = ["AWAY", "Baton", "make_scheduler", "read_divergence", "replay_events"]
