"""The start of a run: shared memory, the Manager and the collector when process actors take
part, the primitives, one host per actor kind, each actor's context and compiled program;
then starting the actors that start with the run."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from multiprocessing.managers import SyncManager

from tracer.engine._backing import make_primitives
from tracer.engine._compile import copy_value
from tracer.engine._proc import Collector, RunFault, Shared, get_context, manager_init
from tracer.engine._state import RunState
from tracer.engine._stops import raise_pending, shielded
from tracer.engine._workers import Workers
from tracer.engine.actors.coroutine import CoroutineHost
from tracer.engine.actors.process import ProcessHost, how_it_ended
from tracer.engine.actors.thread import ThreadHost
from tracer.engine.schedule import Scheduler
from tracer.prims import prim_type
from tracer.scenario import Plan


def prepare(plan: Plan, scheduler: Scheduler, start_method: str | None,
            workers: Workers | None) -> RunState:
    """Everything a run needs before its first actor starts (nothing runs yet)."""
    run = RunState(plan, scheduler, workers, copy_value(plan.scenario.shared))
    try:
        if any(a.kind == "process" for a in plan.actors):
            setup_processes(run, start_method)
        run.prims = make_primitives(plan, run.mp, run.mem, run.manager)
    except (OSError, EOFError) as exc:  # the Manager died while it was being set up
        raise RunFault(setup_fault(run, exc)) from None
    run.hosts = {"thread": ThreadHost(run), "coroutine": CoroutineHost(run),
                 "process": ProcessHost(run)}
    for ap in plan.actors:
        run.ctx[ap.name] = run.hosts[ap.kind].context(ap)
    for ap in plan.actors:
        run.hosts[ap.kind].prepare(ap, run.ctx[ap.name])
    return run


def setup_fault(run: RunState, exc: BaseException) -> str:
    """Why the run could not be set up (and the Manager stopped, if it still runs)."""
    proc = getattr(run.manager, "_process", None)
    if proc is not None:
        proc.join(1.0)
        if proc.is_alive():
            proc.kill()
            proc.join(1.0)
            return (f"the Manager process (pid {proc.pid}) stopped answering while the "
                    f"run was set up ({type(exc).__name__}: {exc}); nothing ran")
        return (f"the Manager process (pid {proc.pid}) {how_it_ended(proc.exitcode)} "
                "while the run was set up; nothing ran")
    return f"the run could not be set up: {type(exc).__name__}: {exc}"


def setup_processes(run: RunState, start_method: str | None) -> None:
    """Shared memory, the shared seq counter and the Manager for process actors."""
    plan = run.plan
    run.mp = get_context(start_method)
    names = [a.name for a in plan.actors]
    run.mem = Shared(run.mp, names, [*plan.scenario.primitives, *names],
                     list(plan.scenario.shared))
    run.rt.seq = run.mem.seq  # type: ignore[assignment]
    run.rt.var_locks = run.mem.var_locks
    needs_manager = bool(plan.scenario.shared) or any(
        prim_type(spec.type).part("NEEDS_MANAGER", False) and plan.flavour.get(n) == "process"
        for n, spec in plan.scenario.primitives.items())
    if needs_manager:
        run.manager = SyncManager(ctx=run.mp)
        run.manager.start(manager_init, (os.getpid(),))
    if plan.scenario.shared:
        proxy = run.manager.dict()
        for k, v in plan.scenario.shared.items():
            if isinstance(v, list):
                proxy[k] = run.manager.list(copy_value(v))
            elif isinstance(v, dict):
                proxy[k] = run.manager.dict(copy_value(v))
            else:
                proxy[k] = v
        run.shared = proxy
    run.collector = Collector(run.rt, {})


def start_actors(run: RunState, deadline: float,
                 on_started: Callable[[], object] | None) -> None:
    """Open every host, then start the actors that start with the run."""
    for host in run.hosts.values():
        host.open()
    autostart = [run.ctx[ap.name] for ap in run.plan.actors if ap.autostart]
    for c in autostart:
        # all of them first: an actor may join one declared after it before that one's
        # thread exists, and an exploring scheduler must know whom to wait for
        c.state = "starting"
        run.announce(c)
    for c in autostart:
        if time.monotonic() >= deadline:
            break  # starting them took the whole timeout (thousands of processes)
        with shielded():  # a stop signal does not cut a process's start in half
            run.start(c)
        raise_pending()
    if on_started is not None:
        on_started()
