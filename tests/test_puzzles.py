"""The classic puzzles bundled in scenarios/, written in the language's v2 forms: each explores
to its known bug, or stays clean (and complete, where a systematic search can cover it), and
what the exploration found replays to the same finding."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import tracer_cli

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = ROOT / "scenarios"


def explore_json(tmp_path: Path, name: str, *args: str) -> dict[str, Any]:
    r = tracer_cli("explore", str(SCENARIOS / f"{name}.yaml"), "--format", "json",
                   "--traces", str(tmp_path / "found"), *args, cwd=tmp_path, timeout=240)
    assert r.returncode in (0, 1), r.stderr
    out: dict[str, Any] = json.loads(r.stdout)
    return out


def kinds(found: dict[str, Any]) -> set[str]:
    return {f["kind"] for f in found["findings"]}


@pytest.mark.timeout(240)
def test_peterson_is_proven_clean_by_a_complete_search(tmp_path: Path) -> None:
    found = explore_json(tmp_path, "peterson", "--strategy", "dfs")
    assert found["complete"] is True
    assert found["findings"] == []


@pytest.mark.timeout(240)
def test_two_flags_without_a_turn_let_both_in_and_the_trace_replays(tmp_path: Path) -> None:
    found = explore_json(tmp_path, "flags_mutex_broken", "--strategy", "dfs")
    assert found["complete"] is True
    assert kinds(found) == {"error"}  # the assert; no race: the flags are atomic
    errors = [f for f in found["findings"] if f["kind"] == "error"]
    assert all("two threads in the critical section" in f["message"] for f in errors)
    assert all("in_cs = 2" in f["message"] for f in errors)
    r = tracer_cli("replay", errors[0]["trace"], cwd=tmp_path, timeout=60)
    assert r.returncode == 1, r.stderr
    assert "identical" in r.stdout + r.stderr
    assert "two threads in the critical section" in r.stdout + r.stderr


@pytest.mark.timeout(240)
def test_a_trylock_that_backs_off_never_deadlocks_but_can_livelock(tmp_path: Path) -> None:
    found = explore_json(tmp_path, "trylock_backoff", "--runs", "200")
    assert kinds(found) & {"deadlock", "potential_deadlock", "race"} == set()
    found = explore_json(tmp_path, "trylock_backoff", "--strategy", "dfs", "--runs", "400")
    assert "deadlock" not in kinds(found) and "potential_deadlock" not in kinds(found)
    livelock = [f for f in found["findings"] if f["kind"] == "error"]
    assert livelock, found
    assert "still true after 50 rounds" in livelock[0]["message"]
    # the schedule keeps both in step: each took its first lock and failed its try, in turn
    trace = json.loads(Path(livelock[0]["trace"]).read_text(encoding="utf-8"))
    fails = [e["actor"] for e in trace["events"]
             if e["op"] == "acquire" and e.get("result") == "fail"]
    assert {"left", "right"} <= set(fails)
    r = tracer_cli("replay", livelock[0]["trace"], cwd=tmp_path, timeout=60)
    assert "identical" in r.stdout + r.stderr, r.stdout + r.stderr


@pytest.mark.timeout(240)
def test_a_semaphore_timeout_branch_is_clean_in_every_schedule(tmp_path: Path) -> None:
    found = explore_json(tmp_path, "semaphore_timeout", "--strategy", "dfs")
    assert found["complete"] is True
    assert found["findings"] == []


@pytest.mark.timeout(120)
def test_releasing_after_a_timed_out_acquire_is_a_misuse(tmp_path: Path) -> None:
    """The semaphore_timeout puzzle without its branch: the `finally: release()` bug."""
    text = (SCENARIOS / "semaphore_timeout.yaml").read_text(encoding="utf-8")
    head, _, _ = text.partition("      - if: \"got == 'ok'\"")
    path = tmp_path / "broken.yaml"
    path.write_text(head + "      - release: space\n", encoding="utf-8")
    r = tracer_cli("run", str(path), "-o", str(tmp_path / "t.json"), cwd=tmp_path)
    assert r.returncode == 1, r.stdout + r.stderr
    r = tracer_cli("analyze", str(tmp_path / "t.json"), "--format", "json", cwd=tmp_path)
    out = json.loads(r.stdout)
    assert "misuse" in {f["kind"] for f in out["findings"]}
