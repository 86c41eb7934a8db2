"""How fast `tracer analyze` is on a big trace, against json.load of the same file.

Generates a trace of 1,000,000 events (64 actors, 32 locks, 64 variables; most accesses under
the variable's lock, a few without it, so there are races), then, in one run and as medians of
several: `json.load` of the file, and the analyses (reading and checking the trace included,
graphs excluded), with the peak memory (tracemalloc) of each against the file size.

    .venv/bin/python bench/analyze.py [--events 1000000] [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

from tracer.analyze import analyze, load_trace_data

ACTORS, LOCKS, VARS = 64, 32, 64


def generate(path: Path, n_events: int, seed: int = 1) -> int:
    """Write a synthetic but well-formed trace: each actor repeats `with lock: read; write`
    on random variables; one access in 500 skips the lock (a race)."""
    rng = random.Random(seed)
    actors = [f"w{i}" for i in range(ACTORS)]
    lines: list[str] = []
    seq = 0
    ts = 0.0
    free = [True] * LOCKS

    def ev(actor: str, op: str, target: str | None = None, **kw: object) -> None:
        nonlocal seq, ts
        ts += 1e-6
        d: dict[str, object] = {"seq": seq, "ts": round(ts, 6), "actor": actor, "op": op}
        if target is not None:
            d["target"] = target
        d.update(kw)
        lines.append(json.dumps(d, ensure_ascii=False))
        seq += 1

    for a in actors:
        ev(a, "start")
    values = [0] * VARS
    while seq < n_events - 2 * ACTORS:
        a = actors[rng.randrange(ACTORS)]
        v = rng.randrange(VARS)
        lock = v % LOCKS
        var = f"v{v}"
        if rng.random() < 0.002:  # unprotected: a race
            ev(a, "read", var, value=values[v])
            values[v] += 1
            ev(a, "write", var, value=values[v])
            continue
        if not free[lock]:
            continue
        name = f"L{lock}"
        ev(a, "acquire", name, phase="call")
        ev(a, "acquire", name, phase="return", result="ok")
        ev(a, "read", var, value=values[v])
        values[v] += 1
        ev(a, "write", var, value=values[v])
        ev(a, "release", name)
    for a in actors:
        ev(a, "end", result="ok")
    scenario = {
        "name": "bench-analyze",
        "primitives": {f"L{i}": "lock" for i in range(LOCKS)},
        "shared": {f"v{i}": 0 for i in range(VARS)},
        "actors": [{"name": a, "kind": "thread", "steps": []} for a in actors],
    }
    head = {
        "format": "tracer-trace/1", "scenario": scenario,
        "meta": {"tracer_version": "bench", "python": "", "started_at": "", "mode": "run",
                 "seed": None},
        "actors": [{"name": a, "kind": "thread", "pid": 1, "tid": i}
                   for i, a in enumerate(actors)],
    }
    text = json.dumps(head, ensure_ascii=False)[:-1] + ',\n"events":[\n' + ",\n".join(lines)
    text += '\n],\n"outcome":{"status":"ok","detail":""},\n"final":' + json.dumps(
        {f"v{i}": values[i] for i in range(VARS)}) + "}\n"
    path.write_text(text, encoding="utf-8")
    return seq


def timed(fn: Callable[[], object]) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def peak_memory(fn: Callable[[], object]) -> int:
    """Peak bytes allocated by Python while ``fn`` runs (a separate run: tracemalloc is slow)."""
    tracemalloc.start()
    fn()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "big.json"
        n = generate(path, args.events)
        size = path.stat().st_size
        print(f"trace: {n:,} events, {size / 1e6:.0f} MB ({ACTORS} actors, {LOCKS} locks, "
              f"{VARS} variables)")
        found: list[str] = []

        def load() -> None:
            with path.open(encoding="utf-8") as f:
                json.load(f)

        def run() -> None:
            report = analyze(load_trace_data(path))
            found[:] = [f.kind for f in report.findings]

        loads, analyses = [], []
        for _ in range(args.runs):
            loads.append(timed(load))
            analyses.append(timed(run))
        mem_load, mem_an = peak_memory(load), peak_memory(run)
        jl, an = statistics.median(loads), statistics.median(analyses)
        kinds = {k: found.count(k) for k in sorted(set(found))}
        print(f"json.load: {jl:.2f} s (peak {mem_load / 1e6:.0f} MB)")
        print(f"analyze:   {an:.2f} s = {an / jl:.1f}x json.load (target <= 5x), "
              f"peak {mem_an / 1e6:.0f} MB = {mem_an / size:.1f}x the file (target <= 3x)")
        print(f"findings: {kinds}  (times: medians of {args.runs} runs)")


if __name__ == "__main__":
    main()
