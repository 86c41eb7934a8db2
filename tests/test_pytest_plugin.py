"""The pytest plugin (tracer/pytest_plugin.py): scenario files as test items, judged by their
``expect``; a failure is the analysis text, the trace and the replay command; the
``tracer_run`` fixture.

Each scenario session runs in a pytest subprocess (pytester's ``runpytest_subprocess``): the
plugin is loaded there as a user's pytest loads it, by the installed entry point. The
scenarios deadlock on every run (a barrier, not a sleep, makes both threads hold their first
lock before they ask for the second).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import unlined

import tracer
from tracer import ScenarioError, load_scenario_text
from tracer.pytest_plugin import TracerRun, is_scenario_file

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parent.parent

ABBA = """\
name: {name}
{extra}primitives: {{A: lock, B: lock, both: {{type: barrier, parties: 2}}}}
actors:
  - name: t1
    kind: thread
    steps: [{{acquire: A}}, {{wait: both}}, {{acquire: B}}]
  - name: t2
    kind: thread
    steps: [{{acquire: B}}, {{wait: both}}, {{acquire: A}}]
"""

# ABBA without the barrier: a real run seldom deadlocks, some schedules do
RARE = """\
name: {name}
{extra}primitives: {{A: lock, B: lock}}
actors:
  - name: t1
    kind: thread
    steps: [{{acquire: A}}, {{acquire: B}}, {{release: B}}, {{release: A}}]
  - name: t2
    kind: thread
    steps: [{{acquire: B}}, {{acquire: A}}, {{release: A}}, {{release: B}}]
"""

BROKEN = """\
name: broken
expect: []
actors:
  - name: t1
    kind: thread
    steps: [{aquire: A}]
"""

# what a traceback through tracer's own code would show
INTERNALS = ("Traceback", "tracer/engine", "tracer/api.py", "tracer/pytest_plugin.py",
             "tracer/scenario")


def abba(name: str, extra: str = "") -> str:
    return ABBA.format(name=name, extra=extra)


def rare(name: str, extra: str = "") -> str:
    return RARE.format(name=name, extra=extra)


def run_inner(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", *args, timeout=50)


def write(pytester: pytest.Pytester, rel: str, text: str) -> Path:
    path = pytester.path / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_scenario_files_are_collected_one_item_each_named_after_the_file(
        pytester: pytest.Pytester) -> None:
    write(pytester, "scenarios/deadlock.yaml", abba("deadlock", "expect: [deadlock]\n"))
    write(pytester, "scenarios/short.yml", abba("short"))
    write(pytester, "lib/checks/abba.tracer.yaml", abba("abba"))
    write(pytester, "lib/config.yaml", "not: a scenario\n")  # not in a `scenarios` folder
    write(pytester, "scenarios/nested/deep.yaml", abba("deep"))  # only the folder's own files
    write(pytester, "scenarios/notes.txt", "not yaml\n")
    # (collection runs nothing: in this process)
    r = pytester.runpytest_inprocess("--collect-only", "-q")
    ids = sorted(line for line in r.outlines if "::" in line)
    assert ids == ["lib/checks/abba.tracer.yaml::abba", "scenarios/deadlock.yaml::deadlock",
                   "scenarios/short.yml::short"], r.outlines
    r = pytester.runpytest_inprocess("--collect-only", "-q", "scenarios/")
    assert sorted(line for line in r.outlines if "::" in line) == [
        "scenarios/deadlock.yaml::deadlock", "scenarios/short.yml::short"]


def test_items_pass_and_fail_against_expect_with_the_report_not_a_traceback(
        pytester: pytest.Pytester) -> None:
    write(pytester, "scenarios/agrees.yaml", abba("agrees", "expect: [deadlock]\n"))
    write(pytester, "scenarios/no_expect.yaml", abba("no_expect"))  # ends: it passes
    write(pytester, "scenarios/wrong.yaml", abba("wrong", "expect: []\n"))
    traces = pytester.path / "my traces"  # a space: the replay command quotes the path
    junit = pytester.path / "junit.xml"
    r = run_inner(pytester, "-rA", f"--tracer-traces={traces}", f"--junitxml={junit}")
    r.assert_outcomes(passed=2, failed=1)
    out = r.stdout.str()
    trace = traces / "scenarios-wrong.json"
    assert trace.is_file()
    replay = f"tracer replay {shlex.quote(str(trace))}"
    assert "'" in replay
    expected = ["wrong.yaml: expect: [], but the run showed deadlock",
                "DEADLOCK (error)",  # the analysis text (tracer analyze's)
                "t1 holds A and waits for B; t2 holds B and waits for A",
                f"trace: {trace}", f"replay it: {replay}",
                f"see them with: tracer show {shlex.quote(str(trace))}"]  # not "TRACE"
    for text in expected:
        assert text in unlined(out), text
    # the scenario's lines are named (tests/test_lines.py checks which)
    assert re.search(r"t1 holds A \([^)]*wrong\.yaml:\d+\) and waits for B \(", out), out
    for word in INTERNALS:
        assert word not in out, word
    failures = [tc.find("failure") for tc in ET.parse(junit).getroot().iter("testcase")]
    (failure,) = [f for f in failures if f is not None]
    for text in expected:
        assert text in unlined(failure.text or ""), text
    # the command shown brings the failure back
    proc = subprocess.run([sys.executable, "-m", "tracer", *shlex.split(replay)[1:]],
                          capture_output=True, text=True, timeout=60, check=False,
                          cwd=pytester.path)
    assert proc.returncode == 1, proc.stderr
    assert "events, identical (deadlock: " in proc.stdout


def test_files_of_one_name_keep_their_own_traces(pytester: pytest.Pytester) -> None:
    """scenarios/same.yaml and scenarios/same.yml: each failure names a trace of its own
    scenario (one file name for both would leave the second run's trace in the first's)."""
    write(pytester, "scenarios/same.yaml", abba("first", "expect: []\n"))
    write(pytester, "scenarios/same.yml", abba("second", "expect: []\n"))
    r = run_inner(pytester, f"--tracer-traces={pytester.path / 'traces'}")
    r.assert_outcomes(failed=2)
    shown = [line.split("trace: ", 1)[1] for line in r.outlines if line.startswith("trace: ")]
    assert len(set(shown)) == 2, r.stdout.str()
    names = {json.loads(Path(p).read_text(encoding="utf-8"))["scenario"]["name"] for p in shown}
    assert names == {"first", "second"}


def test_an_internal_error_of_tracer_fails_a_scenario_without_expect(
        pytester: pytest.Pytester) -> None:
    """A scenario without expect passes when the run (or exploration) ends without an
    internal error: a bug of tracer (injected by the session's conftest) fails it, saying
    so."""
    write(pytester, "scenarios/plain.yaml",
          "name: plain\nprimitives: {E: event}\nactors:\n"
          "  - {name: a, kind: thread, steps: [{set: E}]}\n"
          "  - {name: b, kind: thread, steps: [{wait: E}]}\n")
    write(pytester, "conftest.py",
          "from tracer.prims import event\n"
          "def broken(self, a, tag):\n"
          "    raise RuntimeError('injected bug')\n"
          "event.Event.set = broken\n")
    write(pytester, "scenarios/explored.yaml",
          "name: explored\nexplore: {runs: 3}\nprimitives: {E: event}\nactors:\n"
          "  - {name: a, kind: thread, steps: [{set: E}]}\n"
          "  - {name: b, kind: thread, steps: [{wait: E}]}\n")
    r = run_inner(pytester)
    r.assert_outcomes(failed=2)
    out = r.stdout.str()
    assert ("plain.yaml: tracer failed while running the scenario (a bug in tracer, not in "
            "the scenario): a failed: internal error in tracer: RuntimeError: injected bug"
            in out)
    assert ("explored.yaml: the exploration (random, seed 0: 3 schedules) hit an internal "
            "error of tracer (a bug in tracer, not in the scenario)\n") in out


def test_a_yaml_that_is_no_scenario_says_why_it_was_collected(
        pytester: pytest.Pytester) -> None:
    """Another tool's YAML in a `scenarios` folder fails with the checker's message and how
    to leave it out (a scenario with a mistake gets the message alone)."""
    write(pytester, "scenarios/locust.yaml", "users: 10\nspawn_rate: 2\n")
    write(pytester, "scenarios/broken.yaml", BROKEN)
    r = run_inner(pytester)
    r.assert_outcomes(failed=2)
    out = r.stdout.str()
    assert "locust.yaml:1: 'actors' is required" in out
    assert ("locust.yaml was collected as a tracer scenario (every *.yaml in a folder named "
            "'scenarios' is one): if it is not one, move it, or leave it out with "
            f"--ignore={pytester.path / 'scenarios' / 'locust.yaml'}") in out
    # not for broken.yaml (its section of the report; the short summary at the end shows
    # whole messages when $CI is set)
    broken = re.search(r"_ scenario broken _+\n(.*?)\n_+ scenario locust _", out, re.S)
    assert broken is not None, out
    assert "was collected as a tracer scenario" not in broken.group(1)
    r = run_inner(pytester, f"--ignore={pytester.path / 'scenarios' / 'locust.yaml'}")
    r.assert_outcomes(failed=1)  # the advice works


def test_a_broken_scenario_or_traces_folder_fails_with_one_message(
        pytester: pytest.Pytester) -> None:
    path = write(pytester, "scenarios/broken.yaml", BROKEN)
    write(pytester, "scenarios/valid.yaml", abba("valid", "expect: [deadlock]\n"))
    not_a_folder = write(pytester, "notes.txt", "a file\n")
    r = run_inner(pytester, f"--tracer-traces={not_a_folder}")
    r.assert_outcomes(failed=2)
    out = r.stdout.str()
    assert (f"{path}:6: actors[0].steps[0]: unknown step 'aquire' — did you mean 'acquire'?"
            in out)
    assert f"cannot make the folder for traces {not_a_folder}: " in out
    for word in INTERNALS:
        assert word not in out, word


def test_explore_mapping_explores_and_judges_its_findings(pytester: pytest.Pytester) -> None:
    dfs = "explore: {runs: 100, strategy: dfs}\n"
    write(pytester, "scenarios/found.yaml",
          rare("found", f"expect: [deadlock, potential_deadlock]\n{dfs}"))
    write(pytester, "scenarios/missed.yaml", rare("missed", f"expect: [potential_deadlock]\n{dfs}"))
    write(pytester, "scenarios/seeded.yaml",
          rare("seeded", "expect: [deadlock, potential_deadlock]\n"
                         "explore: {runs: 200, seed: 7, strategy: random}\n"))
    traces = pytester.path / "traces"
    r = run_inner(pytester, f"--tracer-traces={traces}")
    r.assert_outcomes(passed=2, failed=1)
    out = r.stdout.str()
    assert re.search(r"missed\.yaml: expect: \[potential_deadlock\], but the exploration "
                     r"\(dfs: \d+ schedules, every distinct one\) showed deadlock\n", out), out
    line = next(line for line in r.outlines if line.startswith("- deadlock in "))
    assert unlined(line).endswith("t1 holds A and waits for B; t2 holds B and waits for A")
    replays = [line.split("replay it: ")[1] for line in r.outlines if "replay it: " in line]
    assert replays, out
    for cmd in replays:
        assert Path(shlex.split(cmd)[2]).is_file()
        assert Path(shlex.split(cmd)[2]).parent == traces
    assert "DEADLOCK (error)" in out  # the analysis of the schedule that deadlocked
    assert "see them with: tracer show TRACE" not in out  # the schedule's trace, named
    for word in INTERNALS:
        assert word not in out, word


def test_no_tracer_turns_the_plugin_off(pytester: pytest.Pytester) -> None:
    write(pytester, "scenarios/wrong.yaml", abba("wrong", "expect: []\n"))
    write(pytester, "test_uses_fixture.py", "def test_it(tracer_run):\n    pass\n")
    r = pytester.runpytest_inprocess("-p", "no:tracer", "--collect-only", "scenarios")
    assert r.ret == pytest.ExitCode.NO_TESTS_COLLECTED
    r = run_inner(pytester, "-p", "no:tracer", "test_uses_fixture.py")
    r.assert_outcomes(errors=1)
    r.stdout.fnmatch_lines(["*fixture 'tracer_run' not found*"])


def test_the_fixture_in_a_users_test(pytester: pytest.Pytester) -> None:
    write(pytester, "abba.yaml", abba("abba", "expect: [deadlock]\n"))
    write(pytester, "test_user.py", '''
def test_a_file(tracer_run):
    r = tracer_run("abba.yaml")
    assert r.status == "deadlock"
    assert [f.kind for f in r.findings] == ["deadlock"]
    assert r.expect_mismatch is None
    assert r.trace.is_file()

def test_a_broken_mapping(tracer_run):
    tracer_run({"name": "x", "actors": [{"name": "a", "kind": "thred"}]})
''')
    r = run_inner(pytester)
    r.assert_outcomes(passed=1, failed=1)
    out = r.stdout.str()
    assert ("ScenarioError: <mapping>: actors[0].kind: Input should be 'thread', 'process' or "
            "'coroutine', got 'thred' — did you mean 'thread'?") in out
    assert "tracer/scenario" not in out  # the checker's frames are not shown


PROC = """\
name: proc
primitives: {L: lock}
actors:
  - name: p
    kind: process
    steps: [{acquire: L}, {release: L}]
"""


def test_the_fixture_leaves_no_helper_process_after_the_session(
        pytester: pytest.Pytester) -> None:
    """A process actor run by tracer_run starts multiprocessing's forkserver; the session
    stops it at its end, as it does after scenario items (read after every
    pytest_unconfigure, the plugin's included)."""
    write(pytester, "proc.yaml", PROC)
    write(pytester, "test_user.py",
          "def test_a_process(tracer_run):\n"
          "    assert tracer_run('proc.yaml').status == 'ok'\n")
    write(pytester, "conftest.py", """
import pytest
from multiprocessing import forkserver

@pytest.hookimpl(wrapper=True)
def pytest_unconfigure(config):
    yield
    with open("helpers.txt", "w") as f:
        f.write(repr(forkserver._forkserver._forkserver_pid))
""")
    r = run_inner(pytester)
    r.assert_outcomes(passed=1)
    assert (pytester.path / "helpers.txt").read_text(encoding="utf-8") == "None"


# ---------------------------------------------------------------------------------------------
# in this session (the plugin is loaded here too, by its entry point)


def test_tracer_run_returns_outcome_findings_and_a_trace_under_tmp_path(
        tracer_run: Callable[..., TracerRun], tmp_path: Path) -> None:
    mapping: dict[str, Any] = {
        "name": "self lock", "expect": ["deadlock", "misuse"],
        "primitives": {"L": "lock"},
        "actors": [{"name": "t", "kind": "thread", "steps": [{"acquire": "L"},
                                                              {"acquire": "L"}]}]}
    r = tracer_run(mapping)
    assert r.status == "deadlock"
    assert "t" in r.detail
    assert r.kinds == ["deadlock", "misuse"]
    assert r.expect_mismatch is None
    assert r.trace.parent == tmp_path and r.trace.is_file()
    again = tracer_run(mapping)  # a second run keeps the first one's trace
    assert again.trace != r.trace and r.trace.is_file()
    clean = tracer_run(ROOT / "scenarios" / "thread_join.yaml")
    assert (clean.status, clean.findings, clean.expect_mismatch) == ("ok", [], None)
    assert clean.replay_command == f"tracer replay {shlex.quote(str(clean.trace))}"


def test_tracer_run_refuses_a_broken_scenario_with_its_message(
        tracer_run: Callable[..., TracerRun]) -> None:
    with pytest.raises(ScenarioError, match=r"<mapping>: actors\[0\]\.steps\[0\]: 'release: B'"
                                            ": no primitive named 'B'"):
        tracer_run({"name": "x", "actors": [{"name": "a", "kind": "thread",
                                             "steps": [{"release": "B"}]}]})


@pytest.mark.parametrize(("explore", "message"), [
    ("{run: 5}", "explore: unknown key 'run' — did you mean 'runs'? (allowed here: runs, "
                 "seed, strategy)"),
    ("{strategy: bfs}", "explore.strategy: Input should be 'random', 'pct' or 'dfs', got 'bfs'"
                        " — did you mean 'dfs'?"),
    ("{runs: 0}", "explore.runs: Input should be greater than or equal to 1, got 0"),
    ("{seed: '3'}", "explore.seed: Input should be a valid integer, got '3'"),
    ("true", "explore: Input should be a valid dictionary or instance of Explore, got True"),
], ids=["unknown-key", "strategy", "runs", "seed", "not-a-mapping"])
def test_a_bad_explore_mapping_is_refused(explore: str, message: str) -> None:
    with pytest.raises(ScenarioError) as exc:
        load_scenario_text(abba("x", f"explore: {explore}\n"), "x.yaml")
    assert str(exc.value) == f"x.yaml:2: {message}"


def test_explore_is_embedded_only_when_given() -> None:
    plain = load_scenario_text(abba("x"), "x.yaml").scenario.as_mapping()
    assert "explore" not in plain
    given = load_scenario_text(abba("x", "explore: {runs: 5}\n"), "x.yaml")
    assert given.scenario.as_mapping()["explore"] == {"runs": 5, "seed": 0,
                                                      "strategy": "random"}


def test_the_projects_own_suite_collects_no_scenario() -> None:
    """`pytest` from the root (testpaths: tests) is the same with the plugin active."""
    found = [p for p in (ROOT / "tests").rglob("*") if is_scenario_file(p)]
    assert found == []
    assert all(is_scenario_file(p) for p in (ROOT / "scenarios").glob("*.yaml"))


def test_the_plugin_is_registered_by_the_installed_entry_point() -> None:
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_DISABLE_PLUGIN_AUTOLOAD"}
    proc = subprocess.run([sys.executable, "-m", "pytest", "--version", "--version"],
                          capture_output=True, text=True, timeout=60, check=False, env=env)
    assert proc.returncode == 0, proc.stderr
    plugin = str(ROOT / "tracer" / "pytest_plugin.py")
    assert f"tracer-{tracer.__version__} at {plugin}" in proc.stdout + proc.stderr
