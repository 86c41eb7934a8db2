"""`tracer explore` (first version: thread actors, random strategy): it finds the rare
interleaving a real run never shows, keeps a trace that `tracer replay` brings back to the same
problem, stays quiet on a correct scenario, and is repeatable for a seed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import SCENARIOS, tracer_cli

RARE_ABBA = """
name: rare-abba
description: The second actor sleeps 0.5 s before taking the locks in the opposite order.
primitives: {A: lock, B: lock}
actors:
  - {name: first, kind: thread, steps: [{acquire: A}, {acquire: B}, {release: B}, {release: A}]}
  - name: second
    kind: thread
    steps: [{sleep: 0.5}, {acquire: B}, {acquire: A}, {release: A}, {release: B}]
"""

def bank(locked: bool) -> str:
    """Two withdrawals, the second half a second later; with or without a lock."""
    wrap = "with: L" if locked else "repeat: 1"
    lock = "primitives: {L: lock}\n" if locked else ""
    return f"""
name: bank
shared: {{balance: 100}}
invariants: [{{var: balance, op: ">=", value: 0}}]
{lock}actors:
  - name: draw1
    kind: thread
    steps:
      - {wrap}
        steps:
          - if: {{var: balance, op: ">=", value: 80}}
            then: [{{add: {{var: balance, value: -80}}}}]
  - name: draw2
    kind: thread
    steps:
      - sleep: 0.5
      - {wrap}
        steps:
          - if: {{var: balance, op: ">=", value: 100}}
            then: [{{add: {{var: balance, value: -100}}}}]
"""


def explore(tmp_path: Path, text: str, *args: str) -> tuple[int, dict[str, object]]:
    path = tmp_path / "s.yaml"
    path.write_text(text, encoding="utf-8")
    r = tracer_cli("explore", str(path), "--format", "json", "--traces",
                   str(tmp_path / "found"), *args, cwd=tmp_path, timeout=120)
    assert r.returncode in (0, 1), r.stderr
    return r.returncode, json.loads(r.stdout)


@pytest.mark.timeout(120)
def test_finds_the_rare_deadlock_and_its_trace_replays_to_it(tmp_path: Path) -> None:
    code, report = explore(tmp_path, RARE_ABBA, "--runs", "100", "--seed", "7")
    assert code == 1
    deadlocks = [f for f in report["findings"] if f["kind"] == "deadlock"]  # type: ignore[union-attr]
    assert deadlocks, report
    dl = deadlocks[0]
    assert set(dl["actors"]) == {"first", "second"}
    assert {"A", "B"} <= set(dl["objects"])
    assert dl["first_run"] < 100 and dl["count"] >= 1
    r = tracer_cli("replay", dl["trace"], cwd=tmp_path)
    assert r.returncode == 1
    assert "identical (deadlock: first holds A and waits for B" in r.stdout


@pytest.mark.timeout(120)
def test_finds_the_overdraft_of_unlocked_withdrawals(tmp_path: Path) -> None:
    code, report = explore(tmp_path, bank(locked=False), "--runs", "200", "--seed", "1")
    assert code == 1
    kinds = {f["kind"] for f in report["findings"]}  # type: ignore[union-attr]
    assert "invariant" in kinds


@pytest.mark.timeout(120)
def test_the_locked_version_stays_clean(tmp_path: Path) -> None:
    code, report = explore(tmp_path, bank(locked=True), "--runs", "1000", "--seed", "1")
    assert code == 0, report
    assert report["findings"] == [] and report["runs"] == 1000


@pytest.mark.timeout(120)
def test_same_seed_same_json(tmp_path: Path) -> None:
    _, a = explore(tmp_path, RARE_ABBA, "--runs", "40", "--seed", "3")
    _, b = explore(tmp_path, RARE_ABBA, "--runs", "40", "--seed", "3")
    assert a == b
    assert a["seed"] == 3 and a["strategy"] == "random"


def test_unsupported_scenarios_are_refused_with_exit_2(tmp_path: Path) -> None:
    r = tracer_cli("explore", str(SCENARIOS / "asyncio_dining_philosophers.yaml"), cwd=tmp_path)
    assert r.returncode == 2
    assert "first version of explore runs thread actors" in r.stderr


@pytest.mark.timeout(120)
def test_pct_finds_the_rare_deadlock_too(tmp_path: Path) -> None:
    code, report = explore(tmp_path, RARE_ABBA, "--runs", "200", "--seed", "7",
                           "--strategy", "pct", "--depth", "3")
    assert code == 1
    assert report["strategy"] == "pct"
    assert any(f["kind"] == "deadlock" for f in report["findings"])  # type: ignore[union-attr]


@pytest.mark.timeout(120)
def test_jobs_give_the_same_findings_as_one_worker(tmp_path: Path) -> None:
    _, one = explore(tmp_path, RARE_ABBA, "--runs", "60", "--seed", "5")
    _, two = explore(tmp_path, RARE_ABBA, "--runs", "60", "--seed", "5", "--jobs", "2")
    assert one == two
    assert one["findings"]


@pytest.mark.timeout(120)
@pytest.mark.parametrize("name", ["bounded_buffer_condition", "thread_join", "lost_wakeup",
                                  "producer_consumer", "semaphore"])
def test_bundled_thread_scenarios_explore_without_hanging(name: str, tmp_path: Path) -> None:
    """Conditions (the lock taken back after a wait), joins, queues and semaphores under one
    actor at a time: every schedule ends, and only the expected kinds come out."""
    text = (SCENARIOS / f"{name}.yaml").read_text(encoding="utf-8")
    code, report = explore(tmp_path, text, "--runs", "30", "--seed", "2")
    kinds = {f["kind"] for f in report["findings"]}  # type: ignore[union-attr]
    expected = {"lost_wakeup": {"stall"}}.get(name, set())
    assert kinds == expected, report
    assert code == (1 if expected else 0)
