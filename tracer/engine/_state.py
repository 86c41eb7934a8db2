"""What one run shares between its parts: the plan, the runtime and scheduler, the primitives,
each actor's context and program, how each ended, and the admission of pool tasks.

The runner's concerns (``_start``, ``_watch``, ``_teardown``, ``_collect``) and the hosts of
the actor kinds (``tracer.engine.actors``) all read and write this one object; none of them
holds state of the run that another needs.
"""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING, Any

from tracer.engine._seam import Abort, ActorCtx, ActorFailure, Runtime, end_payload, end_tag
from tracer.engine.schedule import Scheduler
from tracer.prims import _shell as P
from tracer.prims.pool import Pool
from tracer.scenario import Plan

if TYPE_CHECKING:
    from tracer.engine._compile import StepFn
    from tracer.engine._proc import Collector, Shared
    from tracer.engine._workers import Workers
    from tracer.engine.actors import Host

STOP_GRACE = 5.0  # seconds aborted actors get to finish before they are reported as stuck


class RunState:
    """The state of one run (see the module's docstring)."""

    def __init__(self, plan: Plan, scheduler: Scheduler, workers: Workers | None,
                 shared: Any) -> None:
        self.plan = plan
        self.workers = workers  # explore: reusable actor threads
        self.scheduler = scheduler
        self.rt = Runtime(scheduler, workers.tags if workers is not None else None)
        self.wake = threading.Event()  # wakes the watchdog (an actor ended, a turn was given)
        scheduler.attach(self.rt, self.wake.set)
        self.shared: Any = shared  # the shared variables (a Manager dict with processes)
        # process actors: the multiprocessing context, shared memory, Manager, collector
        self.mp: Any = None
        self.mem: Shared | None = None
        self.manager: Any = None
        self.collector: Collector | None = None
        self.prims: dict[str, P.Prim] = {}
        self.ctx: dict[str, ActorCtx] = {}
        self.programs: dict[str, StepFn] = {}
        self.hosts: dict[str, Host] = {}  # actor kind -> its host
        self.results: dict[str, str] = {}
        self.errors: dict[str, str] = {}
        self.capped: int | None = None  # the event cap, once the run was stopped by it
        self.lost: list[str] = []  # processes of the run that died under it (killed)
        self.pool_of = {a.name: a.pool for a in plan.actors}
        self.pool_live: dict[str, int] = {}  # tasks of each pool given a worker
        self.pool_queue: dict[str, list[str]] = {}  # tasks waiting for a worker
        self.pool_mu = threading.RLock()  # pool_live, pool_queue (and a process host's queue)

    def host(self, ctx: ActorCtx) -> Host:
        return self.hosts[ctx.kind]

    # --- starting an actor (autostart, or a `start` step)
    def start(self, ctx: ActorCtx) -> None:
        if ctx.state != "starting":  # autostart actors were announced all at once
            self.announce(ctx)
        self.host(ctx).start(ctx)

    def spawn(self, a: ActorCtx, name: str, line: int | None = None) -> None:
        """A `start` step of ``a`` (at YAML ``line``) starts actor ``name``."""
        a.emit(self.rt.tag(a.name, "spawn", name, line=line), None)
        target = self.ctx[name]
        if target.state != "pending":
            msg = f"{a.name} started {name}, which was already started"
            a.fail_last(msg)
            raise ActorFailure(msg)
        self.start(target)

    def announce(self, ctx: ActorCtx) -> None:
        """Tell the scheduler that an actor is about to run (one that runs an actor at a time
        must wait for its first scheduling point before it chooses). A pool task runs when a
        worker of its pool is free: until then it is queued, and announced when one frees
        up."""
        pool = self.pool_of[ctx.name]
        if pool is not None:
            p = self.prims[pool]
            assert isinstance(p, Pool)
            with self.pool_mu:
                if self.pool_live.get(pool, 0) >= p.workers:
                    self.pool_queue.setdefault(pool, []).append(ctx.name)
                    return
                self.pool_live[pool] = self.pool_live.get(pool, 0) + 1
        self.scheduler.started(ctx.name)

    def pool_slot_freed(self, name: str) -> None:
        """A pool task ended; the next queued task of its pool gets the worker (call with
        ``pool_mu`` held)."""
        pool = self.pool_of[name]
        if pool is None:
            return
        queued = self.pool_queue.get(pool)
        if queued:
            self.scheduler.started(queued.pop(0))
        else:
            self.pool_live[pool] -= 1

    # --- an actor's body in this process (thread and coroutine actors)
    def begin(self, ctx: ActorCtx) -> None:
        """An actor's body starts: it runs, and records its `start`."""
        ctx.state = "running"
        ctx.pid = os.getpid()
        ctx.tid = threading.get_native_id()
        ctx.emit(self.rt.life_tag(ctx.name, "start"), None)

    def finish(self, ctx: ActorCtx, result: str | None, error: str | None) -> None:
        """Record the end (``result`` None: the run was closed under it) and tell the
        watchdog."""
        if result is not None:
            try:
                ctx.emit(end_tag(ctx, result, error), end_payload(ctx, error))
                self.results[ctx.name] = result
                if error:
                    self.errors[ctx.name] = error
            except Abort:
                result = None
        if result is None:  # aborted: let go, silently, of what it holds
            for p in self.prims.values():
                p.release_all(ctx)
        ctx.waiting = None
        ctx.state = "done"
        ctx.finished.set()
        if self.pool_of[ctx.name] is not None:
            with self.pool_mu:
                self.pool_slot_freed(ctx.name)
        self.scheduler.ended(ctx.name)  # (one that runs an actor at a time picks the next)
        self.wake.set()
