"""``tracer run PROG.py``: unchanged programs are traced, their deadlocks and stalls end the run,
and every way a program can end (or fail to start) is one clear outcome.

Each test runs the command as a user does (``python -m tracer run ...`` in a subprocess) on a
program of ``tests/programs`` and reads the trace it wrote.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

PROGRAMS = Path(__file__).resolve().parent / "programs"


def tracer(*args: str, cwd: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tracer", *args], cwd=cwd, text=True,
                          capture_output=True, timeout=timeout, check=False)


def run_program(name: str, tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess[str],
                                                                dict[str, Any]]:
    out = tmp_path / f"{Path(name).stem}.json"
    proc = tracer("run", str(PROGRAMS / name), "-o", str(out), *args, cwd=tmp_path)
    assert out.exists(), proc.stdout + proc.stderr
    return proc, json.loads(out.read_text())


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_a_two_lock_deadlock_is_seen_live_and_ends_the_run(tmp_path: Path) -> None:
    proc, trace = run_program("deadlock.py", tmp_path, "--", "--n", "2")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert trace["outcome"]["status"] == "deadlock"
    # the program, not a scenario, with the arguments it was given
    assert "scenario" not in trace
    assert trace["program"]["argv"] == ["--n", "2"]
    assert len(trace["program"]["sha256"]) == 64
    assert trace["program"]["primitives"]["locks[0]"]["type"] == "lock"
    assert trace["program"]["primitives"]["ready"] == {"type": "barrier", "parties": 2,
                                                       "site": "deadlock.py:7"}
    last = trace["events"][-1]
    assert last["op"] == "deadlock"
    assert {"worker-0", "worker-1"} <= set(last["actors"])
    assert {"locks[0]", "locks[1]"} <= set(last["objects"])
    # messages quote the program's lines
    assert "worker-0 holds locks[0] (deadlock.py:11) and waits for locks[1] (deadlock.py:13)" \
        in proc.stdout
    assert "graph (wait-for):" in proc.stdout
    # every event an actor made carries the line of the user's code that made it
    for e in trace["events"]:
        if e["op"] in ("acquire", "release", "wait", "spawn", "join"):
            assert e["line"].startswith("deadlock.py:"), e
    # no process of the run is left
    for a in trace["actors"]:
        assert _gone(a["pid"])


def test_three_threads_in_a_cycle_deadlock_too(tmp_path: Path) -> None:
    proc, trace = run_program("deadlock.py", tmp_path, "--", "--n", "3")
    assert proc.returncode == 1
    assert trace["outcome"]["status"] == "deadlock"
    assert {"worker-0", "worker-1", "worker-2"} <= set(trace["events"][-1]["actors"])


def test_a_correct_program_is_clean_and_records_only_the_users_primitives(
        tmp_path: Path) -> None:
    proc, trace = run_program("clean.py", tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "done [0, 1, 2]" in proc.stdout  # the program's own output
    assert trace["outcome"]["status"] == "ok"
    prims = trace["program"]["primitives"]
    # the locks inside Event, Queue, Condition and Thread start-up stay bare
    assert {n: p["type"] for n, p in prims.items()} == {
        "lock": "lock", "ready": "event", "q": "queue", "sem": "semaphore",
        "cond": "condition"}
    ops = {(e["op"], e.get("target")) for e in trace["events"]}
    assert {("put", "q"), ("get", "q"), ("set", "ready"), ("wait", "ready"),
            ("acquire", "sem"), ("release", "lock"), ("wait", "cond"),
            ("notify_all", "cond"), ("spawn", "producer"), ("join", "consumer")} <= ops
    # the items travel
    gets = [e["item"] for e in trace["events"] if e["op"] == "get" and e["phase"] == "return"]
    assert gets == [0, 1, 2, None]
    assert {a["name"]: a["status"] for a in trace["actors"]} == {
        "MainThread": "ok", "producer": "ok", "consumer": "ok"}
    analyzed = tracer("analyze", str(tmp_path / "clean.json"), "--format", "json",
                      cwd=tmp_path)
    assert analyzed.returncode == 0, analyzed.stdout + analyzed.stderr
    assert json.loads(analyzed.stdout)["findings"] == []


def test_a_thread_waiting_for_an_event_nobody_sets_is_a_stall(tmp_path: Path) -> None:
    proc, trace = run_program("stall.py", tmp_path)
    assert proc.returncode == 1
    assert trace["outcome"]["status"] in ("stall", "deadlock")
    assert "never" in trace["outcome"]["detail"]


def test_the_programs_exceptions_are_its_errors_with_its_own_traceback(tmp_path: Path) -> None:
    proc, trace = run_program("fails.py", tmp_path)
    assert proc.returncode == 1
    assert trace["outcome"]["status"] == "error"
    ends = {e["actor"]: e for e in trace["events"] if e["op"] == "end"}
    assert ends["worker"]["result"] == "error"
    assert "ValueError: the balance went below zero" in ends["worker"]["error"]
    assert 'File "fails.py", line 5, in boom' in ends["worker"]["error"]
    assert "KeyError: 'missing'" in ends["MainThread"]["error"]
    for e in ends.values():
        assert "tracer" not in e["error"]  # none of tracer's frames
    assert "error:" in proc.stdout


def test_sys_exit_is_the_programs_exit_status(tmp_path: Path) -> None:
    proc, trace = run_program("exits.py", tmp_path)
    assert proc.returncode == 1
    assert trace["program"]["exit_status"] == 3
    assert "leaving" in proc.stdout
    assert "exited with status 3" in trace["outcome"]["detail"]


def test_a_program_that_never_ends_times_out_and_keeps_its_trace(tmp_path: Path) -> None:
    proc, trace = run_program("forever.py", tmp_path, "--timeout", "1")
    assert proc.returncode == 1
    assert trace["outcome"]["status"] == "timeout"
    assert "MainThread waits in wait stop (forever.py:4)" in trace["outcome"]["detail"]


@pytest.mark.parametrize("content, message", [
    (None, "no such file"),
    ("def f(:\n    pass\n", "bad.py:1: not valid Python"),
    ("\0\1\2binary", "is not a Python program"),
])
def test_a_program_that_cannot_run_is_refused_in_one_line(
        tmp_path: Path, content: str | None, message: str) -> None:
    path = tmp_path / "bad.py"
    if content is not None:
        path.write_text(content)
    proc = tracer("run", "bad.py", cwd=tmp_path)
    assert proc.returncode == 2
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "traces").exists()


def test_a_module_is_run_with_dash_m(tmp_path: Path) -> None:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "app.py").write_text(
        "import sys, threading\nlock = threading.Lock()\nwith lock:\n    print(sys.argv[1:])\n")
    proc = tracer("run", "-m", "pkg.app", "-o", "t.json", "--", "x", "--y", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "['x', '--y']" in proc.stdout
    trace = json.loads((tmp_path / "t.json").read_text())
    assert trace["program"]["module"] == "pkg.app"
    assert trace["program"]["primitives"]["lock"]["site"] == "pkg/app.py:2"
    missing = tracer("run", "-m", "nope.nothing", cwd=tmp_path)
    assert missing.returncode == 2 and "no such module" in missing.stderr


@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_stop_signal_keeps_the_trace(tmp_path: Path, sig: int, code: int) -> None:
    out = tmp_path / "t.json"
    proc = subprocess.Popen([sys.executable, "-m", "tracer", "run", str(PROGRAMS / "forever.py"),
                             "-o", str(out)], cwd=tmp_path, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stderr is not None
    line = proc.stderr.readline()  # the command says the run has started
    assert line.startswith("running"), line
    proc.send_signal(sig)
    stdout, stderr = proc.communicate(timeout=30)
    assert proc.returncode == code, stdout + stderr
    trace = json.loads(out.read_text())
    assert trace["outcome"]["status"] == "interrupted"
    assert "Traceback" not in stderr


def test_validate_checks_that_a_program_can_be_run(tmp_path: Path) -> None:
    (tmp_path / "bad.py").write_text("def f(:\n")
    good = tracer("validate", str(PROGRAMS / "clean.py"), cwd=tmp_path)
    assert good.returncode == 0 and "a Python program" in good.stdout
    bad = tracer("validate", "bad.py", cwd=tmp_path)
    assert bad.returncode == 2 and "bad.py:1: not valid Python" in bad.stderr
    assert "Traceback" not in bad.stderr


@pytest.mark.parametrize("name", ["deadlock.py", "fails.py", "withlock.py", "stall.py",
                                  "asyncio_counter.py", "mp_basic.py", "exits.py"])
def test_the_runs_analysis_reads_what_its_trace_file_reads_back_as(name: str) -> None:
    # `tracer run PROG.py` analyzes the document in memory instead of reading back the text
    # it wrote: the two must be the same TraceData, event by event and part by part
    from tracer.api import run_program as api_run
    from tracer.trace import parse_trace_data

    result = api_run(PROGRAMS / name, timeout=10)
    mine, read = result.trace_data("t.json"), parse_trace_data(result.to_json(), "t.json")
    assert len(mine.events) == len(read.events) > 0
    assert [e.as_dict() for e in mine.events] == [e.as_dict() for e in read.events]
    for part in ("source", "scenario", "meta", "actors", "outcome", "final", "extra"):
        assert getattr(mine, part) == getattr(read, part), part
