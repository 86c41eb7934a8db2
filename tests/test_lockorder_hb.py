"""Lock order follows happens-before: an attempt that cannot wait (``blocking: false``) is no
lock-order edge, and opposite orders separated by a synchronisation that orders them in every
interleaving (barrier, event, queue hand-off, join, a semaphore that signals) are no potential
deadlock — while a lock's own mutual exclusion, which only orders them in this run, still
leaves them one."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import acq, call, ev, make_trace, rel, ret, run_yaml, tracer_cli

from tracer import load_scenario_text, run_plan
from tracer.analyze import Finding, TraceData, parse_trace_data
from tracer.analyze.lockorder import find_potential_deadlocks, lock_order_graph
from tracer.engine.schedule.explore import make_scheduler, object_groups


def potential(data: TraceData) -> list[Finding]:
    out = find_potential_deadlocks(data)
    assert all(f.kind == "potential_deadlock" for f in out)
    return out


def nested(actor: str, first: str, second: str, **call_kw: Any) -> list[dict[str, Any]]:
    """Take ``first`` then ``second`` (its call with ``call_kw``), release both."""
    return [*acq(actor, first), call(actor, "acquire", second, **call_kw),
            ret(actor, "acquire", second), rel(actor, second), rel(actor, first)]


def from_run(yaml: str) -> TraceData:
    result, _ = run_yaml(yaml)
    return parse_trace_data(result.to_json())


# --------------------------------------------------------------------------------------------
# recording: the call of a non-blocking attempt says so, for every kind and every mode

NON_BLOCKING = """
name: non-blocking-{kind}
primitives: {{A: lock, B: lock, Q: queue}}
actors:
  - name: a
    kind: {kind}
    steps:
      - acquire: A
      - {{acquire: B, blocking: false}}
      - release: B
      - release: A
      - {{put: Q, item: 1, blocking: false}}
      - {{get: Q, blocking: false}}
      - put: Q
      - get: Q
      - {{with: B, steps: [{{with: A, steps: []}}]}}
"""


def _calls(events: list[dict[str, Any]]) -> list[tuple[str, str, Any]]:
    return [(e["op"], e["target"], e.get("blocking")) for e in events
            if e.get("phase") == "call" and e["op"] in ("acquire", "put", "get")]


_EXPECTED_CALLS = [("acquire", "A", None), ("acquire", "B", False), ("put", "Q", False),
                   ("get", "Q", False), ("put", "Q", None), ("get", "Q", None),
                   ("acquire", "B", None), ("acquire", "A", None)]


@pytest.mark.parametrize("kind", ["thread", "process", "coroutine"])
def test_the_call_of_a_non_blocking_attempt_says_blocking_false(kind: str,
                                                                 tmp_path: Path) -> None:
    yaml = NON_BLOCKING.format(kind=kind)
    result, trace = run_yaml(yaml)
    assert result.status == "ok"
    assert _calls(trace["events"]) == _EXPECTED_CALLS
    # the non-blocking B under A is no edge; B then A (blocking) is one
    edges = {(a, b) for a, b, _ in lock_order_graph(parse_trace_data(result.to_json())).edges}
    assert edges == {("B", "A")}

    # a replay records the same, and calls it identical
    recorded = tmp_path / "run.json"
    recorded.write_text(result.to_json(), encoding="utf-8")
    replayed = tmp_path / "replay.json"
    proc = tracer_cli("replay", str(recorded), "-o", str(replayed), timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "identical" in proc.stdout
    assert _calls(json.loads(replayed.read_text(encoding="utf-8"))["events"]) == \
        _EXPECTED_CALLS


@pytest.mark.parametrize("kind", ["thread", "process", "coroutine"])
def test_an_explored_schedule_records_blocking_false_too(kind: str) -> None:
    plan = load_scenario_text(NON_BLOCKING.format(kind=kind))
    sched = make_scheduler("random", 1, order=[a.name for a in plan.actors],
                           groups=object_groups(plan))
    result = run_plan(plan, sched, mode="explore")
    assert result.status == "ok"
    assert _calls(json.loads(result.to_json())["events"]) == _EXPECTED_CALLS


def test_a_trace_without_the_field_still_loads_and_counts_its_edges() -> None:
    # traces written before the field: every acquire is taken to block, as before
    data = make_trace([nested("t1", "A", "B"), nested("t2", "B", "A")],
                      {"A": "lock", "B": "lock"})
    assert len(potential(data)) == 1


# --------------------------------------------------------------------------------------------
# an attempt that cannot wait is no edge


def test_a_non_blocking_acquire_under_a_lock_is_no_potential_deadlock() -> None:
    prims = {"A": "lock", "B": "lock"}
    tried = make_trace([nested("t1", "A", "B", blocking=False), nested("t2", "B", "A")], prims)
    assert potential(tried) == []
    assert {(a, b) for a, b, _ in lock_order_graph(tried).edges} == {("B", "A")}
    blocking = make_trace([nested("t1", "A", "B"), nested("t2", "B", "A")], prims)
    assert len(potential(blocking)) == 1


def test_a_lock_taken_without_waiting_is_still_held() -> None:
    # t1 got B without waiting, then waits for C while holding it: B -> C is an edge
    prims = {"A": "lock", "B": "lock", "C": "lock"}
    data = make_trace([*acq("t1", "A"), call("t1", "acquire", "B", blocking=False),
                       ret("t1", "acquire", "B"), *acq("t1", "C"), rel("t1", "C"),
                       rel("t1", "B"), rel("t1", "A"), nested("t2", "C", "B")], prims)
    found = potential(data)
    assert [set(f.objects) for f in found] == [{"B", "C"}]


# --------------------------------------------------------------------------------------------
# opposite orders in segments that a synchronisation orders: no potential deadlock (real runs)

PHASES = """
name: phases
primitives: {{A: lock, B: lock, {prims}}}
actors:
  - name: t1
    kind: thread
    steps:
      - {{with: A, steps: [{{with: B, steps: []}}]}}
      - {after}
  - name: t2
    kind: thread
    steps:
      - {before}
      - {{with: B, steps: [{{with: A, steps: []}}]}}
"""


@pytest.mark.parametrize(("prims", "after", "before"), [
    ("X: {type: barrier, parties: 2}", "wait: X", "wait: X"),
    ("E: event", "set: E", "wait: E"),
    ("Q: queue", "{put: Q, item: done}", "get: Q"),
    ("S: {type: semaphore, value: 0}", "release: S", "acquire: S"),
    ("P: {type: pipe, between: [t1, t2]}", "{send: P, item: done}", "recv: P"),
    ("E: event", "log: t1 is done", "join: t1"),
], ids=["barrier", "event", "queue", "signal-semaphore", "pipe", "join"])
def test_opposite_orders_in_ordered_phases_are_no_potential_deadlock(
        prims: str, after: str, before: str) -> None:
    data = from_run(PHASES.format(prims=prims, after=after, before=before))
    assert data.outcome["status"] == "ok"
    assert {("A", "B"), ("B", "A")} <= {(a, b) for a, b, _ in lock_order_graph(data).edges}
    assert potential(data) == []


@pytest.mark.skipif(sys.version_info < (3, 11), reason="asyncio.Barrier needs 3.11")
def test_phases_of_coroutines_separated_by_a_barrier_are_no_potential_deadlock() -> None:
    yaml = PHASES.format(prims="X: {type: barrier, parties: 2}", after="wait: X",
                         before="wait: X").replace("kind: thread", "kind: coroutine")
    data = from_run(yaml)
    assert data.outcome["status"] == "ok"
    assert potential(data) == []


# --------------------------------------------------------------------------------------------
# what does not order the hold intervals (hand-written traces pin the interleaving)

_AB = {"A": "lock", "B": "lock"}


def test_the_genuine_abba_is_still_a_potential_deadlock() -> None:
    data = make_trace([nested("t1", "A", "B"), nested("t2", "B", "A")], _AB)
    found = potential(data)
    assert len(found) == 1 and set(found[0].actors) == {"t1", "t2"}


def test_a_barrier_between_the_phases_hides_it_and_one_after_both_does_not() -> None:
    prims = {**_AB, "X": {"type": "barrier", "parties": 2}}
    between = make_trace([nested("t1", "A", "B"), call("t1", "wait", "X"),
                          call("t2", "wait", "X"), ret("t1", "wait", "X"),
                          ret("t2", "wait", "X"), nested("t2", "B", "A")], prims)
    assert potential(between) == []
    after_both = make_trace([nested("t1", "A", "B"), nested("t2", "B", "A"),
                             call("t1", "wait", "X"), call("t2", "wait", "X"),
                             ret("t1", "wait", "X"), ret("t2", "wait", "X")], prims)
    assert len(potential(after_both)) == 1


def test_an_event_set_while_still_holding_the_lock_does_not_order_them() -> None:
    # t1 sets E while it holds A and before it asks for B: t2 may take B after the wait and
    # then want A while t1 wants B — the conftest abba() deadlock
    prims = {**_AB, "E": "event"}
    data = make_trace([*acq("t1", "A"), ev("t1", "set", "E"), *acq("t1", "B"),
                       rel("t1", "B"), rel("t1", "A"), call("t2", "wait", "E"),
                       ret("t2", "wait", "E"), nested("t2", "B", "A")], prims)
    assert len(potential(data)) == 1
    # set once t1 has both: t2's B -> A can only begin after t1's A -> B was inside
    # its acquisitions... and out of them: ordered
    done = make_trace([nested("t1", "A", "B"), ev("t1", "set", "E"), call("t2", "wait", "E"),
                       ret("t2", "wait", "E"), nested("t2", "B", "A")], prims)
    assert potential(done) == []


def test_a_lock_released_then_taken_does_not_order_them() -> None:
    # t1 releases C before t2 takes it: only this run's order; t2 may take C first
    prims = {**_AB, "C": "lock"}
    data = make_trace([nested("t1", "A", "B"), *acq("t1", "C"), rel("t1", "C"),
                       *acq("t2", "C"), rel("t2", "C"), nested("t2", "B", "A")], prims)
    assert len(potential(data)) == 1


def test_a_semaphore_that_starts_with_a_value_does_not_order_them() -> None:
    # value 1: t2's acquire needs no release of t1's, so it may come first
    for value, expected in ((1, 1), (0, 0)):
        prims = {**_AB, "S": {"type": "semaphore", "value": value}}
        data = make_trace([nested("t1", "A", "B"), rel("t1", "S"), *acq("t2", "S"),
                           nested("t2", "B", "A")], prims)
        assert len(potential(data)) == expected, value


def test_a_queue_item_orders_only_its_own_get() -> None:
    # t2 gets another actor's item, not t1's: t1's cycle half is not ordered before t2's
    prims = {**_AB, "Q": "queue"}
    data = make_trace([nested("t1", "A", "B"), call("t1", "put", "Q", item="t1"),
                       ret("t1", "put", "Q"), call("t3", "put", "Q", item="t3"),
                       ret("t3", "put", "Q"), call("t2", "get", "Q"),
                       ret("t2", "get", "Q", item="t3"), nested("t2", "B", "A")], prims)
    assert len(potential(data)) == 1
    mine = make_trace([nested("t1", "A", "B"), call("t1", "put", "Q", item="t1"),
                       ret("t1", "put", "Q"), call("t2", "get", "Q"),
                       ret("t2", "get", "Q", item="t1"), nested("t2", "B", "A")], prims)
    assert potential(mine) == []


def test_a_notify_the_waiter_saw_orders_them() -> None:
    prims = {**_AB, "C": "condition"}
    data = make_trace([*acq("t2", "C"), call("t2", "wait", "C"), nested("t1", "A", "B"),
                       *acq("t1", "C"), ev("t1", "notify", "C"), rel("t1", "C"),
                       ret("t2", "wait", "C"), rel("t2", "C"), nested("t2", "B", "A")], prims)
    assert potential(data) == []


def test_three_lock_cycle_with_one_phase_ordered_is_nothing() -> None:
    # P2 takes fork2 -> fork0 only after P0 is done (an event): no three of them at once
    prims = {"fork0": "lock", "fork1": "lock", "fork2": "lock", "E": "event"}
    data = make_trace([nested("P0", "fork0", "fork1"), ev("P0", "set", "E"),
                       nested("P1", "fork1", "fork2"), call("P2", "wait", "E"),
                       ret("P2", "wait", "E"), nested("P2", "fork2", "fork0")], prims)
    assert potential(data) == []
    unordered = make_trace([nested("P0", "fork0", "fork1"), nested("P1", "fork1", "fork2"),
                            nested("P2", "fork2", "fork0")], prims)
    assert len(potential(unordered)) == 1


def test_pool_tasks_on_one_worker_are_ordered_only_in_a_pool_of_one() -> None:
    # two tasks ran one after the other on the same worker; with two workers they could
    # have run at once
    for workers, expected in ((2, 1), (1, 0)):
        prims = {**_AB, "P": {"type": "pool", "workers": workers, "of": "thread"}}
        data = make_trace([ev("t1", "start"), nested("t1", "A", "B"),
                           ev("t1", "end", result="ok"), ev("t2", "start"),
                           nested("t2", "B", "A"), ev("t2", "end", result="ok")], prims)
        for a in data.actors:
            a.update(pool="P", pid=1, tid=7)
        assert len(potential(data)) == expected, workers


# --------------------------------------------------------------------------------------------
# occurrences are grouped by what another actor could see, not by every publication


def _edge_counts(f: Finding) -> dict[tuple[str, str], int]:
    return {(e["from"], e["to"]): e["count"] for e in f.details["edges"]}


def test_sets_nobody_waits_for_do_not_split_an_edge_into_occurrences() -> None:
    # both repeat their order three times with a set of E (which nobody waits for) between:
    # nothing another actor saw separates the repeats, so each edge is one group of three
    # (a set per repeat used to make a group per repeat: 7x slower on a big trace)
    prims = {"A": "lock", "B": "lock", "E": "event"}
    steps: list[Any] = []
    for _ in range(3):
        steps += [nested("t1", "A", "B"), ev("t1", "set", "E")]
    for _ in range(3):
        steps += [nested("t2", "B", "A"), ev("t2", "set", "E")]
    (f,) = potential(make_trace(steps, prims))
    assert _edge_counts(f) == {("A", "B"): 3, ("B", "A"): 3}
    assert f.events == (1, 3, 22, 24)  # the first occurrence of each order


def test_a_set_someone_waits_for_still_separates_the_occurrences() -> None:
    # t2 waits for t1's second set, then takes B then A: it is ordered after t1's first two
    # occurrences (over before the set), not after the third: only that one can deadlock
    prims = {"A": "lock", "B": "lock", "E": "event"}
    steps: list[Any] = [nested("t1", "A", "B"), ev("t1", "set", "E"),
                        nested("t1", "A", "B"), ev("t1", "set", "E"),
                        call("t2", "wait", "E"), ret("t2", "wait", "E"),
                        nested("t1", "A", "B"), nested("t2", "B", "A")]
    (f,) = potential(make_trace(steps, prims))
    third = f.details["edges"][0]
    assert (third["from"], third["to"]) == ("A", "B")
    assert third["seqs"] == [17, 19] and third["count"] == 1


def _order(data: TraceData, track: bool,
           ticks: list[set[int]] | None) -> tuple[list[tuple[int, list[int]]], Any]:
    """Every actor event with its actor's clock there (without mutual exclusion)."""
    from tracer.trace.state import Clocks, TraceState
    hb = Clocks(TraceState(data), mutex=False, track=track, ticks=ticks)
    index = {a["name"]: i for i, a in enumerate(data.actors)}
    out = []
    for e in data.events:
        if e.actor is not None:
            t = index[e.actor]
            hb.step(e, t)
            out.append((t, hb.clocks[t]))
    return out, hb


@pytest.mark.parametrize("name", ["barrier", "bounded_buffer_condition", "mixed_kinds"])
def test_ticking_only_after_epochs_taken_up_keeps_happens_before(name: str) -> None:
    # the second pass's clocks order every pair of events of two actors exactly as the
    # first's (within one actor, program order does; renumbering merges epochs there)
    from conftest import SCENARIOS
    result, _ = run_yaml((SCENARIOS / f"{name}.yaml").read_text(encoding="utf-8"))
    data = parse_trace_data(result.to_json())
    plain, first = _order(data, True, None)
    renumbered, _ = _order(data, False, first.consumed)
    assert len(plain) == len(renumbered) > 10
    assert [p for p, _ in plain] == [p for p, _ in renumbered]
    pairs = 0
    for i, (p, cx) in enumerate(plain):
        rx = renumbered[i][1]
        for j in range(len(plain)):
            if plain[j][0] == p:
                continue
            cy, ry = plain[j][1], renumbered[j][1]
            assert (cy[p] >= cx[p]) == (ry[p] >= rx[p]), (i, j)
            pairs += 1
    assert pairs > 100
