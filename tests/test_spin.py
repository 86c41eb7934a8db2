"""Spin loops under explore: a ``while`` round that read only values nobody changed, and
changed nothing, parks its actor until another actor changes one of them (the fairness rule
of CHESS). So a systematic search of a spin-wait ends, Peterson's algorithm is proven clean
(``complete: true``) and its broken variants are found; when every unfinished actor spins or
blocks the run is a ``stall`` (a livelock) that names the loops; under ``run`` the loop just
goes on up to its ``max``. For each actor kind (thread, coroutine, process)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import check_shape, run_yaml, tracer_cli

from tracer.api import _judge, explore
from tracer.engine.schedule.explore.search import explore_dfs
from tracer.scenario import load_scenario_text

KINDS = ["thread", "coroutine", "process"]


def flag_wait(kind: str) -> str:
    """t1 spins until t2 sets the flag."""
    return f"""
name: spin-wait
shared: {{flag: 0}}
atomic: [flag]
actors:
  - name: t1
    kind: {kind}
    steps:
      - while: "flag == 0"
        max: 50
        steps: [{{log: waiting}}]
      - log: got it
  - name: t2
    kind: {kind}
    steps:
      - write: {{var: flag, value: 1}}
"""


def livelock(kind: str) -> str:
    """Each waits for the other's flag before it sets its own: nobody ever writes one."""
    return f"""
name: livelock
shared: {{a: 0, b: 0}}
atomic: [a, b]
actors:
  - name: t1
    kind: {kind}
    steps:
      - while: "b == 0"
        max: 50
        steps: [{{log: waiting}}]
      - write: {{var: a, value: 1}}
  - name: t2
    kind: {kind}
    steps:
      - while: "a == 0"
        max: 50
        steps: [{{log: waiting}}]
      - write: {{var: b, value: 1}}
"""


def peterson(kind: str, broken: bool = False) -> str:
    """Peterson's mutual exclusion for p0 and p1; ``broken``: each writes ``turn`` before
    its flag, which lets both into the critical section."""
    def actor(me: int, other: int) -> str:
        enter = [f"{{write: {{var: flag{me}, value: 1}}}}",
                 f"{{write: {{var: turn, value: {other}}}}}"]
        if broken:
            enter.reverse()
        return f"""
  - name: p{me}
    kind: {kind}
    steps:
      - {enter[0]}
      - {enter[1]}
      - while: "flag{other} == 1 and turn == {other}"
        steps: [{{log: waiting}}]
      - add: {{var: in_cs, value: 1, atomic: true}}
      - assert: "in_cs <= 1"
      - add: {{var: in_cs, value: -1, atomic: true}}
      - write: {{var: flag{me}, value: 0}}"""
    return f"""
name: peterson{'-broken' if broken else ''}
shared: {{flag0: 0, flag1: 0, turn: 0, in_cs: 0}}
atomic: [flag0, flag1, turn, in_cs]
actors:{actor(0, 1)}{actor(1, 0)}
"""


def dfs(text: str) -> tuple[bool, list[dict[str, Any]], int]:
    """A dfs exploration of ``text``: (complete, the problems found other than races, how
    many distinct schedules). (Races on ``atomic`` variables are the analysis's business,
    not the spin rule's: left out.)"""
    out = explore(load_scenario_text(text, "<test>"), strategy="dfs", runs=2000)
    found = [g for g in out.groups.values() if g["kind"] != "race"]
    return out.exhaustive, found, len(out.keys)


def cli_explore(tmp_path: Path, text: str) -> dict[str, Any]:
    path = tmp_path / "s.yaml"
    path.write_text(text, encoding="utf-8")
    r = tracer_cli("explore", str(path), "--strategy", "dfs", "--format", "json",
                   "--traces", str(tmp_path / "found"), cwd=tmp_path, timeout=120)
    assert r.returncode in (0, 1), r.stderr
    out: dict[str, Any] = json.loads(r.stdout)
    return out


def cli_replay(tmp_path: Path, trace: str) -> str:
    r = tracer_cli("replay", str(tmp_path / trace), cwd=tmp_path, timeout=60)
    assert r.returncode in (0, 1), r.stderr
    return r.stdout


@pytest.mark.timeout(120)
@pytest.mark.parametrize("kind", KINDS)
def test_a_spin_wait_on_a_flag_another_sets_ends_under_dfs(kind: str) -> None:
    complete, found, schedules = dfs(flag_wait(kind))
    # before the spin rule: every round a new choice, 52 schedules and the loop's max hit
    assert complete
    assert found == []
    assert schedules <= 3


@pytest.mark.timeout(120)
@pytest.mark.parametrize("kind", KINDS)
def test_a_livelock_is_a_stall_under_explore(kind: str) -> None:
    complete, found, _ = dfs(livelock(kind))
    assert complete
    assert [g["kind"] for g in found] == ["stall"]
    msg = found[0]["message"]
    assert sorted(found[0]["actors"]) == ["t1", "t2"]
    assert sorted(found[0]["objects"]) == ["a", "b"]
    assert "t1 spins in 'while: b == 0'" in msg and "reading b, which no actor will change" in msg
    assert "t2 spins in 'while: a == 0'" in msg and "(a livelock)" in msg
    if kind != "process":  # (a process child's plan has no YAML lines)
        assert "'while: b == 0' (line 9)" in msg


@pytest.mark.timeout(120)
@pytest.mark.parametrize("kind", KINDS)
def test_a_livelock_under_run_goes_on_up_to_the_loops_max(kind: str) -> None:
    result, trace = run_yaml(livelock(kind))
    assert result.status == "error"
    assert "the loop 'while: b == 0' is still true after 50 rounds (its max)" in result.detail
    reads = [e for e in trace["events"] if e["op"] == "read" and e["actor"] == "t1"]
    assert len(reads) == 51  # every round read again: nothing parked it


@pytest.mark.timeout(120)
@pytest.mark.parametrize("kind", KINDS)
def test_peterson_is_clean_and_complete_under_dfs(kind: str) -> None:
    complete, found, schedules = dfs(peterson(kind))
    assert complete
    assert found == []
    assert schedules == 16  # (as many as a search without reduction finds: see below)


@pytest.mark.timeout(120)
def test_the_reduction_misses_no_schedule_of_peterson() -> None:
    """DPOR over spinning actors covers every distinct schedule that sleep sets alone (every
    alternative of every choice) cover, and every one a search without any reduction, bounded
    by 4 preemptions, meets: for the clean and the broken algorithm."""
    for broken in (False, True):
        plan = load_scenario_text(peterson("thread", broken), "<test>")
        reduced = explore(plan, strategy="dfs", runs=2000)
        every = explore_dfs(plan, 2000, _judge, dpor=False)
        bounded = explore(plan, strategy="dfs", runs=5000, max_preemptions=4)
        assert reduced.exhaustive and every.exhaustive
        assert reduced.keys == every.keys
        assert bounded.keys <= reduced.keys
        assert set(reduced.groups) == set(every.groups) == set(bounded.groups)


@pytest.mark.timeout(180)
@pytest.mark.parametrize("kind", KINDS)
def test_a_broken_peterson_is_found_and_its_trace_replays(tmp_path: Path, kind: str) -> None:
    out = cli_explore(tmp_path, peterson(kind, broken=True))
    assert out["complete"] is True
    errors = [f for f in out["findings"] if f["kind"] == "error"]
    assert errors, out["findings"]
    assert "assert 'in_cs <= 1' failed: in_cs = 2" in errors[0]["message"]
    said = cli_replay(tmp_path, errors[0]["trace"])
    assert "identical (error:" in said and "assert 'in_cs <= 1' failed: in_cs = 2" in said


@pytest.mark.timeout(60)
def test_peterson_with_its_turn_test_inverted_is_found() -> None:
    """Each waits while the turn is its own (``turn == me``): both get in."""
    text = peterson("thread").replace('and turn == 1"', 'and turn == 0"', 1)
    text = text.replace('"flag0 == 1 and turn == 0"', '"flag0 == 1 and turn == 1"', 1)
    assert '"flag1 == 1 and turn == 0"' in text and '"flag0 == 1 and turn == 1"' in text
    complete, found, _ = dfs(text)
    assert complete
    assert found and all(g["kind"] == "error" for g in found)
    assert all("assert 'in_cs <= 1' failed: in_cs = 2" in g["message"] for g in found)


@pytest.mark.timeout(180)
@pytest.mark.parametrize("kind", KINDS)
def test_a_livelock_trace_replays_to_the_same_stall(tmp_path: Path, kind: str) -> None:
    out = cli_explore(tmp_path, livelock(kind))
    stalls = [f for f in out["findings"] if f["kind"] == "stall"]
    assert len(stalls) == 1
    trace = json.loads((tmp_path / stalls[0]["trace"]).read_text(encoding="utf-8"))
    check_shape(trace)
    assert trace["outcome"]["status"] == "stall"
    last = trace["events"][-1]
    assert last["op"] == "stall" and last["actor"] is None
    spins = {w["actor"]: (w["kind"], w["op"], w["watched"], w["loop"]) for w in last["waits"]}
    assert spins["t1"][:3] == ("spin", "spin", ["b"])
    assert spins["t1"][3].startswith("'while: b == 0'")
    assert {a["name"]: a["status"] for a in trace["actors"]} == {"t1": "blocked",
                                                                 "t2": "blocked"}
    said = cli_replay(tmp_path, stalls[0]["trace"])
    assert f"identical (stall: {stalls[0]['message']})" in said


@pytest.mark.timeout(60)
def test_spinners_reading_one_flag_do_not_wake_each_other() -> None:
    """Two actors spin on a flag nobody writes: a read is no change, so they park for good
    (a stall) instead of waking each other round after round up to their max."""
    text = livelock("thread").replace('"a == 0"', '"b == 0"')
    complete, found, schedules = dfs(text)
    # (two orders of their first reads: reads of one variable are dependent, see docs)
    assert complete and schedules <= 2
    assert [g["kind"] for g in found] == ["stall"]  # and no loop reached its max
    assert "t2 spins in 'while: b == 0'" in found[0]["message"]


TRYLOCK = """
name: trylock
shared: {flag: 0}
atomic: [flag]
primitives: {L: lock}
actors:
  - name: holder
    kind: thread
    steps:
      - acquire: L
      - while: "flag == 0"
        max: 30
        steps: [{log: waiting for flag}]
      - release: L
  - name: tryer
    kind: thread
    locals: {r: ""}
    steps:
      - while: "r != 'ok'"
        max: 30
        steps: [{acquire: L, blocking: false, as: r}]
      - FINAL
"""


@pytest.mark.timeout(60)
def test_a_failed_try_of_a_lock_is_watched_and_no_change() -> None:
    """A loop of non-blocking tries waits for a change of the lock; a failed try changes
    nothing; the holder spinning on a flag nobody sets keeps it: a stall naming both."""
    complete, found, _ = dfs(TRYLOCK.replace("FINAL", "release: L"))
    assert complete
    both = [g for g in found if sorted(g["actors"]) == ["holder", "tryer"]]
    assert [g["kind"] for g in found] == ["stall", "stall"] and both
    msg = both[0]["message"]
    assert "holder holds L (line 10) and spins in 'while: flag == 0'" in msg
    assert "tryer spins in 'while: r != 'ok'' (line 19) reading L" in msg


TRY_OK = """
name: trylock-ok
primitives: {L: lock}
actors:
  - name: holder
    kind: thread
    steps: [{acquire: L}, {log: inside}, {release: L}]
  - name: tryer
    kind: thread
    locals: {r: ""}
    steps:
      - while: "r != 'ok'"
        max: 30
        steps: [{acquire: L, blocking: false, as: r}]
      - release: L
"""


@pytest.mark.timeout(60)
def test_a_try_loop_ends_once_the_holder_lets_go() -> None:
    """The holder's release is a change of the lock: the spinning tryer goes round again
    and gets it, in every schedule."""
    complete, found, schedules = dfs(TRY_OK)
    assert complete
    assert found == []
    assert schedules >= 2  # (the holder first, and the tryer first)


def timed_try(kind: str) -> str:
    """The tryer backs off with a timed acquire until it gets the lock."""
    return f"""
name: timed-try
primitives: {{L: lock}}
actors:
  - name: holder
    kind: {kind}
    steps: [{{acquire: L}}, {{log: inside}}, {{release: L}}]
  - name: tryer
    kind: {kind}
    locals: {{r: ""}}
    steps:
      - while: "r != 'ok'"
        max: 30
        steps: [{{acquire: L, timeout: 0.1, as: r}}]
      - release: L
"""


@pytest.mark.timeout(120)
@pytest.mark.parametrize("kind", KINDS)
def test_a_timed_call_that_times_out_is_a_look(kind: str) -> None:
    """Under explore a timed acquire times out at once when it cannot go on: a round of such
    tries changed nothing, so the tryer waits for the holder's release instead of using up
    its max (as it did before: an error in the schedule where the holder went first)."""
    complete, found, _ = dfs(timed_try(kind))
    assert complete
    assert found == []


def timed_join(kind: str) -> str:
    """``m`` retries a timed join of ``w`` until it returns ok: ``w``'s end is the change."""
    return f"""
name: timed-join
shared: {{x: 0}}
actors:
  - name: w
    kind: {kind}
    steps:
      - write: {{var: x, value: 1}}
  - name: m
    kind: {kind}
    locals: {{r: timeout}}
    steps:
      - while: "r == 'timeout'"
        max: 1000
        steps:
          - {{join: w, timeout: 0.001, as: r}}
"""


@pytest.mark.timeout(120)
@pytest.mark.parametrize("kind", ["thread", "coroutine"])  # (process actors cannot join)
def test_an_actors_end_wakes_a_spinner_that_joins_it(kind: str) -> None:
    """A round of timed joins that timed out watches the joined actor: its end is a change
    (it was not, for coroutines: explore called it a livelock)."""
    complete, found, _ = dfs(timed_join(kind))
    assert complete
    assert found == []
