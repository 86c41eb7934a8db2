"""The tutorial's thread listings (``tests/programs/tutorial``), traced by ``tracer run`` as a
user runs them, give the findings a user expects.

The listings are the tutorial's code unchanged, except: ``bank_nolock.py`` (互斥锁 with its
lock removed and its ``sleep`` active), ``bank_account_lock.py`` (互斥锁 with the lock kept in
the account), and ``semaphore.py`` and ``deadlock.py``, which the tutorial describes in prose
only (信号量, 死锁) -- each says so at its top. None of them loops forever: the producer and
consumer of 生产者消费者模式 do, but they are daemon threads the program abandons after its
``sleep(10)``, so it runs as printed. The listings sleep as the tutorial wrote them (3 x 3 s
for the thread listings, 10 s for the producer/consumer), so every listing runs at once, in
parallel, once for the module (``runs``), with a timeout above the longest.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

TUTORIAL = Path(__file__).resolve().parent / "programs" / "tutorial"
LISTINGS = ["thread_function", "thread_class", "join", "daemon", "bank", "bank_nolock",
            "bank_account_lock", "semaphore", "event", "producer_consumer", "deadlock"]
CLEAN = ["thread_function", "thread_class", "join", "daemon", "bank", "bank_account_lock",
         "semaphore", "event", "producer_consumer"]


class Run:
    """One listing's run: the command's exit status and output, its trace, and what
    ``tracer analyze --format json`` found in it."""

    def __init__(self, name: str, proc: subprocess.CompletedProcess[str],
                 trace: dict[str, Any], findings: list[dict[str, Any]]) -> None:
        self.name, self.proc, self.trace, self.findings = name, proc, trace, findings

    @property
    def out(self) -> str:
        return self.proc.stdout + self.proc.stderr

    def events(self, op: str, target: str | None = None) -> list[dict[str, Any]]:
        return [e for e in self.trace["events"]
                if e["op"] == op and (target is None or e.get("target") == target)]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Run]:
    tmp = tmp_path_factory.mktemp("tutorial")
    cmd = [sys.executable, "-m", "tracer"]
    started = {n: subprocess.Popen([*cmd, "run", str(TUTORIAL / f"{n}.py"), "-o",
                                    str(tmp / f"{n}.json"), "--timeout", "30"],
                                   cwd=tmp, text=True, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE)
               for n in LISTINGS}
    done: dict[str, subprocess.CompletedProcess[str]] = {}
    try:
        for n, p in started.items():
            out, err = p.communicate(timeout=50)
            done[n] = subprocess.CompletedProcess(p.args, p.returncode, out, err)
    finally:
        for p in started.values():
            if p.poll() is None:
                p.kill()
                p.wait()
    analyzed = {n: subprocess.Popen([*cmd, "analyze", str(tmp / f"{n}.json"), "--format",
                                     "json"], cwd=tmp, text=True, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE)
                for n in LISTINGS}
    result = {}
    for n, p in analyzed.items():
        out, _ = p.communicate(timeout=50)
        assert (tmp / f"{n}.json").exists(), done[n].stdout + done[n].stderr
        trace = json.loads((tmp / f"{n}.json").read_text())
        result[n] = Run(n, done[n], trace, json.loads(out)["findings"])
    return result


@pytest.mark.parametrize("name", CLEAN)
def test_a_correct_listing_has_no_finding(runs: dict[str, Run], name: str) -> None:
    r = runs[name]
    assert r.proc.returncode == 0, r.out
    assert r.trace["outcome"]["status"] == "ok", r.out
    assert r.findings == [], r.findings
    assert r.trace["program"]["exit_status"] == 0


def test_thread_listings_run_both_threads_to_their_end(runs: dict[str, Run]) -> None:
    for name in ("thread_function", "thread_class", "join"):
        r = runs[name]
        actors = {a["name"]: a["status"] for a in r.trace["actors"]}
        assert len(actors) == 3 and set(actors.values()) == {"ok"}, (name, actors)
        for t in ("t1", "t2"):
            assert f"线程{t},end" in r.proc.stdout or f"线程:{t},end" in r.proc.stdout, r.out
    # the class listing's threads are named by their run: t1, t2
    assert {a["name"] for a in runs["thread_class"].trace["actors"]} == {"MainThread", "t1",
                                                                         "t2"}
    # join(): main ends after both threads, and says so last
    r = runs["join"]
    out = r.proc.stdout  # (the threads' prints may share a line: print writes in two parts)
    assert out.index("主线程,end") > max(out.index("线程t1,end"), out.index("线程t2,end"))
    joins = [e for e in r.events("join") if e["phase"] == "return"]
    assert [e["result"] for e in joins] == ["ok", "ok"]
    assert [e["line"] for e in joins] == ["join.py:21", "join.py:22"]
    # without join() main ends first: its last line comes before the threads' ends
    out = runs["thread_function"].proc.stdout
    assert out.index("主线程,end") < out.index("线程t1,end")


def test_the_daemon_listing_ends_with_its_daemon_abandoned(runs: dict[str, Run]) -> None:
    r = runs["daemon"]
    assert {a["name"]: (a["daemon"], a["status"]) for a in r.trace["actors"]} == {
        "MainThread": (False, "ok"), "t1": (True, "abandoned")}
    assert "thread:t1,2" not in r.proc.stdout  # it never got to its last round


def test_the_bank_account_with_its_lock_never_overdraws(runs: dict[str, Run]) -> None:
    r = runs["bank"]
    assert "账户余额不足" in r.proc.stdout and "余额:-" not in r.proc.stdout, r.out
    assert r.trace["program"]["primitives"]["lock"] == {"type": "lock", "site": "bank.py:37"}
    acquires = [e for e in r.events("acquire", "lock") if e["phase"] == "return"]
    assert [e["line"] for e in acquires] == ["bank.py:23", "bank.py:23"]


def test_a_lock_kept_in_the_account_is_named_account_lock(runs: dict[str, Run]) -> None:
    r = runs["bank_account_lock"]
    assert r.trace["program"]["primitives"] == {
        "Account.lock": {"type": "lock", "site": "bank_account_lock.py:12"}}
    assert {e["line"] for e in r.events("acquire", "Account.lock")} == {
        "bank_account_lock.py:25"}
    assert "余额:-" not in r.proc.stdout


def test_the_bank_account_without_its_lock_is_overdrawn(runs: dict[str, Run]) -> None:
    r = runs["bank_nolock"]
    # the program's own output shows it: both withdrawals went through
    assert "账户名:Jack,余额:-80" in r.proc.stdout, r.out
    assert "账户余额不足" not in r.proc.stdout
    assert r.trace["outcome"]["status"] == "ok"


def test_the_bank_account_without_its_lock_races_on_money(runs: dict[str, Run]) -> None:
    pytest.importorskip("tracer.program._rewrite")  # (the shared accesses are recorded)
    r = runs["bank_nolock"]
    assert r.proc.returncode == 1, r.out
    races = [f for f in r.findings if f["kind"] == "race"]
    assert any("Account#1.money" in f["objects"] for f in races), r.findings
    assert "race on Account#1.money" in r.proc.stdout


def test_the_semaphore_lets_two_read_at_once_never_three(runs: dict[str, Run]) -> None:
    r = runs["semaphore"]
    assert r.trace["program"]["primitives"]["semaphore"] == {
        "type": "semaphore", "value": 2, "site": "semaphore.py:18"}
    inside, most = 0, 0
    for e in r.trace["events"]:
        if e.get("target") != "semaphore":
            continue
        if e["op"] == "acquire" and e["phase"] == "return" and e["result"] == "ok":
            inside += 1
        elif e["op"] == "release":
            inside -= 1
        most = max(most, inside)
    assert most == 2 and inside == 0


def test_the_event_wakes_both_diners_after_main_sets_it(runs: dict[str, Run]) -> None:
    r = runs["event"]
    (set_,) = r.events("set", "event")
    assert set_["actor"] == "MainThread" and set_["line"] == "event.py:26"
    waits = [e for e in r.events("wait", "event") if e["phase"] == "return"]
    assert len(waits) == 2 and all(w["result"] == "ok" and w["seq"] > set_["seq"]
                                   for w in waits)
    assert r.proc.stdout.count("开始干饭") == 3  # main's notice, then each diner


def test_producer_and_consumer_hand_over_buns_in_order_then_are_abandoned(
        runs: dict[str, Run]) -> None:
    r = runs["producer_consumer"]
    puts = [e["item"] for e in r.events("put", "queue") if e["phase"] == "call"]
    gets = [e["item"] for e in r.events("get", "queue") if e["phase"] == "return"
            and e["result"] == "ok"]
    assert len(gets) >= 5 and gets == puts[:len(gets)], (puts, gets)
    assert puts[0] == "馒头1号"
    assert {a["name"]: a["status"] for a in r.trace["actors"]} == {
        "MainThread": "ok", "Thread-1 (producer)": "abandoned",
        "Thread-2 (consumer)": "abandoned"}
    assert "主线程结束" in r.proc.stdout


def test_the_two_lock_deadlock_is_seen_live(runs: dict[str, Run]) -> None:
    r = runs["deadlock"]
    assert r.proc.returncode == 1, r.out
    assert r.trace["outcome"]["status"] == "deadlock"
    last = r.trace["events"][-1]
    assert last["op"] == "deadlock" and {"lock_a", "lock_b"} <= set(last["objects"])
    assert "t1 holds lock_a (deadlock.py:13) and waits for lock_b (deadlock.py:16)" in r.out
    assert "t2 holds lock_b (deadlock.py:21) and waits for lock_a (deadlock.py:24)" in r.out
    assert r.trace["program"]["primitives"]["lock_a"] == {"type": "lock",
                                                          "site": "deadlock.py:7"}


def _tracer(tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tracer", *args], cwd=tmp, text=True,
                          capture_output=True, timeout=120, check=False)


@pytest.mark.parametrize(("name", "kind", "objects"), [
    ("bank_nolock", "race", {"Account#1.money"}),
    ("deadlock", "deadlock", {"lock_a", "lock_b"}),
])
def test_explore_finds_the_bank_race_and_the_deadlock_and_their_traces_replay(
        tmp_path: Path, name: str, kind: str, objects: set[str]) -> None:
    proc = _tracer(tmp_path, "explore", str(TUTORIAL / f"{name}.py"), "--runs", "20",
                   "--format", "json", "--traces", str(tmp_path / "traces"))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    found = {f["kind"]: f for f in json.loads(proc.stdout)["findings"]}
    assert kind in found
    assert objects <= set(found[kind]["objects"])
    # the schedule that showed it, replayed: the same operations in the same order, and the
    # same problem in the replay's trace
    replayed = tmp_path / "replayed.json"
    again = _tracer(tmp_path, "replay", found[kind]["trace"], "-o", str(replayed))
    assert "identical" in again.stdout, again.stdout + again.stderr
    analyzed = _tracer(tmp_path, "analyze", str(replayed), "--format", "json")
    kinds = {f["kind"]: f for f in json.loads(analyzed.stdout)["findings"]}
    assert kind in kinds and objects <= set(kinds[kind]["objects"])


def test_the_free_runs_bank_race_and_deadlock_traces_replay_identically(
        runs: dict[str, Run], tmp_path: Path) -> None:
    for name in ("bank_nolock", "deadlock"):
        trace = tmp_path / f"{name}.json"
        trace.write_text(json.dumps(runs[name].trace))
        again = _tracer(tmp_path, "replay", str(trace), "-o", str(tmp_path / f"{name}.r.json"))
        assert "identical" in again.stdout, (name, again.stdout + again.stderr)
