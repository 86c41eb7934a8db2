"""``tracer run PROG.py`` on programs that share data and primitives through
``multiprocessing.Manager()``: the proxies record in the process that uses them, a manager
lock or queue is a primitive named after the user's variable in every process, a manager
dict's items are shared data (races between processes are found, none under a lock), and a
deadlock on two manager locks across two processes ends the run live.

Each test runs the command as a user does (``python -m tracer run ...`` in a subprocess) on a
program of ``tests/programs`` and reads the trace it wrote.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from test_program_processes import _actors, _check_order, _gone, _ops, run_program


def _analyze(tmp_path: Path, trace_file: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tracer", "analyze", str(tmp_path / trace_file)],
                          cwd=tmp_path, text=True, capture_output=True, timeout=60, check=False)


def _accesses(trace: dict[str, Any], actor: str) -> list[tuple[str, str]]:
    return [(e["op"], e["target"]) for e in trace["events"]
            if e.get("actor") == actor and e["op"] in ("read", "write")]


def test_the_tutorials_manager_listing_records_its_dict_and_list(tmp_path: Path) -> None:
    proc, trace = run_program("mp_tut_manager.py", tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "主进程{'name': 'Jack'}" in proc.stdout
    child = _accesses(trace, "Process-2")
    assert ("write", "m_list[:]") in child  # m_list.append("你好")
    assert ("write", "m_dict['name']") in child
    main = _accesses(trace, "MainThread")
    assert ("write", "m_list[:]") in main and ("read", "m_dict[:]") in main
    writes = [e for e in trace["events"] if e["op"] == "write" and e["target"] == "m_dict['name']"]
    assert [e["value"] for e in writes] == ["Jack"]
    assert writes[0]["line"] == "mp_tut_manager.py:6"
    analyzed = _analyze(tmp_path, "mp_tut_manager.json")
    assert analyzed.returncode == 0, analyzed.stdout + analyzed.stderr
    _check_order(trace)


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_two_processes_bumping_a_manager_dict_item_race_without_a_lock(tmp_path: Path,
                                                                        method: str) -> None:
    proc, trace = run_program("mp_mgr_counter.py", tmp_path, "--", method, "none")
    assert "n = " in proc.stdout
    assert trace["outcome"]["status"] == "ok"
    workers = [a["name"] for a in trace["actors"] if a["kind"] == "process"]
    assert len(workers) == 2
    for w in workers:  # the dict's name, given in the parent, kept in each child
        assert _accesses(trace, w).count(("read", "shared['n']")) == 3
        assert _accesses(trace, w).count(("write", "shared['n']")) == 3
    assert "race on shared['n']" in proc.stdout, proc.stdout
    analyzed = _analyze(tmp_path, "mp_mgr_counter.json")
    assert analyzed.returncode == 1 and "race on shared['n']" in analyzed.stdout


@pytest.mark.parametrize(("method", "mode"), [("fork", "mlock"), ("spawn", "mlock"),
                                              ("fork", "lock")])
def test_no_race_on_a_manager_dict_item_under_a_lock(tmp_path: Path, method: str,
                                                      mode: str) -> None:
    proc, trace = run_program("mp_mgr_counter.py", tmp_path, "--", method, mode)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "n = 6" in proc.stdout
    guard = {"mlock": "mlock", "lock": "lock"}[mode]
    assert trace["program"]["primitives"][guard]["type"] == "lock"
    workers = [a["name"] for a in trace["actors"] if a["kind"] == "process"]
    for w in workers:
        ops = _ops(trace, w)
        assert ops.count(("acquire", guard, "return")) == 3
        assert ops.count(("release", guard, None)) == 3
    assert "race on" not in proc.stdout
    analyzed = _analyze(tmp_path, "mp_mgr_counter.json")
    assert analyzed.returncode == 0, analyzed.stdout + analyzed.stderr
    _check_order(trace)


@pytest.mark.parametrize("method", ["fork", "spawn", "forkserver"])
def test_an_abba_on_two_manager_locks_across_processes_is_a_live_deadlock(
        tmp_path: Path, method: str) -> None:
    proc, trace = run_program("mp_mgr_abba.py", tmp_path, "--", method)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert trace["outcome"]["status"] == "deadlock"
    last = trace["events"][-1]
    assert {"left", "right"} <= set(last["actors"])
    assert {"left_lock", "right_lock"} <= set(last["objects"])
    assert "left holds left_lock and waits for right_lock (mp_mgr_abba.py:11)" in proc.stdout
    assert "right holds right_lock and waits for left_lock (mp_mgr_abba.py:11)" in proc.stdout
    prims = trace["program"]["primitives"]
    assert prims["left_lock"]["type"] == "lock"
    assert prims["ready"] == {"type": "semaphore", "value": 0, "site": "mp_mgr_abba.py:20"}
    assert prims["go"]["type"] == "event"
    assert ("set", "go", None) in _ops(trace, "MainThread")
    assert ("wait", "go", "return") in _ops(trace, "left")
    assert trace["meta"]["duration"] < 5
    assert all(_gone(a["pid"]) for a in trace["actors"])


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_a_managers_queue_namespace_value_and_condition(tmp_path: Path, method: str) -> None:
    proc, trace = run_program("mp_mgr_kinds.py", tmp_path, "--", method)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "total 5 box 1" in proc.stdout
    prims = trace["program"]["primitives"]
    assert {k: prims[k]["type"] for k in ("jobs", "started", "cond")} == {
        "jobs": "queue", "started": "event", "cond": "condition"}
    assert prims["jobs"]["maxsize"] == 0
    puts = [e for e in trace["events"] if e["op"] == "put" and e.get("phase") == "call"]
    gets = [e for e in trace["events"] if e["op"] == "get" and e.get("phase") == "return"]
    assert [(e["actor"], e["item"]) for e in puts] == [("MainThread", 5)]
    assert [(e["actor"], e["item"]) for e in gets] == [("Process-2", 5)]
    child = _accesses(trace, "Process-2")
    assert child[:4] == [("read", "ns.total"), ("write", "ns.total"),
                         ("read", "box.value"), ("write", "box.value")]
    assert ("acquire", "cond", "return") in _ops(trace, "Process-2")
    assert ("notify_all", "cond", None) in _ops(trace, "Process-2")
    analyzed = _analyze(tmp_path, "mp_mgr_kinds.json")
    assert analyzed.returncode == 0, analyzed.stdout + analyzed.stderr
    _check_order(trace)
    assert _actors(trace)["Process-2"]["status"] == "ok"


def test_a_get_from_a_manager_queue_nobody_fills_is_a_live_stall(tmp_path: Path) -> None:
    proc, trace = run_program("mp_mgr_stall.py", tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert trace["outcome"]["status"] == "stall"
    assert "MainThread waits to get from queue jobs (mp_mgr_stall.py:7)" in proc.stdout
    assert trace["meta"]["duration"] < 5
