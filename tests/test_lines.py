"""Lines everywhere: each event carries the YAML line of the step that made it, and each
finding names the lines ("t1 holds A (x.yaml:4) and waits for B (x.yaml:6)").

The scenarios are written to files here, so the lines are known; runs are real (threads,
processes, coroutines over real primitives)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import tracer
from tracer import load_scenario, run_plan
from tracer.analyze import analyze, parse_trace_data
from tracer.trace import TraceError, load_trace_data

FIXTURES = Path(__file__).parent / "fixtures"

# an ABBA deadlock whose every step is on a known line (the events wait for each other:
# each actor holds its first lock before the other asks for it, on every run)
ABBA = """\
name: abba
primitives: {{A: lock, B: lock, a_has: event, b_has: event}}
actors:
  - name: x
    kind: {kind}
    steps:
      - acquire: A
      - set: a_has
      - wait: b_has
      - acquire: B
  - name: y
    kind: {kind}
    steps:
      - acquire: B
      - set: b_has
      - wait: a_has
      - acquire: A
"""
# x: declared on 4, acquire A on 7, acquire B on 10; y: 11, acquire B 14, acquire A 17


def _write(tmp_path: Path, text: str, name: str = "s.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.timeout(60)
@pytest.mark.parametrize("kind", ["thread", "process", "coroutine"])
def test_a_deadlock_names_the_line_of_each_hold_and_wait(kind: str, tmp_path: Path) -> None:
    path = _write(tmp_path, ABBA.format(kind=kind))
    result = run_plan(load_scenario(path))
    assert result.status == "deadlock"
    src = str(path)
    # the message made while the run happens (the outcome), and the analysis of the trace
    assert result.detail == (f"x holds A ({src}:7) and waits for B ({src}:10); "
                             f"y holds B ({src}:14) and waits for A ({src}:17)")
    data = parse_trace_data(result.to_json())
    [f] = [f for f in analyze(data).findings if f.kind == "deadlock"]
    assert f.message == result.detail
    waits = {w["actor"]: w for w in f.details["waits"]}
    assert waits["x"]["line"] == 10 and waits["x"]["hold_lines"] == {"A": 7}
    assert waits["y"]["line"] == 17 and waits["y"]["hold_lines"] == {"B": 14}
    assert f.details["source"] == src
    assert {(d["actor"], d["line"]) for d in f.details["lines"]} == {
        ("x", 7), ("x", 10), ("y", 14), ("y", 17)}
    # the events themselves: start at the declaration, each op at its step
    lines = [(e.actor, e.op, e.line) for e in data.events if e.actor == "x"]
    assert lines[0] == ("x", "start", 4)
    assert ("x", "set", 8) in lines and ("x", "wait", 9) in lines


RACE = """\
name: race
shared: {n: 0}
actors:
  - name: a
    kind: thread
    steps:
      - add: {var: n, value: 1}
  - name: b
    kind: thread
    steps:
      - read: n
      - write: {var: n, value: 5}
"""


def test_a_race_names_both_accesses_lines(tmp_path: Path) -> None:
    path = _write(tmp_path, RACE)
    data = parse_trace_data(run_plan(load_scenario(path)).to_json())
    races = [f for f in analyze(data).findings if f.kind == "race"]
    assert races  # a's add and b's accesses: nothing orders them
    src = str(path)
    for f in races:
        first, second = f.details["first"], f.details["second"]
        want = {"a": {7}, "b": {11, 12}}
        assert first["line"] in want[first["actor"]] and second["line"] in want[second["actor"]]
        # two-sided: the message names both lines
        assert f"({src}:{first['line']}, seq {first['seq']}" in f.message
        assert f"({src}:{second['line']}, seq {second['seq']}" in f.message


POTENTIAL = """\
name: apart
primitives: {A: lock, B: lock}
actors:
  - name: t1
    kind: thread
    steps:
      - with: A
        steps:
          - acquire: B
          - release: B
  - name: t2
    kind: thread
    steps:
      - join: t1
      - acquire: B
      - acquire: A
      - release: A
      - release: B
"""


def test_a_with_and_its_body_have_their_own_lines(tmp_path: Path) -> None:
    path = _write(tmp_path, POTENTIAL)
    data = parse_trace_data(run_plan(load_scenario(path)).to_json())
    assert data.meta["source"] == str(path)
    by = {(e.actor, e.op, e.target, e.phase): e.line for e in data.events}
    assert by[("t1", "acquire", "A", "call")] == 7  # the with takes and gives back A
    assert by[("t1", "release", "A", None)] == 7
    assert by[("t1", "acquire", "B", "call")] == 9  # a step of its body
    assert by[("t1", "release", "B", None)] == 10
    assert by[("t2", "join", "t1", "return")] == 14
    assert by[("t2", "acquire", "A", "call")] == 16
    assert by[("t2", "end", None, None)] == 11  # the declaration


def test_a_trace_without_lines_still_reads_analyzes_and_shows() -> None:
    path = FIXTURES / "trace-0.1.0.json"
    data = load_trace_data(path)
    assert all(e.line is None for e in data.events)
    report = analyze(data)
    for f in report.findings:
        assert "lines" not in f.details
    shown = subprocess.run([sys.executable, "-m", "tracer", "show", str(path)],
                           capture_output=True, text=True, timeout=60, check=False)
    assert shown.returncode == 0, shown.stderr
    assert " line " not in shown.stdout.splitlines()[2]  # no line column


def test_show_prints_each_events_line(tmp_path: Path) -> None:
    path = _write(tmp_path, ABBA.format(kind="thread"))
    trace = tmp_path / "t.json"
    run_plan(load_scenario(path)).write(trace)
    shown = subprocess.run([sys.executable, "-m", "tracer", "show", str(trace)],
                           capture_output=True, text=True, timeout=60, check=False)
    assert shown.returncode == 0, shown.stderr
    out = shown.stdout.splitlines()
    assert f"lines: of {path}" in out
    head = next(i for i, line in enumerate(out) if line.split()[:2] == ["seq", "time"])
    assert out[head].split() == ["seq", "time", "(s)", "actor", "line", "event"]
    first = out[head + 1].split()
    assert first[2:5] == ["x", "4", "start"] or first[2:5] == ["y", "11", "start"]


def test_a_replay_keeps_the_recordings_lines(tmp_path: Path) -> None:
    path = _write(tmp_path, ABBA.format(kind="thread"))
    trace = tmp_path / "t.json"
    run_plan(load_scenario(path)).write(trace)
    rep = tracer.replay(trace)
    assert rep.divergence is None and rep.difference() is None
    recorded = load_trace_data(trace)
    replayed = rep.result.trace_data()
    assert [e.line for e in replayed.events] == [e.line for e in recorded.events]
    assert rep.result.detail == recorded.outcome["detail"]
    # an edited scenario file: the replay has no lines, and is still identical
    path.write_text(path.read_text(encoding="utf-8").replace("name: abba", "name: abba2"),
                    encoding="utf-8")
    again = tracer.replay(trace)
    assert again.difference() is None
    assert all(e.line is None for e in again.result.trace_data().events)


@pytest.mark.parametrize(("line", "why"), [
    (0, "events[1] has line 0; expected a line number of the scenario file (an integer "
        "from 1) or null"),
    ("7", 'events[1] has line "7"; expected a line number'),
    (True, "events[1] has line true; expected a line number"),
])
def test_the_reader_refuses_a_bad_line(line: object, why: str) -> None:
    doc = json.loads((FIXTURES / "trace-0.1.0.json").read_text(encoding="utf-8"))
    doc["events"][1]["line"] = line
    with pytest.raises(TraceError) as err:
        parse_trace_data(json.dumps(doc), "t.json")
    assert why in str(err.value)


TIMEOUT = """\
name: to
timeout: 0.3
primitives: {E: event}
actors:
  - name: w
    kind: thread
    steps:
      - wait: E
        timeout: 30
"""


def test_a_timeout_names_the_line_each_actor_is_at(tmp_path: Path) -> None:
    path = _write(tmp_path, TIMEOUT)
    result = run_plan(load_scenario(path))
    assert result.status == "timeout"
    assert result.detail.endswith(f"still running: w (wait E at {path}:8)")
    [f] = [f for f in analyze(parse_trace_data(result.to_json())).findings
           if f.kind == "timeout"]
    assert f.message == result.detail


MISUSE = """\
name: m
primitives: {L: lock}
shared: {x: 0}
invariants: [{var: x, op: "==", value: 0}]
actors:
  - name: t
    kind: thread
    steps:
      - write: {var: x, value: 3}
      - release: L
"""


def test_a_misuse_and_a_broken_invariant_name_their_lines(tmp_path: Path) -> None:
    path = _write(tmp_path, MISUSE)
    data = parse_trace_data(run_plan(load_scenario(path)).to_json())
    found = {f.kind: f for f in analyze(data).findings}
    assert f"t releases lock L ({path}:10, seq 2) without holding it" in found["misuse"].message
    assert f"(at actors[0].steps[1], {path}:10)" in found["misuse"].message
    assert f"the last write, seq 1 by t ({path}:9), set it to 3" in found["invariant"].message
    assert [d["line"] for d in found["invariant"].details["lines"]] == [9]
