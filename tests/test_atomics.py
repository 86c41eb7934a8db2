"""Atomics (issue 12): ``atomic: [V]`` and ``add: {..., atomic: true}`` in the trace and the
analyses.

An atomic access carries ``"atomic": true``; an atomic add is one ``write`` with ``old``.
Two atomic accesses never race; an atomic read acquires what the last atomic write of its
variable released (a release-store), an atomic add both, a plain write ends it — so a flag
handed over atomically orders the plain data around it, while a plain access still races with
an unordered atomic one. Real runs of every actor kind, under run and explore, check what a
user relies on (no race, no lost update); hand-written traces pin each edge of the rule.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import ev, make_trace, record_and_replay, run_yaml, tracer_cli

import tracer
from tracer.analyze import TraceData, find_all, parse_trace_data
from tracer.analyze.invariants import find_invariant_violations
from tracer.analyze.lockorder import find_potential_deadlocks
from tracer.analyze.races import find_races
from tracer.render.chrome import write_chrome
from tracer.render.timeline import describe, timeline
from tracer.scenario import load_scenario_text

KINDS = ("thread", "coroutine", "process")


def counter(kind: str, atomic: str = "declared", copies: int = 3, times: int = 2) -> str:
    """``copies`` actors of ``kind`` each add 1 to n ``times`` times; ``atomic``: the
    variable is ``declared`` in ``atomic:``, the adds say ``atomic: true`` (``step``), or
    neither (``none``). The invariant says no update was lost."""
    head = "atomic: [n]\n" if atomic == "declared" else ""
    flag = ", atomic: true" if atomic == "step" else ""
    return f"""
name: atomic_counter_{kind}
shared: {{n: 0}}
{head}invariants:
  - {{var: n, op: "==", value: {copies * times}}}
actors:
  - name: a
    kind: {kind}
    count: {copies}
    steps:
      - repeat: {times}
        steps:
          - add: {{var: n, value: 1{flag}}}
"""


def handoff(kind: str, atomic: bool = True) -> str:
    """A writer sets ``data`` plainly, then the flag; the reader waits for the flag in a
    ``while`` loop (no spin helper: ``sleep: 0`` in the body), then reads ``data``."""
    head = "atomic: [flag]\n" if atomic else ""
    return f"""
name: handoff_{kind}
shared: {{data: 0, flag: 0}}
{head}actors:
  - name: writer
    kind: {kind}
    steps:
      - write: {{var: data, value: 42}}
      - write: {{var: flag, value: 1}}
  - name: reader
    kind: {kind}
    steps:
      - while: "flag == 0"
        max: 1000000
        steps:
          - sleep: 0
      - read: data
"""


def data_of(trace: dict[str, Any]) -> TraceData:
    return parse_trace_data(json.dumps(trace))


def race_pairs(data: TraceData) -> set[tuple[str, frozenset[str]]]:
    return {(f.objects[0], frozenset(f.actors)) for f in find_races(data)}


def check_atomic_writes(trace: dict[str, Any], var: str, delta: int) -> None:
    """Each write of ``var`` is one atomic event whose ``old`` is the value the last write
    left and whose ``value`` is ``old + delta``; no read of it in between (one event)."""
    value = trace["scenario"]["shared"][var]
    writes = 0
    for e in trace["events"]:
        if e.get("target") != var:
            continue
        assert e["op"] == "write", f"an atomic add is one write, not {e}"
        assert e.get("atomic") is True, e
        assert e["old"] == value, f"seq {e['seq']}: old {e['old']}, but the value was {value}"
        assert e["value"] == e["old"] + delta, e
        value = e["value"]
        writes += 1
    assert trace["final"][var] == value
    assert writes > 0


# --------------------------------------------------------------------------------------------
# real runs


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("atomic", ["declared", "step"])
def test_an_atomic_counter_loses_no_update_and_has_no_race(kind: str, atomic: str) -> None:
    result, trace = run_yaml(counter(kind, atomic))
    assert result.status == "ok", result.detail
    check_atomic_writes(trace, "n", 1)
    assert trace["final"]["n"] == 6
    found = find_all(data_of(trace))
    assert not found, [f.message for f in found]


@pytest.mark.timeout(120)
@pytest.mark.parametrize("kind", ["thread", "coroutine"])
def test_explore_never_finds_a_lost_atomic_update_nor_a_race(kind: str,
                                                            tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(counter(kind), encoding="utf-8")
    r = tracer_cli("explore", str(path), "--runs", "200", "--format", "json", "--traces",
                   str(tmp_path / "found"), cwd=tmp_path, timeout=110)
    assert r.returncode == 0, r.stdout + r.stderr
    report = json.loads(r.stdout)
    assert report["findings"] == [], report["findings"]
    assert report["runs"] == 200


@pytest.mark.timeout(120)
@pytest.mark.parametrize("kind", ["thread", "coroutine"])
def test_without_atomic_explore_finds_the_race_and_the_lost_update(kind: str,
                                                                   tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(counter(kind, "none"), encoding="utf-8")
    r = tracer_cli("explore", str(path), "--runs", "200", "--format", "json", "--traces",
                   str(tmp_path / "found"), cwd=tmp_path, timeout=110)
    assert r.returncode == 1, r.stdout + r.stderr
    kinds = {p["kind"] for p in json.loads(r.stdout)["findings"]}
    assert kinds == {"race", "invariant"}


@pytest.mark.timeout(120)
def test_explore_of_process_actors_never_loses_an_atomic_update() -> None:
    plan = load_scenario_text(counter("process", copies=2), "<t>")
    found = tracer.explore(plan, runs=6, seed=1)
    assert found.runs == 6
    assert not found.groups, [g.message for g in found.groups.values()]
    dfs = tracer.explore(plan, strategy="dfs", runs=50)
    assert not dfs.groups, [g.message for g in dfs.groups.values()]


def test_dfs_proves_the_atomic_counter_clean_and_the_plain_one_racy() -> None:
    clean = tracer.explore(load_scenario_text(counter("thread"), "<t>"), strategy="dfs",
                           runs=1000)
    assert clean.exhaustive
    assert not clean.groups
    racy = tracer.explore(load_scenario_text(counter("thread", "none"), "<t>"),
                          strategy="dfs", runs=1000)
    assert {k[0] for k in racy.groups} == {"race", "invariant"}


@pytest.mark.parametrize("kind", KINDS)
def test_data_handed_over_through_an_atomic_flag_is_no_race(kind: str) -> None:
    result, trace = run_yaml(handoff(kind))
    assert result.status == "ok", result.detail
    reads = [e for e in trace["events"] if e["op"] == "read"]
    assert reads[-1]["target"] == "data" and reads[-1]["value"] == 42
    assert all(e.get("atomic") is True for e in reads if e["target"] == "flag")
    assert "atomic" not in reads[-1]  # data is not atomic
    assert race_pairs(data_of(trace)) == set()


@pytest.mark.parametrize("kind", ["thread", "coroutine"])
def test_the_same_handoff_without_atomic_races_on_data_and_flag(kind: str) -> None:
    _, trace = run_yaml(handoff(kind, atomic=False))
    pair = frozenset({"writer", "reader"})
    assert race_pairs(data_of(trace)) == {("data", pair), ("flag", pair)}


def test_explore_of_the_atomic_handoff_finds_no_race() -> None:
    clean = tracer.explore(load_scenario_text(handoff("thread"), "<t>"), runs=100, seed=3)
    assert not clean.groups, [g.message for g in clean.groups.values()]
    racy = tracer.explore(load_scenario_text(handoff("thread", atomic=False), "<t>"),
                          runs=30, seed=3)
    assert {(k[0], *k[2]) for k in racy.groups} == {("race", "data"), ("race", "flag")}


@pytest.mark.parametrize("kind", ["thread", "coroutine"])
def test_an_atomic_add_races_with_a_plain_read_of_the_same_variable(kind: str) -> None:
    _, trace = run_yaml(f"""
name: mixed
shared: {{n: 0}}
actors:
  - name: adder
    kind: {kind}
    steps:
      - add: {{var: n, value: 1, atomic: true}}
  - name: reader
    kind: {kind}
    steps:
      - read: n
""")
    found = find_races(data_of(trace))
    assert len(found) == 1
    f = found[0]
    assert set(f.actors) == {"adder", "reader"}
    sides = {f.details["first"]["actor"]: f.details["first"],
             f.details["second"]["actor"]: f.details["second"]}
    assert sides["adder"]["atomic"] is True and sides["adder"]["op"] == "write"
    assert "atomic" not in sides["reader"] and sides["reader"]["op"] == "read"
    assert "atomically adds to" in f.message
    assert "reader's read is not" in f.message
    assert "'atomic'" in f.message  # the fix names the field


def test_an_atomic_counter_replays_identically(tmp_path: Path) -> None:
    trace, diff, status = record_and_replay(counter("thread"), tmp_path)
    assert diff is None, diff
    assert status == "ok"
    check_atomic_writes(trace, "n", 1)


def test_a_while_loop_reads_atomically_every_time() -> None:
    _, trace = run_yaml("""
name: loop
shared: {i: 0}
atomic: [i]
actors:
  - name: a
    kind: thread
    steps:
      - while: "i < 3"
        steps:
          - add: {var: i, value: 1}
""")
    ops = [(e["op"], e.get("value"), e.get("old")) for e in trace["events"]
           if e.get("target") == "i"]
    assert ops == [("read", 0, None), ("write", 1, 0), ("read", 1, None), ("write", 2, 1),
                   ("read", 2, None), ("write", 3, 2), ("read", 3, None)]
    assert all(e.get("atomic") is True for e in trace["events"] if e.get("target") == "i")


# --------------------------------------------------------------------------------------------
# the happens-before rule, edge by edge, on hand-written traces

def w(actor: str, var: str, value: Any, old: Any = None, atomic: bool = True) -> dict[str, Any]:
    kw: dict[str, Any] = {"value": value}
    if atomic:
        kw["atomic"] = True
    if old is not None:
        kw["old"] = old
    return ev(actor, "write", var, **kw)


def r(actor: str, var: str, value: Any, atomic: bool = True) -> dict[str, Any]:
    return ev(actor, "read", var, value=value, **({"atomic": True} if atomic else {}))


def test_two_unordered_atomic_accesses_never_race() -> None:
    data = make_trace([w("p", "n", 1, 0), w("q", "n", 2, 1), w("p", "m", 5), w("q", "m", 6),
                       r("q", "m", 6), r("p", "m", 6)])
    assert find_races(data) == []


def test_an_atomic_store_releases_and_an_atomic_read_acquires() -> None:
    data = make_trace([w("p", "data", 1, atomic=False), w("p", "flag", 1),
                       r("q", "flag", 1), r("q", "data", 1, atomic=False)])
    assert find_races(data) == []


def test_a_read_before_the_store_acquires_nothing() -> None:
    data = make_trace([r("q", "flag", 0), w("p", "data", 1, atomic=False), w("p", "flag", 1),
                       r("q", "data", 1, atomic=False)])
    assert race_pairs(data) == {("data", frozenset({"p", "q"}))}


def test_a_store_replaces_what_the_last_store_released() -> None:
    # q read the flag r stored, not p's: p's data is not ordered before q's read of it
    data = make_trace([w("p", "data", 1, atomic=False), w("p", "flag", 1), w("r", "flag", 2),
                       r("q", "flag", 2), r("q", "data", 1, atomic=False)])
    assert race_pairs(data) == {("data", frozenset({"p", "q"}))}


def test_a_chain_of_atomic_adds_orders_each_after_all_before_it() -> None:
    data = make_trace([w("p", "data", 1, atomic=False), w("p", "n", 1, 0), w("r", "n", 2, 1),
                       r("q", "n", 2), r("q", "data", 1, atomic=False)])
    assert find_races(data) == []


def test_a_plain_write_between_ends_what_the_atomic_store_released() -> None:
    data = make_trace([w("p", "data", 1, atomic=False), w("p", "flag", 1),
                       w("s", "flag", 1, atomic=False),  # s writes it plainly after p
                       r("q", "flag", 1), r("q", "data", 1, atomic=False)])
    found = race_pairs(data)
    assert ("data", frozenset({"p", "q"})) in found
    # and that plain write races with both atomic accesses around it
    assert {("flag", frozenset({"p", "s"})), ("flag", frozenset({"s", "q"}))} <= found


def test_a_plain_access_races_with_an_unordered_atomic_one_unless_ordered() -> None:
    racy = make_trace([w("p", "n", 1, 0), r("q", "n", 1, atomic=False)])
    assert race_pairs(racy) == {("n", frozenset({"p", "q"}))}
    racy_write = make_trace([r("p", "n", 0), w("q", "n", 5, atomic=False)])
    assert race_pairs(racy_write) == {("n", frozenset({"p", "q"}))}
    # ordered by an atomic hand-off on another variable: no race
    ordered = make_trace([w("p", "n", 1, 0), w("p", "f", 1), r("q", "f", 1),
                          r("q", "n", 1, atomic=False), w("q", "n", 7, atomic=False)])
    assert find_races(ordered) == []


def test_two_atomic_reads_and_a_plain_read_never_race() -> None:
    data = make_trace([r("p", "n", 0), r("q", "n", 0, atomic=False), r("p", "n", 0)])
    assert find_races(data) == []


def test_lock_order_does_not_count_atomic_hand_offs() -> None:
    # which actor's atomic access comes first is this run's accident, as for a lock: the
    # inverted lock order is still a potential deadlock
    def both(actor: str, first: str, second: str) -> list[dict[str, Any]]:
        out = []
        for lk in (first, second):
            out += [ev(actor, "acquire", lk, phase="call"),
                    ev(actor, "acquire", lk, phase="return", result="ok")]
        return [*out, ev(actor, "release", second), ev(actor, "release", first)]
    data = make_trace([both("p", "A", "B"), w("p", "f", 1), r("q", "f", 1),
                       both("q", "B", "A")], primitives={"A": "lock", "B": "lock"})
    assert [f.kind for f in find_potential_deadlocks(data)] == ["potential_deadlock"]
    assert find_races(data) == []


# --------------------------------------------------------------------------------------------
# what shows the fields


def test_show_says_atomic_and_what_an_atomic_add_replaced() -> None:
    assert describe(w("a", "n", 3, 2)) == "write n = 3 (atomic, was 2)"
    assert describe(w("a", "n", 3)) == "write n = 3 (atomic)"
    assert describe(r("a", "n", 3)) == "read n -> 3 (atomic)"
    assert describe(w("a", "n", 3, atomic=False)) == "write n = 3"
    data = make_trace([w("a", "n", 1, 0)], shared={"n": 0})
    assert any(line.endswith("write n = 1 (atomic, was 0)") for line in timeline(data))


def test_the_chrome_export_draws_the_atomic_hand_off(tmp_path: Path) -> None:
    data = make_trace([w("p", "data", 1, atomic=False), w("p", "flag", 1),
                       r("q", "flag", 1), w("q", "n", 1, 0), w("p", "n", 2, 1)])
    out = write_chrome(data, tmp_path / "c.json")
    doc = json.loads(out.read_text(encoding="utf-8"))
    evs = doc["traceEvents"] if isinstance(doc, dict) else doc
    flows = [(e["ph"], e["ts"]) for e in evs if e.get("name") == "atomic write → read"]
    # flag: p -> q; n: q's add -> p's add
    assert sorted(ph for ph, _ in flows) == ["f", "f", "s", "s"]
    args = [e["args"] for e in evs if e.get("args", {}).get("seq") == 3]
    assert args and args[0]["atomic"] is True and args[0]["old"] == 0


def test_an_invariant_broken_by_an_atomic_add_says_so() -> None:
    data = make_trace([w("a", "n", -1, 0)], shared={"n": 0},
                      invariants=[{"var": "n", "op": ">=", "value": 0}])
    (f,) = find_invariant_violations(data)
    assert "atomically set it to -1 (was 0)" in f.message


def test_a_hand_edited_atomic_that_is_not_a_boolean_is_refused(tmp_path: Path) -> None:
    _, trace = run_yaml(counter("thread", copies=1, times=1))
    for e in trace["events"]:
        if e.get("atomic"):
            e["atomic"] = "true"
    path = tmp_path / "t.json"
    path.write_text(json.dumps(trace), encoding="utf-8")
    for cmd in ("show", "analyze"):
        p = tracer_cli(cmd, str(path), cwd=tmp_path)
        assert p.returncode == 2, p.stdout + p.stderr
        assert 'has atomic "true"; expected true or false' in p.stderr
        assert "Traceback" not in p.stderr


def peterson(broken: bool = False) -> str:
    """Peterson's mutual exclusion on atomic flags and turn, around a plain ``x += 1``;
    ``broken``: each actor checks the other's flag before raising its own, and no turn."""
    def actor(me: int) -> str:
        other = 1 - me
        enter = (f"""          - while: "flag{other} == 1"
            max: 100000
            steps: [{{sleep: 0}}]
          - write: {{var: flag{me}, value: 1}}""" if broken else
                 f"""          - write: {{var: flag{me}, value: 1}}
          - write: {{var: turn, value: {other}}}
          - while: "flag{other} == 1 and turn == {other}"
            max: 100000
            steps: [{{sleep: 0}}]""")
        return f"""  - name: a{me}
    kind: thread
    steps:
      - repeat: 2
        steps:
{enter}
          - add: {{var: x, value: 1}}
          - write: {{var: flag{me}, value: 0}}
"""
    return f"""
name: peterson
shared: {{flag0: 0, flag1: 0, turn: 0, x: 0}}
atomic: [flag0, flag1, turn]
invariants:
  - {{var: x, op: "==", value: 4}}
actors:
{actor(0)}{actor(1)}"""


@pytest.mark.timeout(120)
def test_petersons_critical_section_is_no_race_and_a_broken_one_is() -> None:
    safe = tracer.explore(load_scenario_text(peterson(), "<t>"), runs=200, seed=5)
    assert not safe.groups, [g.message for g in safe.groups.values()]
    broken = tracer.explore(load_scenario_text(peterson(broken=True), "<t>"), runs=200,
                            seed=5)
    # the plain x inside the unprotected section: a race, and an update lost
    assert ("race", frozenset({"a0", "a1"}), frozenset({"x"})) in broken.groups
    assert "invariant" in {k[0] for k in broken.groups}
