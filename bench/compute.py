"""What one unit of a ``compute: N`` step takes here: ``work(N)`` timed in this process, on
one thread (the median of several runs, and the fastest), against the 1 ms a unit is meant to
take (tracer/engine/_compute.py's STEPS_PER_UNIT); then the same work in two threads at once
and in two processes at once, to show the GIL (the threads' wall time is about twice one
worker's, the processes' about one worker's on 2+ cores).

    .venv/bin/python bench/compute.py [--units 200] [--runs 7]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import platform
import statistics
import threading
import time
from collections.abc import Callable
from typing import Any

from tracer.engine._compute import STEPS_PER_UNIT, work


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--units", type=int, default=200)
    ap.add_argument("--runs", type=int, default=7)
    args = ap.parse_args()
    units, runs = args.units, args.runs
    print(f"Python {platform.python_version()} ({platform.python_implementation()}), "
          f"{platform.machine()}, {os.cpu_count()} CPUs; STEPS_PER_UNIT = {STEPS_PER_UNIT:,}")
    work(units)  # (warm up)
    one, cpu = [], []
    for _ in range(runs):
        c = time.thread_time()
        one.append(_timed(lambda: work(units)))
        cpu.append(time.thread_time() - c)
    med, best, med_cpu = statistics.median(one), min(one), statistics.median(cpu)
    print(f"one thread, compute {units}: median {med:.3f} s, fastest {best:.3f} s, "
          f"median CPU time {med_cpu:.3f} s")
    print(f"  one unit = {med / units * 1000:.3f} ms (fastest {best / units * 1000:.3f} ms, "
          f"CPU {med_cpu / units * 1000:.3f} ms); for 1 ms a unit at the median, "
          f"STEPS_PER_UNIT would be {round(STEPS_PER_UNIT * units / med / 1000):,}")
    two_threads = statistics.median(
        _both(threading.Thread, threading.Event, units) for _ in range(runs))
    print(f"two threads, compute {units} each: median wall {two_threads:.3f} s "
          f"= {two_threads / med:.2f} x one (the GIL: they take turns)")
    ctx = multiprocessing.get_context("spawn" if os.name != "posix" else "forkserver")
    two_procs = statistics.median(
        _both(ctx.Process, ctx.Event, units, ctx.SimpleQueue) for _ in range(max(3, runs // 2)))
    print(f"two processes, compute {units} each: median wall {two_procs:.3f} s "
          f"= {two_procs / med:.2f} x one (a GIL each)")


def _timed(fn: Callable[[], object]) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def _both(make: Callable[..., Any], event: Callable[[], Any], units: int,
          queue: Callable[[], Any] | None = None) -> float:
    """The wall time of two workers doing ``work(units)`` at once, from the moment both are
    started and told to go to the moment the later one is done (not counting their start:
    a process takes a while to start)."""
    go, ready = event(), [event(), event()]
    done = queue() if queue is not None else _Done()
    workers = [make(target=_worker, args=(go, ready[i], done, units)) for i in range(2)]
    for w in workers:
        w.start()
    for r in ready:
        r.wait()
    t = time.perf_counter()  # (CLOCK_MONOTONIC: one clock for every process of the machine)
    go.set()
    ends = [done.get() for _ in workers]
    for w in workers:
        w.join()
    return max(ends) - t


class _Done:
    """What a thread worker reports its end time on (a list: threads share memory)."""

    def __init__(self) -> None:
        self.ends: list[float] = []
        self.cond = threading.Condition()

    def put(self, t: float) -> None:
        with self.cond:
            self.ends.append(t)
            self.cond.notify_all()

    def get(self) -> float:
        with self.cond:
            self.cond.wait_for(lambda: bool(self.ends))
            return self.ends.pop()


def _worker(go: Any, ready: Any, done: Any, units: int) -> None:
    ready.set()
    go.wait()
    work(units)
    done.put(time.perf_counter())


if __name__ == "__main__":
    main()
