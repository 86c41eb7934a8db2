"""Process actors at speed: an exploration runs them in worker processes kept across
schedules (each schedule with its own fresh primitives), and a replay grants a child the run
of its own recorded steps that follow its turn."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
from dataclasses import replace
from typing import Any

import pytest
from conftest import SCENARIOS

from tracer import load_scenario, load_scenario_text, run_plan
from tracer.analyze import parse_trace_data
from tracer.engine._proc import alive
from tracer.engine._run import Runner
from tracer.engine._workers import Workers
from tracer.engine.schedule.explore import (
    ExploreScheduler,
    Systematic,
    make_scheduler,
    object_groups,
)
from tracer.engine.schedule.replay import ReplayScheduler, first_difference, recorded_steps

TWO_PROCESSES = """
name: two-processes
timeout: 60
primitives: {L: lock}
actors:
  - {name: a, kind: process, steps: [{repeat: 150, steps: [{with: L, steps: [{log: x}]}]}]}
  - {name: b, kind: process, steps: [{repeat: 150, steps: [{with: L, steps: [{log: x}]}]}]}
"""


def _schedule(plan: Any, workers: Workers, seed: int) -> tuple[str, dict[str, int], str]:
    """One exploring schedule: its status, the actors' pids, the name of lock A's
    semaphore (the schedule's own multiprocessing lock)."""
    order = [a.name for a in plan.actors]
    sched = make_scheduler("random", seed, 3, order, 64, object_groups(plan))
    runner = Runner(plan, sched, workers=workers)
    sem = runner.prims["A"].real._semlock.name  # type: ignore[attr-defined]
    result = runner.run()
    actors = json.loads(result.to_json())["actors"]
    return result.status, {a["name"]: a["pid"] for a in actors}, sem


@pytest.mark.timeout(120)
def test_exploration_reuses_its_processes_with_fresh_primitives_and_leaves_none() -> None:
    plan = load_scenario(SCENARIOS / "process_deadlock.yaml")
    with Workers() as workers:
        got = [_schedule(plan, workers, seed) for seed in range(4)]
        worker_pids = [w.proc.pid for w in workers.procs.every]
    # every schedule deadlocks, as every run of this scenario does: nothing of a schedule
    # (a lock left taken) reaches the next
    assert [status for status, _, _ in got] == ["deadlock"] * 4
    pids = [set(p.values()) for _, p, _ in got]
    assert all(p == pids[0] for p in pids), pids  # the same two processes each time
    assert len({s for _, _, s in got}) == 4  # a new lock A in each schedule
    assert multiprocessing.active_children() == []
    assert worker_pids and not any(alive(p) for p in worker_pids)


@pytest.mark.timeout(120)
def test_a_worker_killed_between_schedules_is_replaced() -> None:
    plan = load_scenario(SCENARIOS / "process_deadlock.yaml")
    with Workers() as workers:
        status, before, _ = _schedule(plan, workers, 0)
        assert status == "deadlock"
        victim = workers.procs.every[0]
        assert victim.proc.pid in before.values()
        os.kill(victim.proc.pid, signal.SIGKILL)
        victim.proc.join(10)
        status, after, _ = _schedule(plan, workers, 1)
        assert status == "deadlock"
        assert victim.proc.pid not in after.values()
    assert multiprocessing.active_children() == []


class CountingReplay(ReplayScheduler):
    """The replay scheduler, counting the steps children went through on a grant."""

    granted_used = 0

    def used(self, actor: Any, count: int) -> None:
        self.granted_used += count
        super().used(actor, count)


@pytest.mark.timeout(120)
def test_a_process_replay_goes_through_granted_runs_and_is_identical() -> None:
    plan = load_scenario_text(TWO_PROCESSES)
    data = parse_trace_data(run_plan(plan).to_json())
    sched = CountingReplay(recorded_steps(data.events), patience=10.0)
    rep = run_plan(plan, sched, mode="replay")
    assert sched.divergence is None
    assert first_difference(data.events, parse_trace_data(rep.to_json()).events) is None
    # most events went without a round trip each (each run of an actor's own steps is
    # granted with its first one)
    assert sched.granted_used > len(data.events) // 2


@pytest.mark.timeout(120)
def test_an_edited_step_inside_a_granted_run_diverges_there() -> None:
    plan = load_scenario_text(TWO_PROCESSES)
    data = parse_trace_data(run_plan(plan).to_json())
    steps = recorded_steps(data.events)
    # a log of a's, inside a run of a's own steps, recorded as another release of L
    at = next(i for i in range(10, len(steps) - 10) if steps[i].op == "log"
              and steps[i - 1].actor == steps[i].actor == steps[i + 1].actor == "a")
    edited = [*steps[:at], replace(steps[at], op="release", target="L"), *steps[at + 1:]]
    sched = ReplayScheduler(edited, patience=10.0)
    rep = run_plan(plan, sched, mode="replay")
    assert rep.status != "ok" or sched.divergence is not None
    d = sched.divergence
    assert d is not None
    assert d.seq == steps[at].seq
    assert d.expected == f"seq {steps[at].seq}: a release L"
    assert d.got == "a did log"


ABBA_PROCESSES = """
name: abba-processes
timeout: 20
primitives: {L: lock, M: lock}
actors:
  - {name: p, kind: process, steps: [{acquire: L}, {acquire: M}, {release: M}, {release: L}]}
  - {name: q, kind: process, steps: [{acquire: M}, {acquire: L}, {release: L}, {release: M}]}
"""


class KillsP(ExploreScheduler):
    """An exploring scheduler that kills p's process at p's turn to ask for M (its child
    waits for the answer: it dies inside the schedule, holding L)."""

    runner: Runner | None = None
    killed = 0

    def turn(self, actor: Any, tag: Any) -> int:
        if (actor.name, tag.op, tag.target, tag.phase) == ("p", "acquire", "M", "call") \
                and not self.killed and self.runner is not None:
            pid = self.runner.ctx["p"].pid  # (set by the child before its first event)
            assert pid > 0, pid
            self.killed = pid
            os.kill(pid, signal.SIGKILL)
        return super().turn(actor, tag)


@pytest.mark.timeout(120)
def test_a_worker_killed_under_a_schedule_is_the_outcome_and_is_replaced() -> None:
    plan = load_scenario_text(ABBA_PROCESSES)
    order = [a.name for a in plan.actors]
    with Workers() as workers:
        sched = KillsP(Systematic(), order, object_groups(plan))
        runner = sched.runner = Runner(plan, sched, workers=workers)
        result = runner.run()
        assert result.status == "error"
        assert result.detail == (f"process actor p (pid {sched.killed}) was killed by signal "
                                 "9 (SIGKILL)")
        after = Runner(plan, ExploreScheduler(Systematic(), order, object_groups(plan)),
                       workers=workers).run()
        assert after.status == "ok"  # the next schedule, on a new worker
    assert multiprocessing.active_children() == []
