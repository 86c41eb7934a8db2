"""How long the watchdog takes to report a deadlock once it has formed.

The deadlock forms when the last actor of the cycle makes its blocking call (the later
``acquire ... call`` event); it is reported by the engine's ``deadlock`` event. Both times are
on the run's one clock. Also times the run end to end (until every actor thread has stopped).

    .venv/bin/python bench/watchdog.py [--runs 20]
"""

from __future__ import annotations

import argparse
import statistics
import time

from tracer import load_scenario_text, run_plan

ABBA = """
name: bench-watchdog
primitives: {A: lock, B: lock}
actors:
  - {name: t1, kind: thread, steps: [{acquire: A}, {sleep: 0.01}, {acquire: B}]}
  - {name: t2, kind: thread, steps: [{acquire: B}, {sleep: 0.01}, {acquire: A}]}
"""

PHILOSOPHERS = """
name: bench-philosophers
primitives: {f0: lock, f1: lock, f2: lock, f3: lock, f4: lock}
actors:
""" + "".join(
    f"  - {{name: p{i}, kind: thread, steps: [{{acquire: f{i}}}, {{sleep: 0.01}}, "
    f"{{acquire: f{(i + 1) % 5}}}]}}\n" for i in range(5))


def measure(text: str, runs: int) -> tuple[list[float], list[float]]:
    plan = load_scenario_text(text)
    lat, total = [], []
    for _ in range(runs):
        t = time.perf_counter()
        r = run_plan(plan)
        total.append(time.perf_counter() - t)
        assert r.status == "deadlock", r.detail
        t0 = r.t0
        formed = max(ts for _, ts, tag, _ in r.records
                     if tag.op == "acquire" and tag.phase == "call") - t0
        reported = next(ts for _, ts, tag, _ in r.records if tag.op == "deadlock") - t0
        lat.append(reported - formed)
    return lat, total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=20)
    args = ap.parse_args()
    for label, text in (("ABBA, 2 threads", ABBA), ("5 dining philosophers", PHILOSOPHERS)):
        lat, total = measure(text, args.runs)
        ms = [x * 1000 for x in lat]
        print(f"{label}: deadlock reported {statistics.median(ms):.1f} ms after it formed "
              f"(median of {args.runs}; max {max(ms):.1f} ms; target < 200 ms); whole run "
              f"{statistics.median(total) * 1000:.0f} ms median")


if __name__ == "__main__":
    main()
