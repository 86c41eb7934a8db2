"""Exploration speed: schedules per second on the two-thread opposite-order scenario (the
second actor sleeps 0.5 s first, so a real run never deadlocks), and how many schedules the
random strategy needed to hit the deadlock first, over several seeds (medians).

    .venv/bin/python bench/explore.py [--runs 200] [--seeds 5]
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

from tracer import load_scenario_text, run_plan
from tracer.analyze import find_all, parse_trace_data
from tracer.engine._explore import make_scheduler, schedule_seed

RARE_ABBA = """
name: rare-abba
primitives: {A: lock, B: lock}
actors:
  - {name: first, kind: thread, steps: [{acquire: A}, {acquire: B}, {release: B}, {release: A}]}
  - name: second
    kind: thread
    steps: [{sleep: 0.5}, {acquire: B}, {acquire: A}, {release: A}, {release: B}]
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--seeds", type=int, default=5)
    args = ap.parse_args()
    plan = load_scenario_text(RARE_ABBA)
    for strategy in ("random", "pct"):
        measure(plan, strategy, args.runs, args.seeds)


def measure(plan: Any, strategy: str, runs: int, seeds: int) -> None:
    rates, firsts, clean_rates = [], [], []
    for seed in range(seeds):
        first = None
        t = time.perf_counter()
        clean_time, clean_n = 0.0, 0
        for run in range(runs):
            t1 = time.perf_counter()
            result = run_plan(plan, make_scheduler(strategy, schedule_seed(seed, run)),
                              mode="explore")
            kinds = {f.kind for f in find_all(parse_trace_data(result.to_json()))}
            if result.status == "ok":
                clean_time += time.perf_counter() - t1
                clean_n += 1
            if first is None and "deadlock" in kinds:
                first = run
        rates.append(runs / (time.perf_counter() - t))
        clean_rates.append(clean_n / clean_time if clean_time else 0.0)
        firsts.append(first if first is not None else runs)
    print(f"rare ABBA, {strategy} strategy, {runs} schedules x {seeds} seeds (medians):")
    print(f"  {statistics.median(rates):.0f} schedules/s overall (target >= 1,000); "
          f"{statistics.median(clean_rates):.0f}/s for the schedules that do not deadlock")
    print(f"  first deadlock after {statistics.median(firsts):.0f} schedules "
          f"(per seed: {firsts})")


if __name__ == "__main__":
    main()
