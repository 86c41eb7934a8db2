"""Replay throughput: events per second of `tracer replay` on a 100,000-event thread trace,
against the recording run's own speed (medians of several runs).

    .venv/bin/python bench/replay.py [--events 100000] [--runs 3]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from tracer import load_scenario_text, run_plan
from tracer.analyze import parse_trace_data
from tracer.engine._replay import ReplayScheduler, first_difference, recorded_steps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    # each repetition is 5 events (acquire call and return, read, write, release), 2 actors
    per = args.events // (2 * 5)
    body = "[{with: L, steps: [{add: {var: n, value: 1}}]}]"
    plan = load_scenario_text(f"""
name: bench-replay
timeout: 600
primitives: {{L: lock}}
shared: {{n: 0}}
actors:
  - {{name: a, kind: thread, steps: [{{repeat: {per}, steps: {body}}}]}}
  - {{name: b, kind: thread, steps: [{{repeat: {per}, steps: {body}}}]}}
""")
    with tempfile.TemporaryDirectory() as tmp:
        rec_rates, rep_rates = [], []
        for _ in range(args.runs):
            t = time.perf_counter()
            rec = run_plan(plan)
            rec_time = time.perf_counter() - t
            text = rec.to_json()
            data = parse_trace_data(text)
            n = len(data.events)
            sched = ReplayScheduler(recorded_steps(data.events))
            t = time.perf_counter()
            rep = run_plan(plan, sched, mode="replay")
            rep_time = time.perf_counter() - t
            same = sched.divergence is None and first_difference(
                data.events, parse_trace_data(rep.to_json()).events) is None
            assert same, sched.divergence
            rec_rates.append(n / rec_time)
            rep_rates.append(n / rep_time)
            Path(tmp, "t.json").write_text(text, encoding="utf-8")
        rec_r, rep_r = statistics.median(rec_rates), statistics.median(rep_rates)
        print(f"{n:,}-event trace of 2 threads (lock-protected adds), median of {args.runs}:")
        print(f"  recording run: {rec_r:10,.0f} events/s")
        print(f"  replay:        {rep_r:10,.0f} events/s (target >= 20,000), identical; "
              f"{rec_r / rep_r:.1f}x slower than the recording")


if __name__ == "__main__":
    main()
