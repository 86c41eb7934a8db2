"""One trace reader for every command: show, analyze, replay and export accept the same
traces and refuse the same ones with the same message (docs/formats.md section 2, "What a
reader checks"), in tracer's own layout (one event per line, read as a stream) and in any
other layout of the same JSON (read whole)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from conftest import tracer_cli
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tracer.analyze import render_profile
from tracer.api import analyze
from tracer.engine.schedule.replay import recorded_steps
from tracer.render import timeline
from tracer.render.chrome import write_chrome
from tracer.render.report import render_text
from tracer.trace import TraceError, load_trace, parse_trace, parse_trace_data
from tracer.trace._io import render_trace

TINY = """\
name: tiny
primitives:
  L: lock
actors:
  - name: a
    kind: thread
    steps:
      - acquire: L
      - release: L
  - name: b
    kind: thread
    steps:
      - log: hi
"""

Trace = dict[str, Any]


def _gap(t: Trace) -> None:
    t["events"][3]["seq"] = 7


def _orphan_return(t: Trace) -> None:
    calls = [i for i, e in enumerate(t["events"]) if e.get("phase") == "call"]
    del t["events"][calls[0]]
    for i, e in enumerate(t["events"]):
        e["seq"] = i


def _unknown_actor(t: Trace) -> None:
    t["events"][1]["actor"] = "zed"


def _negative_ts(t: Trace) -> None:
    t["events"][2]["ts"] = -0.5


def _no_ts(t: Trace) -> None:
    del t["events"][2]["ts"]


def _field(index: int, key: str, value: Any) -> Callable[[Trace], None]:
    def breaks(t: Trace) -> None:
        t["events"][index][key] = value
    return breaks


def _engine_event(**fields: Any) -> Callable[[Trace], None]:
    """Append a deadlock event (actor null) with ``fields`` to the trace."""
    def breaks(t: Trace) -> None:
        last = t["events"][-1]
        t["events"].append({"seq": last["seq"] + 1, "ts": last["ts"], "actor": None,
                            "op": "deadlock", "actors": ["a"], "objects": ["L"],
                            "detail": "hand-made", **fields})
    return breaks


def _first_call(key: str, value: Any) -> Callable[[Trace], None]:
    def breaks(t: Trace) -> None:
        call = next(e for e in t["events"] if e.get("phase") == "call")
        call[key] = value
    return breaks


def _primitives(value: Any) -> Callable[[Trace], None]:
    def breaks(t: Trace) -> None:
        t["scenario"]["primitives"] = value
    return breaks


BROKEN: list[tuple[str, Callable[[Trace], None], str]] = [
    ("seq-gap", _gap, "events[3] has seq 7; seq must run 0, 1, 2, ... in order"),
    ("return-without-call", _orphan_return, "with no call before it"),
    ("unknown-actor", _unknown_actor, "names actor 'zed', which is not in 'actors'"),
    ("negative-ts", _negative_ts, "has ts -0.5; times are seconds since the start of the run, "
                                  "never negative"),
    ("no-ts", _no_ts, "event seq 2 has no time (ts)"),
    # hand-edited fields of the wrong type (each once crashed some command with exit 3)
    ("target-list", _first_call("target", ["L"]),
     'has target ["L"]; expected a name (a string) or null'),
    ("target-object", _first_call("target", {"L": 1}),
     'has target {"L":1}; expected a name (a string) or null'),
    ("actor-list", _field(1, "actor", ["a"]), 'events[1] has actor ["a"]; expected an '
                                              "actor's name or null"),
    ("actor-null-on-a-step", _field(1, "actor", None), "has no actor; only the engine's"),
    ("seq-true", _field(1, "seq", True), "events[1] has seq true; seq must run"),
    ("seq-float", _field(1, "seq", 1.0), "events[1] has seq 1.0; seq must run"),
    ("ts-string", _field(2, "ts", "0.1"), 'events[2] has ts "0.1"; expected a number'),
    ("op-number", _field(2, "op", 5), "events[2] has op 5; expected a string"),
    ("phase-list", _first_call("phase", ["call"]), 'has phase ["call"]; expected call or '
                                                   "return"),
    ("result-object", _field(2, "result", {"ok": 1}), 'has result {"ok":1}; expected a '
                                                      "string"),
    ("blocking-string", _first_call("blocking", "no"), 'has blocking "no"; expected true or '
                                                       "false"),
    ("error-list", _field(2, "error", ["x"]), 'has error ["x"]; expected a string or null'),
    ("atomic-string", _field(2, "atomic", "yes"), 'has atomic "yes"; expected true or false'),
    ("atomic-number", _field(2, "atomic", 1), "has atomic 1; expected true or false"),
    ("engine-actors-number", _engine_event(actors=5), "has actors 5; expected an array of "
                                                      "names"),
    ("engine-objects-string", _engine_event(objects="L"), 'has objects "L"; expected an '
                                                          "array of names"),
    ("engine-waits-object", _engine_event(waits={"a": 1}), 'has waits {"a":1}; expected an '
                                                           "array of objects"),
    ("engine-waits-holds", _engine_event(waits=[{"actor": "a", "op": "acquire",
                                                 "target": "L", "holds": [1]}]),
     "has waits[0].holds [1]; expected an array of names"),
    ("primitives-list", _primitives(["L"]), 'scenario.primitives is ["L"]; expected an '
                                             "object"),
    ("primitive-number", _primitives({"L": 5}), "scenario.primitives.L is 5; expected a "
                                                 "type name"),
]

# the subprocess test runs four commands per case: the ones the review found, and the old ones
ON_THE_COMMAND_LINE = [c for c in BROKEN if c[0] in (
    "seq-gap", "return-without-call", "unknown-actor", "negative-ts", "no-ts", "target-list",
    "actor-list", "engine-actors-number", "engine-waits-object", "primitive-number")]


@pytest.fixture(scope="module")
def good(tmp_path_factory: pytest.TempPathFactory) -> Trace:
    tmp = tmp_path_factory.mktemp("good")
    (tmp / "tiny.yaml").write_text(TINY, encoding="utf-8")
    proc = tracer_cli("run", "-q", "tiny.yaml", "-o", "t.json", cwd=tmp)
    assert proc.returncode == 0, proc.stderr
    trace: Trace = orjson.loads((tmp / "t.json").read_bytes())
    return trace


def tracer_layout(trace: Trace) -> str:
    """The trace as tracer writes it: one event per line."""
    head = {k: v for k, v in trace.items() if k in ("scenario", "meta", "actors")}
    tail = {k: v for k, v in trace.items() if k in ("outcome", "final")}
    events = ",\n".join(orjson.dumps(e).decode() for e in trace["events"])
    return render_trace(head, events, tail)


def indented(trace: Trace) -> str:
    return json.dumps(trace, indent=2, ensure_ascii=False)


def copy(trace: Trace) -> Trace:
    loaded: Trace = orjson.loads(orjson.dumps(trace))
    return loaded


def test_both_layouts_read_the_same(good: Trace) -> None:
    a = parse_trace_data(tracer_layout(good), "x")
    b = parse_trace_data(indented(good), "x")
    assert [e.as_dict() for e in a.events] == [e.as_dict() for e in b.events]
    assert (a.scenario, a.meta, a.actors, a.outcome, a.final) == \
        (b.scenario, b.meta, b.actors, b.outcome, b.final)


@pytest.mark.parametrize(("case", "breaks", "message"), ON_THE_COMMAND_LINE,
                         ids=[c for c, _, _ in ON_THE_COMMAND_LINE])
def test_every_command_refuses_the_same_broken_trace(
        tmp_path: Path, good: Trace, case: str, breaks: Callable[[Trace], None],
        message: str) -> None:
    trace = copy(good)
    breaks(trace)
    (tmp_path / "bad.json").write_text(tracer_layout(trace), encoding="utf-8")
    errors = {}
    for command in (["show"], ["analyze"], ["replay"], ["export", "--chrome", "c.json"]):
        proc = tracer_cli(*command[:1], "bad.json", *command[1:], cwd=tmp_path)
        assert proc.returncode == 2, (command, proc.stdout, proc.stderr)
        assert "Traceback" not in proc.stderr
        assert proc.stdout == ""
        errors[command[0]] = proc.stderr
    assert len(set(errors.values())) == 1, errors
    assert errors["show"].startswith("tracer: error: bad.json: ")
    assert message in errors["show"], errors["show"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.json"], "nothing written"


@pytest.mark.parametrize("layout", [tracer_layout, indented], ids=["tracer", "indented"])
@pytest.mark.parametrize(("case", "breaks", "message"), BROKEN, ids=[c for c, _, _ in BROKEN])
def test_the_api_refuses_them_too(good: Trace, layout: Callable[[Trace], str], case: str,
                                  breaks: Callable[[Trace], None], message: str) -> None:
    trace = copy(good)
    breaks(trace)
    text = layout(trace)
    for read in (parse_trace_data, parse_trace):
        with pytest.raises(TraceError, match=r"^bad: ") as exc:
            read(text, "bad")
        assert message in str(exc.value)


def test_load_trace_reads_a_good_trace_as_its_model(tmp_path: Path, good: Trace) -> None:
    path = tmp_path / "t.json"
    path.write_text(tracer_layout(good), encoding="utf-8")
    model = load_trace(path)
    assert len(model.events) == len(good["events"])
    assert model.outcome.status == "ok"


def test_show_prints_what_analyze_reads(tmp_path: Path, good: Trace) -> None:
    (tmp_path / "t.json").write_text(indented(good), encoding="utf-8")
    proc = tracer_cli("show", "t.json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("tiny: ok — ")
    assert len([ln for ln in lines[2:] if ln[:6].strip().isdigit()]) == len(good["events"])
    assert any("acquire L ..." in ln for ln in lines)
    assert any("log: hi" in ln for ln in lines)


FIXTURES = Path(__file__).parent / "fixtures"


def test_a_trace_of_version_0_1_0_still_reads(tmp_path: Path) -> None:
    """tests/fixtures/trace-0.1.0.json was written by tracer 0.1.0 (`tracer run
    scenarios/producer_consumer.yaml`); every command must go on reading it."""
    old = FIXTURES / "trace-0.1.0.json"
    for command in (["show"], ["analyze", "--no-graphs"],
                    ["export", "--chrome", str(tmp_path / "c.json")],
                    ["replay", "-o", str(tmp_path / "r.json")]):
        proc = tracer_cli(command[0], str(old), *command[1:], cwd=tmp_path)
        assert proc.returncode == 0, (command, proc.stderr)
        assert "Traceback" not in proc.stderr
    assert orjson.loads((tmp_path / "c.json").read_bytes())["otherData"]["scenario"] == \
        "producer_consumer"
    assert load_trace(old).meta.tracer_version == "0.1.0"


# --- any hand edit of a field: refused with a message, or read; never a crash -------------

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=4)
    | st.sampled_from(["a", "b", "L", "t1", "t2", "A", "B", "call", "return", "ok"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner,
                                                               max_size=3),
    max_leaves=6)
FIELDS = ["seq", "ts", "actor", "op", "target", "phase", "result", "value", "item", "blocking",
          "error", "detail", "actors", "objects", "waits", "atomic", "old"]
WAIT_FIELDS = ["actor", "op", "target", "kind", "holds", "providers", "call_seq"]


@pytest.fixture(scope="module")
def deadlocked(tmp_path_factory: pytest.TempPathFactory) -> Trace:
    """A real trace with an engine event (deadlock, with its waits)."""
    tmp = tmp_path_factory.mktemp("deadlocked")
    scenario = Path(__file__).parent.parent / "scenarios" / "deadlock.yaml"
    proc = tracer_cli("run", "-q", str(scenario), "-o", "d.json", cwd=tmp)
    assert proc.returncode == 1, proc.stderr
    trace: Trace = orjson.loads((tmp / "d.json").read_bytes())
    return trace


def every_command_in_process(text: str, tmp: Path) -> None:
    """What show, analyze, export and replay do with a trace before running anything."""
    try:
        data = parse_trace_data(text, "edited")
    except TraceError as exc:
        assert str(exc).startswith("edited: ")
        return
    list(timeline(data, None))
    report = analyze(data, None)
    list(render_text(report, render_profile(report.profile)))
    json.dumps(report.as_json())
    analyze(data, None, len(data.events) - 1)
    write_chrome(data, tmp / "c.json")
    recorded_steps(data.events)


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_no_hand_edit_of_a_field_crashes_a_command(
        deadlocked: Trace, tmp_path: Path, data: st.DataObject) -> None:
    trace = copy(deadlocked)
    events = trace["events"]
    event = events[data.draw(st.integers(0, len(events) - 1), label="event")]
    if event.get("waits") and data.draw(st.booleans(), label="in waits"):
        event = event["waits"][data.draw(st.integers(0, len(event["waits"]) - 1))]
        key = data.draw(st.sampled_from(WAIT_FIELDS), label="wait field")
    else:
        key = data.draw(st.sampled_from(FIELDS), label="field")
    event[key] = data.draw(JSON_VALUES, label="value")
    every_command_in_process(tracer_layout(trace), tmp_path)
    every_command_in_process(indented(trace), tmp_path)


@pytest.mark.parametrize("layout", [tracer_layout, indented], ids=["tracer", "indented"])
def test_a_trailing_comma_after_the_last_event_is_refused_in_both_layouts(
        tmp_path: Path, good: Trace, layout: Callable[[Trace], str]) -> None:
    text = layout(good)
    last = text.rindex("}", 0, text.rindex("]"))  # the end of the last event
    (tmp_path / "bad.json").write_text(text[:last + 1] + "," + text[last + 1:],
                                       encoding="utf-8")
    proc = tracer_cli("show", "bad.json", cwd=tmp_path)
    assert proc.returncode == 2, proc.stdout
    assert "Traceback" not in proc.stderr
    assert proc.stderr.startswith("tracer: error: bad.json: not valid JSON (trailing comma")


def test_events_with_no_comma_between_them_are_refused(good: Trace) -> None:
    text = tracer_layout(good)
    first = text.index("\n", text.index('"events":[') + 11)  # the end of the first event line
    assert text[first - 1] == ","
    with pytest.raises(TraceError, match="not valid JSON"):
        parse_trace_data(text[:first - 1] + text[first:], "bad")
