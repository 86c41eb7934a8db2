"""The public Python API (tracer.api, re-exported by tracer): run, replay, explore, analyze, the
way a script uses them — on real runs of the scenarios folder."""

from __future__ import annotations

from pathlib import Path

import pytest

import tracer
from tracer.trace import load_trace_data

SCENARIOS = Path(__file__).resolve().parent.parent / "scenarios"


def test_run_analyze_and_replay_a_scenario_file(tmp_path: Path) -> None:
    result = tracer.run(SCENARIOS / "deadlock.yaml")
    assert result.status == "deadlock", result.detail
    path = tmp_path / "d.json"
    result.write(path)
    # the same findings from the run in memory, the trace file and the read trace
    kinds = tracer.analyze(result).kinds
    assert kinds == ["deadlock"]
    assert tracer.analyze(path).kinds == kinds
    assert tracer.analyze(load_trace_data(path)).kinds == kinds
    done = tracer.replay(path)
    assert done.divergence is None
    assert done.difference() is None
    assert done.result.status == "deadlock"


def test_analyze_draws_graphs_only_when_asked(tmp_path: Path) -> None:
    result = tracer.run(SCENARIOS / "deadlock.yaml")
    assert tracer.analyze(result).graphs == {}
    report = tracer.analyze(result, tmp_path / "g", stem="d")
    wait_for = Path(report.graphs["wait_for"])
    assert wait_for.parent == tmp_path / "g" and wait_for.name.startswith("d.wait-for.")
    assert wait_for.exists()


def test_explore_finds_the_problem_of_a_scenario_file() -> None:
    found = tracer.explore(SCENARIOS / "deadlock.yaml", strategy="dfs", runs=50)
    assert found.exhaustive
    assert "deadlock" in {g["kind"] for g in found.groups.values()}


def test_explore_refuses_options_that_do_not_go_together() -> None:
    with pytest.raises(ValueError, match="dfs"):
        tracer.explore(SCENARIOS / "deadlock.yaml", strategy="random", max_preemptions=1)
    with pytest.raises(ValueError, match="strategy"):
        tracer.explore(SCENARIOS / "deadlock.yaml", strategy="bfs")


def test_a_bad_scenario_file_raises_scenario_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nactors: []\n", encoding="utf-8")
    with pytest.raises(tracer.ScenarioError):
        tracer.run(bad)
