"""Reusable actor threads, for exploration: starting a thread costs more than running a small
schedule (the new thread must be scheduled before ``start`` returns), so an exploration keeps
its actor threads between schedules, its event loop for coroutine actors, and the interned
event tags (which never change). A worker runs one actor's body at a time; the ``Task``
it returns stands in for the ``threading.Thread`` (``join``, ``is_alive``).

Workers live only as long as the ``Workers`` object is open: ``close`` ends them all (the
exploration closes it when it ends, so no thread outlives it)."""

from __future__ import annotations

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
