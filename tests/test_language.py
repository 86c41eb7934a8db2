"""The scenario language's constructs — locals, expressions, let, if EXPR, while, assert,
write expr, ``as`` — for each actor kind, under run, replay and explore, read from what a user
sees: the trace's events, the outcome, the actor's error."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import events, record_and_replay, run_yaml, tracer_cli

KINDS = ("thread", "process", "coroutine")


def program(kind: str) -> str:
    """Two copies of `w` loop over their locals, then add their own count to `total` under a
    lock; the second to add puts `last` in Q, which `r` gets (``as``) and checks."""
    return f"""
name: lang-{kind}
primitives:
  L: lock
  Q: queue
shared: {{total: 0, word: "ab"}}
actors:
  - name: w
    kind: {kind}
    count: 2
    locals: {{i: 0, mine: 0, n: 0}}
    steps:
      - while: "i < 3"
        max: 5
        steps:
          - let: {{i: "i + 1", mine: "mine + i * 10"}}
      - assert: "i == 3 and mine == 60"
        message: the loop ran three times
      - let: {{n: n + 1}}
      - with: L
        steps:
          - write: {{var: total, expr: "total + n"}}
          - if: "total >= 2"
            then:
              - put: Q
                item: last
              - log: second
            else:
              - log: first
  - name: r
    kind: {kind}
    steps:
      - get: Q
        as: got
      - if: "got == 'last'"
        then: [{{log: "got it"}}]
      - with: L
        steps:
          - assert: "total == 2 and len(word) == 2"
"""


def ops(trace: dict[str, Any], actor: str) -> list[str]:
    out = []
    for e in sorted(events(trace, actor=actor), key=lambda e: e["seq"]):
        out.append(f"{e['op']} {e.get('target') or ''}".strip()
                   + (f" {e['phase']}" if e.get("phase") else ""))
    return out


@pytest.mark.timeout(60)
@pytest.mark.parametrize("kind", KINDS)
def test_every_new_step_runs_and_replays(kind: str, tmp_path: Path) -> None:
    trace, diff, status = record_and_replay(program(kind), tmp_path)
    assert trace["outcome"]["status"] == "ok", trace["outcome"]
    assert diff is None and status == "ok"
    # locals are untraced: the loop, the lets and the assert over locals record nothing
    for copy in ("w[0]", "w[1]"):
        seen = ops(trace, copy)
        assert seen[:3] == ["start", "acquire L call", "acquire L return"], seen
        assert seen[3:5] == ["read total", "write total"], seen  # write expr: read, then write
        assert seen[5] == "read total", seen  # the if's expression
    # each copy has its own `n`: both wrote total + 1 (a shared `n` would have made 1 then 3)
    writes = [e["value"] for e in sorted(events(trace, op="write"), key=lambda e: e["seq"])]
    assert writes == [1, 2]
    logs = {e["actor"]: e["detail"] for e in events(trace, op="log")}
    assert sorted(logs.values()) == ["first", "got it", "second"]
    assert trace["final"]["total"] == 2
    # the assert in r read total and word: two reads, in order of appearance
    assert [e["target"] for e in sorted(events(trace, actor="r", op="read"),
                                       key=lambda e: e["seq"])] == ["total", "word"]


def explore(tmp_path: Path, text: str, *args: str) -> dict[str, Any]:
    path = tmp_path / "s.yaml"
    path.write_text(text, encoding="utf-8")
    r = tracer_cli("explore", str(path), "--format", "json", "--traces",
                   str(tmp_path / "found"), *args, cwd=tmp_path, timeout=240)
    assert r.returncode in (0, 1), r.stderr
    assert "internal error" not in r.stdout + r.stderr
    report: dict[str, Any] = json.loads(r.stdout)
    return report


@pytest.mark.timeout(250)
@pytest.mark.parametrize("kind", KINDS)
def test_every_new_step_explores_clean(kind: str, tmp_path: Path) -> None:
    report = explore(tmp_path, program(kind), "--runs", "20", "--seed", "3")
    assert report["findings"] == [], report["findings"]


@pytest.mark.timeout(250)
def test_explore_with_two_jobs(tmp_path: Path) -> None:
    report = explore(tmp_path, program("thread"), "--runs", "20", "--jobs", "2")
    assert report["findings"] == [] and report["runs"] == 20


# --- as: the results a step returns -----------------------------------------------------------

def results(kind: str) -> str:
    """`holder` takes L and waits for `go`; `tester` meanwhile meets every result."""
    pipe = kind != "coroutine"  # (asyncio has no pipe, and its barrier does not break)
    return f"""
name: as-{kind}
primitives:
  L: lock
  held: event
  go: event
  never: event
  Q: queue
  B: {{type: barrier, parties: 2}}
{"  P: {type: pipe, between: [holder, tester]}" if pipe else ""}
actors:
  - name: holder
    kind: {kind}
    steps:
      - acquire: L
      - set: held
      - wait: go
      - release: L
{'''      - wait: B
        as: br
      - assert: "br == 'broken'"
      - send: P
        item: hi
        as: sent
      - assert: "sent == 'ok'"''' if pipe else ""}
  - name: tester
    kind: {kind}
    steps:
      - wait: held
        as: w_ok
      - acquire: L
        timeout: 0.01
        as: t
      - acquire: L
        blocking: false
        as: f
      - wait: never
        timeout: 0.01
        as: w
{'''      - wait: B
        timeout: 0.01
        as: bt''' if pipe else ""}
      - set: go
      - put: Q
        item: 5
        as: p
      - get: Q
        as: item
      - get: Q
        blocking: false
        as: none
{'''      - recv: P
        as: msg
      - assert: "msg == 'hi'"''' if pipe else ""}
      - if: "t == 'timeout' and f == 'fail'"
        then: [{{log: "branch taken"}}]
        else: [{{log: "wrong branch"}}]
      - assert: "w_ok == 'ok' and w == 'timeout' and p == 'ok' and item == 5 and none == 'fail'"
"""


@pytest.mark.timeout(60)
@pytest.mark.parametrize("kind", KINDS)
def test_as_stores_each_result(kind: str, tmp_path: Path) -> None:
    trace, diff, _status = record_and_replay(results(kind), tmp_path)
    assert trace["outcome"]["status"] == "ok", trace["outcome"]
    assert [e["detail"] for e in events(trace, op="log")] == ["branch taken"]
    assert diff is None


JOIN = """
name: as-join
primitives: {go: event}
actors:
  - {name: main, kind: KIND, steps: [{join: child, as: j}, {assert: "j == 'ok'"},
                                     {join: slow, timeout: 0.01, as: jt},
                                     {assert: "jt == 'timeout'"}, {set: go}, {join: slow}]}
  - {name: child, kind: KIND, steps: [{log: hi}]}
  - {name: slow, kind: KIND, steps: [{wait: go}]}
"""


@pytest.mark.timeout(60)
@pytest.mark.parametrize("kind", ["thread", "coroutine"])
def test_as_on_join(kind: str) -> None:
    _, trace = run_yaml(JOIN.replace("KIND", kind))
    assert trace["outcome"]["status"] == "ok", trace["outcome"]


# --- errors the actor ends with ---------------------------------------------------------------

def one(kind: str, steps: str, locals_: str = "{k: 0}") -> str:
    return f"""
name: err
shared: {{z: 0, s: "a"}}
actors:
  - name: a
    kind: {kind}
    locals: {locals_}
    steps:
{steps}
"""


ERRORS = [
    ("""      - while: "k < 10"
        max: 3
        steps: [{let: {k: "k + 1"}}]""", "while",
     ["the loop 'while: k < 10' is still true after 3 rounds", "raise 'max'"]),
    ("""      - let: {k: "k + 5"}
      - assert: "k + z < 3"
        message: too big""", "assert", ["too big", "assert 'k + z < 3' failed", "k = 5", "z = 0"]),
    ("""      - let: {y: "1 / z"}""", "let", ["a cannot evaluate '1 / z'", "division by zero"]),
    ("""      - if: "s < 1"
        then: [{log: x}]""", "if", ["cannot compare 'a' < 1"]),
    ("""      - assert: "u == 1"
      - let: {u: "1"}""", "assert", ["the local 'u' has no value yet", "'let' before"]),
    ("""      - write: {var: z, expr: "s - 1"}""", "write", ["'-' needs two numbers"]),
]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(("steps", "verb", "words"), ERRORS)
def test_errors_end_the_actor_with_a_clear_message(kind: str, steps: str, verb: str,
                                                   words: list[str]) -> None:
    _, trace = run_yaml(one(kind, steps))
    assert trace["outcome"]["status"] == "error"
    (end,) = events(trace, op="end", actor="a")
    assert end["result"] == "error" and end["verb"] == verb
    for word in words:
        assert word in end["error"], end["error"]
    assert "internal error" not in end["error"]


@pytest.mark.parametrize("kind", ["thread", "coroutine"])
def test_short_circuit_reads_only_what_it_evaluates(kind: str) -> None:
    _, trace = run_yaml(one(kind, """      - if: "k == 1 and z == 0"
        then: [{log: then}]
        else: [{log: else}]
      - if: "z == 0 or s == 'b'"
        then: [{log: then}]
      - let: {y: "z + z * z"}"""))
    reads = [e["target"] for e in sorted(events(trace, op="read"), key=lambda e: e["seq"])]
    assert reads == ["z", "z", "z", "z"]  # not z, then not s; then one read per occurrence
    assert [e["detail"] for e in events(trace, op="log")] == ["else", "then"]


def test_a_coroutine_loop_over_locals_records_nothing_and_ends() -> None:
    _, trace = run_yaml(one("coroutine", """      - while: "k < 1000"
        max: 1000
        steps: [{let: {k: "k + 1"}}]
      - write: {var: z, expr: "k"}""", "{k: 0}"))
    assert [e["op"] for e in trace["events"]] == ["start", "write", "end"]
    assert trace["final"]["z"] == 1000


@pytest.mark.timeout(60)
@pytest.mark.parametrize("kind", ["thread", "process"])
def test_a_timed_wait_on_a_broken_barrier_is_broken_not_timeout(kind: str,
                                                                  tmp_path: Path) -> None:
    """The party whose own timeout ran out gets "timeout"; a later wait finds the barrier
    broken and returns at once with "broken" (as `as:` promises), however long its timeout."""
    text = f"""
name: broken-barrier
primitives: {{B: {{type: barrier, parties: 2}}}}
actors:
  - name: t
    kind: {kind}
    steps:
      - {{wait: B, timeout: 0.01, as: first}}
      - assert: "first == 'timeout'"
      - {{wait: B, timeout: 30, as: second}}
      - assert: "second == 'broken'"
"""
    path = tmp_path / "b.yaml"
    path.write_text(text, encoding="utf-8")
    r = tracer_cli("run", str(path), "-o", str(tmp_path / "b.json"), cwd=tmp_path, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    events = json.loads((tmp_path / "b.json").read_text(encoding="utf-8"))["events"]
    results = [e["result"] for e in events if e["op"] == "wait" and e.get("phase") == "return"]
    assert results == ["timeout", "broken"]
