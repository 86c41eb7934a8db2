"""The one place where a primitive's real backing is chosen.

The flavour (thread / process / coroutine) comes from the kinds of the actors that use the
primitive (``Plan.flavour``, decided when the scenario is checked).
"""

from __future__ import annotations

import queue
import threading
from concurrent.futures import ThreadPoolExecutor
from multiprocessing import Pipe as mp_pipe
from typing import Any

from tracer.engine import _prims as P
from tracer.engine._aio import make_aio
from tracer.engine._proc import Shared, make_mp
from tracer.scenario import Plan
from tracer.scenario._model import (
    BarrierSpec,
    BoundedSemaphoreSpec,
    ConditionSpec,
    PipeSpec,
    PoolSpec,
    QueueSpec,
    SemaphoreSpec,
)


class UnsupportedScenario(Exception):
    """The scenario is valid but needs something this engine cannot run yet."""


def make_primitives(plan: Plan, mpctx: Any = None, shared: Shared | None = None,
                    manager: Any = None) -> dict[str, P.Prim]:
    """Build every primitive of ``plan`` on its real backing."""
    specs = plan.scenario.primitives
    out: dict[str, P.Prim] = {}
    # locks first: a condition may be built on one
    order = sorted(specs, key=lambda n: specs[n].type != "lock" and specs[n].type != "rlock")
    for name in order:
        flavour = plan.flavour.get(name, "thread")
        if flavour == "coroutine":
            out[name] = make_aio(specs[name].type, name, specs[name], out)
        elif flavour == "process" and specs[name].type == "pool":
            spec = specs[name]
            assert isinstance(spec, PoolSpec)
            out[name] = P.Pool(name, None, spec.workers)  # the Runner starts its processes
        elif flavour == "process":
            assert shared is not None
            out[name] = make_mp(specs[name].type, name, specs[name], out, mpctx, shared,
                                manager)
        else:
            out[name] = _thread_flavour(name, specs[name], out, plan)
    return out


def _thread_flavour(name: str, spec: Any, made: dict[str, P.Prim], plan: Plan) -> P.Prim:
    t = spec.type
    if t == "lock":
        return P.Lock(name, threading.Lock())
    if t == "rlock":
        return P.RLock(name, threading.RLock())
    if t == "semaphore":
        assert isinstance(spec, SemaphoreSpec)
        return P.Semaphore(name, threading.Semaphore(spec.value), spec.value)
    if t == "bounded_semaphore":
        assert isinstance(spec, BoundedSemaphoreSpec)
        return P.BoundedSemaphore(name, threading.BoundedSemaphore(spec.value), spec.value)
    if t == "event":
        return P.Event(name, threading.Event())
    if t == "condition":
        assert isinstance(spec, ConditionSpec)
        lock = made.get(spec.lock) if spec.lock else None
        assert lock is None or isinstance(lock, P.LockLike)
        return P.Condition(name, threading.Condition(lock.real if lock else None), lock)
    if t == "barrier":
        assert isinstance(spec, BarrierSpec)
        return P.Barrier(name, threading.Barrier(spec.parties))
    if t == "queue":
        assert isinstance(spec, QueueSpec)
        return P.Queue(name, queue.Queue(spec.maxsize), spec.maxsize)
    if t == "pipe":
        assert isinstance(spec, PipeSpec)
        a, b = spec.between
        if spec.duplex:
            ca, cb = mp_pipe(duplex=True)
        else:
            cb, ca = mp_pipe(duplex=False)  # (receive end, send end): between[0] sends
        return P.Pipe(name, {a: ca, b: cb})
    if t == "pool":
        assert isinstance(spec, PoolSpec)
        executor = ThreadPoolExecutor(spec.workers, thread_name_prefix=f"tracer-pool:{name}")
        return P.Pool(name, executor, spec.workers)
    raise UnsupportedScenario(f"primitive type {t!r} is not supported")  # pragma: no cover
