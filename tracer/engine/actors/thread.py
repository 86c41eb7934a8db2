"""Thread actors: each runs in a thread of its own (a reusable worker thread under explore),
or as a task of its pool's ``ThreadPoolExecutor``."""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor

from tracer.engine._seam import Abort, ActorCtx, ending
from tracer.engine._state import RunState
from tracer.engine._workers import Task
from tracer.engine.actors import BaseHost
from tracer.prims.pool import Pool


class ThreadHost(BaseHost):
    """The host of thread actors."""

    kind = "thread"

    def __init__(self, run: RunState) -> None:
        super().__init__(run)
        self.futures: dict[str, Future[None]] = {}  # thread pool tasks

    def start(self, ctx: ActorCtx) -> None:
        run = self.run
        pool = run.pool_of[ctx.name]
        if pool is not None:
            p = run.prims[pool]
            assert isinstance(p, Pool)
            ctx.state = "queued"
            self.futures[ctx.name] = p.real.submit(self.main, ctx)
            return
        ctx.state = "running"
        if run.workers is not None:
            ctx.thread = run.workers.run(self.main, ctx)
            return
        t = threading.Thread(target=self.main, args=(ctx,),
                             name=f"tracer-actor:{ctx.name}", daemon=True)
        ctx.thread = t
        t.start()

    def main(self, ctx: ActorCtx) -> None:
        """The body of a thread actor (or of a thread pool task)."""
        run = self.run
        raised: BaseException | None = None
        try:
            run.begin(ctx)
            run.programs[ctx.name](ctx)
        except (Exception, Abort) as exc:
            raised = exc
        run.finish(ctx, *ending(raised))

    def executors(self) -> list[ThreadPoolExecutor]:
        return [p.real for p in self.run.prims.values()
                if isinstance(p, Pool) and isinstance(p.real, ThreadPoolExecutor)]

    def threads(self) -> list[tuple[str, threading.Thread | Task]]:
        return [(c.name, c.thread) for c in self.run.ctx.values()
                if isinstance(c.thread, (threading.Thread, Task))]

    def stop(self, end: float) -> list[str]:
        """Join every actor thread (they stop at their next seam call or poll once the run is
        closed and its primitives aborted); names of those that would not stop."""
        prims = self.run.prims.values()
        for executor in self.executors():
            executor.shutdown(wait=False, cancel_futures=True)
        for _, t in self.threads():
            t.join(max(0.0, end - time.monotonic()))
        for executor in self.executors():
            executor.shutdown(wait=True)
        stuck = [name for name, t in self.threads() if t.is_alive()]
        if stuck:  # a thread blocked where it cannot poll (a full pipe): close what it uses
            for p in prims:
                p.abort()
                p.close()
            for _, t in self.threads():
                t.join(1.0)
            stuck = [name for name, t in self.threads() if t.is_alive()]
        return stuck
