"""A trace never contradicts itself, whatever backs the shared variables.

Each read records the value of the last write before it in seq and ``final`` the last writes,
for thread actors (a dict), coroutines beside threads, and process actors (a Manager, where
an access is a round trip); a replay of such a trace is identical, and so is its replay trace.
Every YAML value, ``null`` included, goes through the scenario embedded in the trace, replay
and ``explore --jobs``; recordings with a daemon abandoned mid-way, or a process started late,
replay identically every time."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import assert_consistent, end_of, events, run_yaml, tracer_cli

from tracer import ScenarioError, load_scenario_text, run_plan
from tracer.analyze import parse_trace_data
from tracer.engine import _compile
from tracer.engine._compile import copy_value, unlocked_variables
from tracer.engine.schedule.replay import ReplayScheduler, first_difference, recorded_steps
from tracer.prims import event as P
from tracer.scenario import plan_from_mapping


def replay(trace: dict[str, Any]) -> tuple[str | None, dict[str, Any]]:
    """Replay a recorded trace in-process from its embedded scenario: (the first difference
    or divergence, None when identical; the replay's trace)."""
    plan = plan_from_mapping(trace["scenario"])
    processes = any(a.kind == "process" for a in plan.actors)
    sched = ReplayScheduler(recorded_steps(trace["events"]),
                            patience=10.0 if processes else 2.0)
    text = run_plan(plan, sched, mode="replay").to_json()
    replayed = json.loads(text)
    if sched.divergence is not None:
        return sched.divergence.message(), replayed
    return first_difference(trace["events"], parse_trace_data(text).events), replayed


def writer_and_reader(writer: str, reader: str, other: str | None, n: int) -> str:
    """``w`` writes x = 1, 2 (4n times), ``r`` reads x 2n times (twice each time), ``o`` (of
    kind ``other``) only logs: with a process among them, the variables live in a Manager.
    The writer writes longer than the reader reads, so that their accesses overlap even when
    the reader starts late."""
    extra = f"""
  - name: o
    kind: {other}
    steps: [{{log: here}}]""" if other else ""
    return f"""
name: consistency
shared: {{x: 0}}
actors:
  - name: w
    kind: {writer}
    steps:
      - repeat: {4 * n}
        steps:
          - write: {{var: x, value: 1}}
          - write: {{var: x, value: 2}}
  - name: r
    kind: {reader}
    steps:
      - repeat: {2 * n}
        steps:
          - read: x
          - if: {{var: x, op: "==", value: 1}}
            then: [{{append: {{var: seen, item: 1}}}}]{extra}
  - name: a
    kind: {reader}
    steps:
      - repeat: {n}
        steps:
          - add: {{var: y, value: 1}}
"""


BACKINGS = {  # writer, readers, other; n (see writer_and_reader)
    "threads": ("thread", "thread", None, 200),
    "process+threads": ("thread", "thread", "process", 200),
    "coroutine+threads": ("thread", "coroutine", "thread", 200),
    "processes": ("process", "process", None, 200),
    "coroutines": ("coroutine", "coroutine", None, 200),
}


@pytest.fixture
def open_window(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Give the other threads the interpreter inside every access of a shared variable, between
    its value and its seq (where an access that is not atomic lets another come in), and make
    threads switch every microsecond elsewhere: a missing lock then shows within a few
    accesses, not only when the GIL happens to switch there (at the default 5 ms interval,
    thousands of accesses fit in one time slice, and the tests saw nothing). Processes need
    neither: a Manager round trip is such a window already."""
    def copy_and_yield(value: Any) -> Any:
        value = copy_value(value)
        time.sleep(0)  # releases the GIL: a thread waiting for it runs now
        return value
    monkeypatch.setattr(_compile, "copy_value", copy_and_yield)
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        yield
    finally:
        sys.setswitchinterval(before)


@pytest.mark.timeout(90)
@pytest.mark.parametrize("backing", list(BACKINGS))
def test_every_read_returns_the_last_write_before_it(backing: str, open_window: None) -> None:
    writer, reader, other, n = BACKINGS[backing]
    text = writer_and_reader(writer, reader, other, n).replace(
        "shared: {x: 0}", "shared: {x: 0, y: 0, seen: []}")
    result, trace = run_yaml(text)
    assert result.status == "ok", result.detail
    assert len(events(trace, op="read", target="x")) >= 2 * n
    assert_consistent(trace)
    diff, replayed = replay(trace)
    assert diff is None, diff
    assert_consistent(replayed)
    assert replayed["final"] == trace["final"]


def test_only_variables_that_two_threads_or_processes_access_take_a_lock() -> None:
    """A variable one actor alone accesses, or only coroutines (one event loop), needs no
    lock; copies of a ``count`` and pool tasks are actors of their own, so they need one."""
    plan = load_scenario_text("""
name: who_accesses
shared: {alone: 0, coros: 0, mixed: 0, copies: [], tasks: 0, proc: 0, never: 0}
primitives: {P: {type: pool, workers: 2}}
actors:
  - name: t
    kind: thread
    steps:
      - repeat: 2
        steps:
          - if: {var: alone, op: "==", value: 0}
            then: [{add: {var: alone, value: 1}}, {read: mixed}]
      - write: {var: proc, value: 1}
  - {name: c, kind: coroutine, count: 2, steps: [{add: {var: coros, value: 1}}]}
  - {name: m, kind: coroutine, steps: [{write: {var: mixed, value: 1}}]}
  - {name: k, kind: thread, count: 2, steps: [{append: {var: copies, item: 1}}]}
  - {name: u, kind: thread, pool: P, autostart: false, steps: [{read: tasks}]}
  - {name: v, kind: thread, pool: P, autostart: false, steps: [{read: tasks}]}
  - {name: p, kind: process, steps: [{read: proc}]}
""")
    assert unlocked_variables(plan) == {"alone", "coros"}


# ---------------------------------------------------------------------------------------------
# every YAML value, null included

VALUES = ("null", "true", "false", "0", "-7", "12345678901234", "1.5", "-0.0", '""',
          '"héllo ☃ 𝄞"', "[]", "[1, null, [true, \"x\"]]", "{}", "{k: null, n: {m: [2.5]}}")


def every_value(kind: str) -> str:
    """A writer of ``kind`` puts and writes each of VALUES; a reader compares them (a
    coroutine beside a coroutine, since asyncio primitives stay in their loop, else a
    thread)."""
    reader = "coroutine" if kind == "coroutine" else "thread"
    puts = "\n".join(f"      - {{put: Q, item: {v}}}" for v in VALUES)
    writes = "\n".join(f"      - write: {{var: v{i}, value: {v}}}" for i, v in enumerate(VALUES))
    ifs = "\n".join(f"      - if: {{var: v{i}, op: \"==\", value: {v}}}\n"
                    f"        then: [{{log: same{i}}}]\n"
                    f"        else: [{{fail: v{i} differs}}]"
                    for i, v in enumerate(VALUES))
    shared = ", ".join(f"v{i}: {v}" for i, v in enumerate(VALUES))
    invariants = "\n".join(f"  - {{var: v{i}, op: \"==\", value: {v}}}"
                           for i, v in enumerate(VALUES))
    return f"""
name: every_value
shared: {{{shared}}}
invariants:
{invariants}
primitives:
  Q: {{type: queue}}
  E: {{type: event}}
actors:
  - name: p
    kind: {kind}
    steps:
      - put: Q
{puts}
{writes}
      - set: E
  - name: t
    kind: {reader}
    steps:
      - repeat: {len(VALUES) + 1}
        steps: [{{get: Q}}]
      - wait: E
{ifs}
"""


@pytest.mark.parametrize(("yaml_value", "expected"), [
    pytest.param(".inf", "{where}: inf is not a finite number, which a JSON trace cannot hold; "
                         "use a large number, or null", id="inf"),
    pytest.param("[1, {a: .nan}]", "{where}: nan is not a finite number", id="nested-nan"),
    pytest.param("123456789012345678901234567890", "{where}: the integer "
                 "123456789012345678901234567890 is too large for a trace (64 bits at most); "
                 "use a smaller one, or a string", id="big-int"),
    pytest.param("2024-01-01", "{where}: 2024-01-01 is a YAML date, which a trace would turn "
                 "into a string; quote it to make it one ('2024-01-01')", id="date"),
    pytest.param("{1: x}", "{where}: the mapping key 1 is not a string, and a trace would turn "
                 "it into one; quote it ('1')", id="int-key"),
])
def test_a_value_no_trace_can_hold_is_refused_where_it_is(yaml_value: str,
                                                          expected: str) -> None:
    text = f"""name: untraceable
shared: {{a: {yaml_value}, b: 0}}
invariants:
  - {{var: b, op: "==", value: {yaml_value}}}
primitives: {{Q: {{type: queue}}}}
actors:
  - name: t
    kind: thread
    steps:
      - {{put: Q, item: {yaml_value}}}
      - write: {{var: b, value: {yaml_value}}}
      - if: {{var: b, op: "==", value: {yaml_value}}}
        then: [{{log: same}}]
"""
    with pytest.raises(ScenarioError) as info:
        load_scenario_text(text, "u.yaml")
    message = str(info.value)
    for where in ("u.yaml:2: shared.a", "u.yaml:4: invariants[0].value",
                  "u.yaml:10: actors[0].steps[0].item", "u.yaml:11: actors[0].steps[1].write.value",
                  "u.yaml:12: actors[0].steps[2].if.value"):
        assert expected.format(where=where) in message, message
    assert "Traceback" not in message


def test_the_embedded_scenario_keeps_every_value_and_tells_null_from_absent() -> None:
    plan = load_scenario_text(every_value("thread"))
    mapping = plan.scenario.as_mapping()
    again = plan_from_mapping(json.loads(json.dumps(mapping)))
    assert again.scenario.as_mapping() == mapping
    steps = mapping["actors"][0]["steps"]
    assert "item" not in steps[0]  # a bare put: an automatic item
    assert steps[1] == {"put": "Q", "item": None, "blocking": True}
    assert mapping["invariants"][0] == {"var": "v0", "op": "==", "value": None}
    assert mapping["shared"]["v0"] is None


@pytest.mark.timeout(90)
@pytest.mark.parametrize("kind", ["thread", "process", "coroutine"])
def test_every_value_round_trips_through_run_and_replay(kind: str) -> None:
    result, trace = run_yaml(every_value(kind))
    assert result.status == "ok", result.detail
    assert result.invariant_failures == []
    got = [e.get("item") for e in events(trace, op="get", phase="return")]
    expected = [json.loads(json.dumps(v)) for v in
                load_scenario_text(f"name: x\nshared: {{v: [{', '.join(VALUES)}]}}\n"
                                   "actors: [{name: a, kind: thread}]").scenario.shared["v"]]
    assert got == ["p#1", *expected]  # the bare put's automatic item, then each value
    assert [trace["final"][f"v{i}"] for i in range(len(VALUES))] == expected
    assert_consistent(trace)
    diff, replayed = replay(trace)
    assert diff is None, diff
    assert replayed["final"] == trace["final"]


NULL_RACE = """
name: null_race
shared: {x: null}
invariants:
  - {var: x, op: "==", value: null}
primitives:
  Q: {type: queue}
actors:
  - name: a
    kind: thread
    steps:
      - {put: Q, item: null}
      - write: {var: x, value: [null]}
      - write: {var: x, value: null}
  - name: b
    kind: thread
    steps:
      - get: Q
      - if: {var: x, op: "==", value: null}
        then: [{write: {var: x, value: {k: null}}}]
"""


def test_explore_with_two_jobs_finds_what_one_finds_with_null_values(tmp_path: Path) -> None:
    """Races and a broken invariant over null values: the same findings with one worker and
    two, and each trace found replays identically."""
    path = tmp_path / "null_race.yaml"
    path.write_text(NULL_RACE, encoding="utf-8")
    outs = []
    for jobs in ("1", "2"):
        res = tracer_cli("explore", str(path), "--runs", "30", "--jobs", jobs, "--format",
                         "json", "--traces", str(tmp_path / f"traces{jobs}"), cwd=tmp_path,
                         timeout=60)
        assert res.returncode == 1, res.stderr  # found
        assert res.stderr == ""
        outs.append(json.loads(res.stdout.replace(f"traces{jobs}", "traces")))
    assert outs[0] == outs[1]
    kinds = {f["kind"] for f in outs[0]["findings"]}
    assert kinds == {"race", "invariant"}
    for finding in outs[0]["findings"]:
        found = tmp_path / "traces2" / Path(finding["trace"]).name
        trace = json.loads(found.read_text(encoding="utf-8"))
        assert_consistent(trace)
        diff, _ = replay(trace)
        assert diff is None, diff


# ---------------------------------------------------------------------------------------------
# replays of recordings that abandon a daemon are identical every time

DAEMON = """
name: daemon_reader
shared: {x: 0}
actors:
  - name: d
    kind: thread
    daemon: true
    steps:
      - repeat: 1000000
        steps:
          - read: x
  - name: m
    kind: thread
    steps:
      - repeat: 50
        steps:
          - write: {var: x, value: 1}
"""

LATE_PROCESS = """
name: late_process
shared: {x: 0}
primitives:
  E: {type: event}
actors:
  - name: m
    kind: thread
    steps:
      - repeat: 10
        steps:
          - write: {var: x, value: 1}
      - start: p
      - wait: E
      - repeat: 200
        steps:
          - write: {var: x, value: 3}
  - name: p
    kind: process
    autostart: false
    daemon: true
    steps:
      - set: E
      - repeat: 1000000
        steps:
          - read: x
          - sleep: 0
"""


@pytest.mark.timeout(120)
@pytest.mark.parametrize(("text", "daemon"), [(DAEMON, "d"), (LATE_PROCESS, "p")],
                         ids=["daemon_thread", "late_daemon_process"])
def test_a_recording_that_abandons_a_daemon_replays_identically_every_time(
        text: str, daemon: str) -> None:
    """The daemon reads on while the others end, and after (until the run stops it): its
    recorded steps after the others' end must be replayed before it is abandoned again."""
    for _ in range(2):
        result, trace = run_yaml(text)
        assert result.status == "ok", result.detail
        mine = [e for e in trace["events"] if e["actor"] == daemon]
        assert mine[-1] == end_of(trace, daemon)  # nothing of it after its end
        assert mine[-1]["result"] == "abandoned"
        assert len(mine) > 2  # it did something before it was abandoned
        assert_consistent(trace)
        for _ in range(3):
            diff, replayed = replay(trace)
            assert diff is None, diff
            assert end_of(replayed, daemon)["result"] == "abandoned"


def test_an_internal_error_is_reported_as_such_not_as_the_stall_it_causes(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A bug of tracer inside one actor (injected here) leaves the other waiting for good:
    the outcome is that error, not a stall of the scenario."""
    def broken(self: P.Event, a: Any, tag: Any) -> None:
        raise RuntimeError("injected bug")
    monkeypatch.setattr(P.Event, "set", broken)
    result, trace = run_yaml("""
name: internal_error
primitives: {E: {type: event}}
actors:
  - {name: a, kind: thread, steps: [{set: E}]}
  - {name: b, kind: thread, steps: [{wait: E}]}
""")
    assert result.status == "error"
    assert result.detail.startswith("a failed: internal error in tracer: RuntimeError: "
                                    "injected bug")
    assert trace["outcome"]["status"] == "error"


@pytest.mark.parametrize(("kind", "start", "delta"), [("thread", "18446744073709551615", "1"),
                                                    ("coroutine", "1.0e+308", "1.0e+308")])
def test_an_add_beyond_what_a_trace_holds_is_the_actors_error(kind: str, start: str,
                                                              delta: str) -> None:
    result, trace = run_yaml(f"""
name: overflow
shared: {{x: {start}}}
actors:
  - name: a
    kind: {kind}
    steps: [{{add: {{var: x, value: {delta}}}}}]
""")
    assert result.status == "error"
    assert "is beyond what a trace holds" in end_of(trace, "a")["error"]
    assert_consistent(trace)
