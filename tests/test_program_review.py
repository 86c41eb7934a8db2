"""A user's review of ``tracer run PROG.py`` and its companions (issue 14): small real
programs, run as a user runs them (``python -m tracer ...`` in a subprocess), and a
property the user relies on read from the output or the trace.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

PROGRAMS = Path(__file__).resolve().parent / "programs"


def tracer(*args: str, cwd: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tracer", *args], cwd=cwd, text=True,
                          capture_output=True, timeout=timeout, check=False)


def record(name: str, tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    out = tmp_path / f"{Path(name).stem}.json"
    proc = tracer("run", "-q", str(PROGRAMS / name), "-o", str(out), cwd=tmp_path)
    assert out.exists(), proc.stdout + proc.stderr
    return out, json.loads(out.read_text())


def test_a_thread_started_while_another_runs_replays_identically(tmp_path: Path) -> None:
    # A free run records a new thread's start when it comes, so another thread's events may
    # come between its parent's spawn and its start (a's wait returns while MainThread is in
    # b.start()): the replay, which runs b's start at once, follows the recording all the same.
    # The recording is put in that order, whatever the free run's timing did. The threads are
    # main()'s locals: a read of a module-level `ta` records its repr, `started` or `stopped`
    # as a's end came before MainThread's read or after it in the free run, and the reorder
    # below would put a recorded `started` after a's end, which no run can reproduce.
    out, trace = record("review_handoff.py", tmp_path)
    events = trace["events"]
    set_at = next(i for i, e in enumerate(events)
                  if e.get("actor") == "MainThread" and e["op"] == "set")
    late = [e for e in events[set_at:] if e.get("actor") == "a"]
    b_start = next(e for e in events if e.get("actor") == "b" and e["op"] == "start")
    rest = [e for e in events if e not in late and e is not b_start]
    spawn = next(i for i, e in enumerate(rest) if e["op"] == "spawn" and e.get("target") == "b")
    events = rest[:spawn + 1] + late[:1] + [b_start] + late[1:] + rest[spawn + 1:]
    for i, e in enumerate(events):
        e["seq"] = i
    trace["events"] = events
    out.write_text(json.dumps(trace))
    rep = tracer("replay", str(out), "-o", str(tmp_path / "rep.json"), cwd=tmp_path)
    assert rep.returncode == 0, rep.stdout + rep.stderr
    assert "identical (ok)" in rep.stdout


def test_a_condition_read_while_held_replays_identically(tmp_path: Path) -> None:
    # `cond.notify_all()` inside `with cond:` reads `cond`, whose repr names the thread that
    # holds its RLock (`owner=139...`): a thread ident, which differs from run to run
    out, _ = record("review_condition.py", tmp_path)
    rep = tracer("replay", str(out), "-o", str(tmp_path / "rep.json"), cwd=tmp_path)
    assert rep.returncode == 0, rep.stdout + rep.stderr
    assert "identical (ok)" in rep.stdout


def test_an_asyncio_program_replays_identically(tmp_path: Path) -> None:
    # its tasks' events are made by the thread that runs the loop, which the replay gives
    # the turn to (it waited 5 s for a "Task-1" to come, then diverged)
    out, _ = record("review_async.py", tmp_path)
    rep = tracer("replay", str(out), "-o", str(tmp_path / "rep.json"), cwd=tmp_path)
    assert rep.returncode == 0, rep.stdout + rep.stderr
    assert "identical (ok)" in rep.stdout


def test_sys_exit_is_reported_once_at_its_line(tmp_path: Path) -> None:
    out = tmp_path / "exits.json"
    proc = tracer("run", str(PROGRAMS / "exits.py"), "-o", str(out), cwd=tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    error = next(x for x in proc.stdout.splitlines() if x.strip().startswith("error:"))
    assert "the program exited with status 3 (sys.exit(3))" in error
    assert error.count("exits.py:4") == 1, error  # (it said "(exits.py:4) (exits.py:4; ...")


@pytest.mark.skipif(sys.version_info < (3, 11),
                    reason="3.10's bare raise restores the traceback it caught, tracer's frame too")
def test_a_threads_exception_is_printed_without_tracers_frames(tmp_path: Path) -> None:
    out = tmp_path / "fails.json"
    proc = tracer("run", str(PROGRAMS / "fails.py"), "-o", str(out), cwd=tmp_path)
    assert "Exception in thread" in proc.stderr
    # the interpreter prints a thread's exception with its frames: tracer's are none of them
    assert "ValueError: the balance went below zero" in proc.stderr
    assert str(Path("tracer", "program")) not in proc.stderr, proc.stderr


@pytest.mark.skipif(sys.version_info < (3, 11), reason="3.10's frames give no columns")
def test_a_lock_made_as_a_conditions_argument_does_not_take_the_conditions_name(
        tmp_path: Path) -> None:
    # `cond = threading.Condition(threading.Lock())`: the condition is `cond` (it was
    # `cond#2`, the lock having taken `cond`), the lock is named by its type
    _, trace = record("review_names.py", tmp_path)
    prims = trace["program"]["primitives"]
    assert prims["cond"]["type"] == "condition"
    assert prims["Lock"]["type"] == "lock"
    assert prims["cond"]["lock"] == "Lock"
    assert "cond#2" not in prims


def test_asyncio_to_thread_and_run_in_executor_order_the_data_they_hand_over(
        tmp_path: Path) -> None:
    # the task's call comes before the function runs in the default executor's thread, and
    # the function's return before the code after the await: no race (it said two)
    out = tmp_path / "to_thread.json"
    proc = tracer("run", str(PROGRAMS / "review_to_thread.py"), "-o", str(out), cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "race on" not in proc.stdout
    assert "3 3\n4 4\n" in proc.stdout


def test_a_simple_queue_orders_what_it_hands_over(tmp_path: Path) -> None:
    # queue.SimpleQueue (a C type) is recorded as a queue: its put -> get orders the write
    # before the read (it was a false race)
    out = tmp_path / "simple_queue.json"
    proc = tracer("run", str(PROGRAMS / "review_simple_queue.py"), "-o", str(out),
                  cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "race on" not in proc.stdout
    trace = json.loads(out.read_text())
    assert trace["program"]["primitives"]["q"]["type"] == "queue"
    ops = [(e["op"], e.get("phase")) for e in trace["events"] if e.get("target") == "q"
           and e["op"] in ("put", "get")]
    assert sorted(ops) == [("get", "call"), ("get", "return"), ("put", "call"),
                           ("put", "return")]


def test_a_modules_globals_written_by_its_import_are_ordered_before_other_threads_reads(
        tmp_path: Path) -> None:
    # the import system hands a module over only once its body has run: no race between the
    # body's writes and a read by another thread that imports it (it said one)
    out = tmp_path / "lazy.json"
    proc = tracer("run", str(PROGRAMS / "review_import" / "lazy.py"), "-o", str(out),
                  cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "race on" not in proc.stdout


def test_an_explored_schedule_that_times_out_says_its_timeout(tmp_path: Path) -> None:
    # (it said "within its timeout of inf s")
    proc = tracer("explore", str(PROGRAMS / "review_forever.py"), "--runs", "1", "--timeout", "0.5",
                  "--traces", str(tmp_path), cwd=tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "did not end within its timeout of 0.5 s" in proc.stdout, proc.stdout


def test_sys_exit_with_a_message_prints_it_as_python_does(tmp_path: Path) -> None:
    out = tmp_path / "exit_message.json"
    proc = tracer("run", str(PROGRAMS / "review_exit_message.py"), "-o", str(out),
                  cwd=tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "fatal: no config file\n" in proc.stderr  # (it was not printed at all)
    assert json.loads(out.read_text())["program"]["exit_status"] == 1


def test_os_exit_keeps_the_events_and_says_where(tmp_path: Path) -> None:
    # (the trace had no event, and the output did not say why)
    out = tmp_path / "os_exit.json"
    proc = tracer("run", str(PROGRAMS / "review_os_exit.py"), "-o", str(out), cwd=tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    trace = json.loads(out.read_text())
    assert trace["program"]["exit_status"] == 4
    assert any(e["op"] == "acquire" and e.get("target") == "lock" for e in trace["events"])
    assert "the program exited with status 4 (os._exit(4))" in proc.stdout
    assert "review_os_exit.py:8" in proc.stdout
