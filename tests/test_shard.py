"""`tracer explore --shard K/N` and `tracer merge`: the shards of an exploration, run apart
(here: separate processes, as on the machines of a CI matrix), merge into exactly the JSON
document of the unsharded run, and each problem's first trace is written by the shard that
ran it, under the unsharded name, and replays; bad shards and bad merges exit 2 with one
message."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import SCENARIOS, tracer_cli

import tracer.api
from tracer import load_scenario


def _explore(cwd: Path, scenario: Path, traces: str, *args: str,
             env: dict[str, str] | None = None) -> dict[str, Any]:
    """``tracer explore SCENARIO --format json --traces TRACES ARGS`` in a subprocess."""
    r = subprocess.run([sys.executable, "-m", "tracer", "explore", str(scenario), "--format",
                        "json", "--traces", traces, *args], cwd=cwd,
                       env={**os.environ, "PYTHONUTF8": "1", **(env or {})},
                       capture_output=True, text=True, timeout=120, check=False)
    assert r.returncode in (0, 1), r.stderr
    doc: dict[str, Any] = json.loads(r.stdout)
    return doc


def _shards(cwd: Path, scenario: Path, n: int, *args: str) -> list[Path]:
    """Run the n shards, each with its own traces folder (as on separate machines); the
    paths of their JSON outputs."""
    out = []
    for k in range(1, n + 1):
        doc = _explore(cwd, scenario, f"shard{k}", "--shard", f"{k}/{n}", *args)
        path = cwd / f"shard{k}.json"
        path.write_text(json.dumps(doc), encoding="utf-8")
        out.append(path)
    return out


def _without_folder(doc: dict[str, Any]) -> dict[str, Any]:
    """The document with each trace path reduced to its file name (each shard wrote into
    its own folder)."""
    out = json.loads(json.dumps(doc))
    for f in out["findings"]:
        f["trace"] = Path(f["trace"]).name
    return dict(out)


CASES = [  # scenario, strategy, shards, runs, extra options
    ("rare_deadlock", "random", 3, 30, ()),
    ("bank_account_race", "pct", 2, 30, ()),
    ("asyncio_rare_deadlock", "pct", 3, 24, ()),
    ("dining_philosophers", "random", 2, 24, ("--jobs", "2")),
    ("lost_wakeup", "random", 7, 5, ()),  # more shards than runs: two of them run none
]


@pytest.mark.timeout(300)
@pytest.mark.parametrize(("name", "strategy", "n", "runs", "extra"), CASES)
def test_merged_shards_equal_the_unsharded_run(tmp_path: Path, name: str, strategy: str,
                                               n: int, runs: int,
                                               extra: tuple[str, ...]) -> None:
    scenario = SCENARIOS / f"{name}.yaml"
    opts = ("--runs", str(runs), "--seed", "7", "--strategy", strategy)
    whole = _explore(tmp_path, scenario, "whole", *opts)
    parts = _shards(tmp_path, scenario, n, *opts, *extra)
    r = tracer_cli("merge", *map(str, reversed(parts)), cwd=tmp_path, timeout=60)
    assert r.returncode == 1, r.stderr  # each of these has a problem to find
    merged = json.loads(r.stdout)
    assert list(merged) == list(whole)  # the same fields, in the same order
    assert _without_folder(merged) == _without_folder(whole)
    assert whole["findings"] and whole["runs"] == runs
    for f in merged["findings"]:
        # the shard that ran the first schedule wrote its trace, under the unsharded name
        k = next(k for k in range(1, n + 1)
                 if f["first_run"] in range((k - 1) * runs // n, k * runs // n))
        assert Path(f["trace"]).parent.name == f"shard{k}"
        assert (tmp_path / f["trace"]).is_file()
    replay = tracer_cli("replay", merged["findings"][0]["trace"], cwd=tmp_path, timeout=60)
    assert replay.returncode in (0, 1), replay.stderr
    assert "identical" in replay.stdout, replay.stdout


@pytest.mark.timeout(120)
def test_merge_prints_the_unsharded_text_summary(tmp_path: Path) -> None:
    scenario = SCENARIOS / "rare_deadlock.yaml"
    r = tracer_cli("explore", str(scenario), "--runs", "12", "--seed", "7", "--traces",
                   "whole", cwd=tmp_path, timeout=120)
    parts = _shards(tmp_path, scenario, 2, "--runs", "12", "--seed", "7")
    m = tracer_cli("merge", "--format", "text", *map(str, parts), cwd=tmp_path, timeout=60)
    assert m.returncode == r.returncode == 1, m.stderr
    assert m.stdout.replace("shard1/", "whole/").replace("shard2/", "whole/") == r.stdout


@pytest.mark.timeout(120)
def test_schedule_keys_do_not_depend_on_the_hash_seed(tmp_path: Path) -> None:
    """The distinct schedules of shards run in other processes (other hash seeds) must be
    recognised as the same: the keys are digests, not Python's randomized hash()."""
    scenario = SCENARIOS / "bank_account_race.yaml"
    a, b = (_explore(tmp_path, scenario, "t", "--runs", "10", "--shard", "1/1",
                     env={"PYTHONHASHSEED": s}) for s in ("1", "2"))
    assert a["shard"]["keys"] == b["shard"]["keys"]
    assert len(a["shard"]["keys"]) == a["distinct_schedules"]


@pytest.mark.timeout(120)
def test_the_api_merges_explorations(tmp_path: Path) -> None:
    """tracer.api.explore(shard=(k, n)) and tracer.api.merge: the same problems, counts,
    first schedules and distinct schedules as one exploration."""
    plan = load_scenario(SCENARIOS / "rare_deadlock.yaml")
    whole = tracer.api.explore(plan, runs=20, seed=3)
    parts = [tracer.api.explore(plan, runs=20, seed=3, shard=(k, 3)) for k in (3, 1, 2)]
    assert sum(p.runs for p in parts) == 20
    merged = tracer.api.merge(parts)

    def summary(found: Any) -> dict[Any, tuple[Any, ...]]:
        return {k: (g["count"], g["first_run"], g["message"], g["actors"], g["objects"])
                for k, g in found.groups.items()}
    assert summary(merged) == summary(whole) and whole.groups
    assert merged.keys == whole.keys and merged.runs == whole.runs
    assert merged.whole is not None and merged.whole.count == 3
    # the first trace is that of the first schedule (the same schedule: the same events)
    for key, g in whole.groups.items():
        ops = [[(e["actor"], e["op"], e.get("target")) for e in json.loads(x["text"])["events"]]
               for x in (g, merged.groups[key])]
        assert ops[0] == ops[1]
    with pytest.raises(tracer.api.MergeError, match="missing"):
        tracer.api.merge(parts[:2])
    with pytest.raises(ValueError, match="1 <= K <= N"):
        tracer.api.explore(plan, runs=5, shard=(0, 2))
    with pytest.raises(ValueError, match="dfs cannot be split"):
        tracer.api.explore(plan, runs=5, strategy="dfs", shard=(1, 2))


@pytest.mark.timeout(60)
@pytest.mark.parametrize(("value", "says"), [
    ("0/2", "1 <= K <= N"), ("3/2", "1 <= K <= N"), ("x", "expected K/N"),
    ("2", "expected K/N"), ("1/0", "1 <= K <= N"), ("-1/2", "expected K/N"),
    ("1/2/3", "expected K/N")])
def test_bad_shard_exits_2(tmp_path: Path, value: str, says: str) -> None:
    r = tracer_cli("explore", str(SCENARIOS / "deadlock.yaml"), "--runs", "2", "--shard",
                   value, cwd=tmp_path)
    assert r.returncode == 2 and says in r.stderr, r.stderr
    assert "Traceback" not in r.stderr and r.stdout == ""


@pytest.mark.timeout(60)
def test_dfs_refuses_shards(tmp_path: Path) -> None:
    r = tracer_cli("explore", str(SCENARIOS / "deadlock.yaml"), "--strategy", "dfs",
                   "--shard", "1/2", cwd=tmp_path)
    assert r.returncode == 2 and "dfs cannot be split" in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    # a dfs the scenario's explore: mapping chose: the message says where it came from
    scenario = tmp_path / "dfs.yaml"
    scenario.write_text((SCENARIOS / "deadlock.yaml").read_text(encoding="utf-8")
                        + "explore: {runs: 50, strategy: dfs}\n", encoding="utf-8")
    r = tracer_cli("explore", "dfs.yaml", "--shard", "1/2", cwd=tmp_path)
    assert r.returncode == 2 and "dfs cannot be split" in r.stderr, r.stderr
    assert r.stderr.rstrip().endswith("(dfs is dfs.yaml's explore: strategy; --strategy "
                                      "random or pct replaces it)"), r.stderr


@pytest.fixture(scope="module")
def outputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Shard outputs to merge wrongly: deadlock.yaml in 2 shards (seed 0), its first shard
    with seed 1, with 3 runs, of another scenario, and an unsharded output."""
    d = tmp_path_factory.mktemp("outputs")
    deadlock, other = SCENARIOS / "deadlock.yaml", SCENARIOS / "rare_deadlock.yaml"
    runs: dict[str, tuple[Path, tuple[str, ...]]] = {
        "a1": (deadlock, ("--shard", "1/2")), "a2": (deadlock, ("--shard", "2/2")),
        "seed1": (deadlock, ("--shard", "1/2", "--seed", "1")),
        "runs3": (deadlock, ("--shard", "1/2", "--runs", "3")),
        "other": (other, ("--shard", "1/2")), "plain": (deadlock, ()),
        "three": (deadlock, ("--shard", "1/3"))}
    for name, (scenario, args) in runs.items():
        doc = _explore(d, scenario, "t", "--runs", "4", *args)
        (d / f"{name}.json").write_text(json.dumps(doc), encoding="utf-8")
    (d / "text.json").write_text("deadlock: 4 schedules\n", encoding="utf-8")
    doc = json.loads((d / "a2.json").read_text(encoding="utf-8"))
    doc["shard"]["problems"] = []
    (d / "tampered.json").write_text(json.dumps(doc), encoding="utf-8")
    doc = json.loads((d / "a2.json").read_text(encoding="utf-8"))
    doc["runs"] -= 1  # as if Ctrl-C had stopped it one schedule early...
    (d / "short.json").write_text(json.dumps(doc), encoding="utf-8")
    doc["interrupted"] = True  # ...and it said so
    (d / "cut.json").write_text(json.dumps(doc), encoding="utf-8")
    return d


@pytest.mark.timeout(60)
@pytest.mark.parametrize(("files", "says"), [
    (["a1", "a1"], "shard 1/2 given twice (a1.json and a1.json)"),
    (["a1"], "shard(s) 2/2 missing: merge needs all 2 shards"),
    (["a1", "seed1"], "different explorations (--seed: 0 and 1)"),
    (["a1", "runs3"], "(--runs: 4 and 3)"),
    (["a1", "other"], "(scenario: deadlock and rare_deadlock)"),
    (["a1", "three"], "(number of shards N of --shard K/N: 2 and 3)"),
    (["a1", "plain"], "plain.json: the output of an exploration that was not sharded"),
    (["a1", "text"], "text.json is not JSON"),
    (["a1", "absent"], "cannot read absent.json"),
    (["a1", "tampered"], "tampered.json: its findings do not match its 'shard' field"),
    (["a1", "short"], "short.json: it ran 1 schedules, but shard 2/2 of 4 runs has 2"),
])
def test_bad_merges_exit_2(outputs: Path, files: list[str], says: str) -> None:
    r = tracer_cli("merge", *(f"{f}.json" for f in files), cwd=outputs)
    assert r.returncode == 2, r.stderr
    assert says in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "Traceback" not in r.stderr and r.stdout == ""


@pytest.mark.timeout(60)
def test_a_good_merge_of_the_same_outputs(outputs: Path) -> None:
    """The outputs the bad merges misuse do merge, in any order, into the plain run's."""
    r = tracer_cli("merge", "a2.json", "a1.json", cwd=outputs)
    plain = json.loads((outputs / "plain.json").read_text(encoding="utf-8"))
    assert r.returncode == (1 if plain["findings"] else 0), r.stderr  # exit 1: found
    assert _without_folder(json.loads(r.stdout)) == _without_folder(plain)


@pytest.mark.timeout(60)
def test_a_merge_with_an_interrupted_shard_says_so(outputs: Path) -> None:
    r = tracer_cli("merge", "a1.json", "cut.json", cwd=outputs)
    doc = json.loads(r.stdout)
    assert r.returncode == (1 if doc["findings"] else 0), r.stderr
    assert doc["interrupted"] is True and doc["runs"] == 3
    assert "some shards were interrupted" in r.stderr


@pytest.mark.timeout(60)
def test_a_merged_problem_whose_shard_wrote_no_trace(outputs: Path, tmp_path: Path) -> None:
    """A shard whose trace could not be written (its "trace" null): the merged text says so,
    and points at no error below it (merge has none to show)."""
    doc = json.loads((outputs / "a1.json").read_text(encoding="utf-8"))
    for f in doc["findings"]:
        f["trace"] = None
    (tmp_path / "a1.json").write_text(json.dumps(doc), encoding="utf-8")
    r = tracer_cli("merge", "--format", "text", str(tmp_path / "a1.json"),
                   str(outputs / "a2.json"), cwd=tmp_path)
    assert r.returncode == 1, r.stderr
    assert "  its shard could not write its trace (the shard's run said why)" in r.stdout
    assert "see the error below" not in r.stdout and r.stderr == ""


@pytest.mark.timeout(60)
def test_a_shard_says_which_schedules_it_ran(tmp_path: Path) -> None:
    r = tracer_cli("explore", str(SCENARIOS / "deadlock.yaml"), "--runs", "10", "--shard",
                   "2/3", cwd=tmp_path)
    assert r.returncode in (0, 1), r.stderr
    assert "10 schedules" not in r.stdout and "3 schedules (random, seed 0)" in r.stdout
    assert "shard 2/3: schedules 3 to 5 of 0 to 9" in r.stdout
    r = tracer_cli("explore", str(SCENARIOS / "deadlock.yaml"), "--runs", "2", "--shard",
                   "1/3", cwd=tmp_path)  # shard 1/3 of 2 runs: 0 to 0 (2/3: 0; 3/3: 1)
    assert r.returncode == 0 and "shard 1/3: no schedule (more shards than runs)" in r.stdout


def _doc(index: int, runs: int, findings: list[tuple[str, str, int]]) -> dict[str, Any]:
    """A shard's document of 2 shards of ``runs`` schedules, finding (kind, object,
    first_run) in that order."""
    lo, hi = (index - 1) * runs // 2, index * runs // 2
    return {"runs": hi - lo, "strategy": "random", "seed": 0,
            "findings": [{"kind": k, "actors": ["a"], "objects": [o], "message": f"{k} {o}",
                          "count": 1, "first_run": r, "trace": f"t/s.explore-{r}.json"}
                         for k, o, r in findings],
            "distinct_schedules": hi - lo, "complete": False,
            "shard": {"index": index, "count": 2, "scenario": "s", "digest": "d",
                      "runs": runs, "depth": 3, "max_events": None, "schedules": [lo, hi],
                      "keys": [f"{i:016x}" for i in range(lo, hi)],
                      "problems": [[k, ["a"], [o]] for k, o, _r in findings]}}


@pytest.mark.parametrize(("part", "says"), [
    ("first_run", "its findings do not match its 'shard' field"),
    ("count", "its findings do not match its 'shard' field"),
    ("runs", "it ran 1 schedules, but shard 1/2 of"),
    ("strategy", "its strategy is 'dfs', but only random and pct explorations are sharded"),
])
def test_a_tampered_shard_is_refused_with_one_message(part: str, says: str) -> None:
    """A first schedule the shard did not run, a count over its schedules, a run count past
    2**63 (len() of its range fails) or a dfs is a MergeError, not a wrong merge or a
    crash."""
    one, two = _doc(1, 4, [("error", "X", 1)]), _doc(2, 4, [])
    if part == "first_run":
        one["findings"][0]["first_run"] = 3  # shard 2's schedule
    elif part == "count":
        one["findings"][0]["count"] = 3  # shard 1 ran 2
    elif part == "strategy":
        one["strategy"] = two["strategy"] = "dfs"  # dfs is never sharded
    else:
        for d in (one, two):
            d["shard"]["runs"] = 2**64
        one["runs"], one["shard"]["schedules"] = 1, [0, 2**63]
        two["shard"]["schedules"] = [2**63, 2**64]
    with pytest.raises(tracer.api.MergeError, match=re.escape(says)):
        tracer.api.merge([one, two])


@pytest.mark.timeout(10)
def test_missing_shards_of_a_huge_n_are_told_at_once() -> None:
    """`--shard 1/1000000000000` (a typo): merging its one output lists the first missing
    shards and counts the rest, instead of walking all N."""
    doc = _doc(1, 4, [])
    doc["runs"] = doc["distinct_schedules"] = 0
    doc["shard"].update(count=10**12, schedules=[0, 0], keys=[])
    with pytest.raises(tracer.api.MergeError, match=re.escape(
            "shard(s) 2/1000000000000, 3/1000000000000, ") + ".* and 999999999989 more "
            "missing: merge needs all 1000000000000 shards"):
        tracer.api.merge([doc])


def test_two_problems_first_seen_in_one_schedule_keep_their_order() -> None:
    """Two errors first seen in schedule 1 (in the order Y, X), X also in schedule 3 of the
    other shard: merged in any order, the findings are Y then X, as in the unsharded run."""
    one = _doc(1, 4, [("error", "Y", 1), ("error", "X", 1)])
    two = _doc(2, 4, [("error", "X", 3)])
    for parts in ([one, two], [two, one]):
        merged = tracer.api.merge(parts)
        assert [(g["objects"], g["first_run"], g["count"]) for g in merged.groups.values()] \
            == [(["Y"], 1, 1), (["X"], 1, 2)]
        assert merged.runs == 4 and len(merged.keys) == 4
