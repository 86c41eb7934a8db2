"""Shared test helpers.

Every test has a timeout (pyproject: pytest-timeout), and `no_leftover_threads` (autouse)
fails a test that leaves an actor or pool thread of tracer alive after it returns.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from itertools import pairwise
from pathlib import Path
from typing import Any

import orjson
import pytest

from tracer import load_scenario_text, run_plan
from tracer.analyze import TraceData, parse_trace_data
from tracer.engine import RunResult

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = ROOT / "scenarios"


def _tracer_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate()
            if t.is_alive() and t.name.startswith(("tracer-actor:", "tracer-pool:"))]


@pytest.fixture(autouse=True)
def no_leftover_threads() -> Iterator[None]:
    yield
    left = _tracer_threads()
    assert not left, f"threads outlived the run: {[t.name for t in left]}"


def run_yaml(text: str) -> tuple[RunResult, dict[str, Any]]:
    """Run scenario YAML in-process; returns the result and its trace as parsed JSON."""
    result = run_plan(load_scenario_text(text, "<test>"))
    return result, json.loads(result.to_json())


def record_and_replay(text: str, tmp_path: Path) -> tuple[dict[str, Any], str | None, str]:
    """Run scenario ``text``, write its trace, replay it: (the recording, the first difference
    or the divergence, the replay's status)."""
    from tracer.engine import ReplayScheduler, first_difference, recorded_steps

    path = tmp_path / "rec.json"
    run_plan(load_scenario_text(text, "<t>")).write(path)
    data = parse_trace_data(path.read_bytes(), str(path))
    plan = load_scenario_text(json.dumps(data.scenario), "embedded")
    sched = ReplayScheduler(recorded_steps(data.events), patience=10.0)
    result = run_plan(plan, sched, mode="replay")
    replayed = parse_trace_data(result.to_json())
    diff = sched.divergence.message() if sched.divergence else first_difference(
        data.events, replayed.events)
    return json.loads(path.read_text(encoding="utf-8")), diff, result.status


_AT_LINE = re.compile(r" \((?:line \d+|[^()\s]+\.ya?ml:\d+)\)")


def unlined(message: str) -> str:
    """A message without the YAML lines it names (" (line 7)", " (scenarios/x.yaml:7)"):
    for tests about its words; tests/test_lines.py checks the lines themselves."""
    return _AT_LINE.sub("", message)


def events(trace: dict[str, Any], **match: Any) -> list[dict[str, Any]]:
    """The trace's events whose fields equal ``match``."""
    return [e for e in trace["events"] if all(e.get(k) == v for k, v in match.items())]


def tracer_cli(*args: str, cwd: Path | None = None, timeout: float = 30,
               input_: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``python -m tracer ARGS`` in a subprocess."""
    env = {**os.environ, "PYTHONUTF8": "1"}
    return subprocess.run([sys.executable, "-m", "tracer", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout, input=input_,
                          check=False)


def by_seq(trace: dict[str, Any]) -> list[dict[str, Any]]:
    return sorted(trace["events"], key=lambda e: e["seq"])


def end_of(trace: dict[str, Any], actor: str) -> dict[str, Any]:
    """The one `end` event of ``actor``."""
    ends = events(trace, actor=actor, op="end")
    assert len(ends) == 1, f"{actor} should end exactly once: {ends}"
    return ends[0]


def statuses(trace: dict[str, Any]) -> dict[str, str]:
    return {a["name"]: a["status"] for a in trace["actors"]}


def max_holders(trace: dict[str, Any], *targets: str) -> int:
    """Walking events in seq order: acquire returns (ok) minus releases on ``targets``.

    Sound because an acquire's return is logged after the real acquire and a release before
    the real release: the count can only over-estimate the true number of holders. A
    condition's ``wait`` gives its lock up (its call is logged before the real wait) and
    takes it back before its return is logged."""
    held = top = 0
    for e in by_seq(trace):
        if e.get("target") not in targets:
            continue
        op, phase, res = e["op"], e.get("phase"), e.get("result")
        if (op == "acquire" and phase == "return" and res == "ok") or (
                op == "wait" and phase == "return" and res in ("ok", "timeout")):
            held += 1
            top = max(top, held)
        elif (op == "release" and "error" not in e) or (op == "wait" and phase == "call"):
            held -= 1
    return top


def check_shape(trace: dict[str, Any]) -> None:
    """seq is 0..N-1 in the file's order, ts never decreases, and every return has an
    earlier call of the same actor, op and target (at most as many returns as calls)."""
    evs = trace["events"]
    assert [e["seq"] for e in evs] == list(range(len(evs)))
    ts = [e["ts"] for e in evs]
    assert all(a <= b for a, b in pairwise(ts))
    open_calls: dict[tuple[Any, ...], int] = {}
    for e in evs:
        key = (e["actor"], e["op"], e.get("target"))
        if e.get("phase") == "call":
            open_calls[key] = open_calls.get(key, 0) + 1
        elif e.get("phase") == "return":
            assert open_calls.get(key, 0) > 0, f"return without an earlier call: {e}"
            open_calls[key] -= 1
            assert "result" in e


def semaphore_of_two(kind: str, actor: str, name: str) -> str:
    """Four copies of ``actor`` (of ``kind``) take a semaphore of 2 three times each."""
    return f"""
name: {name}
primitives:
  S: {{type: semaphore, value: 2}}
actors:
  - name: {actor}
    kind: {kind}
    count: 4
    steps:
      - repeat: 3
        steps:
          - acquire: S
          - sleep: 0.005
          - release: S
"""


def abba(kind: str = "thread", first: str = "t1", second: str = "t2",
         name: str = "abba") -> str:
    """The two-lock deadlock, made certain by events: each actor takes its second lock only
    once the other holds its first. Scenario timeout 60 s: a test that waited for it instead
    of seeing the deadlock would hit its own pytest timeout."""
    return f"""
name: {name}
timeout: 60
primitives:
  A: lock
  B: lock
  a_held: event
  b_held: event
actors:
  - name: {first}
    kind: {kind}
    steps:
      - acquire: A
      - set: a_held
      - wait: b_held
      - acquire: B
      - release: B
      - release: A
  - name: {second}
    kind: {kind}
    steps:
      - acquire: B
      - set: b_held
      - wait: a_held
      - acquire: A
      - release: A
      - release: B
"""


# --------------------------------------------------------------------------------------------
# hand-written traces, for the analyses' tests


def ev(actor: str | None, op: str, target: str | None = None, **kw: Any) -> dict[str, Any]:
    e: dict[str, Any] = {"actor": actor, "op": op}
    if target is not None:
        e["target"] = target
    e.update(kw)
    return e


def call(actor: str, op: str, target: str | None = None, **kw: Any) -> dict[str, Any]:
    return ev(actor, op, target, phase="call", **kw)


def ret(actor: str, op: str, target: str | None = None, result: str = "ok",
        **kw: Any) -> dict[str, Any]:
    return ev(actor, op, target, phase="return", result=result, **kw)


def acq(actor: str, target: str, result: str = "ok") -> list[dict[str, Any]]:
    return [call(actor, "acquire", target), ret(actor, "acquire", target, result)]


def rel(actor: str, target: str) -> dict[str, Any]:
    return ev(actor, "release", target)


def make_trace(steps: list[Any], primitives: dict[str, Any] | None = None,
               actors: list[str] | None = None, kinds: dict[str, str] | None = None,
               **doc_parts: Any) -> TraceData:
    """A trace from events (lists of events are flattened): seq and ts are numbered, the
    actors are those named (threads unless ``kinds`` says), ``shared``/``invariants`` go
    into the scenario and any other keyword into the document."""
    flat: list[dict[str, Any]] = []
    for s in steps:
        flat.extend(s if isinstance(s, list) else [s])
    names = actors or list(dict.fromkeys(e["actor"] for e in flat if e["actor"]))
    for i, e in enumerate(flat):
        e["seq"] = i
        e.setdefault("ts", round(i * 0.001, 6))
    scenario = {"name": "t", "primitives": primitives or {}}
    for key in ("shared", "invariants"):
        if key in doc_parts:
            scenario[key] = doc_parts.pop(key)
    doc = {"format": "tracer-trace/1", "scenario": scenario, "meta": {},
           "actors": [{"name": n, "kind": (kinds or {}).get(n, "thread")} for n in names],
           "events": flat, "outcome": {"status": "ok"}, **doc_parts}
    return parse_trace_data(orjson.dumps(doc))


def assert_consistent(trace: dict[str, Any]) -> None:
    """The trace never contradicts itself: walking its events in seq order from the
    scenario's initial values, every ``read`` has the value of the last ``write`` (or
    ``append``) of its variable before it, and ``final`` holds each variable's last value."""
    values = dict(trace["scenario"].get("shared", {}))
    for e in by_seq(trace):
        op, var = e["op"], e.get("target")
        if op == "write":
            values[var] = e.get("value")
        elif op == "append":
            values[var] = [*values[var], e.get("item")]
        elif op == "read":
            assert e.get("value") == values[var], (
                f"seq {e['seq']}: {e['actor']} reads {var} = {e.get('value')!r}, but the last "
                f"write before it left {values[var]!r}")
    assert trace["final"] == values, f"final {trace['final']!r}, last writes {values!r}"
