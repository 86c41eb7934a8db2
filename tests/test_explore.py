"""`tracer explore`: it finds the rare interleaving a real run never shows, keeps a trace that
`tracer replay` brings back to the same problem, stays quiet on a correct scenario, is
repeatable for a seed, and (dfs) says when it has covered every distinct schedule."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import SCENARIOS, run_yaml, tracer_cli, unlined

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
    assert "identical (deadlock: first holds A and waits for B" in unlined(r.stdout)


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


@pytest.mark.parametrize(("args", "says"), [
    (["--max-preemptions", "2"], "add --strategy dfs"),
    (["--strategy", "dfs", "--jobs", "2"], "dfs runs in one process"),
    (["--strategy", "dfs", "--max-preemptions", "-1"], "--max-preemptions"),
    (["--strategy", "bfs"], "--strategy"),
])
def test_bad_explore_options_exit_2(tmp_path: Path, args: list[str], says: str) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(RARE_ABBA, encoding="utf-8")
    r = tracer_cli("explore", str(path), *args, cwd=tmp_path)
    assert r.returncode == 2
    assert says in r.stderr
    assert "Traceback" not in r.stderr


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
@pytest.mark.parametrize("name", [
    "bounded_buffer_condition", "thread_join", "lost_wakeup", "producer_consumer", "semaphore",
    "barrier", "pool_starvation", "asyncio_gather", "asyncio_deadlock", "event_hotpot",
    "rlock_reentry", "queue_stall"])
def test_bundled_scenarios_explore_without_hanging(name: str, tmp_path: Path) -> None:
    """Conditions (the lock taken back after a wait), joins, queues, semaphores, barriers,
    pools and coroutines under one actor at a time: every schedule ends, and only the
    expected kinds come out."""
    text = (SCENARIOS / f"{name}.yaml").read_text(encoding="utf-8")
    code, report = explore(tmp_path, text, "--runs", "30", "--seed", "2")
    kinds = {f["kind"] for f in report["findings"]}  # type: ignore[union-attr]
    expected = {"lost_wakeup": {"stall"}, "pool_starvation": {"deadlock"},
                "asyncio_deadlock": {"deadlock"}, "queue_stall": {"stall"}}.get(name, set())
    assert kinds == expected, report
    assert code == (1 if expected else 0)


COROUTINE_PHILOSOPHERS = """
name: coroutine-philosophers
description: Three coroutines, each takes its left fork then its right; a real run never
  deadlocks (a free asyncio lock is taken without a switch, so each eats in turn).
primitives: {fork0: lock, fork1: lock, fork2: lock}
actors:
  - {name: P0, kind: coroutine, steps: [{acquire: fork0}, {acquire: fork1}, {release: fork1},
                                        {release: fork0}]}
  - {name: P1, kind: coroutine, steps: [{acquire: fork1}, {acquire: fork2}, {release: fork2},
                                        {release: fork1}]}
  - {name: P2, kind: coroutine, steps: [{acquire: fork2}, {acquire: fork0}, {release: fork0},
                                        {release: fork2}]}
"""


@pytest.mark.timeout(120)
@pytest.mark.parametrize("strategy", ["random", "pct", "dfs"])
def test_three_coroutine_philosophers_deadlock_found(tmp_path: Path, strategy: str) -> None:
    """A real run of these coroutines never deadlocks; every strategy finds the cycle, and the
    kept trace replays to it."""
    result, _ = run_yaml(COROUTINE_PHILOSOPHERS)
    assert result.status == "ok"  # a real run: each eats in turn
    code, report = explore(tmp_path, COROUTINE_PHILOSOPHERS, "--runs", "300", "--seed", "4",
                           "--strategy", strategy)
    assert code == 1
    dl = [f for f in report["findings"] if f["kind"] == "deadlock"]  # type: ignore[union-attr]
    assert dl, report
    assert set(dl[0]["actors"]) == {"P0", "P1", "P2"}
    assert set(dl[0]["objects"]) == {"fork0", "fork1", "fork2"}
    r = tracer_cli("replay", dl[0]["trace"], cwd=tmp_path)
    assert r.returncode == 1
    assert "identical (deadlock: P0 holds fork0 and waits for fork1" in unlined(r.stdout)


@pytest.mark.timeout(120)
def test_dfs_covers_every_distinct_schedule_and_says_so(tmp_path: Path) -> None:
    """The rare ABBA has 9 distinct schedules (orders of the operations on A and on B): dfs
    with the reduction runs exactly those, finds the one deadlock, and ends complete; the
    unreduced search (a bound it never reaches) runs hundreds and finds the same 9."""
    code, report = explore(tmp_path, RARE_ABBA, "--strategy", "dfs", "--runs", "1000")
    assert code == 1
    assert report["complete"] is True
    assert report["runs"] == report["distinct_schedules"] == 9
    counts = {f["kind"]: f["count"] for f in report["findings"]}  # type: ignore[union-attr]
    assert counts["deadlock"] == 1
    _, full = explore(tmp_path, RARE_ABBA, "--strategy", "dfs", "--runs", "100000",
                      "--max-preemptions", "50")
    assert full["complete"] is True
    assert full["distinct_schedules"] == 9
    assert full["runs"] > 100  # type: ignore[operator]
    text = tracer_cli("explore", str(tmp_path / "s.yaml"), "--strategy", "dfs",
                      "--traces", str(tmp_path / "t"), cwd=tmp_path)
    assert "all 9 distinct schedules explored" in text.stdout


@pytest.mark.timeout(120)
def test_dfs_preemption_bound(tmp_path: Path) -> None:
    """No preemption: each actor runs until it blocks or ends, so only the order in which
    they start differs, and the ABBA deadlock (which needs a switch while first holds A)
    is not among them; one preemption finds it."""
    code, none = explore(tmp_path, RARE_ABBA, "--strategy", "dfs", "--max-preemptions", "0")
    # every schedule within the bound, but the bound left some out: not complete
    assert none["exhausted"] is True and none["complete"] is False
    assert "deadlock" not in {f["kind"] for f in none["findings"]}  # type: ignore[union-attr]
    code, one = explore(tmp_path, RARE_ABBA, "--strategy", "dfs", "--max-preemptions", "1")
    assert code == 1 and one["exhausted"] is True
    assert "deadlock" in {f["kind"] for f in one["findings"]}  # type: ignore[union-attr]
    assert one["runs"] > none["runs"]  # type: ignore[operator]


@pytest.mark.timeout(120)
def test_dfs_incomplete_when_runs_run_out(tmp_path: Path) -> None:
    text = (SCENARIOS / "dining_philosophers.yaml").read_text(encoding="utf-8")
    _, report = explore(tmp_path, text, "--strategy", "dfs", "--runs", "5")
    assert report["runs"] == 5 and report["complete"] is False


@pytest.mark.timeout(120)
def test_five_philosophers_deadlock_found_by_dfs(tmp_path: Path) -> None:
    """The five dining philosophers (threads): the systematic search reaches the cycle of all
    five."""
    text = (SCENARIOS / "dining_philosophers.yaml").read_text(encoding="utf-8")
    code, report = explore(tmp_path, text, "--strategy", "dfs", "--runs", "2000")
    dl = [f for f in report["findings"] if f["kind"] == "deadlock"]  # type: ignore[union-attr]
    assert code == 1 and dl
    assert set(dl[0]["actors"]) == {f"P{i}" for i in range(5)}


@pytest.mark.timeout(120)
def test_dfs_proves_the_ordered_philosophers_deadlock_free(tmp_path: Path) -> None:
    """Taking the forks in one global order: every distinct schedule is covered, none
    deadlocks, and no lock-order risk is left (exit 0)."""
    text = (SCENARIOS / "dining_philosophers_ordered.yaml").read_text(encoding="utf-8")
    code, report = explore(tmp_path, text, "--strategy", "dfs", "--runs", "5000")
    assert code == 0
    assert report["complete"] is True and report["findings"] == []
    assert report["runs"] == report["distinct_schedules"]
    assert report["runs"] > 100  # type: ignore[operator]


@pytest.mark.parametrize("bad", ["missing.yaml", "broken.yaml"])
def test_bad_scenario_files_exit_2(tmp_path: Path, bad: str) -> None:
    (tmp_path / "broken.yaml").write_text("name: x\nactors: [{name: a, kind: thread, "
                                          "steps: [{aquire: L}]}]\n", encoding="utf-8")
    r = tracer_cli("explore", str(tmp_path / bad), cwd=tmp_path)
    assert r.returncode == 2
    assert "Traceback" not in r.stderr and r.stderr.strip()


@pytest.mark.timeout(120)
def test_bundled_rare_deadlocks_are_found_where_a_run_never_sees_them(tmp_path: Path) -> None:
    for name in ("rare_deadlock", "asyncio_rare_deadlock"):
        text = (SCENARIOS / f"{name}.yaml").read_text(encoding="utf-8")
        result, _ = run_yaml(text)
        assert result.status == "ok"
        code, report = explore(tmp_path, text, "--runs", "100", "--seed", "7")
        assert code == 1
        assert "deadlock" in {f["kind"] for f in report["findings"]}  # type: ignore[union-attr]


@pytest.mark.timeout(120)
def test_dfs_is_repeatable(tmp_path: Path) -> None:
    _, a = explore(tmp_path, COROUTINE_PHILOSOPHERS, "--strategy", "dfs", "--runs", "500")
    _, b = explore(tmp_path, COROUTINE_PHILOSOPHERS, "--strategy", "dfs", "--runs", "500")
    assert a == b


TIMED = """
name: timed
description: B tries the lock with a timeout while A may hold it.
primitives: {L: lock}
actors:
  - {name: A, kind: thread, steps: [{acquire: L}, {sleep: 5}, {release: L}]}
  - {name: B, kind: thread, steps: [{acquire: L, timeout: 30}, {release: L}]}
"""


@pytest.mark.timeout(120)
def test_a_timeout_expires_in_the_schedules_where_it_cannot_go_on(tmp_path: Path) -> None:
    """Both outcomes of B's timed acquire are explored (it gets the lock; it times out while A
    holds it), without waiting for any of the 35 s of sleeps and timeouts."""
    code, report = explore(tmp_path, TIMED, "--strategy", "dfs")
    assert code == 1 and report["complete"] is True
    # B releasing a lock it did not get (its acquire timed out) is misuse, in some schedules
    misuse = [f for f in report["findings"] if f["kind"] == "misuse"]  # type: ignore[union-attr]
    assert misuse and set(misuse[0]["actors"]) == {"B"}
    assert 1 <= misuse[0]["count"] < report["runs"]  # type: ignore[operator]


@pytest.mark.timeout(120)
def test_in_process_exploration_leaves_no_thread_behind() -> None:
    """Explorations reuse actor threads and one event loop across schedules; when they end,
    every one of them has ended too (the autouse fixture checks it after this test)."""
    from tracer import explore, load_scenario_text

    for text in (RARE_ABBA, COROUTINE_PHILOSOPHERS):
        plan = load_scenario_text(text)
        assert explore(plan, runs=20, seed=1, strategy="random", depth=3).runs == 20
        assert explore(plan, strategy="dfs", runs=20).runs >= 1


@pytest.mark.timeout(120)
@pytest.mark.parametrize("name", ["bank_account_race", "lost_wakeup",
                                  "asyncio_rare_deadlock", "dining_philosophers"])
def test_equivalent_schedules_count_the_same_problems_as_analyzing_each(name: str) -> None:
    """An equivalent schedule's problems are counted without analyzing it again: the counts
    must be exactly those of analyzing every schedule."""
    from tracer import explore, load_scenario_text

    plan = load_scenario_text((SCENARIOS / f"{name}.yaml").read_text(encoding="utf-8"))
    fast = explore(plan, runs=120, seed=3, strategy="random", depth=3)
    slow = explore(plan, runs=120, seed=3, strategy="random", depth=3, reuse=False)
    assert {k: g["count"] for k, g in fast.groups.items()} == \
        {k: g["count"] for k, g in slow.groups.items()}
    assert fast.groups  # each of these has a problem to count
    assert len(fast.keys) < fast.runs  # and schedules that repeat one seen before


@pytest.mark.timeout(120)
def test_ctrl_c_stops_an_exploration_and_keeps_what_it_found() -> None:
    """Ctrl-C (here: the interrupt raised in the main thread after the 5th schedule, the way a
    terminal's SIGINT arrives) ends the search with what the schedules run so far found; no
    thread is left (the autouse fixture checks)."""
    import _thread

    from tracer import explore, load_scenario_text

    seen = []

    def progress(n: int) -> None:
        seen.append(n)
        if len(seen) == 5:
            _thread.interrupt_main()

    plan = load_scenario_text((SCENARIOS / "dining_philosophers.yaml").read_text(
        encoding="utf-8"))
    found = explore(plan, strategy="dfs", runs=100_000, progress=progress)
    assert found.interrupted and not found.complete
    assert 5 <= found.runs < 100
    assert found.groups  # the lock-order risk of the first schedules is kept


def test_the_scenarios_explore_mapping_gives_the_defaults(tmp_path: Path) -> None:
    """`explore: {runs, seed, strategy}` in the scenario is what `tracer explore` does when
    the command line does not say; an option given there wins."""
    text = bank(locked=False) + "explore: {runs: 7, seed: 3, strategy: pct}\n"
    _, doc = explore(tmp_path, text)
    assert (doc["runs"], doc["seed"], doc["strategy"]) == (7, 3, "pct")
    _, doc = explore(tmp_path, text, "--runs", "4", "--strategy", "random")
    assert (doc["runs"], doc["seed"], doc["strategy"]) == (4, 3, "random")
    _, doc = explore(tmp_path, bank(locked=False))
    assert (doc["runs"], doc["seed"], doc["strategy"]) == (100, 0, "random")
