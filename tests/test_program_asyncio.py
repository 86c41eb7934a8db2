"""``tracer run PROG.py`` on asyncio programs: the user's tasks are coroutine actors, asyncio's
primitives and sleeps are recorded with the shapes of the thread primitives, awaiting a task
or a gather of tasks is a join (happens-before: no false race after a gather), and a deadlock
or stall of tasks ends the run live.

Each test runs the command as a user does (``python -m tracer run ...`` in a subprocess) on a
program of ``tests/programs``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
from test_program_run import run_program, tracer


def _events(trace: dict[str, Any], **match: Any) -> list[dict[str, Any]]:
    return [e for e in trace["events"] if all(e.get(k) == v for k, v in match.items())]


def test_the_tutorials_asyncio_listing_runs_unchanged_and_is_clean(tmp_path: Path) -> None:
    proc, trace = run_program("asyncio_tutorial.py", tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "['func1执行完毕', 'func2执行完毕']" in proc.stdout  # the program's own output
    kinds = {a["name"]: a["kind"] for a in trace["actors"]}
    # asyncio.run's main coroutine and gather's two coroutines are tasks, each an actor
    assert kinds == {"MainThread": "thread", "Task-1": "coroutine", "Task-2": "coroutine",
                     "Task-3": "coroutine"}
    assert {e["target"] for e in _events(trace, op="spawn")} == {"Task-1", "Task-2", "Task-3"}
    sleeps = _events(trace, op="sleep", phase="call")
    assert len(sleeps) == 6 and {e["value"] for e in sleeps} == {1}
    assert {e["actor"] for e in sleeps} == {"Task-2", "Task-3"}
    # the sleeps of the two tasks overlap (one loop, concurrently): 3 s, not 6
    assert trace["meta"]["duration"] < 5.5
    # the gather joins both tasks after their ends; asyncio.run joins the main task
    joins = _events(trace, op="join", phase="return", result="ok")
    assert {(e["actor"], e["target"]) for e in joins} == {
        ("Task-1", "Task-2"), ("Task-1", "Task-3"), ("MainThread", "Task-1")}
    ends = {e["actor"]: e["seq"] for e in _events(trace, op="end")}
    for e in joins:
        assert ends[e["target"]] < e["seq"]
    analyzed = tracer("analyze", str(tmp_path / "asyncio_tutorial.json"), "--format", "json",
                      cwd=tmp_path)
    assert analyzed.returncode == 0, analyzed.stdout + analyzed.stderr
    assert json.loads(analyzed.stdout)["findings"] == []


def test_an_asyncio_abba_deadlock_is_found_live(tmp_path: Path) -> None:
    proc, trace = run_program("asyncio_deadlock.py", tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert trace["outcome"]["status"] == "deadlock"
    prims = trace["program"]["primitives"]
    assert prims["lock_a"] == {"type": "lock", "site": "asyncio_deadlock.py:13"}
    assert prims["b_held"]["type"] == "event"
    last = trace["events"][-1]
    assert last["op"] == "deadlock"
    # the tasks carry the names the program gave them
    assert {"left", "right"} <= set(last["actors"])
    assert {"lock_a", "lock_b"} <= set(last["objects"])
    waits = {w["actor"]: w for w in last["waits"]}
    assert waits["left"]["target"] == "lock_b" and waits["left"]["holds"] == ["lock_a"]
    assert waits["right"]["target"] == "lock_a" and waits["right"]["holds"] == ["lock_b"]
    assert "left holds lock_a (asyncio_deadlock.py:5) and waits for lock_b " \
        "(asyncio_deadlock.py:8)" in proc.stdout
    assert "graph (wait-for):" in proc.stdout
    status = {a["name"]: a["status"] for a in trace["actors"]}
    assert status["left"] == status["right"] == "blocked"
    analyzed = tracer("analyze", str(tmp_path / "asyncio_deadlock.json"), "--format", "json",
                      cwd=tmp_path)
    kinds = {f["kind"] for f in json.loads(analyzed.stdout)["findings"]}
    assert "deadlock" in kinds


def test_a_gather_of_tasks_under_an_asyncio_lock_is_clean(tmp_path: Path) -> None:
    proc, trace = run_program("asyncio_counter.py", tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "total 9" in proc.stdout and "empty" in proc.stdout
    assert trace["program"]["primitives"] == {
        "lock": {"type": "lock", "site": "asyncio_counter.py:14"},
        "q": {"type": "queue", "maxsize": 2, "site": "asyncio_counter.py:17"},
        "ranked": {"type": "queue", "maxsize": 0, "site": "asyncio_counter.py:20"}}
    # the non-blocking calls of a PriorityQueue: items in priority order, then a failed get
    calls = _events(trace, target="ranked", phase="call")
    assert all(e["blocking"] is False for e in calls)
    got = [(e.get("item"), e["result"]) for e in _events(trace, op="get", target="ranked",
                                                         phase="return")]
    assert got == [([1, "a"], "ok"), ([2, "b"], "ok"), (None, "fail")]
    workers = {"Task-2", "Task-3", "Task-4"}
    # every acquire returns before the release of the same task, one holder at a time
    held: str | None = None
    for e in trace["events"]:
        if e["op"] == "acquire" and e["phase"] == "return":
            assert held is None and e["result"] == "ok"
            held = e["actor"]
        elif e["op"] == "release":
            assert held == e["actor"]
            held = None
    assert {e["actor"] for e in _events(trace, op="acquire", phase="return")} == workers
    assert {e["target"] for e in _events(trace, op="join", actor="Task-1")} == workers
    # the queue's item travels
    assert _events(trace, op="put", target="q", phase="call")[0]["item"] == 9
    assert _events(trace, op="get", target="q", phase="return")[0]["item"] == 9
    # coroutine events are in the tasks, not in the loop's thread
    assert not _events(trace, op="acquire", actor="MainThread")
    analyzed = tracer("analyze", str(tmp_path / "asyncio_counter.json"), "--format", "json",
                      cwd=tmp_path)
    assert analyzed.returncode == 0, analyzed.stdout + analyzed.stderr
    assert json.loads(analyzed.stdout)["findings"] == []


def test_a_tasks_exception_is_its_error_and_a_cancelled_task_ends_cancelled(
        tmp_path: Path) -> None:
    proc, trace = run_program("asyncio_fails.py", tmp_path)
    assert proc.returncode == 1
    assert "sleeper cancelled" in proc.stdout
    assert trace["outcome"]["status"] == "error"
    ends = {e["actor"]: e for e in _events(trace, op="end")}
    assert ends["seller"]["result"] == "error"
    assert 'File "asyncio_fails.py", line 6, in boom' in ends["seller"]["error"]
    assert "ValueError: no more tickets" in ends["seller"]["error"]
    assert "tracer" not in ends["seller"]["error"]  # the program's traceback, not tracer's
    assert ends["sleeper"]["result"] == "cancelled"
    status = {a["name"]: a["status"] for a in trace["actors"]}
    assert status["sleeper"] == "cancelled" and status["seller"] == "error"
    # the wait the cancellation interrupted returns cancelled
    assert _events(trace, op="wait", actor="sleeper", phase="return")[0]["result"] == \
        "cancelled"


def test_tasks_waiting_for_an_event_nobody_sets_stall(tmp_path: Path) -> None:
    proc, trace = run_program("asyncio_stall.py", tmp_path)
    assert proc.returncode == 1
    assert trace["outcome"]["status"] in ("stall", "deadlock")
    assert "event ready" in trace["outcome"]["detail"]
    waits = {w["actor"]: w for w in trace["events"][-1]["waits"]}
    assert waits["Task-2"]["target"] == "ready" and waits["Task-3"]["target"] == "ready"


@pytest.mark.skipif(sys.version_info < (3, 11), reason="TaskGroup is 3.11+")
def test_a_task_group_joins_its_tasks_and_semaphores_conditions_queues_are_recorded(
        tmp_path: Path) -> None:
    proc, trace = run_program("asyncio_group.py", tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    prims = {n: p["type"] for n, p in trace["program"]["primitives"].items()}
    assert prims == {"sem": "bounded_semaphore", "cond": "condition", "jobs": "queue",
                     "lock": "lock", "guarded": "condition"}
    assert trace["program"]["primitives"]["guarded"]["lock"] == "lock"
    ops = {(e["op"], e.get("target")) for e in trace["events"]}
    assert {("acquire", "sem"), ("release", "sem"), ("acquire", "cond"), ("wait", "cond"),
            ("notify_all", "cond"), ("put", "jobs"), ("get", "jobs"),
            ("acquire", "lock"), ("notify", "guarded")} <= ops
    workers = {e["target"] for e in _events(trace, op="spawn", actor="Task-1")}
    assert workers == {"producer", "consumer"}
    joined = {e["target"] for e in _events(trace, op="join", phase="return", actor="Task-1")}
    assert joined == workers
    gets = [e["item"] for e in _events(trace, op="get", phase="return")]
    assert gets == [0, 1, 2]
    analyzed = tracer("analyze", str(tmp_path / "asyncio_group.json"), "--format", "json",
                      cwd=tmp_path)
    assert json.loads(analyzed.stdout)["findings"] == []


def test_awaiting_a_done_task_a_gather_and_wait_for_are_joins(tmp_path: Path) -> None:
    proc, trace = run_program("asyncio_joins.py", tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # the program sees real tasks
    assert "Task True [1, 2, 3]" in proc.stdout and "timed out" in proc.stdout
    ends = {e["actor"]: e for e in _events(trace, op="end")}
    joins = [(e["target"], e["line"], e["result"])
             for e in _events(trace, op="join", phase="return", actor="Task-1")]
    # tasks that were done before they were awaited are joined too (no false race after)
    assert ("first", "asyncio_joins.py:21", "ok") in joins
    later = next(e["target"] for e in _events(trace, op="spawn", line="asyncio_joins.py:18"))
    assert {("first", "ok"), (later, "ok")} <= {(t, r) for t, line, r in joins
                                                   if line == "asyncio_joins.py:22"}
    for e in _events(trace, op="join", phase="return", result="ok"):
        assert ends[e["target"]]["seq"] < e["seq"]
    # wait_for of a coroutine: before 3.12 the coroutine is a task of its own (joined; the
    # one that runs out of time is cancelled), from 3.12 it runs in the caller's task
    timed = [e for e in _events(trace, op="end") if e["result"] == "cancelled"]
    assert len(timed) == (1 if sys.version_info < (3, 12) else 0)
    if sys.version_info < (3, 12):
        inline = next(e["target"] for e in _events(trace, op="spawn",
                                                   line="asyncio_joins.py:23"))
        assert (inline, "asyncio_joins.py:23", "ok") in joins
        assert (timed[0]["actor"], "asyncio_joins.py:25", "timeout") in joins
    assert ends["Task-1"]["result"] == "ok"


def test_a_task_the_program_makes_of_a_library_coroutine_is_an_actor(tmp_path: Path) -> None:
    proc, trace = run_program("asyncio_wrapped.py", tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "7 7" in proc.stdout
    kinds = {a["name"]: a["kind"] for a in trace["actors"]}
    assert kinds["wrapped"] == "coroutine"  # create_task(asyncio.wait_for(user(lock), 1))
    acquirers = {e["actor"] for e in _events(trace, op="acquire", phase="return")}
    assert len(acquirers) == 2 and "MainThread" not in acquirers
    assert ("Task-1", "wrapped") in {(e["actor"], e["target"])
                                     for e in _events(trace, op="join", result="ok")}
