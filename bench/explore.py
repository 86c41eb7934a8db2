"""Exploration speed: schedules per second, and how many schedules each strategy needed to
first hit the bug, on the scenarios of the explore issue (medians over several seeds):

- rare ABBA: two threads, the second sleeps 0.5 s before taking the locks in the opposite
  order (a real run never deadlocks);
- bank: two unlocked withdrawals half a second apart (the overdraft: an invariant);
- three coroutine dining philosophers (a real run never deadlocks);
- the five dining philosophers (threads, bundled scenario).

Each schedule is run on the real primitives and analyzed (what ``tracer explore`` does).

First, as a user sees it: the wall time of the ``tracer explore`` command (``env time -f
"%e %M"``, start-up included; schedules/s = runs / wall seconds, the median of ``--repeat``
commands) on the rare ABBA and on ``scenarios/process_deadlock.yaml`` (process actors), each
with the target of issue 15 beside it.

    .venv/bin/python bench/explore.py [--runs 300] [--seeds 5] [--dfs-runs 5000]
        [--cli-runs 5000] [--process-runs 500] [--repeat 3] [--cli-only]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tracer import load_scenario_text
from tracer.api import explore

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from test_explore import COROUTINE_PHILOSOPHERS, RARE_ABBA, bank  # noqa: E402

# scenario -> (YAML, the kind of problem to hit, PCT's depth: the bug's depth, here the
# number of preemptions the problem needs)
CASES = {
    "rare ABBA (2 threads)": (RARE_ABBA, "deadlock", 3),
    "bank overdraft (2 threads)": (bank(locked=False), "invariant", 3),
    "3 coroutine philosophers": (COROUTINE_PHILOSOPHERS, "deadlock", 3),
    "5 philosophers (threads)": ((ROOT / "scenarios" / "dining_philosophers.yaml").read_text(
        encoding="utf-8"), "deadlock", 5),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=300)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--dfs-runs", type=int, default=5000, help="dfs: at most this many")
    ap.add_argument("--cli-runs", type=int, default=5000, help="rare ABBA: --runs of the command")
    ap.add_argument("--process-runs", type=int, default=500,
                    help="process_deadlock: --runs of the command")
    ap.add_argument("--repeat", type=int, default=3, help="commands timed per figure")
    ap.add_argument("--cli-only", action="store_true", help="only the commands' figures")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        rare = Path(tmp) / "rare_abba.yaml"
        rare.write_text(RARE_ABBA, encoding="utf-8")
        print("tracer explore, as a user runs it (wall time of the command, start-up included, "
              f"median of {args.repeat}):")
        for label, path, runs, target in (
                ("rare ABBA (2 threads)", rare, args.cli_runs, 3000),
                ("process_deadlock (2 processes)", ROOT / "scenarios" / "process_deadlock.yaml",
                 args.process_runs, 150)):
            walls, rss = [], []
            for _ in range(args.repeat):
                wall, kb = command(["explore", str(path), "--runs", str(runs), "--traces",
                                    str(Path(tmp) / "traces")], tmp)
                walls.append(wall)
                rss.append(kb)
            wall = statistics.median(walls)
            print(f"  {label:32} --runs {runs:<6} {wall:6.2f} s  {runs / wall:8,.0f} "
                  f"schedules/s (target >= {target:,})  peak RSS {max(rss) / 1024:.0f} MB")
    if args.cli_only:
        return
    print(f"{'scenario':28} {'strategy':8} {'schedules/s':>12} {'first hit after':>24}")
    for label, (text, kind, depth) in CASES.items():
        plan = load_scenario_text(text)
        for strategy in ("random", "pct"):
            rates, firsts = [], []
            for seed in range(args.seeds):
                t = time.perf_counter()
                found = explore(plan, runs=args.runs, seed=seed, strategy=strategy, depth=depth)
                rates.append(args.runs / (time.perf_counter() - t))
                hits = [g["first_run"] for g in found.groups.values() if g["kind"] == kind]
                firsts.append(min(hits) + 1 if hits else None)
            name = f"pct d={depth}" if strategy == "pct" else strategy
            print(f"{label:28} {name:8} {statistics.median(rates):12.0f} "
                  f"{_median(firsts):>24}")
        rates, firsts = [], []
        for _ in range(max(1, args.seeds // 2)):
            t = time.perf_counter()
            found = explore(plan, strategy="dfs", runs=args.dfs_runs)
            rates.append((found.runs + found.pruned) / (time.perf_counter() - t))
            hits = [g["first_run"] for g in found.groups.values() if g["kind"] == kind]
            firsts.append(min(hits) + 1 if hits else None)
        done = (f"complete: {found.runs} distinct" if found.complete
                else f"not complete after {found.runs}")
        print(f"{label:28} {'dfs':8} {statistics.median(rates):12.0f} "
              f"{_median(firsts):>24}   ({done})")


def command(args: list[str], cwd: str) -> tuple[float, int]:
    """Run ``tracer ARGS`` under GNU time: its wall seconds and peak RSS (KB)."""
    tracer = Path(sys.executable).with_name("tracer")
    proc = subprocess.run(["env", "time", "-f", "TIME %e %M", str(tracer), *args], cwd=cwd,
                          text=True, capture_output=True, timeout=3600, check=False)
    if proc.returncode not in (0, 1):
        raise SystemExit(f"tracer {' '.join(args)} failed ({proc.returncode}): {proc.stderr}")
    line = next(x for x in reversed(proc.stderr.splitlines()) if x.startswith("TIME "))
    _, wall, kb = line.split()
    return float(wall), int(kb)


def _median(values: list[int | None]) -> str:
    got = [v for v in values if v is not None]
    if not got:
        return "not found"
    missed = len(values) - len(got)
    return f"{statistics.median(got):.0f}" + (f" ({missed} seeds missed)" if missed else "")


if __name__ == "__main__":
    main()
