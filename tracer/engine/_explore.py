"""Exploration: a scheduler that runs exactly one actor at a time and chooses, at every
scheduling point, which one goes next (first version: thread actors, random strategy).

Every instrumented operation is a scheduling point (the seam asks ``turn``). An actor that
asks parks; when no actor is running any more, the scheduler picks one of the parked ones
with a seeded random generator and lets it go. A blocking call tries its real operation
without blocking (``block``); if it cannot proceed, the actor is parked as blocked and tried
again only after some other actor has made progress. Sleeps take no time: they are
scheduling points like any other. When every unfinished actor is blocked, the run's own
watchdog reports the deadlock (the actors wait inside their calls, as in a real run).
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable

from tracer.engine._seam import Abort, ActorCtx, Runtime, Tag


class RandomScheduler:
    """One schedule of a random walk: seeded, so a seed gives the same schedule again."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.cond = threading.Condition()
        self.running: set[str] = set()  # actors between two scheduling points
        self.parked: list[str] = []  # ready to go on, in the order they parked
        self.blocked: set[str] = set()  # parked, but their operation cannot proceed yet
        self.granted: str | None = None
        self.progress = 0  # operations done: a blocked actor retries when it changes
        self.blocked_at: dict[str, int] = {}
        self.rt: Runtime | None = None
        self.stuck = threading.Event()  # every unfinished actor is blocked: a deadlock
        self.on_stuck: Callable[[], object] | None = None  # wakes the run's watchdog

    # --- the Scheduler protocol
    def attach(self, rt: Runtime) -> None:
        self.rt = rt

    def started(self, name: str) -> None:
        """An actor's thread was started: it runs until its first scheduling point."""
        with self.cond:
            self.running.add(name)

    def ended(self, name: str) -> None:
        with self.cond:
            self.running.discard(name)
            self.progress += 1
            self._choose()

    def turn(self, actor: ActorCtx, tag: Tag) -> int:
        with self.cond:
            self._park(actor.name)
            self.progress += 1
            assert self.rt is not None
            return next(self.rt.seq)

    def block(self, actor: ActorCtx, attempt: Callable[[float], bool],
              timeout: float | None) -> bool:
        while True:
            if self.rt is not None and self.rt.closed:
                raise Abort
            if attempt(0):
                return True
            if timeout is not None:
                return False  # a call with a timeout times out when it cannot go on
            with self.cond:
                self.blocked.add(actor.name)
                self.blocked_at[actor.name] = self.progress
                self._park(actor.name)

    def sleep(self, actor: ActorCtx, seconds: float) -> None:
        """No time passes: the sleep's call and return are scheduling points already."""

    def retry(self) -> None:
        """The watchdog found the blocked actors not stuck for good (what one waits for is
        there, e.g. a joined thread that has just ended): let them try again."""
        with self.cond:
            self.stuck.clear()
            self.progress += 1
            self._choose()

    def closing(self) -> None:
        """The run is over: wake every parked actor now, so it sees the abort."""
        with self.cond:
            self.cond.notify_all()

    def early(self, actor: ActorCtx) -> bool:
        """A queue operation happens as soon as it can."""
        return True

    # --- helpers (with self.cond held)
    def _park(self, name: str) -> None:
        self.running.discard(name)
        self.parked.append(name)
        self._choose()
        while self.granted != name:
            if self.rt is not None and self.rt.closed:
                self._leave(name)
                raise Abort
            self.cond.wait(0.05)
        self.granted = None
        self.running.add(name)

    def _leave(self, name: str) -> None:
        if name in self.parked:
            self.parked.remove(name)
        self.blocked.discard(name)

    def _choose(self) -> None:
        """When nobody runs, let one parked actor go: one that can proceed, chosen at
        random. Blocked actors may go again once something changed since they blocked."""
        if self.running or self.granted is not None or not self.parked:
            return
        ready = [n for n in self.parked
                 if n not in self.blocked or self.blocked_at.get(n, -1) < self.progress]
        if not ready:
            # everyone is blocked and nobody runs: the state is frozen, the watchdog may
            # judge it at once
            self.stuck.set()
            if self.on_stuck is not None:
                self.on_stuck()
            return
        name = self.pick(ready)
        self.parked.remove(name)
        self.blocked.discard(name)
        self.granted = name
        self.cond.notify_all()


    def pick(self, ready: list[str]) -> str:
        """The strategy: which of the actors that can go on goes next."""
        return ready[self.rng.randrange(len(ready))]


class PCTScheduler(RandomScheduler):
    """PCT (Burckhardt et al., ASPLOS 2010): each actor gets a random priority; the highest
    that can go on runs; at d-1 random points of the schedule (among the first ``length``
    operations) the running actor's priority drops below all others. A bug of depth d is
    found with probability at least 1/(n k^(d-1)) per schedule."""

    def __init__(self, seed: int, depth: int = 3, length: int = 64) -> None:
        super().__init__(seed)
        self.priorities: dict[str, float] = {}
        self.change_points = set(self.rng.sample(range(1, max(2, length)),
                                                 k=min(max(0, depth - 1), max(1, length - 1))))
        self.steps = 0
        self.low = 0.0

    def pick(self, ready: list[str]) -> str:
        self.steps += 1
        for name in ready:
            if name not in self.priorities:
                self.priorities[name] = 1.0 + self.rng.random()
        chosen = max(sorted(ready), key=lambda n: self.priorities[n])
        if self.steps in self.change_points:
            self.low -= 1.0
            self.priorities[chosen] = self.low  # demoted: below every other actor
            chosen = max(sorted(ready), key=lambda n: self.priorities[n])
        return chosen


def make_scheduler(strategy: str, seed: int, depth: int = 3) -> RandomScheduler:
    """The scheduler of one schedule for ``strategy`` (random, pct)."""
    if strategy == "pct":
        return PCTScheduler(seed, depth)
    return RandomScheduler(seed)


def schedule_seed(seed: int, run: int) -> int:
    """The seed of schedule ``run`` of an exploration started with ``seed``."""
    return seed * 1_000_003 + run
