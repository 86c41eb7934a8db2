"""Replay throughput: events per second of `tracer replay` on a 100,000-event trace of two
threads, and on 20,000-event traces of two coroutines and of two processes, against the
recording run's own speed (medians of several runs).

    .venv/bin/python bench/replay.py [--events 100000] [--process-events 20000] [--runs 3]
"""

from __future__ import annotations

import argparse
import statistics
import time

from tracer import load_scenario_text, run_plan
from tracer.analyze import parse_trace_data
from tracer.engine.schedule.replay import ReplayScheduler, first_difference, recorded_steps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=100_000)
    ap.add_argument("--process-events", type=int, default=20_000)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    measure("thread", args.events, args.runs)
    measure("coroutine", args.process_events, args.runs)
    measure("process", args.process_events, args.runs)


def measure(kind: str, events: int, runs: int) -> None:
    # each repetition is 4 events (acquire call and return, log, release), 2 actors
    per = events // (2 * 4)
    body = "[{with: L, steps: [{log: x}]}]"
    plan = load_scenario_text(f"""
name: bench-replay
timeout: 600
primitives: {{L: lock}}
actors:
  - {{name: a, kind: {kind}, steps: [{{repeat: {per}, steps: {body}}}]}}
  - {{name: b, kind: {kind}, steps: [{{repeat: {per}, steps: {body}}}]}}
""")
    rec_rates, rep_rates = [], []
    n = 0
    for _ in range(runs):
        t = time.perf_counter()
        rec = run_plan(plan)
        rec_time = time.perf_counter() - t
        data = parse_trace_data(rec.to_json())
        n = len(data.events)
        sched = ReplayScheduler(recorded_steps(data.events), patience=10.0)
        t = time.perf_counter()
        rep = run_plan(plan, sched, mode="replay")
        rep_time = time.perf_counter() - t
        same = sched.divergence is None and first_difference(
            data.events, parse_trace_data(rep.to_json()).events) is None
        assert same, sched.divergence
        rec_rates.append(n / rec_time)
        rep_rates.append(n / rep_time)
    rec_r, rep_r = statistics.median(rec_rates), statistics.median(rep_rates)
    target = " (target >= 20,000)" if kind == "thread" else ""
    print(f"{n:,}-event trace of 2 {kind} actors (lock, log), median of {runs}:")
    print(f"  recording run: {rec_r:10,.0f} events/s (start-up included)")
    print(f"  replay:        {rep_r:10,.0f} events/s{target}, identical; "
          f"{rec_r / rep_r:.1f}x slower than the recording")


if __name__ == "__main__":
    main()
