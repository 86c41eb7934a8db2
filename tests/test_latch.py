"""The ``latch`` primitive type (Go's WaitGroup, C#'s CountdownEvent), end to end: under
``run``, ``replay`` and ``explore``, for thread, process and coroutine actors; in the watchdog
and the analyses.

A wait returns only once the count is zero (read from the trace: every count_down comes
before the wait's return, in every explored schedule), ``count_up`` raises the count, a count
below zero is refused (the actor fails, the analysis reports a misuse), a forgotten count_down
is a stall that names the latch, a recording replays to the same events, and a count_down
orders what came before it before what follows the wait (no race).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import by_seq, events, record_and_replay, run_yaml

from tracer import load_scenario_text, run_plan
from tracer.analyze import find_all, parse_trace_data
from tracer.engine.schedule.explore import make_scheduler, object_groups, schedule_seed

KINDS = ["thread", "process", "coroutine"]

WAITGROUP = """
name: waitgroup
timeout: 30
primitives:
  WG: {{type: latch, count: 3}}
  M: lock
shared:
  total: 0
actors:
  - name: worker
    kind: {kind}
    count: 3
    steps:
      - with: M
        steps:
          - add: {{var: total, value: 1}}
      - count_down: WG
  - name: main
    kind: {kind}
    steps:
      - wait: WG
      - read: total
"""


def downs_before_the_wait(trace: dict[str, Any]) -> bool:
    """Every count_down of WG comes before the wait's return."""
    ret = [e["seq"] for e in events(trace, actor="main", op="wait", target="WG",
                                    phase="return", result="ok")]
    downs = [e["seq"] for e in events(trace, op="count_down", target="WG")]
    return len(ret) == 1 and len(downs) == 3 and max(downs) < ret[0]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("kind", KINDS)
def test_the_wait_returns_once_every_count_down_happened(kind: str) -> None:
    result, trace = run_yaml(WAITGROUP.format(kind=kind))
    assert result.status == "ok", result.detail
    assert downs_before_the_wait(trace)
    assert [e["value"] for e in events(trace, actor="main", op="read")] == [3]
    assert {e.get("n") for e in events(trace, op="count_down")} == {1}  # the trace says n


@pytest.mark.timeout(60)
@pytest.mark.parametrize("kind", KINDS)
def test_a_count_down_orders_what_came_before_it_before_what_follows_the_wait(
        kind: str) -> None:
    # main reads total without M: the latch, not the lock, orders it after every add
    _, trace = run_yaml(WAITGROUP.format(kind=kind))
    found = find_all(parse_trace_data(json.dumps(trace)))
    assert [f for f in found if f.kind == "race"] == []


NO_LATCH = WAITGROUP.replace("      - wait: WG\n", "")


@pytest.mark.timeout(60)
def test_without_the_wait_the_read_races() -> None:
    # the same without the wait: the analysis must see the race the latch prevented
    _, trace = run_yaml(NO_LATCH.format(kind="thread"))
    races = [f for f in find_all(parse_trace_data(json.dumps(trace))) if f.kind == "race"]
    assert races and all("main" in f.actors for f in races)


@pytest.mark.timeout(120)
@pytest.mark.parametrize(("kind", "runs"), [("thread", 30), ("coroutine", 30), ("process", 6)])
def test_every_explored_schedule_waits_for_every_count_down(kind: str, runs: int) -> None:
    plan = load_scenario_text(WAITGROUP.format(kind=kind), "<t>")
    order = [a.name for a in plan.actors]
    orders = set()
    for run in range(runs):
        sched = make_scheduler("random", schedule_seed(3, run), 3, order, 64,
                               object_groups(plan))
        result = run_plan(plan, sched, mode="explore")
        assert result.status == "ok", result.detail
        trace = json.loads(result.to_json())
        assert downs_before_the_wait(trace)
        orders.add(tuple(e["actor"] for e in by_seq(trace) if e["op"] == "count_down"))
    assert len(orders) > 1  # the schedules differ: who counts down first


@pytest.mark.timeout(90)
@pytest.mark.parametrize("kind", KINDS)
def test_a_recorded_run_replays_to_the_same_operations(kind: str, tmp_path: Path) -> None:
    recorded, diff, status = record_and_replay(WAITGROUP.format(kind=kind), tmp_path)
    assert diff is None, diff
    assert status == recorded["outcome"]["status"] == "ok"


COUNT_UP = """
name: count_up
timeout: 30
primitives:
  L: {{type: latch, count: 1}}
  E: event
actors:
  - name: a
    kind: {kind}
    steps:
      - count_up: L
        n: 2
      - set: E
      - count_down: L
        n: 2
  - name: b
    kind: {kind}
    steps:
      - wait: E
      - wait: L
        timeout: 0.05
      - count_down: L
      - wait: L
"""


@pytest.mark.timeout(60)
@pytest.mark.parametrize("kind", KINDS)
def test_count_up_raises_the_count(kind: str) -> None:
    result, trace = run_yaml(COUNT_UP.format(kind=kind))
    assert result.status == "ok", result.detail
    waits = events(trace, actor="b", op="wait", target="L", phase="return")
    # 1 + 2 = 3, and a counts down 2: until b's own count_down the count is 3 or 1, never
    # zero, so b's first (timed) wait times out whatever the timing; its second returns ok
    assert [w["result"] for w in waits] == ["timeout", "ok"]
    downs = events(trace, op="count_down", target="L")
    assert sum(e["n"] for e in downs) == 3
    assert [e["n"] for e in events(trace, op="count_up", target="L")] == [2]


BELOW_ZERO = """
name: below_zero
timeout: 10
primitives:
  L: {{type: latch, count: 1}}
actors:
  - name: t
    kind: {kind}
    steps:
      - count_down: L
        n: 2
"""


@pytest.mark.timeout(60)
@pytest.mark.parametrize("kind", KINDS)
def test_a_count_below_zero_is_refused_and_reported_as_misuse(kind: str) -> None:
    result, trace = run_yaml(BELOW_ZERO.format(kind=kind))
    assert result.status == "error"
    assert "t counted latch L down by 2 from 1: a count cannot go below zero" in result.detail
    down = events(trace, actor="t", op="count_down")[0]
    assert "below zero" in down["error"]
    found = find_all(parse_trace_data(json.dumps(trace)))
    misuse = [f for f in found if f.kind == "misuse"]
    assert misuse and list(misuse[0].actors) == ["t"] and "L" in misuse[0].objects


FORGOTTEN = """
name: forgotten
timeout: 10
primitives:
  WG: {{type: latch, count: 2}}
actors:
  - name: worker
    kind: {kind}
    steps:
      - count_down: WG
  - name: main
    kind: {kind}
    steps:
      - wait: WG
"""


@pytest.mark.timeout(60)
@pytest.mark.parametrize("kind", KINDS)
def test_a_forgotten_count_down_is_a_stall_that_names_the_latch(kind: str) -> None:
    result, _ = run_yaml(FORGOTTEN.format(kind=kind))
    assert result.status == "stall", result.detail
    assert "main waits for latch WG (line 14), and no live actor will ever count it down" \
        in result.detail


HELD = """
name: latch_deadlock
timeout: 10
primitives:
  WG: {{type: latch, count: 1}}
  M: lock
  E: event
actors:
  - name: waiter
    kind: {kind}
    steps:
      - with: M
        steps:
          - set: E
          - wait: WG
  - name: worker
    kind: {kind}
    steps:
      - wait: E
      - with: M
        steps:
          - count_down: WG
"""


@pytest.mark.timeout(60)
@pytest.mark.parametrize("kind", KINDS)
def test_a_waiter_holding_what_the_counter_needs_is_a_deadlock(kind: str) -> None:
    result, _ = run_yaml(HELD.format(kind=kind))
    assert result.status == "deadlock", result.detail
    assert "waits for latch WG (line 15), which only worker could count down" in result.detail
