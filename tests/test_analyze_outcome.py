"""Every problem is a finding: an actor's error, a timeout, a deadlock or stall outcome are
findings of `tracer analyze` (kinds error, timeout, deadlock, stall), and so of `tracer run`'s
summary and of `tracer explore`, which groups one problem into one row whatever the order of
its actors and says honestly how much it covered."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import SCENARIOS, abba, make_trace, run_yaml, tracer_cli

from tracer.analyze import find_all, parse_trace_data

# a writes x under m; b, under m, fails when a has not written yet: an error in the schedules
# where b goes first, none where a does
FAIL_IF_FIRST = """
name: failcase
primitives: {m: lock}
shared: {x: 0}
actors:
  - name: a
    kind: thread
    steps:
      - with: m
        steps: [{write: {var: x, value: 1}}]
  - name: b
    kind: thread
    steps:
      - with: m
        steps:
          - if: {var: x, op: "==", value: 0}
            then: [{fail: "x was never written"}]
"""

# the two-lock deadlock that needs a switch while first holds A
RARE_ABBA = """
name: rare-abba
primitives: {A: lock, B: lock}
actors:
  - {name: first, kind: thread, steps: [{acquire: A}, {acquire: B}, {release: B}, {release: A}]}
  - {name: second, kind: thread, steps: [{acquire: B}, {acquire: A}, {release: A}, {release: B}]}
"""

# b alone: it always fails
ALWAYS_FAILS = """
name: alwaysfails
primitives: {m: lock}
shared: {x: 0}
expect: [error]
actors:
  - name: b
    kind: thread
    steps:
      - with: m
        steps:
          - read: x
          - fail: "x was never written"
"""


def test_a_fail_step_is_an_error_finding_with_actor_step_and_message() -> None:
    result, trace = run_yaml(ALWAYS_FAILS)
    assert result.status == "error"
    found = find_all(parse_trace_data(json.dumps(trace)))
    errors = [f for f in found if f.kind == "error"]
    assert len(errors) == 1
    f = errors[0]
    end = next(e for e in trace["events"] if e["op"] == "end" and e["actor"] == "b")
    last = max((e for e in trace["events"] if e["actor"] == "b" and e["op"] != "end"),
               key=lambda e: e["seq"])
    assert f.actors == ("b",) and f.severity == "error"
    # the failing step, by its path and YAML line: not the `with` releasing m after it,
    # which is b's last event
    assert f.message == "b failed at actors[0].steps[0].steps[1] (line 13: fail): " \
                        "x was never written"
    assert last["op"] == "release" and f"seq {last['seq']}" not in f.message
    assert end["step"] == "actors[0].steps[0].steps[1]" and end["line"] == 13
    assert end["verb"] == "fail"
    assert f.events == (last["seq"], end["seq"])
    assert f.details["error"] == "x was never written"
    assert f.details["path"] == "actors[0].steps[0].steps[1]" and f.details["line"] == 13
    assert f.details["step"]["seq"] == last["seq"] and f.details["step"]["where"] == "after"


def test_a_refused_release_that_ends_its_actor_is_one_misuse_finding() -> None:
    """A release of a lock nobody holds: the primitive refuses it and the actor ends with that
    error. One problem, one finding: the misuse, which says the actor ended with it and at
    which step; no `error` finding repeats it."""
    _, trace = run_yaml("""
name: badrelease
primitives: {m: lock}
actors:
  - {name: c, kind: thread, steps: [{release: m}]}
""")
    found = find_all(parse_trace_data(json.dumps(trace)))
    assert [f.kind for f in found] == ["misuse"]
    bad = next(e for e in trace["events"] if e["op"] == "release")
    f = found[0]
    assert f.actors == ("c",) and f.events == (bad["seq"],)
    assert "c ended with this error (at actors[0].steps[0], line 5)" in f.message
    assert f.details["ended"] is True and f.details["path"] == "actors[0].steps[0]"


def test_an_over_release_is_reported_once_and_without_repeating_itself() -> None:
    """A bounded semaphore released though never acquired, then a `fail` later that is never
    reached: one misuse finding; its message says what Python said once, not the engine's
    whole error inside its own restatement."""
    _, trace = run_yaml("""
name: refused
primitives: {L: lock, S: {type: bounded_semaphore, value: 1}}
actors:
  - name: a
    kind: thread
    steps:
      - with: L
        steps: [{log: in}]
      - release: S
      - fail: "real failure later"
""")
    found = find_all(parse_trace_data(json.dumps(trace)))
    assert [f.kind for f in found] == ["misuse"]
    msg = found[0].message
    assert msg.count("more times than it was acquired") == 1
    assert "(Python: Semaphore released too many times)" in msg \
        or "(Python: BoundedSemaphore released too many times)" in msg
    assert "a ended with this error (at actors[0].steps[1], line 10)" in msg


def test_a_timeout_is_a_timeout_finding() -> None:
    result, trace = run_yaml("""
name: slow
timeout: 0.3
actors:
  - {name: sleeper, kind: thread, steps: [{sleep: 30}]}
""")
    assert result.status == "timeout"
    found = find_all(parse_trace_data(json.dumps(trace)))
    assert [f.kind for f in found] == ["timeout"]
    assert found[0].actors == ("sleeper",) and "timeout" in found[0].message
    assert found[0].events == (max(e["seq"] for e in trace["events"]),)


def test_a_deadlock_is_one_finding_not_two() -> None:
    """The engine's deadlock event is the wait-for analysis's finding; the outcome adds none."""
    _, trace = run_yaml(abba())
    found = find_all(parse_trace_data(json.dumps(trace)))
    assert [f.kind for f in found].count("deadlock") == 1


@pytest.mark.parametrize("status", ["deadlock", "stall", "timeout"])
def test_an_outcome_without_its_engine_event_is_still_a_finding(status: str) -> None:
    """A trace whose outcome says deadlock, stall or timeout but has no engine event (cut, or
    made by hand) still reports that kind, with the blocked actors and the outcome's detail."""
    data = make_trace([{"actor": "t1", "op": "start"},
                       {"actor": "t1", "op": "acquire", "target": "A", "phase": "call"}],
                      primitives={"A": "lock"},
                      outcome={"status": status, "detail": "t1 waits for A forever"})
    data.actors[0]["status"] = "blocked"
    found = [f for f in find_all(data) if f.kind == status]
    assert len(found) == 1
    assert found[0].actors == ("t1",) and found[0].message == "t1 waits for A forever"


def test_clean_runs_have_no_outcome_finding() -> None:
    result, trace = run_yaml(ALWAYS_FAILS.replace('fail: "x was never written"', "log: fine"))
    assert result.status == "ok"
    assert find_all(parse_trace_data(json.dumps(trace))) == []


def test_run_prints_the_error_and_agrees_with_expect(tmp_path: Path) -> None:
    path = tmp_path / "f.yaml"
    path.write_text(ALWAYS_FAILS, encoding="utf-8")
    r = tracer_cli("run", str(path), "-o", str(tmp_path / "f.json"), cwd=tmp_path)
    assert r.returncode == 1, r.stderr
    # the line as a link into the file the scenario came from
    assert f"  error: b failed at actors[0].steps[0].steps[1] ({path}:13: fail): " \
           "x was never written\n" in r.stdout
    assert "expect: [error] — the run and its analysis agree" in r.stdout
    a = tracer_cli("analyze", str(tmp_path / "f.json"), "--format", "json", "--no-graphs",
                   cwd=tmp_path)
    assert a.returncode == 1
    assert [f["kind"] for f in json.loads(a.stdout)["findings"]] == ["error"]


def explore(tmp_path: Path, text: str, *args: str) -> tuple[int, dict[str, object], str]:
    path = tmp_path / "s.yaml"
    path.write_text(text, encoding="utf-8")
    j = tracer_cli("explore", str(path), "--format", "json", "--traces",
                   str(tmp_path / "found"), *args, cwd=tmp_path, timeout=60)
    t = tracer_cli("explore", str(path), "--traces", str(tmp_path / "found"), *args,
                   cwd=tmp_path, timeout=60)
    assert j.returncode == t.returncode and j.returncode in (0, 1), j.stderr
    return j.returncode, json.loads(j.stdout), t.stdout


@pytest.mark.parametrize("strategy", ["random", "dfs"])
def test_explore_reports_an_actor_error(tmp_path: Path, strategy: str) -> None:
    """The schedules where b goes first end with b's error: explore finds it (exit 1) and
    its trace replays to it."""
    code, report, text = explore(tmp_path, FAIL_IF_FIRST, "--strategy", strategy,
                                 "--runs", "20")
    assert code == 1
    [f] = report["findings"]  # type: ignore[misc]
    assert f["kind"] == "error" and f["actors"] == ["b"]
    assert "x was never written" in f["message"]
    assert 0 < f["count"] < report["runs"]  # type: ignore[operator]
    assert "error" in text and "no problem" not in text
    r = tracer_cli("replay", f["trace"], cwd=tmp_path)
    assert r.returncode == 1 and "identical (error: b failed: x was never written" in r.stdout
    assert report["complete"] is (strategy == "dfs")


def test_one_race_is_one_row_whatever_the_order(tmp_path: Path) -> None:
    """The unlocked withdrawals race in both orders (draw1 then draw2, draw2 then draw1):
    one row, hit by every schedule."""
    text = (SCENARIOS / "bank_account_race.yaml").read_text(encoding="utf-8")
    _, report, _ = explore(tmp_path, text, "--runs", "30")
    races = [f for f in report["findings"] if f["kind"] == "race"]  # type: ignore[union-attr]
    assert len(races) == 1
    assert set(races[0]["actors"]) == {"draw1", "draw2"}
    assert races[0]["count"] == report["runs"]


def test_verdicts_say_what_was_covered(tmp_path: Path) -> None:
    """No finding: random says it is no proof; dfs stopped by --runs says it is incomplete;
    dfs that covered everything says so; the JSON always carries complete."""
    clean = FAIL_IF_FIRST.replace("then: [{fail: \"x was never written\"}]",
                                  "then: [{log: \"first\"}]")
    code, report, text = explore(tmp_path, clean, "--runs", "10")
    assert code == 0 and report["complete"] is False
    assert "no problem in 10 schedules" in text and "not a proof" in text
    assert "--strategy dfs" in text
    code, report, text = explore(tmp_path, clean, "--strategy", "dfs", "--runs", "1")
    assert code == 0 and report["complete"] is False and report["exhausted"] is False
    assert "no problem in 1 schedules: the search is incomplete" in text
    assert "not a proof" in text and "raise --runs" in text
    code, report, text = explore(tmp_path, clean, "--strategy", "dfs")
    assert code == 0 and report["complete"] is True
    assert "no problem found: every distinct schedule was explored" in text


def test_a_preemption_bound_that_cuts_schedules_is_not_complete(tmp_path: Path) -> None:
    """Without preemptions, the ABBA deadlock is out of reach: the bounded search ends
    (exhausted) but is not complete, and says so; a bound it never reaches is complete."""
    code, report, text = explore(tmp_path, RARE_ABBA, "--strategy", "dfs",
                                 "--max-preemptions", "0")
    assert report["exhausted"] is True and report["complete"] is False
    assert "other schedules may hide other problems" in text
    assert "raise --max-preemptions" in text
    assert "deadlock" not in {f["kind"] for f in report["findings"]}  # type: ignore[union-attr]
    code, report, text = explore(tmp_path, RARE_ABBA, "--strategy", "dfs",
                                 "--max-preemptions", "50", "--runs", "10000")
    assert code == 1 and report["exhausted"] is True and report["complete"] is True


def test_the_error_names_the_failing_line_when_the_trace_has_it() -> None:
    """An `end` that carries the failing step's `line` (version 1.1 traces): the message and
    details name it, beside the actor's last event."""
    data = make_trace([{"actor": "b", "op": "start"},
                       {"actor": "b", "op": "read", "target": "x", "value": 0, "line": 8},
                       {"actor": "b", "op": "end", "result": "error", "error": "boom",
                        "line": 9}],
                      outcome={"status": "error", "detail": "b failed: boom"})
    [f] = find_all(data)
    assert f.kind == "error" and f.actors == ("b",)
    assert f.message == "b failed: boom (line 9; its last event: seq 1, read x, line 8)"
    assert f.details["line"] == 9 and f.details["step"]["line"] == 8
