"""Run a plan: start the actors, watch them, end the run cleanly, collect the trace.

The run is split by concern: ``_start`` sets it up and starts the actors (each through the
host of its kind, ``tracer.engine.actors``), ``_watch`` is the watchdog (the calling thread:
is the run over, timed out, or stuck?), ``_teardown`` closes it (every actor's next seam call
or poll raises :class:`Abort`, aborted actors release what they hold without recording, and
every thread and process is joined before :func:`run_plan` returns), and ``_collect`` makes
the trace. What they share is one :class:`RunState`.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from typing import Any

from tracer._gc import collect_run, gc_paused
from tracer.engine import _collect
from tracer.engine._collect import RunResult, check_invariants
from tracer.engine._seam import ActorCtx
from tracer.engine._start import prepare, start_actors
from tracer.engine._state import RunState
from tracer.engine._stops import interrupted_by, shielded
from tracer.engine._teardown import teardown
from tracer.engine._watch import Verdict, Watchdog, watch_interval
from tracer.engine._workers import Workers
from tracer.engine.schedule import FreeRun, Scheduler
from tracer.prims import _shell as P
from tracer.scenario import Plan
from tracer.trace.waits import find_blocked

__all__ = ["RunResult", "Runner", "check_invariants", "run_plan", "watch_interval"]


class Runner:
    """One run of a plan. Use :func:`run_plan`."""

    def __init__(self, plan: Plan, scheduler: Scheduler | None = None,
                 on_started: Callable[[], object] | None = None,
                 start_method: str | None = None, workers: Workers | None = None) -> None:
        self.plan = plan
        self.on_started = on_started
        self.state: RunState = prepare(plan, scheduler or FreeRun(),
                                       start_method, workers)

    @property
    def prims(self) -> dict[str, P.Prim]:
        return self.state.prims

    @property
    def ctx(self) -> dict[str, ActorCtx]:
        return self.state.ctx

    @property
    def mp(self) -> Any:
        return self.state.mp

    def run(self) -> RunResult:
        run = self.state
        started_at = dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds")
        deadline = time.monotonic() + self.plan.scenario.timeout
        v = Verdict()
        try:
            start_actors(run, deadline, self.on_started)
            Watchdog(run).watch(v, deadline)
        except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM/SIGHUP (see _stops)
            v.status, v.detail = "interrupted", interrupted_by(exc)
        with shielded():  # the teardown is not cut short by a stop signal
            return self.end(v, started_at)

    def end(self, v: Verdict, started_at: str) -> RunResult:
        """Stop every actor, record how the run ended, and collect the trace."""
        run = self.state
        abandoned = _collect.still_running_daemons(run, "stall" if v.blocked else v.status)
        stuck = teardown(run)
        if v.blocked and v.picture is not None and any(
                c.kind == "process" for c in run.ctx.values()):
            # the same picture, described again now that every event is in (a process
            # actor's come in batches): the lines its messages name
            v.blocked = find_blocked(v.picture) or v.blocked
        status, detail = _collect.judge_blocked(v.status, v.detail, v.blocked, v.engine)
        status, detail, abandoned = _collect.outcome(run, status, detail, abandoned, stuck,
                                                     v.engine, v.detected_at)
        return _collect.result(run, status, detail, v.blocked, abandoned, started_at)


def run_plan(plan: Plan, scheduler: Scheduler | None = None,
             on_started: Callable[[], object] | None = None,
             start_method: str | None = None, mode: str = "run",
             workers: Workers | None = None) -> RunResult:
    """Run ``plan`` on real primitives; returns when every actor thread has finished.

    ``on_started`` is called (in the calling thread) once the actors have been started.

    The cyclic garbage collector is paused for the run (see ``tracer._gc``): recording
    allocates one small acyclic tuple per event. Steps cannot create reference cycles, so
    nothing piles up meanwhile; what the run itself leaves in cycles is collected here (see
    :func:`tracer._gc.collect_run`)."""
    with gc_paused(), shielded():
        # a stop signal (SIGTERM, SIGHUP) is raised only where the watchdog looks for it: at
        # any other point of the main thread it could leave a lock taken, or a child half
        # started, and the teardown would hang
        runner = Runner(plan, scheduler, on_started, start_method, workers)
        result = runner.run()
        used_processes = runner.mp is not None
        del runner
        collect_run(used_processes)
    result.mode = mode
    return result
