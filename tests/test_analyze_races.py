"""Race detection (tracer.analyze.races): happens-before over every synchronisation edge the
trace shows, FastTrack epochs for the accesses.

Real runs check that clean programs stay clean and racy ones are caught whatever the
interleaving (an unordered pair is a race even when the accesses happen far apart in time);
hand-written traces pin down each edge precisely.
"""

from __future__ import annotations

import random
from typing import Any

import orjson
import pytest
from conftest import call, ev, make_trace, ret, run_yaml

from tracer.analyze import Finding, TraceData, parse_trace_data
from tracer.analyze.races import find_races

make = make_trace

# --------------------------------------------------------------------------------------------
# helpers: hand-written traces





def both(actor: str, op: str, target: str | None = None, result: str = "ok",
         **kw: Any) -> list[dict[str, Any]]:
    """A blocking op that returns at once: its call and its return."""
    item = kw.pop("item", None)
    c = call(actor, op, target, **({"item": item} if op in ("put", "send") else {}))
    r = ret(actor, op, target, result, **({"item": item} if op in ("get", "recv") else {}))
    return [c, r]



def races(data: TraceData) -> list[Finding]:
    out = find_races(data)
    assert all(f.kind == "race" for f in out)
    return out


def pairs(found: list[Finding]) -> set[tuple[str, frozenset[str]]]:
    return {(f.objects[0], frozenset(f.actors)) for f in found}


def from_run(yaml: str) -> TraceData:
    result, _ = run_yaml(yaml)
    return parse_trace_data(result.to_json())


# --------------------------------------------------------------------------------------------
# real runs

COUNTER = """
name: counter
primitives: {{L: lock}}
shared: {{n: 0}}
actors:
  - name: w
    kind: {kind}
    count: 2
    steps:
      - repeat: 20
        steps: [{step}]
"""
LOCKED = "{with: L, steps: [{add: {var: n, value: 1}}]}"
BARE = "{add: {var: n, value: 1}}"


@pytest.mark.parametrize("kind", ["thread", "coroutine"])
def test_lock_protected_counter_has_no_race(kind: str) -> None:
    data = from_run(COUNTER.format(kind=kind, step=LOCKED))
    assert data.final == {"n": 40}
    assert races(data) == []


@pytest.mark.parametrize("kind", ["thread", "coroutine"])
def test_unprotected_counter_races_whatever_the_interleaving(kind: str) -> None:
    data = from_run(COUNTER.format(kind=kind, step=BARE))
    found = races(data)
    assert pairs(found) == {("n", frozenset({"w[0]", "w[1]"}))}
    f = found[0]
    assert f.severity == "error"
    assert len(f.events) == 2 and f.events[0] < f.events[1]
    assert "race on n" in f.message and "holding nothing" in f.message
    assert "protect every access to n with one lock" in f.message


def test_process_actors_are_analysed_the_same() -> None:
    yaml = """
name: procs
primitives: {L: lock}
shared: {n: 0, m: 0}
actors:
  - name: p
    kind: process
    count: 2
    steps:
      - with: L
        steps: [{add: {var: n, value: 1}}]
      - add: {var: m, value: 1}
"""
    found = races(from_run(yaml))
    assert pairs(found) == {("m", frozenset({"p[0]", "p[1]"}))}


def test_event_set_then_wait_orders_the_accesses() -> None:
    yaml = """
name: ev
primitives: {E: event}
shared: {x: 0, y: 0}
actors:
  - name: writer
    kind: thread
    steps:
      - write: {var: x, value: 1}
      - set: E
      - write: {var: y, value: 1}
  - name: reader
    kind: thread
    steps:
      - wait: E
      - read: x
      - read: y
"""
    found = races(from_run(yaml))
    # x is written before the set: ordered; y after it: a race
    assert pairs(found) == {("y", frozenset({"writer", "reader"}))}


def test_join_orders_the_accesses_and_without_join_they_race() -> None:
    yaml = """
name: join
shared: {x: 0, y: 0}
actors:
  - name: main
    kind: thread
    steps:
      - write: {var: x, value: 1}
      - start: t
      - join: t
      - read: x
      - read: y
  - name: t
    kind: thread
    autostart: false
    steps:
      - add: {var: x, value: 1}
  - name: other
    kind: thread
    steps:
      - write: {var: y, value: 5}
"""
    found = races(from_run(yaml))
    # x: before the spawn, then after the join: ordered both ways; y: nobody orders other
    assert pairs(found) == {("y", frozenset({"main", "other"}))}


def test_queue_put_then_get_orders_the_accesses() -> None:
    yaml = """
name: q
primitives: {Q: queue}
shared: {x: 0}
actors:
  - name: producer
    kind: thread
    steps:
      - write: {var: x, value: 1}
      - {put: Q, item: ready}
  - name: consumer
    kind: thread
    steps:
      - get: Q
      - read: x
      - write: {var: x, value: 2}
"""
    assert races(from_run(yaml)) == []


def test_read_read_is_not_a_race() -> None:
    yaml = """
name: rr
shared: {x: 0}
actors:
  - name: a
    kind: thread
    steps: [{read: x}, {read: x}]
  - name: b
    kind: thread
    steps: [{read: x}]
  - name: c
    kind: coroutine
    steps: [{read: x}]
"""
    assert races(from_run(yaml)) == []


def test_clean_tutorial_scenarios_have_no_race() -> None:
    from conftest import SCENARIOS
    for name in ("bank_account_lock", "bounded_buffer_condition", "rlock_reentry"):
        result, _ = run_yaml((SCENARIOS / f"{name}.yaml").read_text(encoding="utf-8"))
        assert races(parse_trace_data(result.to_json())) == [], name


# --------------------------------------------------------------------------------------------
# hand-written traces: each edge, precisely


def test_far_apart_in_time_is_still_a_race() -> None:
    data = make([
        ev("t1", "start"), ev("t1", "write", "x", value=1, ts=0.0), ev("t1", "end", result="ok"),
        ev("t2", "start", ts=100.0), ev("t2", "read", "x", value=1, ts=100.0),
    ])
    found = races(data)
    assert len(found) == 1
    f = found[0]
    assert f.actors == ("t1", "t2") and f.objects == ("x",) and f.events == (1, 4)
    assert f.details["var"] == "x"
    assert f.details["first"] == {"seq": 1, "actor": "t1", "op": "write", "value": 1,
                                  "locks_held": []}
    assert f.details["second"]["op"] == "read"
    assert f.message.startswith("race on x: t1 writes x (seq 1, holding nothing) and t2 "
                                "reads it (seq 4, holding nothing)")


def test_one_finding_per_variable_and_pair_the_first_one() -> None:
    steps: list[Any] = []
    for i in range(5):
        steps += [ev("a", "write", "x", value=i), ev("b", "write", "x", value=i),
                  ev("c", "read", "x", value=i), ev("a", "write", "y", value=i),
                  ev("b", "read", "y", value=i)]
    found = races(make(steps))
    assert pairs(found) == {("x", frozenset("ab")), ("x", frozenset("ac")),
                            ("x", frozenset("bc")), ("y", frozenset("ab"))}
    first = {(f.objects[0], frozenset(f.actors)): f.events for f in found}
    assert first[("x", frozenset("ab"))] == (0, 1)
    assert first[("y", frozenset("ab"))] == (3, 4)


def test_lock_edge_and_lock_names_in_the_message() -> None:
    L = {"L": "lock", "M": "lock"}
    ordered = make([both("a", "acquire", "L"), ev("a", "write", "x", value=1),
                    ev("a", "release", "L"), both("b", "acquire", "L"),
                    ev("b", "read", "x", value=1), ev("b", "release", "L")], L)
    assert races(ordered) == []
    # b takes another lock: no edge from a's release of L
    wrong = make([both("a", "acquire", "L"), ev("a", "write", "x", value=1),
                  ev("a", "release", "L"), both("b", "acquire", "M"),
                  ev("b", "read", "x", value=1), ev("b", "release", "M")], L)
    f = races(wrong)[0]
    assert "holding L" in f.message and "holding M" in f.message
    assert "different locks" in f.message
    assert f.details["first"]["locks_held"] == ["L"]
    # b holds nothing: say which lock to take
    half = make([both("a", "acquire", "L"), ev("a", "write", "x", value=1),
                 ev("a", "release", "L"), ev("b", "read", "x", value=1)], L)
    assert "take L around that access too" in races(half)[0].message


def test_acquire_that_timed_out_is_not_an_edge() -> None:
    data = make([both("a", "acquire", "L"), ev("a", "write", "x", value=1),
                 ev("a", "release", "L"), both("b", "acquire", "L", result="timeout"),
                 ev("b", "read", "x", value=1)], {"L": "lock"})
    assert len(races(data)) == 1


def test_rlock_and_a_conditions_lock_are_edges() -> None:
    prims = {"R": "rlock", "L": "lock", "C": {"type": "condition", "lock": "L"}}
    data = make([both("a", "acquire", "R"), both("a", "acquire", "R"),
                 ev("a", "write", "x", value=1), ev("a", "release", "R"),
                 ev("a", "release", "R"),
                 both("b", "acquire", "R"), ev("b", "read", "x", value=1),
                 ev("b", "release", "R"),
                 # C is built on L: acquire C, release L orders too
                 both("a", "acquire", "C"), ev("a", "write", "y", value=1),
                 ev("a", "release", "C"), both("b", "acquire", "L"),
                 ev("b", "read", "y", value=1), ev("b", "release", "L")], prims)
    assert races(data) == []


def test_condition_wait_releases_and_retakes_its_lock() -> None:
    prims = {"C": "condition"}
    data = make([
        both("a", "acquire", "C"), ev("a", "write", "x", value=1),
        call("a", "wait", "C"),  # lets go of C
        both("b", "acquire", "C"), ev("b", "read", "x", value=1),
        ev("b", "write", "x", value=2), ev("b", "notify", "C"), ev("b", "release", "C"),
        ret("a", "wait", "C"),  # takes C back
        ev("a", "read", "x", value=2), ev("a", "release", "C"),
    ], prims)
    assert races(data) == []


def test_condition_notify_orders_a_waiter_even_without_lock_edges() -> None:
    # hand-made: the waiter's wait returns ok after a notify that followed a write
    prims = {"C": "condition", "D": "condition"}
    ordered = make([ev("a", "write", "x", value=1), ev("a", "notify", "C"),
                    both("b", "wait", "C"), ev("b", "read", "x", value=1)], prims)
    assert races(ordered) == []
    other = make([ev("a", "write", "x", value=1), ev("a", "notify", "C"),
                  both("b", "wait", "D"), ev("b", "read", "x", value=1)], prims)
    assert len(races(other)) == 1


def test_event_wait_that_timed_out_is_not_an_edge() -> None:
    prims = {"E": "event"}
    data = make([ev("a", "write", "x", value=1), ev("a", "set", "E"),
                 both("b", "wait", "E", result="timeout"), ev("b", "read", "x", value=1)],
                prims)
    assert len(races(data)) == 1


def test_semaphore_release_orders_a_later_acquire() -> None:
    prims = {"S": {"type": "semaphore", "value": 0}}
    data = make([ev("a", "write", "x", value=1), ev("a", "release", "S"),
                 both("b", "acquire", "S"), ev("b", "read", "x", value=1)], prims)
    assert races(data) == []


def test_queue_items_are_matched_fifo_among_equal_items() -> None:
    prims = {"Q": "queue"}
    # a puts "k" before writing x, b puts "k" after writing y; the first get of "k" is a's
    data = make([
        both("a", "put", "Q", item="k"), ev("a", "write", "x", value=1),
        ev("b", "write", "y", value=1), both("b", "put", "Q", item="k"),
        both("c", "get", "Q", item="k"),
        ev("c", "read", "y", value=1),  # not ordered: that get matched a's put
        both("c", "get", "Q", item="k"),
        ev("c", "read", "y", value=1),  # now ordered (after the first report)
        ev("c", "read", "x", value=1),  # a wrote x after its put: a race
    ], prims)
    assert pairs(races(data)) == {("y", frozenset("bc")), ("x", frozenset("ac"))}


def test_a_put_that_failed_carries_nothing() -> None:
    prims = {"Q": {"type": "queue", "maxsize": 1}}
    data = make([
        ev("a", "write", "x", value=1),
        call("a", "put", "Q", item="k"), ret("a", "put", "Q", result="fail"),
        both("b", "put", "Q", item="k"),
        both("c", "get", "Q", item="k"), ev("c", "read", "x", value=1),
    ], prims)
    assert pairs(races(data)) == {("x", frozenset("ac"))}


def test_list_items_are_matched_too() -> None:
    prims = {"Q": "queue"}
    data = make([ev("a", "write", "x", value=1),
                 both("a", "put", "Q", item={"k": [1, 2]}),
                 both("b", "get", "Q", item={"k": [1, 2]}), ev("b", "read", "x", value=1)],
                prims)
    assert races(data) == []


def test_pipe_send_orders_the_receive_on_the_other_end() -> None:
    prims = {"P": {"type": "pipe", "between": ["a", "b"]}}
    data = make([
        ev("a", "write", "x", value=1), both("a", "send", "P", item="hi"),
        ev("b", "write", "y", value=1), both("b", "send", "P", item="hi"),
        both("b", "recv", "P", item="hi"), ev("b", "read", "x", value=1),
        both("a", "recv", "P", item="hi"), ev("a", "read", "y", value=1),
    ], prims)
    assert races(data) == []


def test_barrier_orders_everything_before_it_with_everything_after() -> None:
    prims = {"B": {"type": "barrier", "parties": 2}}
    data = make([
        ev("a", "write", "x", value=1), call("a", "wait", "B"),
        ev("b", "write", "y", value=1), call("b", "wait", "B"),
        ret("b", "wait", "B"), ev("b", "read", "x", value=1),
        ret("a", "wait", "B"), ev("a", "read", "y", value=1),
        # a second round: a writes before it, b reads after (x itself would race: b read
        # it after round 1, unordered with a's accesses before round 2)
        ev("a", "write", "w", value=2), call("a", "wait", "B"), call("b", "wait", "B"),
        ret("b", "wait", "B"), ev("b", "read", "w", value=2), ret("a", "wait", "B"),
        # after the barrier, no order: a race
        ev("a", "write", "z", value=1), ev("b", "read", "z", value=1),
    ], prims)
    assert pairs(races(data)) == {("z", frozenset("ab"))}


def test_barrier_round_does_not_order_the_next_rounds_arrivals() -> None:
    prims = {"B": {"type": "barrier", "parties": 2}}
    data = make([
        call("a", "wait", "B"), call("b", "wait", "B"), ret("b", "wait", "B"),
        # b arrives at round 2 after writing x, before a has left round 1
        ev("b", "write", "x", value=1), call("b", "wait", "B"),
        ret("a", "wait", "B"), ev("a", "read", "x", value=1),
    ], prims)
    assert pairs(races(data)) == {("x", frozenset("ab"))}


def test_spawn_and_join_edges() -> None:
    data = make([
        ev("main", "start"), ev("main", "write", "x", value=1), ev("main", "spawn", "t"),
        ev("t", "start"), ev("t", "read", "x", value=1), ev("t", "write", "y", value=1),
        ev("t", "end", result="ok"), both("main", "join", "t"),
        ev("main", "read", "y", value=1),
    ])
    assert races(data) == []
    no_join = make([
        ev("main", "start"), ev("main", "spawn", "t"), ev("main", "write", "x", value=1),
        ev("t", "start"), ev("t", "read", "x", value=1), ev("t", "end", result="ok"),
        both("main", "join", "t", result="timeout"), ev("main", "write", "x", value=2),
    ])
    # written after the spawn, and the join timed out: both accesses race with t's read
    found = races(no_join)
    assert pairs(found) == {("x", frozenset({"main", "t"}))}
    assert found[0].events == (2, 4)


def test_append_conflicts_with_append_and_read() -> None:
    data = make([ev("a", "append", "xs", item=1), ev("b", "append", "xs", item=2),
                 ev("c", "read", "xs", value=[1, 2])])
    found = races(data)
    assert pairs(found) == {("xs", frozenset("ab")), ("xs", frozenset("ac")),
                            ("xs", frozenset("bc"))}
    ab = next(f for f in found if set(f.actors) == {"a", "b"})
    assert "appends to xs" in ab.message and ab.details["first"]["value"] == 1


def test_shared_reads_then_a_write_report_each_reader() -> None:
    data = make([ev("a", "read", "x", value=0), ev("b", "read", "x", value=0),
                 ev("c", "read", "x", value=0), ev("d", "write", "x", value=1)])
    assert pairs(races(data)) == {("x", frozenset("ad")), ("x", frozenset("bd")),
                                  ("x", frozenset("cd"))}


def test_engine_events_and_no_primitives_are_fine() -> None:
    data = make([ev("a", "read", "x", value=0),
                 ev(None, "timeout", actors=["a"], detail="slow")])
    assert races(data) == []


def test_many_events_many_actors_is_linear_enough() -> None:
    # 64 actors, 32 locks, 64 variables: each variable is only touched under its lock
    rng = random.Random(7)
    names = [f"t{i}" for i in range(64)]
    prims = {f"L{i}": "lock" for i in range(32)}
    steps: list[Any] = []
    for _ in range(6000):
        a = rng.choice(names)
        lk = rng.randrange(32)
        v = f"v{lk * 2 + rng.randrange(2)}"
        steps += [both(a, "acquire", f"L{lk}"), ev(a, "read", v, value=0),
                  ev(a, "write", v, value=1), ev(a, "release", f"L{lk}")]
    steps.append(ev("t0", "write", "v0", value=9))  # the one unprotected access
    found = races(make(steps, prims, actors=names))
    assert {f.objects[0] for f in found} == {"v0"}
    assert all("t0" in f.actors for f in found)


def test_pool_tasks_on_one_worker_run_one_after_the_other() -> None:
    def trace(tids: tuple[int, int]) -> TraceData:
        flat = [ev("w[0]", "start"), ev("w[0]", "write", "x", value=1),
                ev("w[0]", "end", result="ok"), ev("w[1]", "start"),
                ev("w[1]", "read", "x", value=1), ev("w[1]", "end", result="ok")]
        for i, e in enumerate(flat):
            e.update(seq=i, ts=i * 0.001)
        doc = {"format": "tracer-trace/1",
               "scenario": {"name": "p", "primitives": {"P": {"type": "pool", "workers": 2,
                                                              "of": "thread"}}},
               "meta": {}, "events": flat, "outcome": {"status": "ok"},
               "actors": [{"name": f"w[{i}]", "kind": "thread", "pid": 1, "tid": tid,
                           "pool": "P"} for i, tid in enumerate(tids)]}
        return parse_trace_data(orjson.dumps(doc))

    assert races(trace((7, 7))) == []  # the same worker thread: ordered
    assert len(races(trace((7, 8)))) == 1  # two workers: they could overlap


def test_thread_pool_run_is_analysed() -> None:
    yaml = """
name: pool
primitives: {P: {type: pool, workers: 1, of: thread}}
shared: {x: 0}
actors:
  - name: task
    kind: thread
    pool: P
    count: 3
    steps: [{add: {var: x, value: 1}}]
"""
    data = from_run(yaml)
    assert data.final == {"x": 3}
    assert races(data) == []  # one worker runs them one after the other
