"""trace_data_from_run: the TraceData of a run built from its records in memory is the one its
trace file reads back as, so the findings are the same (what `tracer explore` relies on when
it analyzes every schedule without writing or reading JSON)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
from conftest import SCENARIOS, run_yaml

from tracer import TraceError, load_scenario, run_plan
from tracer.analyze import TraceData, find_all, parse_trace_data
from tracer.analyze._model import Ev
from tracer.engine import RunResult, trace_data_from_run

BUNDLED = sorted(SCENARIOS.glob("*.yaml"))


def both(result: RunResult) -> tuple[TraceData, TraceData]:
    """The run's TraceData built directly, and read back from its trace text."""
    return trace_data_from_run(result, "run"), parse_trace_data(result.to_json(), "run")


def assert_same_data(direct: TraceData, parsed: TraceData) -> None:
    for part in ("source", "scenario", "meta", "actors", "outcome", "final"):
        assert getattr(direct, part) == getattr(parsed, part), part
    assert len(direct.events) == len(parsed.events)
    for d, p in zip(direct.events, parsed.events, strict=True):
        assert isinstance(d, Ev)
        for slot in Ev.__slots__:
            dv, pv = getattr(d, slot), getattr(p, slot)
            assert dv == pv, (slot, d.as_dict(), p.as_dict())
            assert type(dv) is type(pv), (slot, d.as_dict(), p.as_dict())


def findings(data: TraceData) -> list[dict[str, Any]]:
    """Everything a finding says: kind, actors, objects, message, seqs and details."""
    return [f.as_json() for f in find_all(data)]


@pytest.mark.parametrize("path", BUNDLED, ids=lambda p: p.stem)
def test_bundled_scenario_direct_equals_json(path: Path) -> None:
    direct, parsed = both(run_plan(load_scenario(path)))
    assert_same_data(direct, parsed)
    assert findings(direct) == findings(parsed)


def test_bundled_scenarios_are_all_checked() -> None:
    assert len(BUNDLED) >= 30
    assert {p.stem for p in BUNDLED} >= {"deadlock", "bank_account_race", "queue_stall",
                                         "process_deadlock", "asyncio_deadlock"}


QUEUE = """
name: items
timeout: 10
primitives: {q: {type: queue}, L: lock}
shared: {log: [], n: 0}
invariants: [{var: n, op: "==", value: 3}]
actors:
  - name: producer
    kind: thread
    steps:
      - {put: q, item: {"k": [1, 2]}}
      - {put: q, item: 7}
      - with: L
        steps: [{add: {var: n, value: 1}}]
  - name: consumer
    kind: thread
    steps:
      - get: q
      - get: q
      - append: {var: log, item: done}
"""


def test_payloads_and_final_read_back_as_json() -> None:
    """Whatever the engine kept in payloads and the final state (tuples, dicts with non-string
    keys, NaN and infinities) comes out as the JSON text would bring it back."""
    result, _ = run_yaml(QUEUE)
    odd: list[Any] = [(1, (2, 3)), {1: "a", "b": (None, True)}, math.nan, -math.inf,
                      [1.5, {"x": math.inf}], "text", 2**40, False, None]
    records = result.records
    for i, value in enumerate(odd):
        seq, ts, tag, payload = records[i]
        records[i] = (seq, ts, tag, {**(payload or {}), "value": value, "item": value,
                                     "note": value})
    result.final = {**result.final, "pair": (1, 2), "nested": {3: [math.nan]}}
    result.mode, result.seed = "explore", 1_000_003  # as `tracer explore` sets them
    direct, parsed = both(result)
    assert_same_data(direct, parsed)
    assert direct.events[0].value == [1, [2, 3]]
    assert direct.events[2].value is None  # NaN is written as null
    assert direct.final is not None and direct.final["nested"] == {"3": [None]}
    assert findings(direct) == findings(parsed)


def test_times_as_written() -> None:
    """Times are relative to the run's start, made non-decreasing along seq and rounded to the
    microsecond as the trace writer writes them, ties and long runs included."""
    result, _ = run_yaml(QUEUE)
    t0 = result.t0
    times = [0.0078125, 0.0078125 + 2e-7, 0.0000015, 0.0000025, 0.5, 0.25,  # 0.25: earlier
             1234.5678915, 999.9999995, 0.1 + 0.2, 1e-9]
    records = result.records
    for i, t in enumerate(times):
        seq, _, tag, payload = records[i]
        records[i] = (seq, t0 + t, tag, payload)
    for i in range(len(times), len(records)):
        seq, _, tag, payload = records[i]
        records[i] = (seq, t0 + 1234.6 + i * 1e-6, tag, payload)
    direct, parsed = both(result)
    assert_same_data(direct, parsed)
    assert [e.ts for e in direct.events[4:6]] == [0.5, 0.5]


def test_fresh_parts_for_each_call() -> None:
    """Changing one TraceData does not change the next one made from the same run."""
    result, _ = run_yaml(QUEUE)
    first = trace_data_from_run(result)
    first.scenario["name"] = "changed"
    first.actors[0]["name"] = "changed"
    second = trace_data_from_run(result)
    assert second.scenario["name"] == "items"
    assert second.actors[0]["name"] == "producer"
    assert second.source == "<run>"


def test_records_not_numbered_by_the_engine_fail_as_the_file_would() -> None:
    result, _ = run_yaml(QUEUE)
    result.records = result.records[1:]
    with pytest.raises(TraceError, match="seq must run 0, 1, 2"):
        trace_data_from_run(result)


def test_payloads_the_engine_never_records_read_as_the_text() -> None:
    """A payload naming a field of the event itself (in the text, it comes last and wins) or
    an empty one: the trace text decides, error included."""
    result, _ = run_yaml(QUEUE)
    seq, ts, tag, _ = result.records[-1]
    assert tag.op == "end" and tag.phase is None
    result.records[-1] = (seq, ts, tag, {"target": "elsewhere", "value": 1})
    direct, parsed = both(result)
    assert_same_data(direct, parsed)
    assert direct.events[-1].target == "elsewhere"
    result.records[-1] = (seq, ts, tag, {"phase": "call"})
    with pytest.raises(TraceError, match="op 'end' has no phases"):
        trace_data_from_run(result)
    result.records[-1] = (seq, ts, tag, {})
    with pytest.raises(TraceError, match="not valid JSON"):
        trace_data_from_run(result)
