"""What one traced operation costs, end to end.

Runs a scenario of 100,000 lock operations (50,000 acquire + release pairs) through the engine,
including building and writing the trace file, and the same operations on a bare
threading.Lock in the same process. Prints µs per operation and the ratio, as medians of
several runs (this machine is shared and noisy). Then the same for one coroutine actor
(asyncio.Lock) and one process actor (multiprocessing.Lock), beside their bare primitives.

    .venv/bin/python bench/record.py [--runs 5] [--ops 100000]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import statistics
import tempfile
import threading
import time
from pathlib import Path

from tracer import load_scenario_text, run_plan


def bare(ops: int, actors: int) -> float:
    lock = threading.Lock()
    per = ops // actors // 2

    def work() -> None:
        for _ in range(per):
            lock.acquire()
            lock.release()

    threads = [threading.Thread(target=work) for _ in range(actors)]
    t = time.perf_counter()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    return time.perf_counter() - t


def bare_other(kind: str, ops: int) -> float:
    """The same pairs on a bare asyncio.Lock (in a loop) or multiprocessing.Lock."""
    per = ops // 2
    if kind == "coroutine":
        async def work() -> float:
            lock = asyncio.Lock()
            t = time.perf_counter()
            for _ in range(per):
                await lock.acquire()
                lock.release()
            return time.perf_counter() - t
        return asyncio.run(work())
    lock = multiprocessing.Lock()
    t = time.perf_counter()
    for _ in range(per):
        lock.acquire()
        lock.release()
    return time.perf_counter() - t


def traced(ops: int, actors: int, out: Path, kind: str = "thread") -> tuple[float, float, int]:
    per = ops // actors // 2
    plan = load_scenario_text(f"""
name: bench-record
timeout: 600
primitives: {{A: lock}}
actors:
  - name: w
    kind: {kind}
    count: {actors}
    steps:
      - repeat: {per}
        steps: [{{acquire: A}}, {{release: A}}]
""")
    t = time.perf_counter()
    result = run_plan(plan)
    ran = time.perf_counter() - t
    result.write(out)
    total = time.perf_counter() - t
    assert result.status == "ok", result.detail
    return total, ran, result.event_count


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--ops", type=int, default=100_000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "trace.json"
        for actors in (1, 4):
            b, tot, ran = [], [], []
            events = 0
            for _ in range(args.runs):
                b.append(bare(args.ops, actors))
                total, run_only, events = traced(args.ops, actors, out)
                tot.append(total)
                ran.append(run_only)
            mb, mt, mr = (statistics.median(x) for x in (b, tot, ran))
            us = 1e6 / args.ops
            print(f"{actors} actor(s), {args.ops:,} ops, {events:,} events, "
                  f"trace {out.stat().st_size / 1e6:.1f} MB, median of {args.runs}:")
            print(f"  bare threading.Lock      {mb * us:7.3f} us/op")
            print(f"  traced, run only         {mr * us:7.3f} us/op")
            print(f"  traced, run + write      {mt * us:7.3f} us/op   "
                  f"(ratio to bare {mt / mb:.1f}x; target <= 3 us/op)")
        for kind in ("coroutine", "process"):
            b, tot = [], []
            for _ in range(args.runs):
                b.append(bare_other(kind, args.ops))
                tot.append(traced(args.ops, 1, out, kind)[0])
            mb, mt = statistics.median(b), statistics.median(tot)
            us = 1e6 / args.ops
            print(f"1 {kind} actor, {args.ops:,} ops, median of {args.runs}: bare "
                  f"{mb * us:.3f} us/op, traced run + write {mt * us:.3f} us/op "
                  f"(ratio {mt / mb:.1f}x)")


if __name__ == "__main__":
    main()
