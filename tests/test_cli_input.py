"""The command line on good and bad input, through real subprocesses (``python -m tracer``).

Every bad input must give exit 2, a clear message on stderr, no traceback, and no trace file.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from conftest import tracer_cli

TINY = """\
name: tiny
primitives:
  L: lock
shared:
  x: 0
actors:
  - name: a
    kind: thread
    steps:
      - with: L
        steps:
          - add: {var: x, value: 1}
  - name: b
    kind: thread
    steps:
      - acquire: L
      - sleep: 0.001
      - release: L
"""

SECOND = """\
name: second
actors:
  - name: only
    kind: thread
    steps:
      - log: hello
"""


def named(name_yaml: str) -> str:
    """A tiny scenario whose `name:` value is ``name_yaml`` (already YAML-quoted)."""
    return f"name: {name_yaml}\nactors:\n  - {{name: t, kind: thread, steps: [{{log: hi}}]}}\n"


def no_traceback(proc: object) -> None:
    out = proc.stdout + proc.stderr  # type: ignore[attr-defined]
    assert "Traceback" not in out, out[-1500:]


def bad_input(proc: object, *needles: str) -> None:
    """Exit 2, a one-paragraph message on stderr containing ``needles``, no traceback."""
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)  # type: ignore[attr-defined]
    no_traceback(proc)
    err = proc.stderr  # type: ignore[attr-defined]
    assert err.strip(), "no message on stderr"
    for needle in needles:
        assert needle in err, err


def json_files(root: Path) -> set[Path]:
    return set(root.rglob("*.json"))


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# ---------------------------------------------------------------------------------------------
# validate


def test_validate_good_files(tmp_path: Path) -> None:
    write(tmp_path / "tiny.yaml", TINY)
    write(tmp_path / "second.yaml", SECOND)
    proc = tracer_cli("validate", "tiny.yaml", "second.yaml", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    no_traceback(proc)
    assert proc.stdout.splitlines() == [
        "ok: tiny.yaml (tiny: 2 actors, 1 primitive)",
        "ok: second.yaml (second: 1 actor, 0 primitives)",
    ]
    assert proc.stderr == ""
    assert not (tmp_path / "traces").exists()


def test_validate_bad_file(tmp_path: Path) -> None:
    write(tmp_path / "tiny.yaml", TINY)
    write(tmp_path / "bad.yaml", TINY.replace("- acquire: L", "- aquire: L"))
    proc = tracer_cli("validate", "tiny.yaml", "bad.yaml", cwd=tmp_path)
    bad_input(proc, "bad.yaml:16: actors[1].steps[0]: unknown step 'aquire'",
              "did you mean 'acquire'?")
    assert proc.stderr.startswith("tracer: error: bad.yaml:16:")
    assert "ok: tiny.yaml" in proc.stdout  # the good one is still reported
    assert "bad.yaml" not in proc.stdout


def test_validate_malformed_yaml_names_file_and_line(tmp_path: Path) -> None:
    write(tmp_path / "broken.yaml", "name: s\nactors: [\n  - a: b\n")
    proc = tracer_cli("validate", "broken.yaml", cwd=tmp_path)
    bad_input(proc, "broken.yaml:3: not valid YAML")
    assert proc.stdout == ""


def test_validate_missing_file(tmp_path: Path) -> None:
    bad_input(tracer_cli("validate", "nope.yaml", cwd=tmp_path), "nope.yaml: no such file")


# ---------------------------------------------------------------------------------------------
# run on bad input: exit 2, message, no traceback, no trace written


def _garbage() -> bytes:
    rng = random.Random(1234)
    return bytes(rng.randrange(256) for _ in range(300)) + b"\x00\x01\x02name: x\x00"


BAD_RUN_INPUTS = [
    pytest.param(None, "missing.yaml", ["missing.yaml: no such file"], id="missing-file"),
    pytest.param("DIR", "folder", ["folder", "is a directory"], id="folder"),
    pytest.param(_garbage(), "garbage.yaml", ["garbage.yaml: is a binary file, not YAML text"],
                 id="binary-garbage"),
    pytest.param("name: café\n".encode("latin-1"), "latin1.yaml",
                 ["latin1.yaml: is not UTF-8 text (bad byte at offset 9)"], id="not-utf8"),
    pytest.param(b"name: s\nactors: [\n  - a: b\n", "broken.yaml",
                 ["broken.yaml:3: not valid YAML"], id="malformed-yaml"),
    pytest.param(b'name: !!python/object/apply:os.system ["echo hi"]\nactors: []\n', "tag.yaml",
                 ["tag.yaml:1:", "only plain YAML data is allowed"], id="python-tag"),
    pytest.param(b"", "empty.yaml", ["empty.yaml: the file is empty"], id="empty-file"),
    pytest.param(b"- just\n- a list\n", "list.yaml", ["list.yaml:1: the document is a list"],
                 id="list-document"),
    pytest.param(TINY.replace("kind: thread", "kind: thred", 1).encode(), "kind.yaml",
                 ["kind.yaml:8: actors[0].kind:", "did you mean 'thread'?"], id="invalid-scenario"),
]


@pytest.mark.parametrize(("content", "filename", "needles"), BAD_RUN_INPUTS)
def test_run_bad_input(tmp_path: Path, content: bytes | str | None, filename: str,
                       needles: list[str]) -> None:
    target = tmp_path / filename
    if content == "DIR":
        target.mkdir()
    elif isinstance(content, bytes):
        target.write_bytes(content)
    before = json_files(tmp_path)
    proc = tracer_cli("run", filename, cwd=tmp_path)
    bad_input(proc, *needles)
    assert "running" not in proc.stdout
    assert json_files(tmp_path) == before
    assert not (tmp_path / "traces").exists()


def test_run_python_tag_runs_nothing(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    write(tmp_path / "evil.yaml",
          f'name: !!python/object/apply:os.system ["touch {marker}"]\n'
          "actors:\n  - {name: t, kind: thread}\n")
    bad_input(tracer_cli("run", "evil.yaml", cwd=tmp_path), "only plain YAML data is allowed")
    assert not marker.exists()


def test_run_bad_input_with_output_option_writes_nothing(tmp_path: Path) -> None:
    write(tmp_path / "broken.yaml", "name: s\nactors: [\n")
    bad_input(tracer_cli("run", "broken.yaml", "-o", "out.json", cwd=tmp_path))
    assert not (tmp_path / "out.json").exists()


# ---------------------------------------------------------------------------------------------
# run on good input: where the trace goes


def test_run_writes_default_trace(tmp_path: Path) -> None:
    write(tmp_path / "tiny.yaml", TINY)
    proc = tracer_cli("run", "tiny.yaml", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    no_traceback(proc)
    assert "trace: traces/tiny.json" in proc.stdout
    trace = json.loads((tmp_path / "traces" / "tiny.json").read_text(encoding="utf-8"))
    assert trace["format"] == "tracer-trace/1"
    assert trace["outcome"]["status"] == "ok"
    assert {a["name"] for a in trace["actors"]} == {"a", "b"}


def test_run_output_option(tmp_path: Path) -> None:
    write(tmp_path / "tiny.yaml", TINY)
    proc = tracer_cli("run", "tiny.yaml", "-o", "out.json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "trace: out.json" in proc.stdout
    trace = json.loads((tmp_path / "out.json").read_text(encoding="utf-8"))
    assert trace["scenario"]["name"] == "tiny"
    assert not (tmp_path / "traces").exists()


def test_run_quiet_prints_only_the_path(tmp_path: Path) -> None:
    write(tmp_path / "tiny.yaml", TINY)
    proc = tracer_cli("run", "-q", "tiny.yaml", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["trace: traces/tiny.json"]


@pytest.mark.parametrize("name_yaml", [
    pytest.param('"../../evil"', id="dotdot"),
    pytest.param('"a/b"', id="slash"),
    pytest.param('"a\\\\b"', id="backslash"),
    pytest.param('"x\\ty"', id="tab"),
    pytest.param('"\\u0007bell"', id="bell"),
    pytest.param('"a\\nb"', id="newline"),
    pytest.param('"..."', id="only-dots"),
    pytest.param('"/etc/passwd"', id="absolute"),
    pytest.param('".hidden"', id="hidden"),
])
def test_run_unsafe_scenario_name_stays_in_traces(tmp_path: Path, name_yaml: str) -> None:
    work = tmp_path / "deep" / "er"
    work.mkdir(parents=True)
    write(work / "n.yaml", named(name_yaml))
    proc = tracer_cli("run", "-q", "n.yaml", cwd=work)
    assert proc.returncode == 0, proc.stderr
    no_traceback(proc)
    written = json_files(tmp_path)
    assert len(written) == 1, written
    path = written.pop()
    assert path.parent == work / "traces"
    assert path.resolve().is_relative_to((work / "traces").resolve())
    assert not path.name.startswith(".")
    assert all(c.isprintable() for c in path.name)
    assert "/" not in path.name and "\\" not in path.name
    assert f"trace: traces/{path.name}" in proc.stdout


def test_long_unicode_name(tmp_path: Path) -> None:
    write(tmp_path / "n.yaml", named("馒" * 100))
    proc = tracer_cli("run", "-q", "n.yaml", cwd=tmp_path)
    no_traceback(proc)
    assert proc.returncode == 0, proc.stderr
    assert len(json_files(tmp_path / "traces")) == 1


# ---------------------------------------------------------------------------------------------
# show on bad input


@pytest.fixture
def real_trace(tmp_path: Path) -> Path:
    write(tmp_path / "tiny.yaml", TINY)
    proc = tracer_cli("run", "-q", "tiny.yaml", "-o", "real.json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    return tmp_path / "real.json"


def test_show_real_trace(real_trace: Path) -> None:
    proc = tracer_cli("show", real_trace.name, cwd=real_trace.parent)
    assert proc.returncode == 0, proc.stderr
    no_traceback(proc)
    assert "tiny: ok" in proc.stdout
    proc = tracer_cli("show", real_trace.name, "--actor", "a", cwd=real_trace.parent)
    assert proc.returncode == 0, proc.stderr
    assert " b " not in proc.stdout


def test_show_truncated_trace(real_trace: Path) -> None:
    text = real_trace.read_text(encoding="utf-8")
    cut = real_trace.with_name("cut.json")
    write(cut, text[: len(text) // 2])
    bad_input(tracer_cli("show", "cut.json", cwd=real_trace.parent),
              "cut.json: not valid JSON", "a trace written by 'tracer run' is expected")


def test_show_unknown_actor(real_trace: Path) -> None:
    proc = tracer_cli("show", real_trace.name, "--actor", "nobody", cwd=real_trace.parent)
    bad_input(proc, "real.json: no actor named 'nobody' (actors: a, b)")
    assert proc.stdout == ""


BAD_TRACES = [
    pytest.param(None, ["missing.json: no such file"], id="missing"),
    pytest.param(b"not json at all\n", ["not valid JSON"], id="not-json"),
    pytest.param(b"\xff\xfe\x00garbage", ["not valid JSON"], id="binary"),
    pytest.param(b"[1, 2]", ["a trace is a JSON object, got list"], id="array"),
    pytest.param(b'"text"', ["a trace is a JSON object"], id="string"),
    pytest.param(b"{}", ["format is None, but this tracer reads 'tracer-trace/1'"],
                 id="empty-object"),
    pytest.param(b'{"format": "tracer-trace/9"}',
                 ["format is 'tracer-trace/9', but this tracer reads 'tracer-trace/1'"],
                 id="other-version"),
    pytest.param(b'{"format": "tracer-trace/1"}', ["'scenario' is missing or not an object"],
                 id="format-only"),
]


@pytest.mark.parametrize(("content", "needles"), BAD_TRACES)
def test_show_bad_trace(tmp_path: Path, content: bytes | None, needles: list[str]) -> None:
    if content is not None:
        (tmp_path / "t.json").write_bytes(content)
    name = "missing.json" if content is None else "t.json"
    bad_input(tracer_cli("show", name, cwd=tmp_path), *needles)


def test_show_folder(tmp_path: Path) -> None:
    (tmp_path / "dir.json").mkdir()
    bad_input(tracer_cli("show", "dir.json", cwd=tmp_path), "is a directory")


# ---------------------------------------------------------------------------------------------
# usage


@pytest.mark.parametrize(("args", "needle"), [
    pytest.param(["frobnicate"], "No such command 'frobnicate'", id="unknown-command"),
    pytest.param(["run"], "Missing argument 'SCENARIO'", id="run-without-scenario"),
    pytest.param(["show"], "Missing argument 'TRACE'", id="show-without-trace"),
    pytest.param(["validate"], "Missing argument 'SCENARIOS...'", id="validate-without-files"),
    pytest.param(["run", "x.yaml", "--bogus"], "No such option", id="unknown-option"),
    pytest.param(["run", "x.yaml", "-o"], "Option '-o' requires an argument",
                 id="option-without-value"),
])
def test_usage_errors(tmp_path: Path, args: list[str], needle: str) -> None:
    proc = tracer_cli(*args, cwd=tmp_path)
    bad_input(proc, needle)
    assert not (tmp_path / "traces").exists()


def test_version(tmp_path: Path) -> None:
    proc = tracer_cli("--version", cwd=tmp_path)
    assert proc.returncode == 0
    assert proc.stdout.strip() == "tracer, version 0.1.0"


def test_no_command_prints_help(tmp_path: Path) -> None:
    proc = tracer_cli(cwd=tmp_path)
    no_traceback(proc)
    assert "Usage: tracer" in proc.stdout + proc.stderr
    assert proc.returncode in (0, 2)


# ---------------------------------------------------------------------------------------------
# Loader crashes seen from the CLI (regressions; see test_validation.py for the loader side)


@pytest.mark.parametrize("text", [
    pytest.param("name: s\nx: &a [*a]\nactors:\n  - {name: t, kind: thread}\n",
                 id="self-alias"),
    pytest.param("name: s\nx: " + "[" * 3000 + "]" * 3000 + "\nactors:\n"
                 "  - {name: t, kind: thread}\n", id="deep-nesting"),
    pytest.param("name: s\ntimeout: " + "9" * 5000 + "\nactors:\n  - {name: t, kind: thread}\n",
                 id="huge-integer"),
])
def test_validate_crashes(tmp_path: Path, text: str) -> None:
    write(tmp_path / "x.yaml", text)
    proc = tracer_cli("validate", "x.yaml", cwd=tmp_path)
    no_traceback(proc)
    assert proc.returncode == 2
