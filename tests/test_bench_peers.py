"""bench/peers.py's offline parts: what it reads from GNU time and from the explorers' reports,
the per-pair slopes and the tables it prints, and the work it hands to tracer (the scenario
loads, the bank program keeps its bug and gets its final check). The bench itself installs the
peers from PyPI and is no test."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

from tracer import load_scenario_text

ROOT = Path(__file__).resolve().parent.parent


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_peers", ROOT / "bench" / "peers.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_peers"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


peers = _load()


def test_parse_time_takes_the_last_gnu_time_line() -> None:
    stderr = "some output\nTIME 9.99 1\nwarning\nTIME 1.25 48996\n"
    assert peers.parse_time(stderr) == (1.25, 48996)
    with pytest.raises(ValueError, match="GNU time"):
        peers.parse_time("Traceback ...\n")


def test_slope_cancels_what_does_not_grow_with_the_work() -> None:
    # 0.5 s of start-up, then 2 us per pair; the medians ignore one noisy run each
    small = [0.5 + 100_000 * 2e-6, 9.0, 0.5 + 100_000 * 2e-6]
    large = [0.5 + 300_000 * 2e-6, 0.5 + 300_000 * 2e-6, 0.1]
    assert peers.slope(small, large, 100_000, 300_000) == pytest.approx(2e-6)
    with pytest.raises(ValueError):
        peers.slope([1.0], [2.0], 10, 10)


def test_cost_table_gives_us_per_pair_and_the_ratio_to_the_bare_lock() -> None:
    bare = peers.CostRow("bare threading.Lock", lambda n: [], (1_000, 3_000),
                         walls=([0.1, 0.1], [0.1004, 0.1004]))
    other = peers.CostRow("tool", lambda n: [], (1_000, 3_000), walls=([1.0], [1.02]))
    rows = peers.cost_table([bare, other], "bare threading.Lock")
    assert rows[0][:3] == ["bare threading.Lock", "0.20", "1x"]
    assert rows[1][:4] == ["tool", "10.00", "50x", "1,000 / 3,000"]
    table = peers.format_table(["what", "us", "x", "pairs", "wall"], rows).splitlines()
    assert table[0].startswith("| what ") and set(table[1]) == {"|", "-"}
    assert len({len(line) for line in table}) == 1  # the columns line up


def test_reports_of_both_explorers_give_schedules_and_first_hits() -> None:
    tracer_out = json.dumps({"runs": 300, "findings": [
        {"kind": "race", "first_run": 0}, {"kind": "deadlock", "first_run": 3},
        {"kind": "deadlock", "first_run": 9}]}, indent=2)
    got = peers.tracer_report(peers.Timed(1.0, 1, tracer_out))
    assert got == {"explored": 300, "first": {"race": 1, "deadlock": 4}}
    frontrun_out = ("frontrun noise\n" + json.dumps(
        {"explored": 3, "first_bug": None, "deadlock": True, "first_deadlock": 3,
         "seconds": 0.07}) + "\n")
    got = peers.frontrun_report(peers.Timed(1.0, 1, frontrun_out))
    assert got == {"explored": 3, "first": {"deadlock": 3}, "seconds": 0.07}
    with pytest.raises(ValueError, match="no JSON"):
        peers.last_json("nothing here\n")


def _runs(wall: float, explored: int, first: dict[str, int],
          seconds: float | None = None) -> list[tuple[object, dict[str, object]]]:
    rep: dict[str, object] = {"explored": explored, "first": first}
    if seconds is not None:
        rep["seconds"] = seconds
    return [(peers.Timed(wall, 1, ""), rep)]


def test_explore_table_rates_and_stops() -> None:
    rate = peers.ExploreRow("bank race", "tracer", lambda n: [], (100, 300), (0, 1), dict)
    rate.done = [_runs(1.0, 100, {"invariant": 4}), _runs(1.5, 300, {"invariant": 4})]
    stopped = peers.ExploreRow("rare ABBA", "frontrun random", lambda n: [], (100, 300), (0,),
                               dict)
    stopped.done = [_runs(0.4, 1, {"deadlock": 1}, 0.06), _runs(0.4, 1, {"deadlock": 1}, 0.06)]
    missed = peers.ExploreRow("5 philosophers", "frontrun DPOR", lambda n: [], (100, 300), (0,),
                              dict)
    missed.done = [_runs(1.0, 100, {}), _runs(3.0, 300, {})]
    rows = peers.explore_table([rate, stopped, missed])
    assert rows[0][2:4] == ["400", "invariant at 4"]
    assert rows[1][2:4] == ["stops: 1 in 0.060 s in-process", "deadlock at 1"]
    assert rows[2][2:4] == ["100", "not found"]


def test_the_work_handed_to_tracer_is_valid() -> None:
    plan = load_scenario_text(peers.lock_scenario(1000))
    assert plan is not None
    assert load_scenario_text(peers.ABBA) is not None
    bank = peers.bank_program()
    assert "assert a1.money >= 0" in bank and "draw2.join()" in bank
    compile(bank, "bank.py", "exec")
    for name in ("LOCKS", "LOCKS_WITH", "THREADLE_LOCKS", "FRONTRUN_COOPERATIVE_LOCKS",
                 "FRONTRUN_LOCKS", "FRONTRUN_EXPLORE"):
        compile(getattr(peers, name), f"{name}.py", "exec")
