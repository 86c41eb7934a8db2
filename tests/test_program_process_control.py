"""``tracer explore`` and ``tracer replay`` of programs that start processes: the children's
actors take their turns from the host's scheduler, one actor at a time across the processes.

Each test runs the commands as a user does (``python -m tracer ...`` in a subprocess) on a
program of ``tests/programs`` and reads what they print and the traces they write.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

PROGRAMS = Path(__file__).resolve().parent / "programs"


def tracer(tmp_path: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tracer", *args], cwd=tmp_path, text=True,
                          capture_output=True, timeout=timeout, check=False)


def _dead(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except OSError:
        return True


def _explore_json(tmp_path: Path, program: str, runs: int, *args: str) -> dict[str, Any]:
    proc = tracer(tmp_path, "explore", str(PROGRAMS / program), "--runs", str(runs),
                  "--format", "json", *args)
    assert proc.returncode in (0, 1), proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    doc: dict[str, Any] = json.loads(proc.stdout)
    return doc


def _problems(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return list(doc["findings"])


def _replay(tmp_path: Path, trace: Path) -> tuple[subprocess.CompletedProcess[str],
                                                  dict[str, Any]]:
    proc = tracer(tmp_path, "replay", str(trace))
    out = trace.with_name(trace.stem + ".replay.json")
    assert out.exists(), proc.stdout + proc.stderr
    return proc, json.loads(out.read_text())


def _replay_reordered(tmp_path: Path, out: Path, doc: dict[str, Any]) -> dict[str, Any]:
    """Renumber ``doc``'s reordered events, write it to ``out`` and replay it: identical."""
    for k, e in enumerate(doc["events"]):
        e["seq"] = k
    out.write_text(json.dumps(doc))
    proc, replayed = _replay(tmp_path, out)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "identical (ok)" in proc.stdout, proc.stdout + proc.stderr
    return replayed


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_explore_finds_the_cross_process_abba_and_it_replays_as_that_deadlock(
        tmp_path: Path, method: str) -> None:
    doc = _explore_json(tmp_path, "mp_ctl_abba.py", 12, "--", method)
    kinds = {p["kind"] for p in _problems(doc)}
    assert "deadlock" in kinds, doc
    deadlock = next(p for p in _problems(doc) if p["kind"] == "deadlock")
    assert {"left", "right"} <= set(deadlock["actors"]), deadlock
    assert {"lock_a", "lock_b"} <= set(deadlock["objects"]), deadlock
    traces = sorted((tmp_path / "traces").glob("mp_ctl_abba.explore-*.json"))
    found = [t for t in traces if json.loads(t.read_text())["outcome"]["status"] == "deadlock"]
    assert found, traces
    proc, replayed = _replay(tmp_path, found[0])
    assert "identical" in proc.stdout, proc.stdout + proc.stderr
    assert replayed["outcome"]["status"] == "deadlock"
    kinds_of = {a["name"]: a["kind"] for a in replayed["actors"]}
    assert kinds_of["left"] == kinds_of["right"] == "process"
    assert all(_dead(a["pid"]) for a in replayed["actors"])


# The tutorial's process listings (see test_program_processes.py), each recorded by a free
# run and replayed: the replay keeps to the recorded order across the processes (the Pool's
# too: which worker takes which task is the recording's).
LISTINGS = ["mp_tut_function.py", "mp_tut_class.py", "mp_tut_queue.py", "mp_tut_pipe.py",
            "mp_tut_manager.py", "mp_tut_pool.py", "mp_basic.py"]


@pytest.mark.parametrize("listing", LISTINGS)
def test_a_free_run_of_a_process_listing_replays_identically(tmp_path: Path,
                                                            listing: str) -> None:
    out = tmp_path / f"{Path(listing).stem}.json"
    run = tracer(tmp_path, "run", str(PROGRAMS / listing), "-o", str(out))
    assert run.returncode == 0, run.stdout + run.stderr
    proc, replayed = _replay(tmp_path, out)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "identical (ok)" in proc.stdout, proc.stdout + proc.stderr
    recorded = json.loads(out.read_text())
    processes = {a["name"] for a in recorded["actors"] if a["kind"] == "process"}
    assert processes and processes <= {a["name"] for a in replayed["actors"]}
    # sleeps take virtual time: the listings' 1-3 s sleeps are not waited for
    slept = sum(e.get("value") or 0 for e in recorded["events"]
                if e["op"] == "sleep" and e.get("phase") == "call")
    if slept >= 1:
        assert replayed["meta"]["duration"] < recorded["meta"]["duration"]
    assert all(_dead(a["pid"]) for a in replayed["actors"])


def test_a_replay_gives_each_pool_task_to_the_worker_the_recording_gave_it_to(
        tmp_path: Path) -> None:
    """Two workers, three tasks: the recording is made to say that the worker which came back
    from its first task *later* took the third (a free run shows either): the replay keeps
    to it, where the first worker back would take the task if nothing held it."""
    out = tmp_path / "turns.json"
    run = tracer(tmp_path, "run", str(PROGRAMS / "mp_pool_turns.py"), "-o", str(out))
    assert run.returncode == 0, run.stdout + run.stderr
    doc = json.loads(out.read_text())
    events = doc["events"]
    sleeps = [i for i, e in enumerate(events) if e["op"] == "sleep"]
    third = [i for i in sleeps if events[i]["phase"] == "call"][2]
    rets = [i for i in sleeps if events[i]["phase"] == "return"][:2]
    taker = events[third]["actor"]
    first, second = sorted(rets, key=lambda i: events[i]["actor"] == taker)
    # the other worker back first, then the taker, then the taker's third task
    places = sorted([*rets, third])
    moved = [events[first], events[second], events[third]]
    for place, e in zip(places, moved, strict=True):
        events[place] = e
    replayed = _replay_reordered(tmp_path, out, doc)
    took = [e["actor"] for e in replayed["events"] if e["op"] == "sleep" and
            e["phase"] == "call"]
    assert took[2] == taker, replayed["events"]


def test_a_replay_gives_each_item_to_the_get_the_recording_gave_it_to(tmp_path: Path) -> None:
    """Two processes' gets on a manager queue: the recording is made to say that the get
    called first returned last, with the second item (a free run shows that when the other's
    request reaches the manager first): the replay keeps to it, where the get called first
    would take the first item if it were tried at once."""
    out = tmp_path / "getters.json"
    run = tracer(tmp_path, "run", str(PROGRAMS / "mp_mgr_getters.py"), "-o", str(out))
    assert run.returncode == 0, run.stdout + run.stderr
    doc = json.loads(out.read_text())
    events = doc["events"]
    mine = [i for i, e in enumerate(events) if e["actor"] in ("g1", "g2") and
            (e["op"] == "end" or (e["op"] == "get" and e.get("target") == "q"))]
    assert len(mine) == 6, [events[i] for i in mine]
    first = next(events[i]["actor"] for i in mine if events[i].get("phase") == "call")
    second = "g2" if first == "g1" else "g1"

    def one(actor: str, op: str, phase: str | None) -> dict[str, Any]:
        return next(events[i] for i in mine if events[i]["actor"] == actor and
                    events[i]["op"] == op and events[i].get("phase") == phase)
    order = [one(first, "get", "call"), one(second, "get", "call"),
             {**one(second, "get", "return"), "item": "1"}, one(second, "end", None),
             {**one(first, "get", "return"), "item": "2"}, one(first, "end", None)]
    # (the getters' starts and these six right after the second spawn: a valid order)
    starts = [i for i, e in enumerate(events) if e["op"] == "start" and
              e["actor"] in ("g1", "g2")]
    rest = [e for i, e in enumerate(events) if i not in mine and i not in starts]
    at = max(i for i, e in enumerate(rest) if e["op"] == "spawn") + 1
    events[:] = rest[:at] + [events[i] for i in starts] + order + rest[at:]
    replayed = _replay_reordered(tmp_path, out, doc)
    got = {e["actor"]: e.get("item") for e in replayed["events"]
           if e["op"] == "get" and e.get("phase") == "return"}
    assert got == {second: "1", first: "2"}, got


def test_explore_of_the_pool_listing_runs_every_task_in_a_traced_worker(tmp_path: Path) -> None:
    doc = _explore_json(tmp_path, "mp_tut_pool.py", 2)
    assert not _problems(doc), doc


def test_a_child_blocked_where_tracer_cannot_see_is_away_and_a_dead_child_ends(
        tmp_path: Path) -> None:
    """One child reads an OS pipe its parent writes after a recorded operation; another
    dies at once (os._exit): every schedule ends well, none waits for its timeout."""
    doc = _explore_json(tmp_path, "mp_ctl_pipe.py", 6, "--timeout", "20")
    assert not _problems(doc), doc


def test_no_process_outlives_its_schedule(tmp_path: Path) -> None:
    """Each schedule ends as a deadlock with its child waiting for ever; the next schedule's
    program looks for the earlier schedules' children: none runs, nor after the command."""
    pids = tmp_path / "pids.txt"
    doc = _explore_json(tmp_path, "mp_ctl_leak.py", 4, "--", str(pids))
    assert [p["kind"] for p in _problems(doc)] == ["deadlock"], doc
    written = [int(x) for x in pids.read_text().split()]
    assert len(written) == 4, written
    alive = tmp_path / "pids.txt.alive"
    assert not alive.exists() or not alive.read_text().split(), alive.read_text()
    assert all(_dead(pid) for pid in written)
    assert os.path.exists(pids)


def test_a_process_started_by_a_child_is_refused_saying_why(tmp_path: Path) -> None:
    doc = _explore_json(tmp_path, "mp_ctl_nested.py", 1)
    errors = [p for p in _problems(doc) if p["kind"] == "error"]
    assert errors, doc
    assert "a child process of the program starts a process (grandchild, " \
           "mp_ctl_nested.py:11): explore and replay run the processes the program's main " \
           "process starts one actor at a time" in errors[0]["message"], errors
