"""Replay throughput: events per second of `tracer replay` on a 100,000-event trace of two
threads, and on 20,000-event traces of two coroutines and of two processes, against the
recording run's own speed (medians of several runs).

First, as a user sees it: the wall time of the ``tracer replay TRACE`` command (``env time -f
"%e %M"``, start-up and the trace's reading and writing included; events/s = the trace's
events / wall seconds, the median of ``--runs`` commands) for a trace of two process actors
recorded by ``tracer run``, with the target of issue 15 beside it.

    .venv/bin/python bench/replay.py [--events 100000] [--process-events 20000] [--runs 3]
        [--cli-events 200000] [--cli-only]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tracer import load_scenario_text, run_plan
from tracer.analyze import parse_trace_data
from tracer.engine.schedule.replay import ReplayScheduler, first_difference, recorded_steps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=100_000)
    ap.add_argument("--process-events", type=int, default=20_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--cli-events", type=int, default=200_000,
                    help="events of the process trace replayed by the command")
    ap.add_argument("--cli-only", action="store_true", help="only the command's figure")
    args = ap.parse_args()
    measure_cli("process", args.cli_events, args.runs, 50_000)
    if args.cli_only:
        return
    measure("thread", args.events, args.runs)
    measure("coroutine", args.process_events, args.runs)
    measure("process", args.process_events, args.runs)


def scenario(kind: str, events: int) -> str:
    """Two actors of ``kind`` taking a lock around a log line, ``events`` events in all."""
    # each repetition is 4 events (acquire call and return, log, release), 2 actors
    per = events // (2 * 4)
    body = "[{with: L, steps: [{log: x}]}]"
    return f"""
name: bench-replay
timeout: 600
primitives: {{L: lock}}
actors:
  - {{name: a, kind: {kind}, steps: [{{repeat: {per}, steps: {body}}}]}}
  - {{name: b, kind: {kind}, steps: [{{repeat: {per}, steps: {body}}}]}}
"""


def measure_cli(kind: str, events: int, runs: int, target: int) -> None:
    """``tracer replay`` of a ``tracer run`` trace, timed as a command."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench_replay.yaml"
        path.write_text(scenario(kind, events), encoding="utf-8")
        trace = Path(tmp) / "trace.json"
        command(["run", str(path), "-o", str(trace)], tmp)
        n = len(json.loads(trace.read_text(encoding="utf-8"))["events"])
        walls, rss = [], []
        for _ in range(runs):
            wall, kb, out = command(["replay", str(trace), "-o", str(Path(tmp) / "r.json")],
                                    tmp)
            assert "identical" in out, out
            walls.append(wall)
            rss.append(kb)
        wall = statistics.median(walls)
        print(f"tracer replay of a {n:,}-event trace of 2 {kind} actors, as a user runs it "
              f"(wall time of the command, median of {runs}): {wall:.2f} s, "
              f"{n / wall:,.0f} events/s (target >= {target:,}), identical; peak RSS "
              f"{max(rss) / 1024:.0f} MB")


def command(args: list[str], cwd: str) -> tuple[float, int, str]:
    """Run ``tracer ARGS`` under GNU time: its wall seconds, peak RSS (KB) and output."""
    tracer = Path(sys.executable).with_name("tracer")
    proc = subprocess.run(["env", "time", "-f", "TIME %e %M", str(tracer), *args], cwd=cwd,
                          text=True, capture_output=True, timeout=3600, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"tracer {' '.join(args)} failed ({proc.returncode}): "
                         f"{proc.stdout}{proc.stderr}")
    line = next(x for x in reversed(proc.stderr.splitlines()) if x.startswith("TIME "))
    _, wall, kb = line.split()
    return float(wall), int(kb), proc.stdout


def measure(kind: str, events: int, runs: int) -> None:
    plan = load_scenario_text(scenario(kind, events))
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
