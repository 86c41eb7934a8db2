"""`tracer analyze` and `tracer export` through the command line: exit codes, the JSON
findings format, graphs, and every kind of bad trace (exit 2, one message, no traceback)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import SCENARIOS, tracer_cli, unlined

NEEDS_DOT = pytest.mark.skipif(shutil.which("dot") is None,
                               reason="Graphviz's dot is not installed (apt-get install graphviz)")


def _run(tmp_path: Path, scenario: str) -> Path:
    out = tmp_path / f"{scenario}.json"
    r = tracer_cli("run", str(SCENARIOS / f"{scenario}.yaml"), "-o", str(out), "-q",
                   cwd=tmp_path)
    assert r.returncode in (0, 1), r.stderr
    assert out.exists()
    return out


def _bad(tmp_path: Path, text: str | bytes) -> tuple[int, str, str]:
    path = tmp_path / "bad.json"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    r = tracer_cli("analyze", str(path), "--no-graphs", cwd=tmp_path)
    return r.returncode, r.stdout, r.stderr


def test_deadlock_trace_gives_exit_1_and_the_cycle_in_json(tmp_path: Path) -> None:
    trace = _run(tmp_path, "deadlock")
    r = tracer_cli("analyze", str(trace), "--format", "json", "--graphs", str(tmp_path / "g"),
                   cwd=tmp_path)
    assert r.returncode == 1, r.stderr
    report = json.loads(r.stdout)
    assert report["trace"] == str(trace)
    kinds = [f["kind"] for f in report["findings"]]
    assert "deadlock" in kinds
    dl = next(f for f in report["findings"] if f["kind"] == "deadlock")
    assert set(dl["actors"]) == {"t1", "t2"}
    assert {"A", "B"} <= set(dl["objects"])
    assert dl["severity"] == "error"
    assert all(isinstance(s, int) for s in dl["events"]) and dl["events"]
    assert "t1 holds A and waits for B" in unlined(dl["message"])
    graph = Path(report["graphs"]["wait_for"])
    assert graph.exists() and graph.parent == tmp_path / "g"
    assert (tmp_path / "g" / f"{trace.stem}.wait-for.dot").exists()


def test_clean_trace_gives_exit_0_and_no_findings(tmp_path: Path) -> None:
    trace = _run(tmp_path, "bank_account_lock")
    r = tracer_cli("analyze", str(trace), "--format", "json", "--no-graphs", cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert json.loads(r.stdout)["findings"] == []


def test_text_report_names_the_race_and_the_invariant(tmp_path: Path) -> None:
    trace = _run(tmp_path, "bank_account_race")
    r = tracer_cli("analyze", str(trace), "--no-graphs", cwd=tmp_path)
    assert r.returncode == 1
    assert "DATA RACE" in r.stdout
    assert "balance" in r.stdout
    assert "INVARIANT BROKEN" in r.stdout
    assert "Traceback" not in r.stdout + r.stderr


@NEEDS_DOT
def test_graphs_are_svg_with_dot_and_at_seq_draws_that_moment(tmp_path: Path) -> None:
    trace = _run(tmp_path, "deadlock")
    r = tracer_cli("analyze", str(trace), "--format", "json", "--at", "3", cwd=tmp_path)
    graphs = json.loads(r.stdout)["graphs"]
    svg = Path(graphs["wait_for"])
    assert svg.suffix == ".svg" and svg.exists()
    assert "at-3" in svg.name
    assert "<svg" in svg.read_text(encoding="utf-8")


def test_at_beyond_the_trace_is_bad_input(tmp_path: Path) -> None:
    trace = _run(tmp_path, "deadlock")
    r = tracer_cli("analyze", str(trace), "--at", "100000", cwd=tmp_path)
    assert r.returncode == 2
    assert "--at 100000" in r.stderr and "Traceback" not in r.stderr


def test_export_chrome_writes_a_track_per_actor(tmp_path: Path) -> None:
    trace = _run(tmp_path, "producer_consumer")
    out = tmp_path / "chrome.json"
    r = tracer_cli("export", str(trace), "--chrome", str(out), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    doc = json.loads(out.read_text(encoding="utf-8"))
    names = {e["args"]["name"] for e in doc["traceEvents"]
             if e.get("ph") == "M" and e.get("name") == "thread_name"}
    actors = {a["name"] for a in json.loads(trace.read_text(encoding="utf-8"))["actors"]}
    assert actors <= names


VALID_HEAD = ('{"format":"tracer-trace/1","scenario":{"name":"x"},"meta":{},'
              '"actors":[{"name":"t1","kind":"thread"}],')


@pytest.mark.parametrize(("text", "expected"), [
    pytest.param(b"\x00\x01garbage", "not valid JSON", id="binary"),
    pytest.param("", "not valid JSON", id="empty"),
    pytest.param("[1, 2]", "a trace is a JSON object", id="not-an-object"),
    pytest.param('{"format": "tracer-trace/9"}', "format is 'tracer-trace/9'", id="version"),
    pytest.param('{"format": "tracer-trace/1", "scenario": {}}', "'meta' is missing",
                 id="missing-part"),
    pytest.param(VALID_HEAD + '"events":[{"seq":0,"ts":0,"actor":"t1","op":"acquire",'
                 '"target":"A","phase":"return","result":"ok"}],"outcome":{"status":"ok"}}',
                 "with no call before it", id="return-without-call"),
    pytest.param(VALID_HEAD + '"events":[{"seq":0,"ts":0,"actor":"ghost","op":"start"}],'
                 '"outcome":{"status":"ok"}}', "names actor 'ghost'", id="unknown-actor"),
    pytest.param(VALID_HEAD + '"events":[{"seq":1,"ts":0,"actor":"t1","op":"start"}],'
                 '"outcome":{"status":"ok"}}', "seq must run 0, 1, 2", id="seq-out-of-order"),
])
def test_bad_traces_exit_2_with_the_first_problem(tmp_path: Path, text: str | bytes,
                                                  expected: str) -> None:
    code, out, err = _bad(tmp_path, text)
    assert code == 2
    assert expected in err
    assert "Traceback" not in out + err


def test_truncated_trace_exit_2(tmp_path: Path) -> None:
    trace = _run(tmp_path, "deadlock")
    raw = trace.read_bytes()
    code, out, err = _bad(tmp_path, raw[: len(raw) // 2])
    assert code == 2 and "not valid JSON" in err and "Traceback" not in out + err


def test_missing_trace_file_exit_2(tmp_path: Path) -> None:
    r = tracer_cli("analyze", str(tmp_path / "nope.json"), cwd=tmp_path)
    assert r.returncode == 2 and "no such file" in r.stderr
    r = tracer_cli("export", str(tmp_path / "nope.json"), "--chrome", "x.json", cwd=tmp_path)
    assert r.returncode == 2 and "no such file" in r.stderr
