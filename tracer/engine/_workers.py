"""Reusable actor threads (and child processes, below), for exploration: starting a thread
costs more than running a small schedule (the new thread must be scheduled before ``start``
returns), so an exploration keeps its actor threads between schedules, its event loop for
coroutine actors, and the interned event tags (which never change). A worker runs one
actor's body at a time; the ``Task`` it returns stands in for the ``threading.Thread``
(``join``, ``is_alive``).

Workers live only as long as the ``Workers`` object is open: ``close`` ends them all (the
exploration closes it when it ends, so no thread or process outlives it)."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from queue import SimpleQueue
from typing import Any


class Task:
    """One actor body run by a worker: joined like a thread."""

    __slots__ = ("done",)

    def __init__(self) -> None:
        self.done = threading.Event()

    def join(self, timeout: float | None = None) -> None:
        self.done.wait(timeout)

    def is_alive(self) -> bool:
        return not self.done.is_set()


class _Worker:
    def __init__(self, pool: Workers, number: int) -> None:
        self.pool = pool
        self.jobs: SimpleQueue[tuple[Callable[..., object], tuple[Any, ...], Task] | None] = \
            SimpleQueue()
        self.thread = threading.Thread(target=self._serve, daemon=True,
                                       name=f"tracer-actor:(worker {number})")
        self.thread.start()

    def _serve(self) -> None:
        while True:
            job = self.jobs.get()
            if job is None:
                return
            fn, args, task = job
            try:
                fn(*args)
            finally:
                task.done.set()
                self.pool.idle.append(self)


class Workers:
    """A set of reusable threads; ``run(fn, *args)`` runs ``fn`` on an idle one."""

    def __init__(self) -> None:
        self.idle: list[_Worker] = []
        self.every: list[_Worker] = []
        self.tags: dict[Any, Any] = {}  # the runs' interned tags, shared (they are immutable)
        self.aio: Any = None  # the coroutine actors' event loop host, shared by the runs
        self.procs = ProcWorkers()  # process actors' children, reused

    def run(self, fn: Callable[..., object], *args: Any) -> Task:
        try:
            worker = self.idle.pop()
        except IndexError:
            worker = _Worker(self, len(self.every))
            self.every.append(worker)
        task = Task()
        worker.jobs.put((fn, args, task))
        return task

    def loop_host(self) -> Any:
        """The event loop (in a thread of its own) for the runs' coroutine actors, started on
        first use."""
        if self.aio is None:
            from tracer.engine.actors.coroutine import AioHost  # noqa: PLC0415 (coroutines only)
            self.aio = AioHost()
            self.aio.start()
        return self.aio

    def close(self, timeout: float = 2.0) -> None:
        """End every worker (a worker still running an actor ends when that actor does) and
        the event loop."""
        if self.aio is not None:
            self.aio.stop(timeout)
            self.aio = None
        self.procs.close()
        for w in self.every:
            w.jobs.put(None)
        for w in self.every:
            w.thread.join(timeout)
        self.every.clear()
        self.idle.clear()

    def __enter__(self) -> Workers:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# ---------------------------------------------------------------------------------------------
# reusable child processes, for exploration
#
# Starting a process actor's child costs tens of milliseconds (fork, unpickling its
# arguments), more than the rest of a small schedule. An exploration keeps its children
# between schedules: a worker process runs one process actor's body per job, then waits for
# the next. The job's arguments are exactly those a new child would get (the schedule's own
# primitives, fresh multiprocessing locks, events and shared memory, and its pipes), pickled
# the way multiprocessing pickles them for a child being started (``_Spawning``): a lock is
# reopened by its name, as a spawned child reopens it; a file descriptor (a pipe's, a shared
# memory arena's) travels over multiprocessing's resource sharer instead of the start-up
# message. Nothing of one schedule is left in the worker for the next: the job's objects are
# dropped (and collected) before the worker says it is done.
#
# Not under the ``fork`` start method: its locks have no name, only inheritance can pass
# them (each schedule then starts its children, as a run does).

JOBS_PER_WORKER = 1000  # then the worker is replaced (what a job may leave stays bounded)


class _Spawning:
    """Stands in for the Popen of a child being started while a job's arguments are pickled:
    multiprocessing lets its locks and shared memory be pickled only then."""

    @staticmethod
    def duplicate_for_child(fd: int) -> int:
        return fd

    @staticmethod
    def DupFd(fd: int) -> Any:  # (multiprocessing's name)
        from multiprocessing import resource_sharer  # noqa: PLC0415
        return resource_sharer.DupFd(fd)


def pickle_job(args: tuple[Any, ...]) -> bytes:
    """``args`` pickled for a worker process as for a child being started."""
    from multiprocessing import context  # noqa: PLC0415
    from multiprocessing.reduction import ForkingPickler  # noqa: PLC0415
    context.set_spawning_popen(_Spawning())  # type: ignore[arg-type]
    try:
        return bytes(ForkingPickler.dumps(args))
    finally:
        context.set_spawning_popen(None)


class _ProcWorker:
    """A worker process and the parent's end of its control pipe."""

    def __init__(self, mp: Any, target: Callable[..., object]) -> None:
        self.conn, child = mp.Pipe(duplex=True)
        self.proc = mp.Process(target=target, args=(child, os.getpid()), daemon=True,
                               name="tracer:worker")
        try:
            self.proc.start()
        finally:
            child.close()
        self.method = str(mp.get_start_method())
        self.jobs = 0
        self.dead = False


class Job:
    """One process actor's body run by a worker process: stands in for the
    ``multiprocessing.Process`` of its child (``is_alive``, ``join``, ``kill``, ``pid``,
    ``exitcode``). Its end is the worker's word that the job is over, or the worker's death
    (then ``exitcode`` is the worker's)."""

    def __init__(self, pool: ProcWorkers, worker: _ProcWorker) -> None:
        self.pool = pool
        self.worker = worker
        self.done = False
        self.exitcode: int | None = None
        self.mu = threading.Lock()

    @property
    def pid(self) -> int | None:
        return int(self.worker.proc.pid)

    def _check(self, timeout: float | None) -> None:
        with self.mu:
            if self.done:
                return
            w = self.worker
            try:
                if not w.conn.poll(timeout):
                    if w.proc.is_alive():
                        return
                    raise EOFError
                w.conn.recv_bytes()
                self.exitcode = 0
                self.pool.returned(w)
            except (EOFError, OSError):
                w.dead = True
                w.proc.join(1.0)
                self.exitcode = w.proc.exitcode
                self.pool.returned(w)
            self.done = True

    def is_alive(self) -> bool:
        self._check(0)
        return not self.done

    def join(self, timeout: float | None = None) -> None:
        self._check(timeout)

    def kill(self) -> None:
        """The job will not stop: its worker is killed (and replaced for the next job)."""
        self.worker.dead = True
        self.worker.proc.kill()


class ProcWorkers:
    """Worker processes that run process actors' bodies, one job at a time each."""

    def __init__(self) -> None:
        self.idle: dict[str, list[_ProcWorker]] = {}  # start method -> idle workers
        self.every: list[_ProcWorker] = []
        self.mu = threading.Lock()
        self.shared_fds = False

    def start(self, mp: Any, target: Callable[..., object], args: tuple[Any, ...]) -> Job:
        """Run ``args`` (pickled as for a new child) on an idle worker of start method
        ``mp`` (started if none), whose loop is ``target``."""
        blob = pickle_job(args)
        self.shared_fds = True
        method = mp.get_start_method()
        with self.mu:
            idle = self.idle.setdefault(method, [])
            worker = None
            while idle and worker is None:
                worker = idle.pop()
                if not worker.proc.is_alive():  # (killed meanwhile, from outside)
                    self.every.remove(worker)
                    worker = None
        if worker is None:
            worker = _ProcWorker(mp, target)
            with self.mu:
                self.every.append(worker)
        worker.jobs += 1
        try:
            worker.conn.send_bytes(blob)
        except (OSError, ValueError):
            worker.dead = True
        return Job(self, worker)

    def returned(self, worker: _ProcWorker) -> None:
        """A worker's job is over: it waits for the next, unless it died or has served its
        share (then it is stopped)."""
        if worker.dead or worker.jobs >= JOBS_PER_WORKER:
            self._stop(worker)
            return
        with self.mu:
            self.idle.setdefault(worker.method, []).append(worker)

    def _stop(self, worker: _ProcWorker, grace: float = 2.0) -> None:
        with self.mu:
            if worker in self.every:
                self.every.remove(worker)
            for idle in self.idle.values():
                if worker in idle:
                    idle.remove(worker)
        try:
            worker.conn.send_bytes(b"")
        except (OSError, ValueError):
            pass
        worker.proc.join(grace)
        if worker.proc.is_alive():
            worker.proc.kill()
            worker.proc.join(grace)
        worker.conn.close()

    def close(self) -> None:
        """Stop every worker (idle ones at once; a busy one is killed), and the resource
        sharer that passed the jobs' descriptors: nothing of the exploration outlives it."""
        for w in list(self.every):
            self._stop(w)
        if self.shared_fds:
            from multiprocessing import resource_sharer  # noqa: PLC0415
            resource_sharer.stop()
            self.shared_fds = False
