"""Misuse of primitives, invariants, the blocking profile and the wait-for graph
(tracer.analyze.misuse, .invariants, .profile, .waitgraph)."""

from __future__ import annotations

from conftest import SCENARIOS, acq, call, ev, make_trace, ret, run_yaml, unlined

from tracer.analyze import Finding, TraceData, parse_trace_data
from tracer.analyze.invariants import find_invariant_violations
from tracer.analyze.misuse import find_misuse
from tracer.analyze.profile import blocking_profile, render_profile
from tracer.analyze.waitgraph import find_blocked_findings, wait_for_graph

make = make_trace

# --------------------------------------------------------------------------------------------
# helpers







def from_run(yaml: str) -> TraceData:
    result, _ = run_yaml(yaml)
    return parse_trace_data(result.to_json())


def scenario(name: str) -> TraceData:
    return from_run((SCENARIOS / f"{name}.yaml").read_text(encoding="utf-8"))


def misuse(data: TraceData) -> list[Finding]:
    out = find_misuse(data)
    assert all(f.kind == "misuse" and f.severity == "error" for f in out)
    return out


# --------------------------------------------------------------------------------------------
# misuse


def test_release_of_a_lock_held_by_another_actor() -> None:
    yaml = """
name: foreign-release
primitives: {L: lock, E1: event, E2: event}
actors:
  - name: t1
    kind: thread
    steps:
      - acquire: L
      - set: E1
      - wait: E2
      - release: L
  - name: t2
    kind: thread
    steps:
      - wait: E1
      - release: L
      - set: E2
"""
    data = from_run(yaml)
    found = misuse(data)
    first = found[0]
    assert first.actors == ("t2",) and first.objects == ("L",)
    assert "t2 releases lock L" in first.message and "without holding it" in first.message
    assert "L is held by t1" in first.message
    assert "release a lock only in the actor that acquired it" in first.message
    t2_release = next(e["seq"] for e in data.events
                      if e["actor"] == "t2" and e["op"] == "release")
    assert t2_release in first.events
    # t1's own release then fails on the real lock: the event carries the error
    assert any(f.actors == ("t1",) and "error" in f.details for f in found[1:])


def test_bounded_semaphore_released_too_often() -> None:
    yaml = """
name: bounded
primitives: {S: {type: bounded_semaphore, value: 1}}
actors:
  - name: t1
    kind: thread
    steps: [{acquire: S}, {release: S}, {release: S}]
"""
    found = misuse(from_run(yaml))
    assert len(found) == 1
    assert "bounded semaphore S" in found[0].message
    assert "more times than it was acquired" in found[0].message
    # the same without the engine's error (a hand-written trace): counted
    data = make([acq("t1", "S"), ev("t1", "release", "S"), ev("t1", "release", "S")],
                {"S": {"type": "bounded_semaphore", "value": 1}})
    found = misuse(data)
    assert len(found) == 1 and found[0].events == (3,)


def test_plain_semaphore_release_without_acquire_is_fine() -> None:
    data = make([ev("t1", "release", "S"), acq("t2", "S")], {"S": "semaphore"})
    assert misuse(data) == []


def test_non_reentrant_lock_taken_again_by_its_holder() -> None:
    data = scenario("self_deadlock")
    found = misuse(data)
    assert len(found) == 1
    f = found[0]
    assert f.actors == ("t1",) and f.objects == ("L",)
    assert "acquires lock L again" in f.message and "use an rlock" in f.message
    # the deadlock is reported too, by waitgraph
    assert [b.kind for b in find_blocked_findings(data)] == ["deadlock"]


def test_rlock_reentry_and_a_failed_try_acquire_are_not_misuse() -> None:
    assert misuse(scenario("rlock_reentry")) == []
    data = make([acq("t1", "L"), acq("t1", "L", result="fail"), ev("t1", "release", "L")],
                {"L": "lock"})
    assert misuse(data) == []


def test_condition_wait_and_notify_without_the_lock() -> None:
    yaml = """
name: cond-nolock
primitives: {C: condition}
actors:
  - name: waiter
    kind: thread
    steps: [{wait: C, timeout: 0.01}]
  - name: notifier
    kind: thread
    steps: [{notify: C}]
"""
    found = misuse(from_run(yaml))
    by_actor = {f.actors[0]: f for f in found}
    assert set(by_actor) == {"waiter", "notifier"}
    assert "waiter waits on condition C" in by_actor["waiter"].message
    assert "without holding its lock" in by_actor["waiter"].message
    assert "notifier notifies condition C" in by_actor["notifier"].message
    assert "with: C" in by_actor["notifier"].message


def test_condition_on_a_named_lock_held_through_the_lock() -> None:
    prims = {"L": "lock", "C": {"type": "condition", "lock": "L"}}
    ok = make([acq("t1", "L"), ev("t1", "notify", "C"), call("t1", "wait", "C"),
               acq("t2", "C"), ev("t2", "notify", "C"), ev("t2", "release", "C"),
               ret("t1", "wait", "C"), ev("t1", "release", "L")], prims)
    assert misuse(ok) == []
    bad = make([acq("t1", "L"), ev("t2", "notify", "C")], prims)
    found = misuse(bad)
    assert len(found) == 1 and "without holding its lock L" in found[0].message
    assert "L is held by t1" in found[0].message


def test_clean_scenarios_have_no_misuse() -> None:
    for name in ("bank_account_lock", "bounded_buffer_condition", "semaphore"):
        assert misuse(scenario(name)) == [], name


# --------------------------------------------------------------------------------------------
# invariants


def test_broken_invariant_names_the_last_write() -> None:
    yaml = """
name: overdraw
shared: {balance: 100}
invariants: [{var: balance, op: ">=", value: 0}]
actors:
  - name: draw1
    kind: thread
    steps: [{add: {var: balance, value: -80}}]
  - name: main
    kind: thread
    steps: [{join: draw1}, {add: {var: balance, value: -100}}]
"""
    data = from_run(yaml)
    found = find_invariant_violations(data)
    assert len(found) == 1
    f = found[0]
    last = max(e["seq"] for e in data.events if e["op"] == "write")
    assert f.kind == "invariant" and f.objects == ("balance",) and f.actors == ("main",)
    assert f.events == (last,)
    assert f.message == (f"invariant balance >= 0 fails: balance = -80 at the end; the last "
                         f"write, seq {last} by main (line 11), set it to -80")


def test_invariant_that_holds_gives_nothing() -> None:
    assert find_invariant_violations(scenario("bank_account_lock")) == []
    assert find_invariant_violations(scenario("rlock_reentry")) == []


def test_invariant_without_final_replays_the_writes() -> None:
    steps = [ev("a", "write", "x", value=5), ev("b", "write", "x", value=-1),
             ev("a", "append", "xs", item="p"), ev("b", "append", "xs", item="q")]
    invs = [{"var": "x", "op": ">", "value": 0},
            {"var": "xs", "op": "==", "value": ["p"]},
            {"var": "y", "op": "==", "value": 1}]
    data = make(steps, shared={"x": 0, "xs": [], "y": 1}, invariants=invs)
    assert data.final is None
    found = find_invariant_violations(data)
    assert [f.objects for f in found] == [("x",), ("xs",)]
    assert "x = -1 at the end; the last write, seq 1 by b, set it to -1" in found[0].message
    assert 'the last write, seq 3 by b, appended "q" to it' in found[1].message


def test_invariant_broken_from_the_start() -> None:
    data = make([ev("a", "read", "x", value=-5)], shared={"x": -5},
                invariants=[{"var": "x", "op": ">=", "value": 0}], final={"x": -5})
    found = find_invariant_violations(data)
    assert len(found) == 1 and found[0].events == ()
    assert "no actor wrote it" in found[0].message


def test_incomparable_values_fail_the_invariant() -> None:
    data = make([ev("a", "write", "x", value="text")], invariants=[
        {"var": "x", "op": "<", "value": 3}], final={"x": "text"})
    assert len(find_invariant_violations(data)) == 1


# --------------------------------------------------------------------------------------------
# blocking profile


def test_profile_counts_waits_and_holds() -> None:
    prims = {"L": "lock", "E": "event", "C": "condition"}
    data = make([
        call("a", "acquire", "L", ts=0.0), ret("a", "acquire", "L", ts=0.0),
        call("b", "acquire", "L", ts=0.1),
        ev("a", "release", "L", ts=0.5),  # a held L 0.5 s
        ret("b", "acquire", "L", ts=0.5),  # b waited 0.4 s
        ev("b", "release", "L", ts=0.6),  # b held it 0.1 s
        call("a", "wait", "E", ts=0.6), ev("b", "set", "E", ts=0.7),
        ret("a", "wait", "E", ts=0.8),  # a waited 0.2 s on E
        call("b", "sleep", value=1.0, ts=0.8), ret("b", "sleep", ts=1.8),  # not a wait
        call("a", "acquire", "C", ts=1.8), ret("a", "acquire", "C", ts=1.8),
        call("a", "wait", "C", ts=2.0), ret("a", "wait", "C", result="timeout", ts=2.5),
        ev("a", "release", "C", ts=3.0),  # held C 0.2 s + 0.5 s
        call("b", "acquire", "L", ts=3.0), ret("b", "acquire", "L", ts=3.0),
        call("a", "acquire", "L", ts=3.0),  # never returns: open until the end
        ev("b", "log", detail="end", ts=4.0),
    ], prims)
    p = blocking_profile(data)
    L, E, C = p["primitives"]["L"], p["primitives"]["E"], p["primitives"]["C"]
    assert L["waits"] == 4 and L["open_waits"] == 1
    assert abs(L["wait_total"] - 1.4) < 1e-9 and abs(L["wait_max"] - 1.0) < 1e-9
    assert L["holds"] == 3 and abs(L["hold_total"] - 1.6) < 1e-9
    assert abs(L["hold_max"] - 1.0) < 1e-9
    assert E["waits"] == 1 and abs(E["wait_total"] - 0.2) < 1e-9 and "holds" not in E
    assert C["waits"] == 2 and abs(C["wait_total"] - 0.5) < 1e-9
    assert C["holds"] == 2 and abs(C["hold_total"] - 0.7) < 1e-9
    assert abs(p["actors"]["a"]["blocked"] - 1.7) < 1e-9
    assert abs(p["actors"]["b"]["blocked"] - 0.4) < 1e-9
    lines = render_profile(p)
    assert lines[0].split()[:3] == ["primitive", "type", "waits"]
    assert [ln.split()[0] for ln in lines[1:4]] == ["L", "C", "E"]  # widest waits first
    assert "1 open" in lines[1]
    assert any(ln.startswith("actor") for ln in lines)
    assert lines[-2].split()[0] == "a" and lines[-1].split()[0] == "b"


def test_profile_of_a_run_without_waits() -> None:
    data = make([ev("a", "start"), ev("a", "end", result="ok")])
    assert blocking_profile(data)["primitives"] == {}
    assert render_profile(blocking_profile(data)) == ["no blocking calls"]


def test_profile_of_a_real_run_is_consistent() -> None:
    data = scenario("producer_consumer")
    p = blocking_profile(data)
    q = next(iter(p["primitives"].values()))
    assert q["type"] == "queue" and q["waits"] == 20 and q["open_waits"] == 0
    assert sum(a["waits"] for a in p["actors"].values()) == 20
    assert q["wait_max"] <= q["wait_total"] <= p["end"] * 2


# --------------------------------------------------------------------------------------------
# wait-for graph, deadlocks and stalls

ABBA = """
name: abba
primitives: {A: lock, B: lock, E1: event, E2: event}
actors:
  - name: t1
    kind: thread
    steps: [{acquire: A}, {set: E1}, {wait: E2}, {acquire: B}]
  - name: t2
    kind: thread
    steps: [{acquire: B}, {set: E2}, {wait: E1}, {acquire: A}]
"""


def test_deadlock_finding_and_graph_at_the_end() -> None:
    data = from_run(ABBA)
    assert data.outcome["status"] == "deadlock"
    found = find_blocked_findings(data)
    assert len(found) == 1
    f = found[0]
    assert f.kind == "deadlock" and set(f.actors) == {"t1", "t2"}
    assert set(f.objects) == {"A", "B"}
    # each hold and wait by the line of its step (t1's steps are all on line 7)
    assert "t1 holds A (line 7) and waits for B (line 7)" in f.message
    ops = sorted((data.events[s]["actor"], data.events[s]["target"], data.events[s]["phase"])
                 for s in f.events)
    assert ops == [("t1", "A", "return"), ("t1", "B", "call"), ("t2", "A", "call"),
                   ("t2", "B", "return")]
    g = wait_for_graph(data)
    assert g.seq is None and g.actors == ["t1", "t2"]
    assert g.cycle == {"t1", "t2", "A", "B"} and g.stalled == set()
    assert set(g.holds) == {("A", "t1", 1), ("B", "t2", 1)}
    assert set(g.waits) == {("t1", "acquire", "B"), ("t2", "acquire", "A")}
    assert g.resources["A"] == "lock" and g.resources["E1"] == "event"


def test_graph_at_a_moment_replays_up_to_that_event() -> None:
    data = from_run(ABBA)
    t1_has_a = next(e["seq"] for e in data.events
                    if e["actor"] == "t1" and e["op"] == "acquire" and e.get("phase") == "return")
    g = wait_for_graph(data, t1_has_a)
    assert g.seq == t1_has_a
    assert ("A", "t1", 1) in g.holds
    assert g.cycle == set()
    g0 = wait_for_graph(data, 0)
    assert g0.seq == 0 and g0.cycle == set()


def test_lock_cycle_mid_trace_and_in_a_timeout_trace() -> None:
    steps = [acq("t1", "A"), acq("t2", "B"), call("t1", "acquire", "B"),
             call("t2", "acquire", "A"), ev("t3", "log", detail="still running"),
             ev(None, "timeout", actors=["t1", "t2", "t3"], detail="the run did not finish")]
    data = make(steps, {"A": "lock", "B": "lock"}, outcome={"status": "timeout"})
    g = wait_for_graph(data, 5)
    assert g.cycle == {"t1", "t2", "A", "B"}
    assert wait_for_graph(data, 4).cycle == set()  # t2 is not waiting yet
    found = find_blocked_findings(data)
    assert len(found) == 1
    f = found[0]
    assert f.kind == "deadlock" and set(f.actors) == {"t1", "t2"}
    assert "t1 holds A and waits for B" in unlined(f.message)
    assert "timeout" in f.message
    assert f.events == (1, 3, 4, 5)


def test_lock_released_just_before_the_end_is_not_a_deadlock() -> None:
    # t2 released B; t1's acquire has not returned yet: it is about to get it
    steps = [acq("t1", "A"), acq("t2", "B"), call("t1", "acquire", "B"),
             ev("t2", "release", "B"), call("t2", "acquire", "A")]
    data = make(steps, {"A": "lock", "B": "lock"})
    assert find_blocked_findings(data) == []
    assert wait_for_graph(data).cycle == set()


def test_condition_wait_lets_its_lock_go_in_the_graph() -> None:
    prims = {"C": "condition"}
    data = make([acq("a", "C"), call("a", "wait", "C"), acq("b", "C")], prims)
    g = wait_for_graph(data)
    assert g.holds == [("C", "b", 1)]
    assert g.waits == [("a", "wait", "C")]
    assert wait_for_graph(data, 1).holds == [("C", "a", 1)]


def test_stall_from_the_engine_event() -> None:
    data = scenario("queue_stall")
    found = find_blocked_findings(data)
    assert [f.kind for f in found] == ["stall"]
    assert found[0].actors == ("consumer",)
    assert "no live actor will ever put into it" in found[0].message
    blocked = found[0].events
    assert len(blocked) == 1 and data.events[blocked[0]]["op"] == "get"
    g = wait_for_graph(data)
    assert g.stalled == {"consumer"} and g.cycle == set()


def test_sleeps_are_not_waits_and_clean_runs_have_nothing() -> None:
    data = make([call("a", "sleep", value=1.0)])
    assert wait_for_graph(data).waits == []
    assert find_blocked_findings(scenario("bank_account_lock")) == []


def test_join_waits_show_the_actor_as_a_resource() -> None:
    data = make([ev("main", "start"), call("main", "join", "t"), ev("t", "start")])
    g = wait_for_graph(data)
    assert g.waits == [("main", "join", "t")]
    assert g.resources["t"] == "actor"
