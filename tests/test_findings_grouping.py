"""One problem, one row: `tracer explore` groups an invariant by the invariant broken (not by
who wrote last), the copies of one `count` actor failing at one step into one row, and the
errors name the step that failed (also inside a `with`, for every kind of actor). Values in
messages are spelled as in YAML, and a comparison that can never hold is refused up front."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import SCENARIOS, run_yaml, tracer_cli

from tracer import load_scenario_text
from tracer.analyze import find_all, parse_trace_data
from tracer.api import explore

TWO_ADDS = """
name: inv2
shared: {x: 0}
actors:
  - {name: a, kind: thread, steps: [{add: {var: x, value: 1}}]}
  - {name: b, kind: thread, steps: [{add: {var: x, value: 1}}]}
invariants:
  - {var: x, op: "==", value: 2}
"""


def rows(text: str, kind: str) -> list[dict[str, object]]:
    found = explore(load_scenario_text(text, "<test>"), strategy="dfs", runs=200)
    assert found.exhaustive
    return [g for g in found.groups.values() if g["kind"] == kind]


def test_one_broken_invariant_is_one_row_whoever_wrote_last() -> None:
    """Lost updates leave x == 1, with a or b as the last writer depending on the schedule:
    one declared invariant, one row, listing both last writers."""
    [row] = rows(TWO_ADDS, "invariant")
    assert row["actors"] == ["a", "b"] and row["objects"] == ["x"]
    assert str(row["message"]).startswith("invariant x == 2 fails: x = 1 at the end")


def test_two_invariants_on_one_variable_are_two_rows() -> None:
    text = TWO_ADDS + '  - {var: x, op: ">", value: 1}\n'
    assert len(rows(text, "invariant")) == 2


def test_bank_account_race_invariant_is_one_row() -> None:
    text = (SCENARIOS / "bank_account_race.yaml").read_text(encoding="utf-8")
    [row] = rows(text, "invariant")
    assert set(row["actors"]) == {"draw1", "draw2"}  # type: ignore[arg-type]


def test_copies_failing_at_one_step_are_one_row_listing_them() -> None:
    text = """
name: copies
actors:
  - {name: t, kind: thread, count: 3, steps: [{log: hi}, {fail: "no"}]}
  - {name: u, kind: thread, steps: [{fail: "no"}]}
"""
    errors = rows(text, "error")
    assert len(errors) == 2  # t's step and u's step: two declared steps
    t = next(g for g in errors if "t[" in str(g["message"]))
    assert t["actors"] == ["t[0]", "t[1]", "t[2]"]
    assert "failed at actors[0].steps[1] (line 4: fail): no" in str(t["message"])


WITH_FAIL = """
name: fail_with
shared: {x: 0}
primitives: {L: lock}
actors:
  - name: w
    kind: KIND
    steps:
      - with: L
        steps:
          - add: {var: x, value: 1}
          - fail: "boom inside with"
"""


@pytest.mark.parametrize("kind", ["thread", "coroutine", "process"])
def test_an_error_inside_with_names_the_failing_step_not_the_release(kind: str) -> None:
    result, trace = run_yaml(WITH_FAIL.replace("KIND", kind))
    assert result.status == "error"
    end = next(e for e in trace["events"] if e["op"] == "end")
    assert (end["step"], end["verb"]) == ("actors[0].steps[0].steps[1]", "fail")
    # the failing step's line, for every kind (a process actor's child gets the plan's lines)
    where = "line 12: fail"
    assert end.get("line") == 12
    [f] = [f for f in find_all(parse_trace_data(json.dumps(trace))) if f.kind == "error"]
    assert f.message == f"w failed at actors[0].steps[0].steps[1] ({where}): boom inside with"
    assert "release" not in f.message


def test_a_failure_inside_a_repeat_is_named() -> None:
    """A `fail` in the body of a repeat (a block whose steps share their caps, compiled on
    its own path)."""
    _, trace = run_yaml("""
name: inrepeat
actors:
  - name: a
    kind: thread
    steps:
      - log: start
      - repeat: 2
        steps:
          - fail: "in the loop"
""")
    end = next(e for e in trace["events"] if e["op"] == "end")
    assert (end["step"], end["verb"], end["line"]) == ("actors[0].steps[1].steps[0]", "fail", 10)


def test_values_in_messages_are_yaml_values() -> None:
    """null, not None; true, not True; a string that reads as another type is quoted."""
    _, trace = run_yaml("""
name: nulls
shared: {y: null, z: null, f: true, s: "null"}
actors:
  - name: a
    kind: thread
    steps:
      - if: {var: z, op: "<", value: 3}
        then: [{log: never}]
invariants:
  - {var: y, op: "==", value: 1}
  - {var: f, op: "==", value: false}
  - {var: s, op: "==", value: 1}
""")
    found = find_all(parse_trace_data(json.dumps(trace)))
    text = "\n".join(f.message for f in found)
    assert "None" not in text and "True" not in text and "False" not in text
    assert "invariant y == 1 fails: y = null at the end" in text
    assert "invariant f == false fails: f = true at the end" in text
    assert 'invariant s == 1 fails: s = "null" at the end' in text
    assert "a cannot compare z = null < 3" in text


@pytest.mark.parametrize("where", ["if", "invariant"])
def test_an_ordering_comparison_with_null_is_refused(tmp_path: Path, where: str) -> None:
    cmp = '{var: y, op: "<", value: null}'
    text = f"""name: nullcmp
shared: {{y: 1}}
actors:
  - name: a
    kind: thread
    steps:
      - {"{if: " + cmp + ", then: [{log: x}]}" if where == "if" else "log: x"}
""" + (f"invariants:\n  - {cmp}\n" if where == "invariant" else "")
    path = tmp_path / "s.yaml"
    path.write_text(text, encoding="utf-8")
    r = tracer_cli("run", str(path), "-o", str(tmp_path / "t.json"), cwd=tmp_path)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    line = 7 if where == "if" else 9
    assert f"s.yaml:{line}:" in r.stderr
    assert "'<' compares by order, and null has no order" in r.stderr
    assert "use '==' or '!=' to test for null" in r.stderr
    assert not (tmp_path / "t.json").exists()
