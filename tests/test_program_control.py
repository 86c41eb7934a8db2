"""``tracer explore PROG.py`` and ``tracer replay`` of a program's trace: an unchanged program
runs one thread at a time at each recorded operation, sleeps in virtual time, and blocking
that tracer cannot see (an OS pipe, ``Future.result()``) never hangs a schedule.

Each test runs the command as a user does (``python -m tracer ...`` in a subprocess) on a
program of ``tests/programs`` (``ctl_*.py``) and reads its output and the traces it wrote.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

PROGRAMS = Path(__file__).resolve().parent / "programs"


def tracer(*args: str, cwd: Path, timeout: float = 60,
           env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tracer", *args], cwd=cwd, text=True,
                          capture_output=True, timeout=timeout, check=False,
                          env={**os.environ, **(env or {})})


def explore(name: str, tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess[str],
                                                             dict[str, Any]]:
    proc = tracer("explore", str(PROGRAMS / name), "--format", "json", *args, cwd=tmp_path)
    assert proc.returncode in (0, 1), proc.stdout + proc.stderr
    return proc, json.loads(proc.stdout)


def kinds(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f["kind"]: f for f in doc["findings"]}


def test_a_rare_abba_deadlock_is_found_and_its_trace_replays_to_the_same_deadlock(
        tmp_path: Path) -> None:
    proc, doc = explore("ctl_abba.py", tmp_path, "--runs", "200")
    assert proc.returncode == 1
    assert doc["runs"] == 200 and doc["strategy"] == "random" and doc["complete"] is False
    found = kinds(doc)
    dl = found["deadlock"]
    assert {"one", "two"} <= set(dl["actors"]) and {"lock_a", "lock_b"} <= set(dl["objects"])
    assert 0 < dl["count"] < 200
    assert "one holds lock_a (ctl_abba.py:10) and waits for lock_b (ctl_abba.py:11)" \
        in dl["message"]
    # a schedule without the deadlock shows the lock order that allows it
    assert "potential_deadlock" in found
    trace = tmp_path / dl["trace"]
    assert trace.name == f"ctl_abba.explore-{dl['first_run']}.json"
    recorded = json.loads(trace.read_text())
    assert recorded["program"]["path"].endswith("ctl_abba.py")
    assert recorded["outcome"]["status"] == "deadlock"
    assert recorded["meta"]["mode"] == "explore"

    out = tmp_path / "again.json"
    rep = tracer("replay", str(trace), "-o", str(out), cwd=tmp_path)
    assert rep.returncode == 1, rep.stdout + rep.stderr
    assert "identical (deadlock: one holds lock_a" in rep.stdout
    replayed = json.loads(out.read_text())
    assert replayed["meta"]["mode"] == "replay"
    assert replayed["outcome"]["status"] == "deadlock"
    assert [(e.get("actor"), e["op"], e.get("target")) for e in replayed["events"]] == \
        [(e.get("actor"), e["op"], e.get("target")) for e in recorded["events"]]
    # the schedule without a deadlock replays as recorded too
    other = tmp_path / found["potential_deadlock"]["trace"]
    rep = tracer("replay", str(other), "-o", str(tmp_path / "other.json"), cwd=tmp_path)
    assert rep.returncode == 0, rep.stdout + rep.stderr
    assert "identical (ok)" in rep.stdout


def test_the_same_seed_explores_the_same_schedules(tmp_path: Path) -> None:
    _, one = explore("ctl_abba.py", tmp_path, "--runs", "60", "--seed", "3")
    _, two = explore("ctl_abba.py", tmp_path, "--runs", "60", "--seed", "3")
    shape = [(f["kind"], f["count"], f["first_run"]) for f in one["findings"]]
    assert shape == [(f["kind"], f["count"], f["first_run"]) for f in two["findings"]]
    assert one["distinct_schedules"] == two["distinct_schedules"]


def test_pct_finds_the_abba_deadlock_too(tmp_path: Path) -> None:
    proc, doc = explore("ctl_abba.py", tmp_path, "--runs", "100", "--strategy", "pct")
    assert proc.returncode == 1
    assert doc["strategy"] == "pct"
    assert "deadlock" in kinds(doc)


def test_the_dining_philosophers_deadlock_is_found(tmp_path: Path) -> None:
    proc, doc = explore("ctl_philosophers.py", tmp_path, "--runs", "200")
    assert proc.returncode == 1
    dl = kinds(doc)["deadlock"]
    assert {f"philosopher-{i}" for i in range(5)} <= set(dl["actors"])
    assert {f"forks[{i}]" for i in range(5)} <= set(dl["objects"])


def test_sleeps_take_virtual_time_and_sleepers_wake_in_deadline_order(
        tmp_path: Path) -> None:
    # the main thread sleeps 10 s: in virtual time it wakes only when the workers can do
    # nothing else (the program asserts it: a wrong order would be an error finding)
    start = time.monotonic()
    proc, doc = explore("ctl_sleepy.py", tmp_path, "--runs", "20")
    elapsed = time.monotonic() - start
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert doc["runs"] == 20 and doc["findings"] == []
    assert elapsed < 20, elapsed  # (20 schedules of a program that sleeps 11.5 s)


def test_a_thread_blocked_reading_an_os_pipe_never_hangs_a_schedule(tmp_path: Path) -> None:
    proc, doc = explore("ctl_pipe.py", tmp_path, "--runs", "30", "--timeout", "20")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert doc["runs"] == 30 and doc["findings"] == []  # no timeout, no error


def test_a_thread_pool_program_waiting_in_future_result_completes_its_schedules(
        tmp_path: Path) -> None:
    _, doc = explore("ctl_pool.py", tmp_path, "--runs", "10", "--timeout", "20")
    assert doc["runs"] == 10
    # no schedule hung or failed (what the pool's unrecorded queue orders is another matter:
    # the analysis may see the accesses it orders as a race)
    assert not {"timeout", "error", "stall", "deadlock"} & set(kinds(doc)), doc


def test_the_text_report_lists_each_problem_with_its_replay(tmp_path: Path) -> None:
    proc = tracer("explore", str(PROGRAMS / "ctl_abba.py"), "--runs", "50", cwd=tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "ctl_abba.py: 50 schedules (random, seed 0)" in proc.stdout
    assert "replay it: tracer replay traces/ctl_abba.explore-" in proc.stdout
    assert "dfs" not in proc.stdout  # (not a program's strategy)


def test_a_scenario_only_option_is_refused_for_a_program(tmp_path: Path) -> None:
    proc = tracer("explore", str(PROGRAMS / "ctl_abba.py"), "--strategy", "dfs", cwd=tmp_path)
    assert proc.returncode == 2
    assert "--strategy dfs is for scenarios" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_replay_in_another_environment_reports_where_it_diverged(tmp_path: Path) -> None:
    trace = tmp_path / "flip.json"
    run = tracer("run", str(PROGRAMS / "ctl_flip.py"), "-o", str(trace), cwd=tmp_path,
                 env={"FLIP": "1"})
    assert run.returncode == 0, run.stdout + run.stderr
    rep = tracer("replay", str(trace), cwd=tmp_path, env={"FLIP": ""})
    assert rep.returncode == 1, rep.stdout + rep.stderr
    line = rep.stdout.splitlines()[-1]
    assert line.startswith("diverged: at seq "), rep.stdout
    recording, replay = line.split(", the replay has ")
    assert "target='lock_b'" in recording and "target='lock_a'" in replay


def test_a_replay_of_a_changed_program_is_refused(tmp_path: Path) -> None:
    shutil.copy(PROGRAMS / "ctl_abba.py", tmp_path / "abba.py")
    proc = tracer("explore", "abba.py", "--runs", "20", "--format", "json", cwd=tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    trace = json.loads(proc.stdout)["findings"][0]["trace"]
    with open(tmp_path / "abba.py", "a", encoding="utf-8") as f:
        f.write("print('changed')\n")
    rep = tracer("replay", trace, cwd=tmp_path)
    assert rep.returncode == 2
    assert rep.stderr.strip() == (
        f"tracer: error: abba.py changed since {trace} was recorded (its sha256 differs): a "
        "replay needs the same program; record a new trace with: tracer run abba.py")


def test_an_asyncio_programs_deadlock_is_found_in_every_schedule(tmp_path: Path) -> None:
    # an event loop's tasks go with the thread that runs it (the loop interleaves them);
    # their deadlock, which the baton cannot see (an await suspends a task, not its thread),
    # is judged by the schedule's watchdog: each schedule ends with it, none times out
    start = time.monotonic()
    proc, doc = explore("asyncio_deadlock.py", tmp_path, "--runs", "5")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    dl = kinds(doc)["deadlock"]
    assert dl["count"] == 5
    assert {"left", "right"} <= set(dl["actors"])
    assert "timeout" not in kinds(doc)
    assert time.monotonic() - start < 30


def test_a_module_is_explored_with_dash_m_and_its_trace_replays(tmp_path: Path) -> None:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "app.py").write_text(
        "import threading\ncount = 0\n\n\ndef work():\n    global count\n    count += 1\n\n\n"
        "ts = [threading.Thread(target=work) for _ in range(2)]\nfor t in ts:\n    t.start()\n"
        "for t in ts:\n    t.join()\n")
    proc = tracer("explore", "-m", "pkg.app", "--runs", "5", "--format", "json", cwd=tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    race = kinds(json.loads(proc.stdout))["race"]
    assert race["objects"] == ["count"]
    again = tracer("replay", race["trace"], cwd=tmp_path)
    assert "identical" in again.stdout, again.stdout + again.stderr


def test_a_replay_where_a_get_returns_before_the_put_it_waited_for_is_identical(
        tmp_path: Path) -> None:
    """A consumer's get returns before the producer's put does (a free run records that when
    the consumer wakes first): the replay makes the put at once, as the free run did, and its
    get then returns as recorded (a put held back for its own return's turn would leave the
    get nothing to take)."""
    out = tmp_path / "putget.json"
    run = tracer("run", str(PROGRAMS / "ctl_putget.py"), "-o", str(out), cwd=tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    doc = json.loads(out.read_text())
    events = doc["events"]

    def one(actor: str, op: str, phase: str | None = None) -> dict[str, Any]:
        return next(e for e in events if e["actor"] == actor and e["op"] == op and
                    e.get("phase") == phase)
    order = [one("C", "start"), one("C", "get", "call"), one("P", "start"),
             one("P", "put", "call"), one("C", "get", "return"), one("C", "end"),
             one("P", "put", "return"), one("P", "end")]
    rest = [e for e in events if e["actor"] not in ("C", "P")]
    at = max(i for i, e in enumerate(rest) if e["op"] == "spawn") + 1
    doc["events"] = rest[:at] + order + rest[at:]
    assert len(doc["events"]) == len(events)
    for k, e in enumerate(doc["events"]):
        e["seq"] = k
    out.write_text(json.dumps(doc))
    proc = tracer("replay", str(out), cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "identical (ok)" in proc.stdout, proc.stdout + proc.stderr
