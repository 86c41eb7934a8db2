"""``tracer run PROG.py`` on programs that use ``multiprocessing``: every child process is an
actor named by its Process name, its events merged into the one ``seq`` order, primitives
shared across processes keep their names, and a deadlock across processes ends the run live,
under each start method (fork, spawn, forkserver).

Each test runs the command as a user does (``python -m tracer run ...`` in a subprocess) on a
program of ``tests/programs`` and reads the trace it wrote.
"""

from __future__ import annotations

import itertools
import json
import select
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

PROGRAMS = Path(__file__).resolve().parent / "programs"
METHODS = ["fork", "spawn", "forkserver"]


def run_program(name: str, tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess[str],
                                                                dict[str, Any]]:
    out = tmp_path / f"{Path(name).stem}.json"
    proc = subprocess.run([sys.executable, "-m", "tracer", "run", str(PROGRAMS / name),
                           "-o", str(out), *args], cwd=tmp_path, text=True,
                          capture_output=True, timeout=60, check=False)
    assert out.exists(), proc.stdout + proc.stderr
    return proc, json.loads(out.read_text())


def _dead(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")  # a zombie is dead
    except OSError:
        return True


def _gone(pid: int) -> bool:
    """Whether process ``pid`` is dead (the launcher's SIGKILL of the program's group is
    delivered asynchronously: a killed process is given a few seconds to die)."""
    deadline = time.monotonic() + 5
    while not _dead(pid):
        if time.monotonic() > deadline:
            return False
        select.select([], [], [], 0.05)
    return True


def _actors(trace: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {a["name"]: a for a in trace["actors"]}


def _ops(trace: dict[str, Any], actor: str) -> list[tuple[str, str | None, str | None]]:
    return [(e["op"], e.get("target"), e.get("phase")) for e in trace["events"]
            if e.get("actor") == actor]


def _check_order(trace: dict[str, Any]) -> None:
    """One seq order over every process; spawn before the child's start, its end before
    the parent's join returns."""
    events = trace["events"]
    assert [e["seq"] for e in events] == list(range(len(events)))
    assert all(a["ts"] <= b["ts"] for a, b in itertools.pairwise(events))
    seq: dict[tuple[str, str, str | None, str | None], int] = {}
    for e in events:
        seq.setdefault((e.get("actor") or "", e["op"], e.get("target"), e.get("phase")),
                       e["seq"])
    for a in trace["actors"]:
        if a["kind"] != "process":
            continue
        name = a["name"]
        spawns = [k for k in seq if k[1] == "spawn" and k[2] == name]
        if spawns:
            assert seq[spawns[0]] < seq[(name, "start", None, None)]
        joins = [k for k in seq if k[1] == "join" and k[2] == name and k[3] == "return"]
        if joins and (name, "end", None, None) in seq:
            assert seq[(name, "end", None, None)] < seq[joins[0]]


@pytest.mark.parametrize("method", METHODS)
def test_children_are_traced_and_names_kept_under_each_start_method(tmp_path: Path,
                                                                   method: str) -> None:
    proc, trace = run_program("mp_basic.py", tmp_path, "--", method)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "got [0, 1]" in proc.stdout
    assert trace["outcome"]["status"] == "ok"
    actors = _actors(trace)
    assert {"MainThread", "Process-1", "Process-2"} <= set(actors)
    host = actors["MainThread"]["pid"]
    for name in ("Process-1", "Process-2"):
        a = actors[name]
        assert a["kind"] == "process" and a["status"] == "ok"
        assert a["pid"] != host
        # the parent's lock and queue, by their names, in the child
        ops = _ops(trace, name)
        assert ("acquire", "lock", "return") in ops and ("put", "q", "call") in ops
        assert ops[0] == ("start", None, None) and ops[-1] == ("end", None, None)
    assert trace["program"]["primitives"]["lock"]["type"] == "lock"
    assert trace["program"]["primitives"]["q"]["type"] == "queue"
    gets = [e for e in trace["events"] if e["op"] == "get" and e.get("phase") == "return"]
    assert sorted(e["item"] for e in gets) == [0, 1]
    _check_order(trace)
    assert all(_gone(a["pid"]) for a in trace["actors"])


@pytest.mark.parametrize("method", METHODS)
def test_every_primitive_pool_and_manager_under_each_start_method(tmp_path: Path,
                                                                  method: str) -> None:
    proc, trace = run_program("mp_prims.py", tmp_path, "--", method)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "value 42 squares [0, 1, 4, 9] total 14" in proc.stdout
    prims = trace["program"]["primitives"]
    assert {k: prims[k]["type"] for k in ("rlock", "bsem", "cond", "jq", "done")} == {
        "rlock": "rlock", "bsem": "bounded_semaphore", "cond": "condition", "jq": "queue",
        "done": "event"}
    assert prims["bsem"]["value"] == 2
    ops = _ops(trace, "counter")
    for op in [("acquire", "rlock", "return"), ("acquire", "bsem", "return"),
               ("get", "jq", "return"), ("acquire", "cond", "return"),
               ("notify_all", "cond", None), ("release", "cond", None)]:
        assert op in ops, (op, ops)
    # (the main thread waits on cond only if it comes there before the child's notify)
    assert ("acquire", "cond", "return") in _ops(trace, "MainThread")
    workers = [a for a in trace["actors"] if "PoolWorker" in a["name"]]
    assert workers and all(a["kind"] == "process" for a in workers)
    analyzed = subprocess.run([sys.executable, "-m", "tracer", "analyze",
                               str(tmp_path / "mp_prims.json")], cwd=tmp_path, text=True,
                              capture_output=True, timeout=60, check=False)
    assert analyzed.returncode == 0, analyzed.stdout + analyzed.stderr
    _check_order(trace)


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_an_abba_across_two_processes_is_a_live_deadlock(tmp_path: Path, method: str) -> None:
    proc, trace = run_program("mp_abba.py", tmp_path, "--", method)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert trace["outcome"]["status"] == "deadlock"
    last = trace["events"][-1]
    assert last["op"] == "deadlock"
    assert {"left", "right"} <= set(last["actors"])
    assert {"lock_a", "lock_b"} <= set(last["objects"])
    assert "left holds lock_a and waits for lock_b (mp_abba.py:11)" in proc.stdout
    assert "right holds lock_b and waits for lock_a (mp_abba.py:11)" in proc.stdout
    # the children wrote their events though they never ended; none is left
    actors = _actors(trace)
    assert actors["left"]["status"] == actors["right"]["status"] == "blocked"
    assert ("acquire", "lock_b", "call") in _ops(trace, "left")
    assert trace["meta"]["duration"] < 5
    assert all(_gone(a["pid"]) for a in trace["actors"])


# The tutorial's listings (../shared/seed/concurrency-tutorial.md), unchanged: none of them
# loops forever, so none is changed; they sleep as printed (1 to 3 s).
LISTINGS = {
    "mp_tut_function.py": ["Process-1", "Process-2"],  # 进程Process, 方法模式
    "mp_tut_class.py": ["p1", "p2"],  # 进程Process, 类模式 (the user's names)
    "mp_tut_queue.py": ["p1", "p2", "p3"],  # Queue实现进程通信 (a Manager's queue)
    "mp_tut_pipe.py": ["Process-1", "Process-2"],  # Pipe实现进程间通信
    "mp_tut_manager.py": ["Process-2"],  # Manager管理器 (Process-1 is the manager's server)
    "mp_tut_pool.py": [f"ForkPoolWorker-{k}" for k in range(1, 6)],  # 进程池(Pool)
}


@pytest.mark.parametrize("listing", sorted(LISTINGS))
def test_the_tutorials_process_listings_run_unchanged_and_clean(tmp_path: Path,
                                                                listing: str) -> None:
    proc, trace = run_program(listing, tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert trace["outcome"]["status"] == "ok"
    actors = _actors(trace)
    for name in LISTINGS[listing]:
        assert actors[name]["kind"] == "process" and actors[name]["status"] == "ok", actors
    analyzed = subprocess.run([sys.executable, "-m", "tracer", "analyze",
                               str(tmp_path / f"{Path(listing).stem}.json")], cwd=tmp_path,
                              text=True, capture_output=True, timeout=60, check=False)
    assert analyzed.returncode == 0, analyzed.stdout + analyzed.stderr
    _check_order(trace)
    assert all(_gone(a["pid"]) for a in trace["actors"])
    if listing == "mp_tut_pipe.py":
        recvs = sorted(e["item"] for e in trace["events"]
                       if e["op"] == "recv" and e.get("phase") == "return")
        assert recvs == ["Hello", "你好"]
        assert trace["program"]["primitives"]["conn1/conn2"]["type"] == "pipe"
    if listing == "mp_tut_pool.py":
        assert sum(e["op"] == "sleep" and e.get("phase") == "call"
                   for e in trace["events"]) == 8  # every task ran, in a traced worker


def test_explore_of_a_program_that_starts_processes_runs_its_schedules(tmp_path: Path) -> None:
    """(It was refused; see test_program_process_control.py for explore and replay.)"""
    proc = subprocess.run([sys.executable, "-m", "tracer", "explore",
                           str(PROGRAMS / "mp_basic.py"), "--runs", "3"], cwd=tmp_path,
                          text=True, capture_output=True, timeout=60, check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "no problem in 3 schedules" in out, out
    assert "Traceback" not in out
