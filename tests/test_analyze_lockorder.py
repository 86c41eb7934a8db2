"""Potential deadlocks from lock order (tracer.analyze.lockorder): lockdep/Goodlock edges,
cycles, and the cases that are not potential deadlocks (one actor, a gate lock, start/join
order, a cycle that did deadlock)."""

from __future__ import annotations

import itertools
from typing import Any

from conftest import SCENARIOS, acq, ev, make_trace, rel, run_yaml

from tracer.analyze import Finding, TraceData, parse_trace_data
from tracer.analyze.lockorder import find_potential_deadlocks, lock_order_graph
from tracer.analyze.waitgraph import find_blocked_findings

# --------------------------------------------------------------------------------------------
# helpers





def make(steps: list[Any], primitives: dict[str, Any] | None = None,
         actors: list[str] | None = None) -> TraceData:
    """A hand-written trace whose locks default to the ones acquired in it."""
    flat = [e for s in steps for e in (s if isinstance(s, list) else [s])]
    taken = sorted({e["target"] for e in flat if e["op"] == "acquire"})
    prims = primitives if primitives is not None else dict.fromkeys(taken, "lock")
    return make_trace(flat, prims, actors)


def nested(actor: str, *locks: str) -> list[dict[str, Any]]:
    """Take ``locks`` in order, then release them in reverse."""
    out: list[dict[str, Any]] = []
    for lk in locks:
        out += acq(actor, lk)
    out += [rel(actor, lk) for lk in reversed(locks)]
    return out



def potential(data: TraceData) -> list[Finding]:
    out = find_potential_deadlocks(data)
    assert all(f.kind == "potential_deadlock" and f.severity == "warning" for f in out)
    return out


def from_run(yaml: str) -> TraceData:
    result, _ = run_yaml(yaml)
    return parse_trace_data(result.to_json())


# --------------------------------------------------------------------------------------------
# real runs

ABBA_APART = """
name: abba-apart
primitives: {{A: lock, B: lock{extra}}}
actors:
  - name: t1
    kind: thread
    steps:
{t1}
  - name: t2
    kind: thread
    steps:
      - sleep: 0.05
{t2}
"""


def _steps(first: str, second: str, gate: str | None = None) -> str:
    """YAML steps taking ``first`` then ``second`` (inside ``with: gate`` when given)."""
    body = (f"[{{acquire: {first}}}, {{acquire: {second}}}, {{release: {second}}}, "
            f"{{release: {first}}}]")
    if gate:
        return f"      - with: {gate}\n        steps: {body}"
    return (f"      - acquire: {first}\n      - acquire: {second}\n"
            f"      - release: {second}\n      - release: {first}")


def test_opposite_orders_far_apart_in_time_are_a_potential_deadlock() -> None:
    # t1 is done with both locks long before t2 takes them: no deadlock in this run
    data = from_run(ABBA_APART.format(extra="", t1=_steps("A", "B"), t2=_steps("B", "A")))
    assert data.outcome["status"] == "ok"
    assert find_blocked_findings(data) == []
    found = potential(data)
    assert len(found) == 1
    f = found[0]
    assert set(f.actors) == {"t1", "t2"}
    assert set(f.objects) == {"A", "B"}
    assert len(f.events) == 4
    # each acquisition by its YAML line (a scenario from no file: "line N")
    assert "t1 takes A (line 8) then B (line 9)" in f.message
    assert "t2 takes B (line 16) then A (line 17)" in f.message
    assert "each holds one and waits for the other" in f.message
    assert "take them in one order everywhere" in f.message
    for e in f.details["edges"]:
        assert all(data.events[s]["op"] == "acquire" and data.events[s]["phase"] == "return"
                   for s in e["seqs"])


def test_the_same_under_a_gate_lock_is_nothing() -> None:
    data = from_run(ABBA_APART.format(extra=", G: lock", t1=_steps("A", "B", gate="G"),
                                      t2=_steps("B", "A", gate="G")))
    assert potential(data) == []
    graph = lock_order_graph(data)
    assert {(a, b) for a, b, _ in graph.edges} >= {("A", "B"), ("B", "A"), ("G", "A"),
                                                   ("G", "B")}
    assert graph.cycles == []


def test_one_actor_taking_both_orders_is_nothing() -> None:
    yaml = """
name: one
primitives: {A: lock, B: lock}
actors:
  - name: t1
    kind: thread
    steps:
      - {with: A, steps: [{with: B, steps: []}]}
      - {with: B, steps: [{with: A, steps: []}]}
"""
    assert potential(from_run(yaml)) == []


def test_ordered_by_start_and_join_is_nothing() -> None:
    yaml = """
name: structured
primitives: {A: lock, B: lock}
actors:
  - name: main
    kind: thread
    steps:
      - {with: A, steps: [{with: B, steps: []}]}
      - start: t
      - join: t
      - {with: A, steps: [{with: B, steps: []}]}
  - name: t
    kind: thread
    autostart: false
    steps:
      - {with: B, steps: [{with: A, steps: []}]}
"""
    assert potential(from_run(yaml)) == []


def test_started_while_holding_a_lock_can_still_deadlock() -> None:
    # main holds A when it starts t: t takes B then A while main may still want B
    yaml = """
name: spawn-holding
primitives: {A: lock, B: lock, E: event}
actors:
  - name: main
    kind: thread
    steps:
      - acquire: A
      - start: t
      - wait: E
      - acquire: B
      - release: B
      - release: A
  - name: t
    kind: thread
    autostart: false
    steps:
      - set: E
      - acquire: B
      - release: B
"""
    # here t never holds B while asking for A, so no cycle; add the edge by hand below
    assert potential(from_run(yaml)) == []
    data = make([ev("main", "start"), *acq("main", "A"), ev("main", "spawn", "t"),
                 ev("t", "start"), *nested("t", "B", "A")[:2],
                 # t holds B; main asks for B while holding A (the two can interleave)
                 *nested("t", "B", "A")[2:], *acq("main", "B"), rel("main", "B"),
                 rel("main", "A"), ev("t", "end", result="ok")])
    found = potential(data)
    assert len(found) == 1 and set(found[0].actors) == {"main", "t"}


def test_the_deadlocked_cycle_is_a_deadlock_not_a_potential_one() -> None:
    data = from_run((SCENARIOS / "deadlock.yaml").read_text(encoding="utf-8"))
    assert data.outcome["status"] == "deadlock"
    assert potential(data) == []
    assert [f.kind for f in find_blocked_findings(data)] == ["deadlock"]


def test_ordered_dining_philosophers_are_clean() -> None:
    data = from_run((SCENARIOS / "dining_philosophers_ordered.yaml").read_text(
        encoding="utf-8"))
    assert potential(data) == []
    assert lock_order_graph(data).edges  # forks are taken while holding forks


# --------------------------------------------------------------------------------------------
# hand-written traces


def test_three_lock_cycle_over_three_actors_is_one_finding() -> None:
    # dining philosophers ordered wrongly, but each eats in turn: no deadlock in this run
    data = make([nested("P0", "fork0", "fork1"), nested("P1", "fork1", "fork2"),
                 nested("P2", "fork2", "fork0")])
    found = potential(data)
    assert len(found) == 1
    f = found[0]
    assert set(f.objects) == {"fork0", "fork1", "fork2"}
    assert set(f.actors) == {"P0", "P1", "P2"}
    assert len(f.events) == 6
    assert "take fork0, fork1 and fork2 in one order everywhere" in f.message
    assert "each holds one and waits for the next" in f.message
    graph = lock_order_graph(data)
    assert len(graph.cycles) == 1 and set(graph.cycles[0]) == {"fork0", "fork1", "fork2"}


def test_three_lock_cycle_by_two_actors_is_nothing() -> None:
    # P0 takes both edges fork0->fork1 and fork2->fork0: only two actors for three edges
    data = make([nested("P0", "fork0", "fork1"), nested("P1", "fork1", "fork2"),
                 nested("P0", "fork2", "fork0")])
    assert potential(data) == []


def test_a_longer_cycle_through_a_reported_pair_is_its_own_finding() -> None:
    # a/b make A<->B; a, c and d make A->B->C->A: another deadlock, with other actors
    data = make([nested("a", "A", "B"), nested("b", "B", "A"), nested("c", "B", "C"),
                 nested("d", "C", "A")])
    found = potential(data)
    assert [set(f.objects) for f in found] == [{"A", "B"}, {"A", "B", "C"}]
    assert set(found[1].actors) == {"a", "c", "d"}


def test_common_gate_per_occurrence_and_not_at_all_of_them() -> None:
    # the edge A->B is taken under G by t1 and without G by t3: t3 and t2 can deadlock
    data = make([nested("t1", "G", "A", "B"), nested("t2", "G", "B", "A"),
                 nested("t3", "A", "B")])
    found = potential(data)
    assert len(found) == 1 and set(found[0].actors) == {"t2", "t3"}
    # and every combination shares a gate: nothing
    gated = make([nested("t1", "G", "A", "B"), nested("t2", "G", "B", "A"),
                  nested("t3", "G", "A", "B")])
    assert potential(gated) == []


def test_rlock_reentry_is_not_an_edge_and_semaphores_are_not_locks() -> None:
    prims = {"R": "rlock", "A": "lock", "S": "semaphore"}
    data = make([*acq("t1", "R"), *acq("t1", "R"), rel("t1", "R"), rel("t1", "R"),
                 nested("t1", "S", "A"), nested("t2", "A", "S")], prims)
    graph = lock_order_graph(data)
    assert graph.edges == []
    assert potential(data) == []


def test_a_conditions_lock_is_the_node() -> None:
    prims = {"L": "lock", "B": "lock", "C": {"type": "condition", "lock": "L"}}
    data = make([nested("t1", "C", "B"), nested("t2", "B", "L")], prims)
    found = potential(data)
    assert len(found) == 1 and set(found[0].objects) == {"L", "B"}


def test_a_condition_wait_retakes_its_lock_while_holding_others() -> None:
    # t1 holds B, waits on C (lets L go), and takes L back on return: the edge B -> L
    prims = {"L": "lock", "B": "lock", "C": {"type": "condition", "lock": "L"}}
    data = make([*acq("t1", "C"), *acq("t1", "B"), ev("t1", "wait", "C", phase="call"),
                 *acq("t2", "L"), ev("t2", "notify", "C"), rel("t2", "L"),
                 ev("t1", "wait", "C", phase="return", result="ok"), rel("t1", "B"),
                 rel("t1", "C")], prims)
    edges = {(a, b) for a, b, _ in lock_order_graph(data).edges}
    assert edges == {("L", "B"), ("B", "L")}
    assert potential(data) == []  # one actor


def test_deadlock_event_naming_the_locks_suppresses_the_cycle() -> None:
    steps: list[Any] = [nested("t1", "A", "B"), nested("t2", "B", "A")]
    assert len(potential(make(steps))) == 1
    steps.append(ev(None, "deadlock", actors=["t1", "t2"], detail="...", objects=["A", "B"],
                    waits=[]))
    assert potential(make(steps)) == []


def test_join_orders_the_two_orders() -> None:
    data = make([ev("t1", "start"), nested("t1", "A", "B"), ev("t1", "end", result="ok"),
                 ev("main", "start"), ev("main", "join", "t1", phase="call"),
                 ev("main", "join", "t1", phase="return", result="ok"),
                 nested("main", "B", "A")])
    assert potential(data) == []
    timed_out = make([ev("t1", "start"), nested("t1", "A", "B"), ev("t1", "end", result="ok"),
                      ev("main", "start"), ev("main", "join", "t1", phase="call"),
                      ev("main", "join", "t1", phase="return", result="timeout"),
                      nested("main", "B", "A")])
    assert len(potential(timed_out)) == 1


def test_graph_edges_carry_the_acquisition_seqs() -> None:
    data = make([nested("t1", "A", "B"), nested("t1", "A", "B")])
    graph = lock_order_graph(data)
    assert graph.locks == ["A", "B"]
    assert graph.edges == [("A", "B", [1, 3])]  # the first occurrence of the one group


def test_dense_graph_is_bounded() -> None:
    # 12 locks, every pair taken in both orders by different actors: 66 two-cycles, and the
    # longer cycles (millions) are covered by them
    locks = [f"L{i}" for i in range(12)]
    steps: list[Any] = []
    for i, (a, b) in enumerate(itertools.combinations(locks, 2)):
        steps += [nested(f"x{i}", a, b), nested(f"y{i}", b, a)]
    found = potential(make(steps))
    assert len(found) == 66
    assert all(len(f.objects) == 2 for f in found)
