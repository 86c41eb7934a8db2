"""Exploration: many schedules of one scenario, each problem reported once.

Schedules are numbered 0..N-1; schedule ``run`` uses the seed ``schedule_seed(seed, run)``, so
the findings depend only on the seed, never on how the runs are split among worker
processes (``jobs``): each worker explores a contiguous range, and the ranges' results merge
by schedule number.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from tracer.analyze import find_all, parse_trace_data
from tracer.engine import run_plan
from tracer.engine._explore import make_scheduler, schedule_seed
from tracer.scenario import Plan, plan_from_mapping

Group = dict[str, Any]


def explore_runs(plan: Plan, runs: Iterable[int], seed: int, strategy: str,
                 depth: int) -> dict[tuple[Any, ...], Group]:
    """Run the schedules ``runs``; per distinct problem (kind, actors, objects): its message,
    how many schedules hit it, the first one, and that schedule's trace text."""
    groups: dict[tuple[Any, ...], Group] = {}
    for run in runs:
        sched_seed = schedule_seed(seed, run)
        result = run_plan(plan, make_scheduler(strategy, sched_seed, depth), mode="explore")
        result.seed = sched_seed
        text = result.to_json()
        for f in find_all(parse_trace_data(text, f"schedule {run}")):
            key = (f.kind, f.actors, f.objects)
            group = groups.get(key)
            if group is None:
                groups[key] = {"kind": f.kind, "actors": list(f.actors),
                               "objects": list(f.objects), "message": f.message,
                               "count": 1, "first_run": run, "text": text}
            else:
                group["count"] += 1
    return groups


def explore_range(scenario: dict[str, Any], start: int, stop: int, seed: int, strategy: str,
                  depth: int) -> dict[tuple[Any, ...], Group]:
    """A worker process's share: schedules start..stop-1 (the plan is rebuilt here)."""
    return explore_runs(plan_from_mapping(scenario), range(start, stop), seed, strategy, depth)


def merge(parts: Iterable[dict[tuple[Any, ...], Group]]) -> dict[tuple[Any, ...], Group]:
    """Merge the results of ranges: counts add up, the earliest schedule's trace is kept."""
    out: dict[tuple[Any, ...], Group] = {}
    for part in parts:
        for key, g in part.items():
            have = out.get(key)
            if have is None:
                out[key] = dict(g)
                continue
            have["count"] += g["count"]
            if g["first_run"] < have["first_run"]:
                have.update(first_run=g["first_run"], text=g["text"], message=g["message"])
    return out
