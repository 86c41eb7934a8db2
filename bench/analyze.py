"""How fast `tracer analyze` is on a big trace, and how much memory it takes, against
`json.load` of the same file, both measured as a user runs them.

Generates a trace of 1,000,000 events (64 actors, 32 locks, 64 variables; most accesses under
the variable's lock, a few without it, so there are races), laid out as `tracer run` writes
it (tracer's own trace writer, one event per line, each with its scenario line). Then, in one
run, alternating, several times each: the wall time and peak RSS of

    env time -f "%e %M" .venv/bin/tracer analyze BIG.json --no-graphs
    env time -f "%e %M" .venv/bin/python -c 'import json; json.load(open("BIG.json"))'

(GNU time; the commands as a user types them, start-up included), and prints the medians and
their ratios beside the targets (issue 15: time <= 2x json.load's, peak RSS <= 1x json.load's).

    .venv/bin/python bench/analyze.py [--events 1000000] [--runs 5] [--keep PATH]
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from tracer.engine._seam import Tag
from tracer.trace._io import format_events, render_trace

ACTORS, LOCKS, VARS = 64, 32, 64
TIME_TARGET, RSS_TARGET = 2.0, 1.0  # x json.load's (issue 15)


def generate(path: Path, n_events: int, seed: int = 1) -> int:
    """Write a synthetic but well-formed trace with tracer's own writer: each actor repeats
    `with lock: read; write` on random variables; one access in 500 skips the lock (a
    race). Returns the number of events."""
    rng = random.Random(seed)
    actors = [f"w{i}" for i in range(ACTORS)]
    records: list[tuple[int, float, Any, dict[str, Any] | None]] = []
    tags: dict[tuple[Any, ...], Tag] = {}
    ts = 0.0
    free = [True] * LOCKS
    line_of = {"acquire": 14, "release": 14, "read": 15, "write": 16, "start": 10, "end": 10}

    def ev(actor: str, op: str, target: str | None = None, phase: str | None = None,
           result: str | None = None, payload: dict[str, Any] | None = None) -> None:
        nonlocal ts
        ts += 1e-6
        key = (actor, op, target, phase, result)
        tag = tags.get(key)
        if tag is None:
            tag = tags[key] = Tag(actor, op, target, phase, result, line_of[op])
        records.append((len(records), ts, tag, payload))

    for a in actors:
        ev(a, "start")
    values = [0] * VARS
    while len(records) < n_events - 2 * ACTORS:
        a = actors[rng.randrange(ACTORS)]
        v = rng.randrange(VARS)
        lock = v % LOCKS
        var = f"v{v}"
        if rng.random() < 0.002:  # unprotected: a race
            ev(a, "read", var, payload={"value": values[v]})
            values[v] += 1
            ev(a, "write", var, payload={"value": values[v]})
            continue
        if not free[lock]:
            continue
        name = f"L{lock}"
        ev(a, "acquire", name, "call")
        ev(a, "acquire", name, "return", "ok")
        ev(a, "read", var, payload={"value": values[v]})
        values[v] += 1
        ev(a, "write", var, payload={"value": values[v]})
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
        "scenario": scenario,
        "meta": {"tracer_version": "bench", "python": "", "started_at": "", "mode": "run",
                 "seed": None, "source": "bench.yaml"},
        "actors": [{"name": a, "kind": "thread", "pid": 1, "tid": i + 1}
                   for i, a in enumerate(actors)],
    }
    tail = {"outcome": {"status": "ok", "detail": ""},
            "final": {f"v{i}": values[i] for i in range(VARS)}}
    path.write_text(render_trace(head, format_events(records), tail), encoding="utf-8")
    return len(records)


def gnu_time(cmd: list[str]) -> tuple[float, int]:
    """(wall seconds, peak RSS in bytes) of ``cmd`` as ``env time -f "%e %M"`` reports them
    (its output thrown away; exit 0 or 1 expected: 1 is "findings")."""
    proc = subprocess.run(["env", "time", "-f", "%e %M", *cmd], stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True, check=False)
    last = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else ""
    if proc.returncode not in (0, 1) or len(last.split()) != 2:
        sys.exit(f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr}")
    secs, kb = last.split()
    return float(secs), int(kb) * 1024


def tracer_exe() -> str:
    """The tracer command beside this interpreter (the worktree's .venv/bin/tracer)."""
    here = Path(sys.executable).parent / "tracer"
    return str(here) if here.exists() else (shutil.which("tracer") or "tracer")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--keep", metavar="PATH", help="Write the trace here and keep it.")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(args.keep) if args.keep else Path(tmp) / "big.json"
        n = generate(path, args.events)
        size = path.stat().st_size
        print(f"trace: {n:,} events, {size / 1e6:.0f} MB ({ACTORS} actors, {LOCKS} locks, "
              f"{VARS} variables), written by tracer's trace writer")
        load = [sys.executable, "-c", f"import json; json.load(open({str(path)!r}))"]
        analyze = [tracer_exe(), "analyze", str(path), "--no-graphs"]
        print(f"  $ env time -f '%e %M' {' '.join(analyze)}")
        print(f"  $ env time -f '%e %M' {sys.executable} -c 'import json; "
              f"json.load(open(\"{path}\"))'")
        loads: list[tuple[float, int]] = []
        analyses: list[tuple[float, int]] = []
        for _ in range(args.runs):  # alternating: the machine's load falls on both alike
            loads.append(gnu_time(load))
            analyses.append(gnu_time(analyze))
        jl_t = statistics.median(t for t, _ in loads)
        jl_m = statistics.median(m for _, m in loads)
        an_t = statistics.median(t for t, _ in analyses)
        an_m = statistics.median(m for _, m in analyses)
        print(f"json.load:       {jl_t:5.2f} s, peak RSS {jl_m / 1e6:5.0f} MB")
        print(f"tracer analyze:  {an_t:5.2f} s = {an_t / jl_t:.2f}x json.load's "
              f"(target <= {TIME_TARGET:g}x), peak RSS {an_m / 1e6:5.0f} MB = "
              f"{an_m / jl_m:.2f}x json.load's (target <= {RSS_TARGET:g}x)")
        print(f"(medians of {args.runs} runs of each, alternating; wall time and peak RSS "
              "from GNU time)")


if __name__ == "__main__":
    main()
