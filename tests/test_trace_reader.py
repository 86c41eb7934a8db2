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


BROKEN: list[tuple[str, Callable[[Trace], None], str]] = [
    ("seq-gap", _gap, "events[3] has seq 7; seq must run 0, 1, 2, ... in order"),
    ("return-without-call", _orphan_return, "with no call before it"),
    ("unknown-actor", _unknown_actor, "names actor 'zed', which is not in 'actors'"),
    ("negative-ts", _negative_ts, "has ts -0.5; times are seconds since the start of the run, "
                                  "never negative"),
    ("no-ts", _no_ts, "event seq 2 has no time (ts)"),
]


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


@pytest.mark.parametrize(("case", "breaks", "message"), BROKEN, ids=[c for c, _, _ in BROKEN])
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
