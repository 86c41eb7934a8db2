"""Run a plan: start the actors, watch them, end the run cleanly, collect the trace.

The calling thread is the watchdog. Every ``WATCH`` seconds (or as soon as an actor ends) it
checks whether the run is over, timed out, or stuck. "Stuck" is decided from two snapshots of
the actors' state taken one tick apart: if no actor recorded anything in between, the picture
is consistent, and :func:`tracer.trace.waits.find_blocked` says whether the waiting actors
can ever be freed. Then the run is closed: every actor's next seam call or poll raises
:class:`Abort`, aborted actors release what they hold (without recording), and all threads are
joined before :func:`run_plan` returns.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import operator
import os
import platform
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from multiprocessing.managers import SyncManager
from operator import itemgetter
from pathlib import Path
from typing import Any

from tracer._gc import collect_run, gc_paused
from tracer._version import __version__
from tracer.engine._aio import AioCompiler, AioHost
from tracer.engine._backing import make_primitives
from tracer.engine._compile import Compiler, StepFn, copy_value
from tracer.engine._proc import (
    Collector,
    KillingPool,
    ProcActorCtx,
    RunFault,
    Shared,
    alive,
    child_main,
    get_context,
    manager_init,
    pool_init,
    pool_task,
)
from tracer.engine._seam import (
    Abort,
    ActorCtx,
    ActorFailure,
    Record,
    Runtime,
    end_payload,
    ending,
)
from tracer.engine._stops import interrupted_by, raise_pending, shielded
from tracer.engine._tracedata import trace_data_from_run
from tracer.engine._workers import Task, Workers
from tracer.engine.schedule import FreeRun, Scheduler
from tracer.prims import _shell as P
from tracer.prims import prim_type
from tracer.prims._shell import ready
from tracer.prims.pool import Pool
from tracer.scenario import Plan
from tracer.trace import TraceData
from tracer.trace._io import format_events, render_trace, write_atomic
from tracer.trace.waits import Blocked, Waiter, WaitState, find_blocked

WATCH = 0.01  # watchdog tick, seconds: a deadlock is reported within about three ticks
WATCH_MAX = 0.05  # the tick of runs with thousands of actors, whose snapshots cost more


def watch_interval(actors: int) -> float:
    """The watchdog's tick: 10 ms up to 250 actors, then longer in proportion, so that its
    snapshots (linear in the actors) never take more than a few percent of the run."""
    return min(WATCH_MAX, WATCH * max(1.0, actors / 250))
STOP_GRACE = 5.0  # seconds aborted actors get to finish before they are reported as stuck

_CMP: dict[str, Callable[[Any, Any], Any]] = {
    "<": operator.lt, "<=": operator.le, "==": operator.eq,
    "!=": operator.ne, ">=": operator.ge, ">": operator.gt,
}


@dataclass
class RunResult:
    """What a run produced: the events and how it ended. ``to_json()`` is the trace file."""

    plan: Plan
    status: str
    detail: str
    records: list[Record]  # sorted by seq; ts on the engine's clock, see ``t0``
    actors: list[dict[str, Any]]
    final: dict[str, Any]
    blocked: list[Blocked]
    duration: float
    started_at: str
    t0: float = 0.0
    mode: str = "run"
    seed: int | None = None
    invariant_failures: list[str] = field(default_factory=list)

    @property
    def event_count(self) -> int:
        return len(self.records)

    def to_json(self) -> str:
        head = {
            "scenario": self.plan.scenario.as_mapping(),
            "meta": {
                "tracer_version": __version__,
                "python": platform.python_version(),
                "started_at": self.started_at,
                "mode": self.mode,
                "seed": self.seed,
                "duration": round(self.duration, 6),
                "source": self.plan.source,
            },
            "actors": self.actors,
        }
        tail = {"outcome": {"status": self.status, "detail": self.detail},
                "final": self.final}
        return render_trace(head, format_events(self.records, self.t0), tail)

    def trace_data(self, source: str = "<run>") -> TraceData:
        """The run as the analyses read it: ``parse_trace_data(self.to_json(), source)``,
        built from the records in memory (see :mod:`tracer.engine._tracedata`)."""
        return trace_data_from_run(self, source)

    def write(self, path: str | Path) -> str:
        """Write the trace file (atomically); returns its text."""
        p = Path(path)
        with gc_paused():
            text = self.to_json()
        write_atomic(p, text)
        return text


def check_invariants(plan: Plan, final: dict[str, Any]) -> list[str]:
    """Messages for the declared invariants that the final state breaks."""
    out = []
    for inv in plan.scenario.invariants:
        value = final.get(inv.var)
        try:
            holds = bool(_CMP[inv.op](value, inv.value))
        except TypeError:
            holds = False
        if not holds:
            out.append(f"invariant {inv.var} {inv.op} {inv.value!r} failed: "
                       f"{inv.var} = {value!r} at the end of the run")
    return out


class Runner:
    """One run of a plan. Use :func:`run_plan`."""

    def __init__(self, plan: Plan, scheduler: Scheduler | None = None,
                 on_started: Callable[[], object] | None = None,
                 start_method: str | None = None, workers: Workers | None = None) -> None:
        self.plan = plan
        self.workers = workers  # explore: reusable actor threads
        self.on_started = on_started
        self.scheduler: Scheduler = scheduler if scheduler is not None else FreeRun()
        self.rt = Runtime(self.scheduler, workers.tags if workers is not None else None)
        self.wake = threading.Event()
        self.scheduler.attach(self.rt, self.wake.set)
        self.mp: Any = None
        self.mem: Shared | None = None
        self.manager: Any = None
        self.collector: Collector | None = None
        self.shared: Any = copy_value(plan.scenario.shared)
        try:
            if any(a.kind == "process" for a in plan.actors):
                self._setup_processes(start_method)
            self.prims = make_primitives(plan, self.mp, self.mem, self.manager)
        except (OSError, EOFError) as exc:  # the Manager died while it was being set up
            raise RunFault(self._setup_fault(exc)) from None
        self.pool_live: dict[str, int] = {}  # tasks of each pool given a worker
        self.pool_queue: dict[str, list[str]] = {}  # tasks waiting for a worker
        self.ctx: dict[str, ActorCtx] = {}
        self.programs: dict[str, StepFn] = {}
        self.futures: dict[str, Future[None]] = {}
        self.async_results: dict[str, Any] = {}  # process pool tasks
        self.servers: list[threading.Thread] = []  # turn servers of process actors
        self.pool_mu = threading.RLock()  # pool_live, pool_queue, pool_deferred
        self.pool_deferred: dict[str, Callable[[], object]] = {}  # queued process pool tasks
        self.told_ended: set[str] = set()  # process actors whose end the scheduler was told
        self.results: dict[str, str] = {}
        self.errors: dict[str, str] = {}
        self.capped: int | None = None  # the event cap, once the run was stopped by it
        self.lost: list[str] = []  # processes of the run that died under it (killed)
        self.pool_of = {a.name: a.pool for a in plan.actors}
        for ap in plan.actors:
            mem = self._shared_memory()
            if ap.kind == "process" and mem is not None:
                ctx: ActorCtx = ProcActorCtx(self.rt, ap.name, ap.daemon, mem, self.prims)
            else:
                ctx = ActorCtx(self.rt, ap.name, ap.kind, ap.daemon)
            self.ctx[ap.name] = ctx
        self.aio: AioHost | None = None
        if any(a.kind == "coroutine" for a in plan.actors):
            # an exploration's runs share one event loop (a new one per run costs more than
            # a small schedule)
            self.aio = workers.loop_host() if workers is not None else AioHost()
        for ap in plan.actors:
            compiler = (AioCompiler if ap.kind == "coroutine" else Compiler)(
                self.rt, plan, self.prims, self.shared, self, ap.name)
            fn, caps = compiler.block(ap.steps, frozenset())
            self.programs[ap.name] = fn
            c = self.ctx[ap.name]
            if isinstance(c, ProcActorCtx):
                # the child runs the program; here only the numbering of its caps matters
                c.register_caps(compiler.caps_seen)
            c.caps = caps  # what it may do before it runs (on the board, for a process)

    def _setup_fault(self, exc: BaseException) -> str:
        """Why the run could not be set up (and the Manager stopped, if it still runs)."""
        proc = getattr(self.manager, "_process", None)
        if proc is not None:
            proc.join(1.0)
            if proc.is_alive():
                proc.kill()
                proc.join(1.0)
                return (f"the Manager process (pid {proc.pid}) stopped answering while the "
                        f"run was set up ({type(exc).__name__}: {exc}); nothing ran")
            return (f"the Manager process (pid {proc.pid}) {_how_it_ended(proc.exitcode)} "
                    "while the run was set up; nothing ran")
        return f"the run could not be set up: {type(exc).__name__}: {exc}"

    def _shared_memory(self) -> Shared | None:
        return self.mem

    def _setup_processes(self, start_method: str | None) -> None:
        """Shared memory, the shared seq counter and the Manager for process actors."""
        self.mp = get_context(start_method)
        names = [a.name for a in self.plan.actors]
        self.mem = Shared(self.mp, names, [*self.plan.scenario.primitives, *names],
                          list(self.plan.scenario.shared))
        self.rt.seq = self.mem.seq  # type: ignore[assignment]
        self.rt.var_locks = self.mem.var_locks
        needs_manager = bool(self.plan.scenario.shared) or any(
            prim_type(spec.type).part("NEEDS_MANAGER", False)
            and self.plan.flavour.get(n) == "process"
            for n, spec in self.plan.scenario.primitives.items())
        if needs_manager:
            self.manager = SyncManager(ctx=self.mp)
            self.manager.start(manager_init, (os.getpid(),))
        if self.plan.scenario.shared:
            proxy = self.manager.dict()
            for k, v in self.plan.scenario.shared.items():
                if isinstance(v, list):
                    proxy[k] = self.manager.list(copy_value(v))
                elif isinstance(v, dict):
                    proxy[k] = self.manager.dict(copy_value(v))
                else:
                    proxy[k] = v
            self.shared = proxy
        self.collector = Collector(self.rt, {})

    # --- the Spawner protocol, for `start` and `join` steps
    def spawn(self, a: ActorCtx, name: str) -> None:
        a.emit(self.rt.tag(a.name, "spawn", name), None)
        target = self.ctx[name]
        if target.state != "pending":
            msg = f"{a.name} started {name}, which was already started"
            a.fail_last(msg)
            raise ActorFailure(msg)
        self._start(target)

    def join(self, a: ActorCtx, name: str, timeout: float | None, tags: P.OpTags) -> None:
        target = self.ctx[name]
        a.block(name, "join", timeout, tags.call)
        if target.state == "pending":
            a.waiting = None
            msg = f"{a.name} cannot join {name}: it was never started"
            a.emit(tags.error, {"error": msg})
            raise ActorFailure(msg)
        # an actor has ended when it says so (its `end` is recorded), a moment before its
        # thread or process has returned: waiting for that too would make the join's outcome
        # depend on timing
        ok = target.finished.is_set() or self.scheduler.wait(a, target.finished.wait, timeout,
                                                             looks=True)
        a.waiting = None
        a.emit(tags.ok if ok else tags.timeout, None)

    async def ajoin(self, a: ActorCtx, name: str, timeout: float | None,
                    tags: P.OpTags) -> None:
        """`join` from a coroutine actor: await the task, or poll a thread's end."""
        target = self.ctx[name]
        await ready(a, tags.call)
        seq = a.emit(tags.call, None)
        if target.state == "pending":
            msg = f"{a.name} cannot join {name}: it was never started"
            a.emit(tags.error, {"error": msg})
            raise ActorFailure(msg)
        a.waiting = (name, "join", timeout is not None, seq, 0)

        async def ended() -> bool:
            return target.finished.is_set()

        async def poll() -> bool:
            deadline = None if timeout is None else time.monotonic() + timeout
            while not target.finished.is_set():
                if deadline is not None and time.monotonic() >= deadline:
                    return False
                await asyncio.sleep(0.002)  # the loop must not block on another thread
            return True
        await self.scheduler.await_(a, ended, poll, timeout)
        a.waiting = None
        await ready(a, tags.ok)
        a.emit(tags.ok if target.finished.is_set() else tags.timeout, None)

    # --- actors
    def _start(self, ctx: ActorCtx) -> None:
        pool = self.pool_of[ctx.name]
        if ctx.state != "starting":  # autostart actors were announced all at once
            self._announce(ctx)
        if isinstance(ctx, ProcActorCtx):
            self._start_process(ctx)
        elif ctx.kind == "coroutine":
            assert self.aio is not None
            ctx.state = "running"
            self.aio.spawn(ctx.name, partial(self._amain, ctx))
        elif pool is not None:
            p = self.prims[pool]
            assert isinstance(p, Pool)
            ctx.state = "queued"
            self.futures[ctx.name] = p.real.submit(self._main, ctx, p)
        else:
            ctx.state = "running"
            if self.workers is not None:
                ctx.thread = self.workers.run(self._main, ctx, None)
                return
            t = threading.Thread(target=self._main, args=(ctx, None),
                                 name=f"tracer-actor:{ctx.name}", daemon=True)
            ctx.thread = t
            t.start()

    def _process_prims(self) -> dict[str, P.Prim]:
        return {n: p for n, p in self.prims.items()
                if self.plan.flavour.get(n) == "process" and not isinstance(p, Pool)}

    def _start_pool_task(self, ctx: ProcActorCtx, pool: Pool) -> None:
        """Submit a process actor to its multiprocessing.Pool with apply_async; the pool's
        callback brings its events back (the tutorial's callback, recorded as an event)."""
        if pool.real is None:
            pool.real = KillingPool(
                pool.workers, initializer=pool_init,
                initargs=(self.plan.scenario.as_mapping(), self._process_prims(), self.shared,
                          self.mem, self.rt.t0), context=self.mp)
        ctx.state = "queued"
        name = ctx.name

        def done(ret: tuple[str, str | None, str | None, Any]) -> None:
            _, result, error, batch = ret
            assert self.collector is not None
            self.collector.receive(name, batch)
            if result is not None:
                self.rt.engine_event("callback", actor=name, target=pool.name, item=result)
            self._ended(ctx, result, error)

        def failed(exc: BaseException) -> None:
            self._ended(ctx, "error", f"pool task {name} failed: {exc}")

        def submit() -> None:
            side = self.scheduler.child_side()
            args = (name, self._turn_server(name) if side else None, side)
            self.async_results[name] = pool.real.apply_async(
                pool_task, args, callback=done, error_callback=failed)
        with self.pool_mu:
            # no worker for it yet: submitted when a task of its pool ends, so that the
            # scheduler knows it runs before it asks for a turn
            if name in self.pool_queue.get(pool.name, ()):
                self.pool_deferred[name] = submit
                return
        submit()

    def _turn_server(self, name: str) -> Any:
        """A pipe from a process actor's child to the scheduler (one whose ``child_side`` is
        not None), served by a thread of the parent; returns the child's end."""
        parent_end, child_end = self.mp.Pipe(duplex=True)
        # (the child is gone: the watchdog reaps it at once)
        args = (name, parent_end, self.prims, self.ctx[name].finished, self.wake.set)
        server = threading.Thread(target=self.scheduler.serve,
                                  name=f"tracer-actor:(turns {name})", args=args, daemon=True)
        server.start()
        self.servers.append(server)
        return child_end

    def _ended(self, ctx: ActorCtx, result: str | None, error: str | None) -> None:
        """A process actor has ended (seen from the parent)."""
        if result is not None:
            self.results[ctx.name] = result
        if error:
            self.errors[ctx.name] = error
        ctx.waiting = None
        ctx.state = "done"
        ctx.finished.set()
        self._process_ended(ctx.name)
        self.wake.set()

    def _process_ended(self, name: str) -> None:
        """Tell the scheduler (once) that process actor ``name`` has ended; a pool task's
        worker goes to the next task queued in its pool, which is submitted now."""
        with self.pool_mu:
            if name in self.told_ended:
                return
            self.told_ended.add(name)
            submit = None
            pool = self.pool_of[name]
            if pool is not None:
                queued = self.pool_queue.get(pool)
                nxt = queued[0] if queued else None
                self._pool_slot_freed(name)  # the next one is started in the scheduler
                if nxt is not None:
                    submit = self.pool_deferred.pop(nxt, None)
        self.scheduler.ended(name)
        if submit is not None and not self.rt.closed:  # not once the run is being torn down
            try:
                submit()
            except ValueError:  # the pool was terminated meanwhile: the run is over
                pass

    def _start_process(self, ctx: ProcActorCtx) -> None:
        assert self.mem is not None and self.collector is not None
        pool_name = self.pool_of[ctx.name]
        self.collector.ctxs[ctx.name] = ctx
        if pool_name is not None:
            pool = self.prims[pool_name]
            assert isinstance(pool, Pool)
            self._start_pool_task(ctx, pool)
            return
        mine = self._process_prims()
        receive, send = self.mp.Pipe(duplex=False)
        side = self.scheduler.child_side()
        sched_child = self._turn_server(ctx.name) if side else None
        proc = self.mp.Process(
            target=child_main, name=f"tracer:{ctx.name}", daemon=True,
            args=(self.plan.scenario.as_mapping(), ctx.name, mine, self.shared, self.mem, send,
                  self.rt.t0, sched_child, side))
        ctx.state = "running"
        try:
            proc.start()
        except (OSError, RuntimeError, ValueError) as exc:
            msg = f"process actor {ctx.name} could not be started: {exc}"
            self.rt.engine_event("end", actor=ctx.name, result="error", error=msg)
            self.results[ctx.name] = "error"
            self.errors[ctx.name] = msg
            ctx.state = "done"
            ctx.finished.set()
            return
        finally:
            send.close()
        ctx.thread = proc
        self.collector.add(receive, ctx.name)
        if sched_child is not None:
            sched_child.close()  # the child has its copy

    def _reap(self) -> None:
        """Notice process actors that ended: normally (their result came) or killed."""
        assert self.collector is not None
        for c in self.ctx.values():
            if not isinstance(c, ProcActorCtx) or c.finished.is_set():
                continue
            proc = c.thread
            if proc is None:  # a pool task: its worker may have died under it
                if c.state == "running" and c.pid and not alive(c.pid):
                    msg = f"the pool worker running {c.name} (pid {c.pid}) died"
                    self.rt.engine_event("end", actor=c.name, result="error", error=msg)
                    self._ended(c, "error", msg)
                continue
            if proc.is_alive():
                continue
            proc.join(0)
            got = self.collector.results.get(c.name)
            if got is None and proc.exitcode == 0:
                continue  # exited cleanly: its last batch is on its way to the collector
            if got is not None:
                self._ended(c, *got)
                self._ended(c, None, None)
            else:
                msg = f"process actor {c.name} (pid {proc.pid}) {_how_it_ended(proc.exitcode)}"
                self.rt.engine_event("end", actor=c.name, result="error", error=msg)
                self._ended(c, "error", msg)
                if not self.rt.closed:  # not stopped by us: the cause of how the run ends
                    self.lost.append(msg)

    def _confirm_lost(self) -> bool:
        """Before a deadlock or stall is reported: whether a process actor died under the run
        (its pid is gone, though multiprocessing has not reported it yet) — then that is the
        cause, and what waits for it is only its consequence."""
        if self.collector is None:
            return False
        dead = [c for c in self.ctx.values() if isinstance(c, ProcActorCtx)
                and c.thread is not None and not c.finished.is_set() and c.pid
                and not alive(c.pid)]
        for c in dead:
            c.thread.join(1.0)  # its exit status is on its way (the forkserver reports it)
        self._reap()
        self._check_manager(confirm=True)
        return bool(self.lost)

    def _check_manager(self, confirm: bool = False) -> None:
        """Notice a Manager process that died under the run (killed): its shared variables
        and queues are gone, and every actor using them fails; say so once, as the cause.
        ``confirm``: also when its pid is gone but multiprocessing has not reported it yet."""
        proc = getattr(self.manager, "_process", None)
        if proc is None or self.rt.closed or any("Manager" in m for m in self.lost):
            return
        if confirm and proc.pid and not alive(proc.pid):
            proc.join(1.0)  # its exit status is on its way
        if not proc.is_alive():
            self.lost.append(f"the Manager process (pid {proc.pid}), which holds the shared "
                             f"variables and process queues, {_how_it_ended(proc.exitcode)}")

    def _announce(self, ctx: ActorCtx) -> None:
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

    def _pool_slot_freed(self, name: str) -> None:
        """A pool task ended; the next queued task of its pool gets the worker."""
        pool = self.pool_of[name]
        if pool is None:
            return
        queued = self.pool_queue.get(pool)
        if queued:
            self.scheduler.started(queued.pop(0))
        else:
            self.pool_live[pool] -= 1

    def _begin(self, ctx: ActorCtx, pool: Pool | None) -> None:
        ctx.state = "running"
        ctx.pid = os.getpid()
        ctx.tid = threading.get_native_id()
        ctx.emit(self.rt.tag(ctx.name, "start"), None)

    def _main(self, ctx: ActorCtx, pool: Pool | None) -> None:
        """The body of a thread actor (or of a thread pool task)."""
        raised: BaseException | None = None
        try:
            self._begin(ctx, pool)
            self.programs[ctx.name](ctx)
        except (Exception, Abort) as exc:
            raised = exc
        self._finish(ctx, *ending(raised), pool)

    async def _amain(self, ctx: ActorCtx) -> None:
        """The body of a coroutine actor: the same, with cancellation as the abort."""
        raised: BaseException | None = None
        try:
            await ready(ctx, self.rt.tag(ctx.name, "start"))
            self._begin(ctx, None)
            await self.programs[ctx.name](ctx)  # type: ignore[misc]
        except (Exception, Abort, asyncio.CancelledError) as exc:
            raised = exc
        result, error = ending(raised)
        if result is not None:
            try:
                await ready(ctx, self.rt.tag(ctx.name, "end", None, None, result))
            except (Abort, asyncio.CancelledError):
                result, error = None, None
        self._finish(ctx, result, error, None)

    def _finish(self, ctx: ActorCtx, result: str | None, error: str | None,
                pool: Pool | None) -> None:
        """Record the end (``result`` None: the run was closed under it) and tell the
        watchdog."""
        if result is not None:
            try:
                ctx.emit(self.rt.tag(ctx.name, "end", None, None, result),
                         end_payload(ctx, error))
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
        if self.pool_of[ctx.name] is not None and ctx.kind != "process":
            with self.pool_mu:
                self._pool_slot_freed(ctx.name)
        self.scheduler.ended(ctx.name)  # (one that runs an actor at a time picks the next)
        self.wake.set()

    # --- the watchdog
    def _finished(self) -> bool:
        if not all(c.daemon or c.state in ("done", "pending") for c in self.ctx.values()):
            return False
        if self.scheduler.pending():
            # a replay abandons a daemon where the recording did: after its recorded steps
            return not any(c.state not in ("done", "pending") for c in self.ctx.values())
        return True

    def _signature(self) -> tuple[int, int]:
        """(events recorded, actors ended) over all actors: changes whenever anyone moves."""
        ctxs = self.ctx.values()
        return (sum(c.progress() for c in ctxs), sum(c.state == "done" for c in ctxs))

    def _snapshot(self) -> tuple[tuple[Any, ...] | None, WaitState | None]:
        """A picture of who waits for what, or (None, None) when nobody waits for good."""
        key: list[Any] = []
        live: set[str] = set()
        waiting: dict[str, Waiter] = {}
        marks: dict[str, int] = {}
        anyone = False
        for name, c in self.ctx.items():
            st = c.state
            if st == "done":
                continue
            now = c.waiting
            key.append((name, st, c.progress(), now))
            live.add(name)
            if st == "pending":
                waiting[name] = Waiter(name, "start", name, "actor")
            elif st == "queued":
                waiting[name] = Waiter(name, "queued", self.pool_of[name] or "", "pool")
                anyone = True
            elif now is not None and not now[2]:
                anyone = True
                target, op, _, seq, _mark = now
                if isinstance(target, str):
                    waiting[name] = Waiter(name, op, target, "actor", seq)
                else:
                    res = getattr(target, "resource", target)
                    waiting[name] = Waiter(name, op, target.name, target.ptype, seq, res.name)
                    marks[name] = _mark
        if not anyone:
            return None, None
        available: set[str] = set()
        running: dict[str, set[str]] = {}  # pool -> its tasks that are running
        for name in live:
            pool_name = self.pool_of[name]
            if pool_name is not None and self.ctx[name].state == "running":
                running.setdefault(pool_name, set()).add(name)
        counts: dict[tuple[str, str], int] = {}
        for w in waiting.values():
            counts[(w.target, w.op)] = counts.get((w.target, w.op), 0) + 1
        # the scheduler knows who is away in a real call that others end (a barrier's round:
        # they may still be on their way into the real barrier, whose count would say
        # "leaving"); the waiters of a primitive judged together (a barrier) are asked once,
        # so that they are judged on the same count
        is_away = self.scheduler.is_away
        together: dict[str, bool] = {}
        for name, w in waiting.items():
            mark = marks.get(name, 0)
            if is_away(name):
                continue
            if w.kind not in ("actor", "pool") and self.prims[w.target].judged_together:
                if w.target not in together:
                    together[w.target] = self.prims[w.target].available_for(
                        w.op, counts[(w.target, w.op)], name, mark)
                if together[w.target]:
                    available.add(name)
            elif w.kind == "actor" and w.op == "join":
                if self.ctx[w.target].state == "done":
                    available.add(name)
            elif w.kind == "pool":
                pool = self.prims[w.target]
                assert isinstance(pool, Pool)
                if len(running.get(w.target, ())) < pool.workers:
                    available.add(name)
            elif w.op != "start" and self.prims[w.target].available_for(
                    w.op, counts[(w.target, w.op)], name, mark):
                available.add(name)
        state = WaitState(
            live=live,
            waiting=waiting,
            holders={p.name: dict(p.holders) for p in self.prims.values() if p.holders},
            caps={n: self.ctx[n].caps for n in live},
            available=available,
            pool_running=running,
            daemons={n for n in live if self.ctx[n].daemon},
        )
        return tuple(key), state

    def run(self) -> RunResult:
        rt = self.rt
        started_at = dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds")
        scenario = self.plan.scenario
        status, detail = "ok", ""
        blocked: list[Blocked] = []
        engine: list[tuple[str, dict[str, Any]]] = []
        detected_at: float | None = None
        deadline = time.monotonic() + scenario.timeout
        cap = scenario.event_cap()
        try:
            if self.aio is not None and self.workers is None:
                self.aio.start()
            if self.collector is not None:
                self.collector.start()
            autostart = [self.ctx[ap.name] for ap in self.plan.actors if ap.autostart]
            for c in autostart:
                # all of them first: an actor may join one declared after it before that one's
                # thread exists, and an exploring scheduler must know whom to wait for
                c.state = "starting"
                self._announce(c)
            for c in autostart:
                if time.monotonic() >= deadline:
                    break  # starting them took the whole timeout (thousands of processes)
                with shielded():  # a stop signal does not cut a process's start in half
                    self._start(c)
                raise_pending()
            if self.on_started is not None:
                self.on_started()
            prev: tuple[int, int] | None = None
            tick = watch_interval(len(self.ctx))
            next_look = time.monotonic() + tick
            while True:
                raise_pending()  # a stop signal that came while the run was starting
                if self.collector is not None:
                    self._reap()
                    self._check_manager()
                    if any("Manager" in m for m in self.lost):
                        # the Manager was killed: every shared variable and process queue is
                        # gone, nothing the actors do from here can be trusted
                        status, detail = "error", "; ".join(self.lost)
                        detected_at = rt.clock()
                        break
                    # a killed process actor: the others go on; if they end, or block for
                    # good on what it held, the outcome names the kill as the cause (below)
                if rt.closed:  # the scheduler ended the run (a replay's divergence, --until)
                    ended = self.scheduler.outcome()
                    if ended is not None:
                        status, detail = ended
                    break
                if self._finished():
                    break
                if time.monotonic() >= deadline:
                    status = "timeout"
                    detail = (f"the run did not finish within its timeout of "
                              f"{scenario.timeout:g} s; still running: "
                              f"{', '.join(self._running())}")
                    engine.append(("timeout", {"actors": self._running_names(),
                                               "detail": detail}))
                    detected_at = rt.clock()
                    break
                # Cheap first: if nobody recorded anything since the last tick, take the full
                # picture; if still nobody has moved once it is taken, it is consistent (no
                # actor changes what it holds or waits for without recording an event).
                if self.scheduler.is_stuck():
                    # an exploring scheduler found nobody who can go on: nothing moves, so
                    # one picture is consistent
                    _, state = self._snapshot()
                    blocked = find_blocked(state) if state is not None else []
                    if blocked:
                        detected_at = rt.clock()
                        break
                    self.scheduler.retry()
                now = time.monotonic()
                if now >= next_look:  # an actor's end wakes the loop early: only to see that
                    next_look = now + tick
                    sig = self._signature()
                    if sig[0] >= cap:
                        status = "capped"
                        detail = (f"stopped after {cap:,} events (max_events); still running: "
                                  f"{', '.join(self._running()) or 'nobody'}")
                        engine.append(("capped", {"actors": self._running_names(),
                                                  "detail": detail}))
                        detected_at = rt.clock()
                        self.capped = cap
                        break
                    if sig == prev:
                        _, state = self._snapshot()
                        if state is not None and self._signature() == sig:
                            blocked = find_blocked(state)
                            if blocked:
                                detected_at = rt.clock()
                                break
                    prev = sig
                self.wake.wait(max(0.001, next_look - time.monotonic()))
                self.wake.clear()
                if len(self.ctx) > 250:
                    time.sleep(0.002)  # let a burst of endings pass before counting again
            if blocked and self._confirm_lost():  # a killed child, not yet reaped, is why
                blocked = []
                status, detail = "error", "; ".join(self.lost)
        except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM/SIGHUP (see _stops)
            status, detail = "interrupted", interrupted_by(exc)
        with shielded():  # the teardown is not cut short by a stop signal
            return self._end(status, detail, blocked, engine, detected_at, started_at)

    def _end(self, status: str, detail: str, blocked: list[Blocked],
             engine: list[tuple[str, dict[str, Any]]], detected_at: float | None,
             started_at: str) -> RunResult:
        """Stop every actor, record how the run ended, and collect the trace."""
        rt = self.rt
        if blocked:
            status = "deadlock" if any(b.kind == "deadlock" for b in blocked) else "stall"
            detail = "; ".join(b.message for b in blocked)
            for b in blocked:
                engine.append((b.kind, {"actors": list(b.actors), "detail": b.message,
                                        "objects": list(b.objects), "waits": list(b.waits)}))
        abandoned = [c.name for c in self.ctx.values()
                     if status == "ok" and c.daemon and c.state in ("running", "queued")]
        stuck = self._teardown()
        # a daemon's `end` is recorded once it has stopped, so it is its last event; one that
        # ended by itself meanwhile has its own
        abandoned = [n for n in abandoned if n not in self.results]
        for name in abandoned:
            rt.engine_event("end", actor=name, result="abandoned")
        for op, payload in engine:
            rt.engine_event(op, ts=detected_at, **payload)
        if status == "ok" and self.lost:  # a killed actor, the others ended
            status, detail = "error", "; ".join(self.lost)
        elif status == "timeout" and self.lost:
            detail = f"{'; '.join(self.lost)} (then: {detail})"
        if status == "ok" and self.errors:
            status = "error"
            detail = "; ".join(f"{n} failed: {e}" for n, e in self.errors.items())
        ours = [f"{n} failed: {e}" for n, e in self.errors.items()
                if e.startswith("internal error in tracer")]
        if ours and status in ("deadlock", "stall"):
            # what the others then waited for is tracer's failure, not the scenario's
            status, detail = "error", f"{'; '.join(ours)} (then: {detail})"
        if status == "ok":
            detail = "every actor finished"
            if abandoned:
                detail += f"; daemon actors abandoned: {', '.join(abandoned)}"
        if stuck:
            detail += f"; {len(stuck)} actor thread(s) could not be stopped: {', '.join(stuck)}"
        duration = rt.clock() - rt.t0
        records = self._collect()
        if self.capped is not None:  # an actor whose end came after the cap did not end
            ended = {r[2].actor for r in records if r[2].op == "end"}
            for name in list(self.results):
                if name not in ended:
                    del self.results[name]
        blocked_names = {a for b in blocked for a in b.actors}
        actors = []
        for ap in self.plan.actors:
            c = self.ctx[ap.name]
            actors.append({
                "name": c.name, "kind": c.kind, "pid": c.pid or None, "tid": c.tid or None,
                "daemon": c.daemon,
                "status": self._status(c, blocked_names, abandoned),
                **({"pool": ap.pool} if ap.pool else {}),
            })
        final = copy_value(self.shared)
        return RunResult(self.plan, status, detail, records, actors, final, blocked, duration,
                         started_at, rt.t0,
                         invariant_failures=check_invariants(self.plan, final))

    def _running_names(self) -> list[str]:
        return [c.name for c in self.ctx.values() if c.state in ("running", "queued")]

    def _running(self, most: int = 20) -> list[str]:
        """The actors still running, each with what it is doing (the first ``most``)."""
        names = [c for c in self.ctx.values() if c.state in ("running", "queued")]
        out = [self._doing(c) for c in names[:most]]
        if len(names) > most:
            out.append(f"and {len(names) - most} more")
        return out

    def _doing(self, c: ActorCtx) -> str:
        w = c.waiting
        if c.state == "queued":
            return f"{c.name} (queued in pool {self.pool_of[c.name]})"
        if w is None:
            return c.name
        target = w[0] if isinstance(w[0], str) else w[0].name
        return f"{c.name} ({w[1]} {target})"

    def _status(self, c: ActorCtx, blocked: set[str], abandoned: list[str]) -> str:
        if c.name in abandoned:
            return "abandoned"
        if c.name in self.results:
            return self.results[c.name]
        if c.name in blocked:
            return "blocked"
        if c.state in ("pending", "starting") or (c.state == "queued" and c.pid == 0):
            return "not_started"
        return "cancelled"

    def _teardown(self) -> list[str]:
        """Close the run and wait for every actor thread; names of any that would not stop."""
        self.rt.close()
        self.scheduler.closing()
        if self.mem is not None:
            self.mem.closed.value = 1
            self.mem.abort_event.set()
        stuck_tasks: list[str] = []
        if self.aio is not None:
            stuck_tasks = (self.aio.cancel_tasks(STOP_GRACE) if self.workers is not None
                           else self.aio.stop(STOP_GRACE))
        for p in self.prims.values():
            p.abort()  # wake what is blocked inside a real primitive and cannot poll
        for executor in self._executors():
            executor.shutdown(wait=False, cancel_futures=True)
        end = time.monotonic() + STOP_GRACE
        for c in self.ctx.values():
            t = c.thread
            if isinstance(t, (threading.Thread, Task)):
                t.join(max(0.0, end - time.monotonic()))
        for executor in self._executors():
            executor.shutdown(wait=True)
        stuck = [c.name for c in self.ctx.values()
                 if isinstance(c.thread, (threading.Thread, Task)) and c.thread.is_alive()]
        if stuck:  # a thread blocked where it cannot poll (a full pipe): close what it uses
            for p in self.prims.values():
                p.abort()
                p.close()
            for c in self.ctx.values():
                if isinstance(c.thread, (threading.Thread, Task)):
                    c.thread.join(1.0)
            stuck = [c.name for c in self.ctx.values()
                     if isinstance(c.thread, (threading.Thread, Task)) and c.thread.is_alive()]
        stuck += self._stop_processes(end)
        for p in self.prims.values():
            p.close()
        return stuck + stuck_tasks

    def _executors(self) -> list[ThreadPoolExecutor]:
        return [p.real for p in self.prims.values()
                if isinstance(p, Pool) and isinstance(p.real, ThreadPoolExecutor)]

    def _stop_processes(self, end: float) -> list[str]:
        """Join every child (they stop at the abort flag), kill any that will not, stop the
        collector and the Manager: no process of the run outlives it."""
        if self.collector is None:
            return []
        stuck = []
        procs = [c for c in self.ctx.values() if isinstance(c, ProcActorCtx) and c.thread]
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
        for p in self.prims.values():
            if isinstance(p, Pool) and p.real is not None and \
                    not isinstance(p.real, ThreadPoolExecutor):
                p.real.terminate()
                p.real.join()
        # every child has ended: take in all it shipped (its result among it) before judging
        self.collector.stop(STOP_GRACE)
        for server in self.servers:
            server.join(STOP_GRACE)
        self._reap()
        if self.manager is not None:
            try:
                self.shared = copy_value(self.shared)  # the final values, before it goes
            except (OSError, EOFError) as exc:
                self.shared = {"(lost)": f"the Manager process ended early: {exc}"}
            self.manager.shutdown()
        return stuck

    def _collect(self) -> list[Record]:
        """All events in seq order (times are made relative when the trace is written)."""
        merged: list[Record] = []
        for c in self.ctx.values():
            merged.extend(c.buf)
            if self.capped is not None:
                c.buf.clear()  # (the memory of a capped run: one copy of its events at most)
        merged.sort(key=itemgetter(0))  # each buffer is a sorted run: timsort merges them
        engine = self.rt.engine_buf
        if self.capped is not None and len(merged) > self.capped:
            # the first `cap` events of the actors, the engine's events among them, and the
            # engine's account of the end (recorded once the cap was seen, so after them)
            del merged[self.capped:]
            last = merged[-1][0]
            engine = [r for r in engine if r[0] <= last or r[2].op == "capped"]
        merged.extend(engine)
        merged.sort(key=itemgetter(0))
        if merged and merged[-1][0] != len(merged) - 1:
            merged = _renumber(merged)
        return merged


def _renumber(records: list[Record]) -> list[Record]:
    """Close the gaps in seq that a killed child leaves (its unshipped events took numbers
    from the shared counter): the order stays, seq runs 0..N-1 again, and engine events'
    references to seqs follow."""
    new = {r[0]: i for i, r in enumerate(records)}
    out: list[Record] = []
    for i, (_, ts, tag, payload) in enumerate(records):
        fixed = payload
        if payload and "waits" in payload:
            waits = [{**w, "call_seq": new.get(w.get("call_seq"), w.get("call_seq"))}
                     for w in payload["waits"]]
            fixed = {**payload, "waits": waits}
        out.append((i, ts, tag, fixed))
    return out


def _how_it_ended(code: int | None) -> str:
    """'was killed by signal 9 (SIGKILL)', or 'exited with status 1'."""
    if code is not None and code < 0:
        try:
            name = f" ({signal.Signals(-code).name})"
        except ValueError:
            name = ""
        return f"was killed by signal {-code}{name}"
    return f"exited with status {code}"




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
