"""A process condition hands each notify to one waiter that was waiting when it came: the
waiter that begins to wait later (the notifier itself, waiting again) never takes a wake-up
meant for another (multiprocessing's Condition wakes its sleepers through one semaphore, and
waits until they have woken: without that wait, which cannot end while one actor runs at a
time, a later waiter could take the wake-up, and the run would show a deadlock that is not
there). Under run, replay and explore."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import events

from tracer import load_scenario_text, run_plan
from tracer.analyze import parse_trace_data
from tracer.engine import ReplayScheduler, first_difference, recorded_steps
from tracer.engine.schedule.explore import make_scheduler, object_groups, schedule_seed

HANDOFF = """
name: handoff
timeout: 30
primitives:
  C: condition
  E: event
actors:
  - name: consumer
    kind: {kind}
    steps:
      - with: C
        steps:
          - set: E
          - wait: C
  - name: producer
    kind: {kind}
    steps:
      - wait: E
      - with: C
        steps:
          # the consumer waits (it let C go for it to be taken): this notify is its
          - notify: C
          # nobody notifies the producer: its wait can only time out
          - wait: C
            timeout: 0.2
"""


def results(trace: dict[str, object]) -> dict[str, str]:
    return {e["actor"]: e["result"] for e in events(trace, op="wait", target="C",
                                                     phase="return")}


@pytest.mark.timeout(60)
@pytest.mark.parametrize("kind", ["process", "thread"])
def test_a_notify_wakes_the_waiter_it_was_for_not_a_later_one(kind: str) -> None:
    for _ in range(3):
        result = run_plan(load_scenario_text(HANDOFF.format(kind=kind), "<t>"))
        trace = json.loads(result.to_json())
        assert result.status == "ok", result.detail
        assert results(trace) == {"consumer": "ok", "producer": "timeout"}


@pytest.mark.timeout(90)
@pytest.mark.parametrize("kind", ["process", "thread"])
def test_so_under_explore_and_replay(kind: str, tmp_path: Path) -> None:
    # (a replay takes the lock back after a timed-out wait too: the recording says it did)
    plan = load_scenario_text(HANDOFF.format(kind=kind), "<t>")
    order = [a.name for a in plan.actors]
    for run in range(4):
        sched = make_scheduler("random", schedule_seed(5, run), 3, order, 64,
                               object_groups(plan))
        result = run_plan(plan, sched, mode="explore")
        assert result.status == "ok", result.detail
        assert results(json.loads(result.to_json())) == {"consumer": "ok",
                                                          "producer": "timeout"}
    path = tmp_path / "rec.json"
    run_plan(plan).write(path)
    data = parse_trace_data(path.read_bytes(), str(path))
    replay = ReplayScheduler(recorded_steps(data.events), patience=10.0)
    result = run_plan(load_scenario_text(json.dumps(data.scenario), "embedded"), replay,
                      mode="replay")
    assert replay.divergence is None, replay.divergence
    assert first_difference(data.events, parse_trace_data(result.to_json()).events) is None
