"""Process actors: each runs in a child process (or as a task of its pool's
``multiprocessing.Pool``).

The parent's side (:class:`ProcessHost`) starts it, serves its turns when a scheduler orders
the run, notices its end (its result comes through the collector) or its death, and stops it.
The child's side (:func:`child_main`, :func:`pool_task`) compiles and runs its program. What
both sides share (the shared memory, the board, the actor's context on it, the collector) is
``tracer.engine._proc``.
"""

from __future__ import annotations

import gc
import os
import pickle
import signal
import threading
import time
import weakref
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from functools import partial
from multiprocessing.connection import Connection
from typing import Any

from tracer.engine._compile import Compiler
from tracer.engine._proc import (
    ROW,
    STATE,
    STATES,
    Batch,
    ChildRuntime,
    KillingPool,
    ProcActorCtx,
    Shared,
    alive,
    ignore_sigint,
    name_process,
    orphaned,
    watch_parent,
)
from tracer.engine._seam import Abort, ActorCtx, ActorFailure, end_payload, end_tag, ending
from tracer.engine._state import STOP_GRACE, RunState
from tracer.engine.actors import BaseHost
from tracer.engine.schedule import child_scheduler
from tracer.prims import _shell as P
from tracer.prims.pool import Pool
from tracer.scenario import ActorPlan, plan_from_mapping


def how_it_ended(code: int | None) -> str:
    """'was killed by signal 9 (SIGKILL)', or 'exited with status 1'."""
    if code is not None and code < 0:
        try:
            name = f" ({signal.Signals(-code).name})"
        except ValueError:
            name = ""
        return f"was killed by signal {-code}{name}"
    return f"exited with status {code}"


class ProcessHost(BaseHost):
    """The host of process actors (the parent's side)."""

    kind = "process"

    def __init__(self, run: RunState) -> None:
        super().__init__(run)
        self.async_results: dict[str, Any] = {}  # process pool tasks
        self.servers: list[Any] = []  # turn servers of process actors (threads, or tasks)
        self.pool_deferred: dict[str, Callable[[], object]] = {}  # queued pool tasks (pool_mu)
        self.told_ended: set[str] = set()  # process actors whose end the scheduler was told

    def context(self, ap: ActorPlan) -> ActorCtx:
        run = self.run
        assert run.mem is not None
        return ProcActorCtx(run.rt, ap.name, ap.daemon, run.mem, run.prims)

    def prepare(self, ap: ActorPlan, ctx: ActorCtx) -> None:
        compiler = self.compiler(ap)
        fn, caps = compiler.program(ap.steps)
        self.run.programs[ap.name] = fn
        assert isinstance(ctx, ProcActorCtx)
        # the child runs the program; here only the numbering of its caps matters
        ctx.register_caps(compiler.caps_seen)
        ctx.caps = caps  # what it may do before it runs (on the board)

    def open(self) -> None:
        if self.run.collector is not None:
            self.run.collector.start(self.run.workers)

    def process_prims(self) -> dict[str, P.Prim]:
        run = self.run
        return {n: p for n, p in run.prims.items()
                if run.plan.flavour.get(n) == "process" and not isinstance(p, Pool)}

    # --- starting
    def start(self, ctx: ActorCtx) -> None:
        run = self.run
        assert isinstance(ctx, ProcActorCtx)
        assert run.mem is not None and run.collector is not None
        pool_name = run.pool_of[ctx.name]
        run.collector.ctxs[ctx.name] = ctx
        if pool_name is not None:
            pool = run.prims[pool_name]
            assert isinstance(pool, Pool)
            self._start_pool_task(ctx, pool)
            return
        mine = self.process_prims()
        receive, send = run.mp.Pipe(duplex=False)
        side = run.scheduler.child_side()
        sched_child = self._turn_server(ctx.name) if side else None
        args = ((run.plan.scenario.as_mapping(), run.plan.lines), ctx.name, mine, run.shared,
                run.mem, send, run.rt.t0, sched_child, side)
        ctx.state = "running"
        proc: Any
        try:
            if run.workers is not None and run.mp.get_start_method() != "fork":
                # an exploration: a worker process kept from the schedules before runs it
                proc = run.workers.procs.start(run.mp, worker_main, args)
            else:
                proc = run.mp.Process(target=child_main, name=f"tracer:{ctx.name}",
                                      daemon=True, args=args)
                proc.start()
        except (OSError, RuntimeError, ValueError) as exc:
            msg = f"process actor {ctx.name} could not be started: {exc}"
            run.rt.engine_event("end", actor=ctx.name, result="error", error=msg)
            run.results[ctx.name] = "error"
            run.errors[ctx.name] = msg
            ctx.state = "done"
            ctx.finished.set()
            return
        finally:
            send.close()
        ctx.thread = proc
        run.collector.add(receive, ctx.name)
        if sched_child is not None:
            sched_child.close()  # the child has its copy

    def _start_pool_task(self, ctx: ProcActorCtx, pool: Pool) -> None:
        """Submit a process actor to its multiprocessing.Pool with apply_async; the pool's
        callback brings its events back (the tutorial's callback, recorded as an event)."""
        run = self.run
        if pool.real is None:
            pool.real = KillingPool(
                pool.workers, initializer=pool_init,
                initargs=((run.plan.scenario.as_mapping(), run.plan.lines),
                          self.process_prims(), run.shared, run.mem, run.rt.t0),
                context=run.mp)
        ctx.state = "queued"
        name = ctx.name

        def done(ret: tuple[str, str | None, str | None, Any]) -> None:
            _, result, error, batch = ret
            assert run.collector is not None
            run.collector.receive(name, batch)
            if result is not None:
                run.rt.engine_event("callback", actor=name, target=pool.name, item=result)
            self.ended(ctx, result, error)

        def failed(exc: BaseException) -> None:
            self.ended(ctx, "error", f"pool task {name} failed: {exc}")

        def submit() -> None:
            side = run.scheduler.child_side()
            args = (name, self._turn_server(name) if side else None, side)
            self.async_results[name] = pool.real.apply_async(
                pool_task, args, callback=done, error_callback=failed)
        with run.pool_mu:
            # no worker for it yet: submitted when a task of its pool ends, so that the
            # scheduler knows it runs before it asks for a turn
            if name in run.pool_queue.get(pool.name, ()):
                self.pool_deferred[name] = submit
                return
        submit()

    def _turn_server(self, name: str) -> Any:
        """A pipe from a process actor's child to the scheduler (one whose ``child_side`` is
        not None), served by a thread of the parent; returns the child's end."""
        run = self.run
        parent_end, child_end = run.mp.Pipe(duplex=True)
        # (the child is gone: the watchdog reaps it at once)
        args = (name, parent_end, run.prims, run.ctx[name].finished, run.wake.set)
        server: Any
        if run.workers is not None:  # an exploration: a thread kept from the schedules before
            server = run.workers.run(run.scheduler.serve, *args)
        else:
            server = threading.Thread(target=run.scheduler.serve,
                                      name=f"tracer-actor:(turns {name})", args=args,
                                      daemon=True)
            server.start()
        self.servers.append(server)
        return child_end

    # --- ending
    def ended(self, ctx: ActorCtx, result: str | None, error: str | None) -> None:
        """A process actor has ended (seen from the parent)."""
        run = self.run
        if result is not None:
            run.results[ctx.name] = result
        if error:
            run.errors[ctx.name] = error
        ctx.waiting = None
        ctx.state = "done"
        ctx.finished.set()
        self._tell_ended(ctx.name)
        run.wake.set()

    def _tell_ended(self, name: str) -> None:
        """Tell the scheduler (once) that process actor ``name`` has ended; a pool task's
        worker goes to the next task queued in its pool, which is submitted now."""
        run = self.run
        with run.pool_mu:
            if name in self.told_ended:
                return
            self.told_ended.add(name)
            submit = None
            pool = run.pool_of[name]
            if pool is not None:
                queued = run.pool_queue.get(pool)
                nxt = queued[0] if queued else None
                run.pool_slot_freed(name)  # the next one is started in the scheduler
                if nxt is not None:
                    submit = self.pool_deferred.pop(nxt, None)
        run.scheduler.ended(name)
        if submit is not None and not run.rt.closed:  # not once the run is being torn down
            try:
                submit()
            except ValueError:  # the pool was terminated meanwhile: the run is over
                pass

    def procs(self) -> list[ProcActorCtx]:
        return [c for c in self.run.ctx.values() if isinstance(c, ProcActorCtx)]

    def poll(self) -> None:
        """Notice process actors that ended: normally (their result came) or killed; and a
        Manager process that died under the run."""
        self.reap()
        self.check_manager()

    def reap(self) -> None:
        """Notice process actors that ended: normally (their result came) or killed."""
        run = self.run
        if run.collector is None:
            return
        for c in self.procs():
            if c.finished.is_set():
                continue
            proc = c.thread
            if proc is None:  # a pool task: its worker may have died under it
                if c.state == "running" and c.pid and not alive(c.pid):
                    msg = f"the pool worker running {c.name} (pid {c.pid}) died"
                    run.rt.engine_event("end", actor=c.name, result="error", error=msg)
                    self.ended(c, "error", msg)
                continue
            if proc.is_alive():
                continue
            proc.join(0)
            got = run.collector.results.get(c.name)
            if got is None and proc.exitcode == 0:
                continue  # exited cleanly: its last batch is on its way to the collector
            if got is not None:
                self.ended(c, *got)
                self.ended(c, None, None)
            else:
                msg = f"process actor {c.name} (pid {proc.pid}) {how_it_ended(proc.exitcode)}"
                run.rt.engine_event("end", actor=c.name, result="error", error=msg)
                self.ended(c, "error", msg)
                if not run.rt.closed:  # not stopped by us: the cause of how the run ends
                    run.lost.append(msg)

    def confirm_lost(self) -> None:
        """Whether a process actor died under the run (its pid is gone, though
        multiprocessing has not reported it yet): then that is the cause of what the others
        wait for (``run.lost``)."""
        if self.run.collector is None:
            return
        dead = [c for c in self.procs() if c.thread is not None and not c.finished.is_set()
                and c.pid and not alive(c.pid)]
        for c in dead:
            c.thread.join(1.0)  # its exit status is on its way (the forkserver reports it)
        self.reap()
        self.check_manager(confirm=True)

    def check_manager(self, confirm: bool = False) -> None:
        """Notice a Manager process that died under the run (killed): its shared variables
        and queues are gone, and every actor using them fails; say so once, as the cause.
        ``confirm``: also when its pid is gone but multiprocessing has not reported it yet."""
        run = self.run
        proc = getattr(run.manager, "_process", None)
        if proc is None or run.rt.closed or any("Manager" in m for m in run.lost):
            return
        if confirm and proc.pid and not alive(proc.pid):
            proc.join(1.0)  # its exit status is on its way
        if not proc.is_alive():
            run.lost.append(f"the Manager process (pid {proc.pid}), which holds the shared "
                            f"variables and process queues, {how_it_ended(proc.exitcode)}")

    # --- stopping
    def close(self) -> None:
        """Raise the abort flag in shared memory: every child's next seam call or poll
        aborts."""
        mem = self.run.mem
        if mem is not None:
            mem.closed.value = 1
            mem.abort_event.set()

    def stop(self, end: float) -> list[str]:
        """Join every child (they stop at the abort flag), kill any that will not, stop the
        collector: no child process of the run outlives it."""
        run = self.run
        if run.collector is None:
            return []
        stuck = []
        procs = [c for c in self.procs() if c.thread]
        for c in procs:
            c.thread.join(max(0.0, end - time.monotonic()))
        left = [c for c in procs if c.thread.is_alive()]
        for c in left:  # all of them first, then wait: a second at most for all together
            stuck.append(c.name)
            c.thread.kill()
        then = time.monotonic() + 1.0
        for c in left:
            c.thread.join(max(0.0, then - time.monotonic()))
        for res in list(self.async_results.values()):
            res.wait(max(0.0, end - time.monotonic()))  # tasks stop at the abort flag
        for p in run.prims.values():
            if isinstance(p, Pool) and p.real is not None and \
                    not isinstance(p.real, ThreadPoolExecutor):
                p.real.terminate()
                p.real.join()
        # every child has ended: take in all it shipped (its result among it) before judging
        run.collector.stop(STOP_GRACE)
        for server in self.servers:
            server.join(STOP_GRACE)
        self.reap()
        return stuck


# ---------------------------------------------------------------------------------------------
# the child's side


class _NoSpawn:
    """Process actors cannot start or join others (the checker refuses it)."""

    def spawn(self, a: ActorCtx, name: str, line: int | None = None) -> None:
        raise ActorFailure(f"{a.name}: a process actor cannot start other actors")

    def join(self, a: ActorCtx, name: str, timeout: float | None, tags: P.OpTags) -> None:
        raise ActorFailure(f"{a.name}: a process actor cannot join other actors")


# what a child gets of the scenario: its mapping, and the YAML line of each path (the plan's
# ``lines``: the child's events carry the lines of their steps)
ScenarioArg = tuple[dict[str, Any], dict[Any, int]]


def run_actor_here(scenario: ScenarioArg, name: str, prims: dict[str, P.Prim],
                   shared_vars: Any, shared: Shared, conn: Connection | None, t0: float,
                   sched_conn: Connection | None = None, side: str | None = None,
                   ) -> tuple[str | None, str | None, Batch]:
    """Run one process actor in this (child) process: its result, its error, and the events
    not yet shipped over ``conn`` (all of them when there is no ``conn``: a pool task).
    ``sched_conn``: the pipe to the parent's scheduler, whose ``child_side`` is ``side``."""
    try:
        mapping, lines = scenario
        plan = replace(plan_from_mapping(mapping), lines=lines)
        rt = ChildRuntime(shared, t0, child_scheduler(side, sched_conn))
        ap = plan.actor(name)
        ctx = ProcActorCtx(rt, name, ap.daemon, shared, prims)
        ctx.conn = conn
        compiler = Compiler(rt, plan, prims, shared_vars, _NoSpawn(), name)
        program, _ = compiler.program(ap.steps)
        ctx.register_caps(compiler.caps_seen)
    except Exception as exc:  # tell the parent why, instead of a traceback on stderr
        return "error", (f"internal error in tracer while starting {name}: "
                         f"{type(exc).__name__}: {exc}"), []
    ctx.pid = os.getpid()
    ctx.tid = threading.get_native_id()
    raised: BaseException | None = None
    try:
        ctx.state = "running"
        ctx.emit(rt.life_tag(name, "start"), None)
        program(ctx)
    except (Exception, Abort) as exc:
        raised = exc
    result, error = ending(raised)
    if result is not None:
        try:
            ctx.emit(end_tag(ctx, result, error), end_payload(ctx, error))
        except Abort:
            result = None
    if result is None:
        for p in prims.values():
            p.release_all(ctx)
    ctx.waiting = None
    if conn is not None:
        try:
            ctx.flush()
        except Abort:  # the parent is gone: nobody to ship them to
            pass
    return result, error, ctx.batch()


def child_main(scenario: ScenarioArg, name: str, prims: dict[str, P.Prim], shared_vars: Any,
               shared: Shared, conn: Connection, t0: float,
               sched_conn: Connection | None = None, side: str | None = None) -> None:
    """Entry point of a process actor's child process (``sched_conn``: the pipe to the
    parent's scheduler, whose ``child_side`` is ``side``)."""
    ignore_sigint()
    watch_parent(shared.parent, partial(orphaned, shared, False))
    _child_job(scenario, name, prims, shared_vars, shared, conn, t0, sched_conn, side)


def _child_job(scenario: ScenarioArg, name: str, prims: dict[str, P.Prim], shared_vars: Any,
               shared: Shared, conn: Connection, t0: float,
               sched_conn: Connection | None = None, side: str | None = None) -> None:
    """Run process actor ``name`` here and send its result (a child's, or a worker's job)."""
    name_process(f"tracer:{name}")
    result, error, _ = run_actor_here(scenario, name, prims, shared_vars, shared, conn, t0,
                                      sched_conn, side)
    try:
        conn.send(("result", result, error))
    except (OSError, ValueError):
        pass
    shared.board[shared.actor_index[name] * ROW + STATE] = STATES.index("done")
    conn.close()
    if sched_conn is not None:
        sched_conn.close()


def _close_arenas_when_gone() -> None:
    """A shared memory arena rebuilt in a child keeps its descriptor open for the child's
    life (a child runs one actor); in a worker that runs many, each job's would pile up: it is
    closed once the arena is gone (its memory map has a descriptor of its own)."""
    from multiprocessing import heap  # noqa: PLC0415

    rebuild = heap.rebuild_arena

    def rebuild_closing(size: int, dupfd: Any) -> Any:
        arena = rebuild(size, dupfd)
        weakref.finalize(arena, os.close, arena.fd)
        return arena

    heap.rebuild_arena = rebuild_closing


def worker_main(control: Connection, parent: int) -> None:
    """Entry point of an exploration's reusable worker process
    (``tracer.engine._workers.ProcWorkers``): run each job it is sent (a process actor's body,
    with the arguments of ``child_main``), drop everything of it, say so, wait for the next;
    an empty message or the closed pipe ends it, and so does the runner's death."""
    ignore_sigint()
    watch_parent(parent, partial(os._exit, 0))
    _close_arenas_when_gone()
    gc.freeze()  # (what it holds from the start: not walked by each job's collection)
    while True:
        try:
            blob = control.recv_bytes()
        except (EOFError, OSError):
            return
        if not blob:
            return
        args = pickle.loads(blob)
        _child_job(*args)
        del args
        gc.collect()  # the job's primitives and pipes go now, not during the next job
        try:
            control.send_bytes(b"done")
        except (OSError, ValueError):
            return


class _Worker:
    """What a process pool's worker keeps from its initializer."""

    args: tuple[Any, ...] = ()


def pool_init(scenario: ScenarioArg, prims: dict[str, P.Prim], shared_vars: Any,
              shared: Shared, t0: float) -> None:
    """Initializer of a process pool's workers: the primitives come by inheritance here,
    as multiprocessing requires, not with each task."""
    ignore_sigint()
    watch_parent(shared.parent, partial(orphaned, shared, True))
    _Worker.args = (scenario, prims, shared_vars, shared, t0)


def pool_task(name: str, sched_conn: Connection | None = None, side: str | None = None,
              ) -> tuple[str, str | None, str | None, Batch]:
    """A pool task: run actor ``name`` in this worker; its events travel back with the
    result, to the parent's callback (``sched_conn``, ``side``: as for ``child_main``)."""
    scenario, prims, shared_vars, shared, t0 = _Worker.args
    result, error, batch = run_actor_here(scenario, name, prims, shared_vars, shared, None, t0,
                                          sched_conn, side)
    if sched_conn is not None:
        sched_conn.close()
    return name, result, error, batch
