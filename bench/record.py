"""What one traced operation costs through `tracer run`, end to end, as a user runs it.

Times the whole command ``tracer run SCENARIO -o TRACE -q`` in a subprocess (GNU time's wall
time and peak RSS: ``env time -f "%e %M"``), which runs the scenario, writes the trace and
analyzes it, for scenarios of N lock operations (N/2 acquire + release pairs; 100,000 by
default) and N/5, and for an empty one (interpreter and tracer start-up, the actors started
and stopped). Prints, as medians of several runs interleaved (this machine is shared and
noisy):

- the whole command for N ops (what a user waits for), and its peak RSS;
- per op, N ops minus the empty run (start-up subtracted);
- per op, from the difference of the N and N/5 runs (start-up and fixed costs cancel);

beside the target (issue 15: <= 1.5 us per op end to end), and a bare threading.Lock's pair
in this process for scale. ``--tracer`` times another install's ``tracer`` (a before/after
comparison in one run: ``--tracer /work/main/.venv/bin/tracer``).

    .venv/bin/python bench/record.py [--runs 5] [--ops 100000] [--kinds thread,thread4]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

TARGET_US = 1.5  # issue 15: per op, end to end incl. trace and analysis
KINDS = {"thread": ("thread", 1), "thread4": ("thread", 4), "coroutine": ("coroutine", 1),
         "process": ("process", 1)}


def scenario(kind: str, actors: int, ops: int) -> str:
    per = max(ops // actors // 2, 0)
    steps = (f"[{{repeat: {per}, steps: [{{acquire: A}}, {{release: A}}]}}]" if per
             else "[{sleep: 0}]")
    return f"""name: bench-record
timeout: 600
primitives: {{A: lock}}
actors:
  - name: w
    kind: {kind}
    count: {actors}
    steps: {steps}
"""


def timed(tracer: str, path: Path, out: Path) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of ``tracer run path -o out -q``, by GNU time."""
    time_bin = shutil.which("time") or "/usr/bin/time"
    proc = subprocess.run([time_bin, "-f", "%e %M", tracer, "run", str(path), "-o", str(out),
                           "-q"], capture_output=True, text=True, timeout=900, check=False)
    if proc.returncode != 0:
        sys.exit(f"tracer run {path} exited {proc.returncode}:\n{proc.stderr}")
    wall, rss = proc.stderr.strip().splitlines()[-1].split()
    return float(wall), int(rss) / 1024


def bare_pair_us(pairs: int = 200_000) -> float:
    lock = threading.Lock()
    t = time.perf_counter()
    for _ in range(pairs):
        lock.acquire()
        lock.release()
    return (time.perf_counter() - t) / pairs * 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--ops", type=int, default=100_000)
    ap.add_argument("--kinds", default="thread,thread4",
                    help=f"comma-separated, of {', '.join(KINDS)}")
    ap.add_argument("--tracer", default=str(Path(sys.executable).with_name("tracer")),
                    help="the tracer command to time (default: this venv's)")
    args = ap.parse_args()
    if not os.access(args.tracer, os.X_OK):
        sys.exit(f"no tracer command at {args.tracer}: give --tracer PATH")
    print(f"`tracer run` end to end ({args.tracer}), wall time and peak RSS by GNU time, "
          f"median of {args.runs}; bare threading.Lock pair here: {bare_pair_us():.3f} us")
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.kinds.split(","):
            kind, actors = KINDS[name]
            sizes = {"empty": 0, "small": args.ops // 5, "full": args.ops}
            paths = {}
            for key, ops in sizes.items():
                paths[key] = Path(tmp) / f"{name}-{key}.yaml"
                paths[key].write_text(scenario(kind, actors, ops), encoding="utf-8")
            walls: dict[str, list[float]] = {k: [] for k in sizes}
            rss: dict[str, list[float]] = {k: [] for k in sizes}
            for _ in range(args.runs):  # interleaved: a burst of load spreads over all three
                for key in sizes:
                    w, m = timed(args.tracer, paths[key], Path(tmp) / "t.json")
                    walls[key].append(w)
                    rss[key].append(m)
            med = {k: statistics.median(v) for k, v in walls.items()}
            full, small = sizes["full"], sizes["small"]
            minus_start = (med["full"] - med["empty"]) / full * 1e6
            by_diff = (med["full"] - med["small"]) / (full - small) * 1e6
            print(f"{actors} {kind} actor(s), {full:,} lock ops:")
            print(f"  whole command          {med['full']:6.2f} s, peak RSS "
                  f"{statistics.median(rss['full']):.0f} MB "
                  f"(empty run {med['empty']:.2f} s, {small:,} ops {med['small']:.2f} s)")
            print(f"  per op, minus start-up {minus_start:6.2f} us   (target <= {TARGET_US} us)")
            print(f"  per op, {full:,} - {small:,} ops {by_diff:6.2f} us   "
                  f"(target <= {TARGET_US} us)")


if __name__ == "__main__":
    main()
