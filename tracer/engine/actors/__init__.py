"""The hosts of the actor kinds: threads, processes and coroutines behind one interface.

A host knows how actors of its kind are prepared (their context and their compiled program),
started, run (their body records `start` and `end`), waited for by a `join` step of an actor
of its kind, noticed when they end by themselves (a killed process), and stopped at teardown.
The runner starts and stops every actor through the host of its kind; nowhere else does the
engine ask what kind an actor is.
"""

from __future__ import annotations

from typing import Any, Protocol

from tracer.engine._compile import Compiler
from tracer.engine._seam import ActorCtx, ActorFailure
from tracer.engine._state import RunState
from tracer.prims import _shell as P
from tracer.scenario import ActorPlan


class Host(Protocol):
    """What the runner needs of the host of one actor kind."""

    kind: str

    def context(self, ap: ActorPlan) -> ActorCtx:
        """The context (recording buffer, watchdog-visible state) of actor ``ap``."""
        ...

    def prepare(self, ap: ActorPlan, ctx: ActorCtx) -> None:
        """Compile ``ap``'s program before the run (and set what it may do: ``ctx.caps``)."""
        ...

    def open(self) -> None:
        """Before the first actor starts: start what the kind's actors run in (the event
        loop of coroutines, the collector of process events)."""
        ...

    def start(self, ctx: ActorCtx) -> None:
        """Start actor ``ctx`` (already announced to the scheduler)."""
        ...

    def spawn(self, a: ActorCtx, name: str, line: int | None = None) -> None:
        """A `start` step of ``a`` (an actor of this kind), at YAML ``line``, starts
        ``name``."""
        ...

    def join(self, a: ActorCtx, name: str, timeout: float | None, tags: P.OpTags) -> Any:
        """A `join` step of ``a``: wait until ``name`` has ended (the ``finished`` event of
        its context, whatever its kind), or ``timeout``; a coroutine for coroutines."""
        ...

    def poll(self) -> None:
        """A tick of the watchdog: notice actors that ended without saying so (killed)."""
        ...

    def confirm_lost(self) -> None:
        """Before a deadlock is reported: look once more for actors that died under it."""
        ...

    def close(self) -> None:
        """The run is closing: tell the actors that cannot see ``Runtime.closed``."""
        ...

    def stop(self, end: float) -> list[str]:
        """Stop this kind's actors (by ``end``, a ``time.monotonic()``); the names of those
        that could not be stopped."""
        ...


class BaseHost:
    """What hosts share: the run, and compiling a program with the host as its spawner."""

    kind = ""
    coroutines = False  # whether its actors' programs are coroutine functions

    def __init__(self, run: RunState) -> None:
        self.run = run

    def context(self, ap: ActorPlan) -> ActorCtx:
        return ActorCtx(self.run.rt, ap.name, ap.kind, ap.daemon)

    def compiler(self, ap: ActorPlan) -> Compiler:
        run = self.run
        return Compiler(run.rt, run.plan, run.prims, run.shared, self, ap.name,
                        coroutine=self.coroutines)

    def prepare(self, ap: ActorPlan, ctx: ActorCtx) -> None:
        fn, caps = self.compiler(ap).program(ap.steps)
        self.run.programs[ap.name] = fn
        ctx.caps = caps  # what it may do before it runs

    def open(self) -> None:
        pass

    def spawn(self, a: ActorCtx, name: str, line: int | None = None) -> None:
        self.run.spawn(a, name, line)

    def join(self, a: ActorCtx, name: str, timeout: float | None, tags: P.OpTags) -> Any:
        """A blocking join (a thread actor's)."""
        run = self.run
        target = run.ctx[name]
        a.block(name, "join", timeout, tags.call)
        if target.state == "pending":
            a.waiting = None
            msg = f"{a.name} cannot join {name}: it was never started"
            a.emit(tags.error, {"error": msg})
            raise ActorFailure(msg)
        # an actor has ended when it says so (its `end` is recorded), a moment before its
        # thread or process has returned: waiting for that too would make the join's outcome
        # depend on timing
        ok = target.finished.is_set() or run.scheduler.wait(a, target.finished.wait, timeout,
                                                            looks=True)
        a.waiting = None
        a.emit(tags.ok if ok else tags.timeout, None)

    def poll(self) -> None:
        pass

    def confirm_lost(self) -> None:
        pass

    def close(self) -> None:
        pass

    def stop(self, end: float) -> list[str]:
        return []
