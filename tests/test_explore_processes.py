"""`tracer explore` with process actors: the child asks the parent's exploring scheduler for
its turns over a pipe, and a thread of the parent parks in its place."""

from __future__ import annotations

import json
import multiprocessing
from pathlib import Path
from typing import Any

import pytest
from conftest import SCENARIOS, tracer_cli, unlined

from tracer import load_scenario_text
from tracer.api import explore as explore_scenario

LOST_UPDATE = """
name: process_lost_update
description: two processes add 1 to a shared counter without a lock
shared:
  count: 0
invariants:
  - {var: count, op: "==", value: 2}
actors:
  - name: p
    kind: process
    count: 2
    steps:
      - add: {var: count, value: 1}
"""


def explore(tmp_path: Path, scenario: Path, *args: str) -> tuple[int, dict[str, Any]]:
    r = tracer_cli("explore", str(scenario), "--format", "json", "--traces",
                   str(tmp_path / "found"), *args, cwd=tmp_path, timeout=110)
    assert r.returncode in (0, 1), r.stderr
    return r.returncode, json.loads(r.stdout)


def expected_kinds(name: str) -> set[str]:
    text = (SCENARIOS / f"{name}.yaml").read_text(encoding="utf-8")
    return set(load_scenario_text(text, name).scenario.expect or [])


@pytest.mark.timeout(120)
def test_process_deadlock_is_found_and_its_trace_replays_to_it(tmp_path: Path) -> None:
    code, report = explore(tmp_path, SCENARIOS / "process_deadlock.yaml", "--runs", "5")
    assert code == 1
    assert report["runs"] == 5
    deadlocks = [f for f in report["findings"] if f["kind"] == "deadlock"]
    assert deadlocks, report
    dl = deadlocks[0]
    assert set(dl["actors"]) == {"p1", "p2"}
    assert set(dl["objects"]) == {"A", "B"}
    r = tracer_cli("replay", dl["trace"], cwd=tmp_path, timeout=60)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "identical" in r.stdout
    assert "deadlock" in r.stdout and "p1 holds A and waits for B" in unlined(r.stdout)


@pytest.mark.timeout(120)
def test_lost_update_between_processes_is_found(tmp_path: Path) -> None:
    path = tmp_path / "lost_update.yaml"
    path.write_text(LOST_UPDATE, encoding="utf-8")
    code, report = explore(tmp_path, path, "--runs", "30")
    assert code == 1
    kinds = {f["kind"] for f in report["findings"]}
    assert "invariant" in kinds, report
    inv = next(f for f in report["findings"] if f["kind"] == "invariant")
    trace = json.loads(Path(inv["trace"]).read_text(encoding="utf-8"))
    assert trace["final"]["count"] == 1  # both read 0 before either wrote
    assert trace["meta"]["mode"] == "explore"


@pytest.mark.timeout(120)
@pytest.mark.parametrize("name", ["process_pool", "process_queue_manager"])
def test_clean_process_scenarios_give_only_their_expected_kinds(tmp_path: Path,
                                                                name: str) -> None:
    code, report = explore(tmp_path, SCENARIOS / f"{name}.yaml", "--runs", "3")
    kinds = {f["kind"] for f in report["findings"]}
    assert kinds <= expected_kinds(name), report
    assert code == (1 if kinds else 0)
    assert report["runs"] == 3


@pytest.mark.timeout(120)
def test_in_process_exploration_leaves_no_process_behind() -> None:
    plan = load_scenario_text(LOST_UPDATE, "<test>")
    out = explore_scenario(plan, runs=4, seed=0, strategy="random", depth=3)
    assert out.runs == 4
    assert multiprocessing.active_children() == []


def test_jobs_with_process_actors_is_refused_with_exit_2(tmp_path: Path) -> None:
    r = tracer_cli("explore", str(SCENARIOS / "process_deadlock.yaml"), "--jobs", "2",
                   cwd=tmp_path)
    assert r.returncode == 2
    assert "--jobs cannot run process actors" in r.stderr


@pytest.mark.timeout(120)
def test_process_barriers_are_explored(tmp_path: Path) -> None:
    """Processes waiting in a multiprocessing barrier are set aside until the round is full:
    two rounds of three parties, the third party comes once, so the second round never fills
    (a stall, in every schedule); the search covers them all."""
    path = tmp_path / "pbar.yaml"
    path.write_text("""
name: pbar
primitives: {B: {type: barrier, parties: 3}}
actors:
  - {name: p1, kind: process, steps: [{wait: B}, {wait: B}]}
  - {name: p2, kind: process, steps: [{wait: B}, {wait: B}]}
  - {name: p3, kind: process, steps: [{wait: B}]}
""", encoding="utf-8")
    code, report = explore(tmp_path, path, "--strategy", "dfs", "--runs", "50")
    assert code == 1 and report["complete"] is True
    stalls = [f for f in report["findings"] if f["kind"] == "stall"]
    assert stalls and set(stalls[0]["actors"]) == {"p1", "p2"}
    assert stalls[0]["count"] == report["runs"]


@pytest.mark.timeout(120)
@pytest.mark.parametrize(("name", "kinds"), [("lost_wakeup", {"stall"}),
                                             ("bounded_buffer_condition", set())])
def test_process_conditions_are_explored(tmp_path: Path, name: str, kinds: set[str]) -> None:
    """The bundled condition scenarios with process actors (a multiprocessing Condition): the
    notify sent before the wait is lost in some schedules (a stall); the bounded buffer built
    right stays clean; no process prints an error on its way out."""
    text = (SCENARIOS / f"{name}.yaml").read_text(encoding="utf-8")
    path = tmp_path / f"p_{name}.yaml"
    path.write_text(text.replace("kind: thread", "kind: process"), encoding="utf-8")
    r = tracer_cli("explore", str(path), "--format", "json", "--strategy", "dfs", "--runs", "15",
                   "--traces", str(tmp_path / "found"), cwd=tmp_path, timeout=110)
    assert r.returncode == (1 if kinds else 0), r.stderr
    assert "Traceback" not in r.stderr and "Error" not in r.stderr
    report = json.loads(r.stdout)
    assert {f["kind"] for f in report["findings"]} == kinds
