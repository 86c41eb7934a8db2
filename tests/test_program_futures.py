"""``concurrent.futures`` in traced programs: a thread pool is a queue of tasks, each future
an event, so happens-before runs submit -> the worker -> ``result()`` (and shutdown joins the
workers): no false race where the program is synchronised, a race where it is not, and a
deadlock inside tasks is still seen live. Each test runs ``tracer run`` in a subprocess.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

PROGRAMS = Path(__file__).resolve().parent / "programs" / "futures"


def run(name: str, tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess[str],
                                                         dict[str, Any]]:
    out = tmp_path / f"{Path(name).stem}.json"
    proc = subprocess.run([sys.executable, "-m", "tracer", "run", str(PROGRAMS / name),
                           "-o", str(out), *args], cwd=tmp_path, text=True,
                          capture_output=True, timeout=60, check=False)
    assert out.exists(), proc.stdout + proc.stderr
    return proc, json.loads(out.read_text())


def analyze(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tracer", "analyze", str(path)], text=True,
                          capture_output=True, timeout=60, check=False)


def test_submit_then_result_orders_the_task_between_mains_writes(tmp_path: Path) -> None:
    proc, trace = run("handoff.py", tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "x = 2" in proc.stdout
    prims = trace["program"]["primitives"]
    assert prims["pool"] == {"type": "queue", "maxsize": 0, "site": "handoff.py:29"}
    assert prims["fut"] == {"type": "event", "site": "handoff.py:30"}
    ev = trace["events"]
    put = next(e for e in ev if e["op"] == "put" and e["phase"] == "call")
    get = next(e for e in ev if e["op"] == "get" and e["phase"] == "return")
    assert put["target"] == get["target"] == "pool" and put["item"] == get["item"] == "fut"
    assert get["actor"] == "ThreadPoolExecutor-0_0"
    # the worker sets the future's event, main's result() waits on it (after the set)
    set_ = next(e for e in ev if e["op"] == "set" and e["target"] == "fut")
    wait = next(e for e in ev if e["op"] == "wait" and e["phase"] == "return")
    assert set_["actor"] == "ThreadPoolExecutor-0_0" and wait["actor"] == "MainThread"
    assert wait["target"] == "fut" and wait["result"] == "ok" and set_["seq"] < wait["seq"]
    assert wait["line"] == "handoff.py:33"
    out = analyze(tmp_path / "handoff.json")
    assert out.returncode == 0 and "no findings" in out.stdout, out.stdout


def test_a_write_before_waiting_for_the_result_is_a_race(tmp_path: Path) -> None:
    proc, _ = run("handoff.py", tmp_path, "--", "--unsynced")
    assert proc.returncode == 1
    out = analyze(tmp_path / "handoff.json")
    assert "race on x: ThreadPoolExecutor-0_0 reads x" in out.stdout, out.stdout
    assert "MainThread writes it" in out.stdout


def test_the_end_of_a_with_block_joins_the_workers(tmp_path: Path) -> None:
    proc, trace = run("joined.py", tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "[0, 1, 2, 3, 4, 5]" in proc.stdout
    workers = {a["name"] for a in trace["actors"]} - {"MainThread"}
    assert workers and all(w.startswith("ThreadPoolExecutor-0_") for w in workers)
    joined = {e["target"] for e in trace["events"] if e["op"] == "join"
              and e["phase"] == "return" and e["result"] == "ok"}
    assert joined == workers
    # each bare submit's future: named after the pool and its number
    assert {f"pool.submit#{k}" for k in range(1, 7)} <= set(trace["program"]["primitives"])
    assert "no findings" in analyze(tmp_path / "joined.json").stdout


def test_reading_before_the_pool_is_shut_down_is_a_race(tmp_path: Path) -> None:
    run("joined.py", tmp_path, "--", "--no-join")
    out = analyze(tmp_path / "joined.json")
    assert "race on slots[" in out.stdout and "MainThread reads it" in out.stdout, out.stdout


def test_a_deadlock_inside_pool_tasks_is_seen_live(tmp_path: Path) -> None:
    proc, trace = run("deadlock.py", tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert trace["outcome"]["status"] == "deadlock"
    last = trace["events"][-1]
    assert {"lock_a", "lock_b"} <= set(last["objects"])
    assert "holds lock_a (deadlock.py:12) and waits for lock_b (deadlock.py:14)" in proc.stdout
    assert "MainThread waits to join ThreadPoolExecutor-0_" in proc.stdout


def test_pool_api_map_wait_as_completed_and_an_unclosed_pool(tmp_path: Path) -> None:
    proc, trace = run("api.py", tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.splitlines()[:5] == ["2", "[0, 2, 4]", "[10]", "[14, 16]", "None"]
    waits = {e["target"] for e in trace["events"] if e["op"] == "wait"
             and e["phase"] == "return" and e["result"] == "ok"}
    sets = {e["target"] for e in trace["events"] if e["op"] == "set"}
    assert sets == waits == {"fut", "futures[0]", "futures[1]", "futures[2]", "pool.submit#5",
                             "pool.submit#6", "pool.submit#7", "later"}
    # the pool nobody shut down: its worker is let go at the end, as the interpreter does
    assert all(a["status"] == "ok" for a in trace["actors"])
    assert "no findings" in analyze(tmp_path / "api.json").stdout


def test_a_process_pool_works_as_it_does_bare(tmp_path: Path) -> None:
    proc, _ = run("processes.py", tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.splitlines()[:2] == ["49", "[0, 1, 4, 9]"]


def test_waiting_for_a_task_that_never_ends_is_seen_live(tmp_path: Path) -> None:
    for args, line in (((), "stuck.py:20"), (("--", "--as-completed"), "stuck.py:17")):
        proc, trace = run("stuck.py", tmp_path, *args)
        assert proc.returncode == 1, proc.stdout + proc.stderr
        assert trace["outcome"]["status"] in ("deadlock", "stall"), trace["outcome"]
        assert f"MainThread waits for event fut ({line})" in proc.stdout, proc.stdout
        assert "ThreadPoolExecutor-0_0 waits for event never (stuck.py:11)" in proc.stdout


def test_a_worker_of_a_pool_the_standard_library_made_ends_with_its_thread(
        tmp_path: Path) -> None:
    proc, trace = run("to_thread.py", tmp_path, "--timeout", "20")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert trace["outcome"]["status"] == "ok" and "got 1" in proc.stdout
    workers = [a for a in trace["actors"] if a["name"].startswith("asyncio_")]
    assert workers and all(a["status"] == "ok" for a in workers), trace["actors"]


def test_a_pool_left_running_at_exit_with_a_stuck_task_is_seen_live(tmp_path: Path) -> None:
    proc, trace = run("abandoned.py", tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "main is done" in proc.stdout
    assert trace["outcome"]["status"] in ("deadlock", "stall"), trace["outcome"]
    assert "MainThread waits to join ThreadPoolExecutor-0_0" in proc.stdout
    assert "ThreadPoolExecutor-0_0 waits for event never (abandoned.py:10)" in proc.stdout
