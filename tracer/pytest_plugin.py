"""tracer's pytest plugin: scenario files as test items, and the ``tracer_run`` fixture.

Installing tracer registers it (entry point ``pytest11``, name ``tracer``); ``-p no:tracer``
turns it off. Design:

- collection: a ``*.yaml``/``*.yml`` file in a directory named ``scenarios``, and a
  ``*.tracer.yaml``/``*.tracer.yml`` file anywhere, is one :class:`ScenarioFile` holding one
  :class:`ScenarioItem` named after the file. Nothing else is looked at, so a suite without
  such files collects and runs as before;
- an item runs its scenario (:func:`tracer.api.run`, then the analysis) or, when the scenario
  has ``explore:``, explores it (:func:`tracer.api.explore`), and compares the kinds found with
  ``expect`` by :func:`tracer.analyze.expect_mismatch`, as ``tracer run`` does;
- a failure is a :class:`ScenarioFailure` whose text is the whole report (the verdict, the
  analysis text, the trace and the ``tracer replay`` command): ``repr_failure`` returns that
  text alone, so neither the terminal nor ``--junitxml`` shows a traceback of tracer's
  internals. A scenario that does not validate fails with the checker's message;
- traces go to ``--tracer-traces DIR`` when given, else to ``tracer-traces`` in pytest's
  base temporary directory (kept for the last few sessions, like ``tmp_path``).

The engine, the analyses and the renderers are imported by the hooks that use them: a
session without scenarios loads none of them for the plugin's sake.
"""

from __future__ import annotations

import functools
import os
import shlex
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from tracer.analyze import Finding, Report
    from tracer.engine import RunResult
    from tracer.engine.schedule.explore.search import Exploration
    from tracer.scenario import Plan

__all__ = ["ScenarioFailure", "ScenarioFile", "ScenarioItem", "TracerRun", "is_scenario_file"]

_SUFFIXES = (".yaml", ".yml")
_TRACER_SUFFIXES = (".tracer.yaml", ".tracer.yml")
_TRACES_KEY = pytest.StashKey[Path]()
_RAN_KEY = pytest.StashKey[bool]()  # a scenario item or tracer_run ran in this session
_STEMS_KEY = pytest.StashKey[dict[Path, str]]()  # each item's trace name, unique in the session


def is_scenario_file(path: Path) -> bool:
    """Whether pytest collects ``path`` as a scenario: ``*.tracer.yaml`` (or ``.yml``)
    anywhere, or any ``*.yaml``/``*.yml`` directly inside a directory named ``scenarios``."""
    name = path.name
    if name.endswith(_TRACER_SUFFIXES):
        return True
    return name.endswith(_SUFFIXES) and path.parent.name == "scenarios"


def _stem(path: Path) -> str:
    """The file's name without ``.tracer.yaml``, ``.yaml`` or ``.yml``: the item's name."""
    name = path.name
    for suffix in (*_TRACER_SUFFIXES, *_SUFFIXES):
        if name.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return name


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("tracer", "tracer scenarios")
    group.addoption("--tracer-traces", metavar="DIR", default=None,
                    help="Folder for the traces of scenario items (default: tracer-traces "
                         "in pytest's base temporary directory).")


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> ScenarioFile | None:
    if is_scenario_file(file_path):
        return ScenarioFile.from_parent(parent, path=file_path)
    return None


def pytest_unconfigure(config: pytest.Config) -> None:
    """After a session that ran scenario items or ``tracer_run``: stop what multiprocessing
    started for their process actors (the forkserver, Managers), as ``tracer``'s commands
    do, so that none outlives the session."""
    if config.stash.get(_RAN_KEY, False):
        from tracer.engine import stop_helpers  # noqa: PLC0415

        stop_helpers()


class ScenarioFile(pytest.File):
    """A scenario file: one item, named after the file."""

    def collect(self) -> Iterator[ScenarioItem]:
        yield ScenarioItem.from_parent(self, name=_stem(self.path))


class ScenarioFailure(Exception):
    """A scenario item failed; ``str()`` is the whole report shown for it."""


def _traces_dir(config: pytest.Config) -> Path:
    """The session's folder for traces (made once)."""
    folder = config.stash.get(_TRACES_KEY, None)
    if folder is not None:
        return folder
    given = config.getoption("tracer_traces")
    if given:
        folder = Path(given).resolve()
    else:
        # pytest's tmp_path_factory (set up by its tmpdir plugin); a private temporary
        # folder if that plugin is turned off (-p no:tmpdir)
        factory = getattr(config, "_tmp_path_factory", None)
        folder = (factory.getbasetemp() / "tracer-traces" if factory is not None
                  else Path(tempfile.mkdtemp(prefix="tracer-traces-")))
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        from tracer.trace import os_reason  # noqa: PLC0415

        raise ScenarioFailure(f"cannot make the folder for traces {folder}: "
                              f"{os_reason(exc)} (--tracer-traces DIR chooses it)") from None
    config.stash[_TRACES_KEY] = folder
    return folder


def _write_trace(path: Path, write: Callable[[Path], object]) -> None:
    """``write(path)``; a folder that cannot be written fails the item in one line."""
    from tracer.trace import os_reason  # noqa: PLC0415

    try:
        write(path)
    except OSError as exc:
        raise ScenarioFailure(f"cannot write the trace to {path}: {os_reason(exc)} "
                              "(--tracer-traces DIR chooses the folder)") from None


def _replay_command(path: Path) -> str:
    return f"tracer replay {shlex.quote(str(path))}"


def _analysis_text(report: Report, path: Path, profile: list[str] | None = None) -> list[str]:
    """``tracer analyze``'s text of ``report``, its "see them with" naming the trace at
    ``path`` (shell-quoted), as the command's does."""
    from tracer.render.report import render_text  # noqa: PLC0415

    show = f"tracer show {shlex.quote(str(path))}"
    return [line.replace("tracer show TRACE", show) for line in render_text(report, profile)]


def _expect_text(expect: Sequence[str]) -> str:
    return f"[{', '.join(expect)}]"


class ScenarioItem(pytest.Item):
    """One scenario file as a test: run (or explore) it, compare the findings with
    ``expect``."""

    def _trace_stem(self) -> str:
        """A trace file name unique in the session: the file's path from the root, its
        folders joined by '-' ("scenarios-deadlock"); "-2", "-3" … after the name of another
        file's that has it (x.yaml and x.yml)."""
        from tracer.trace import safe_stem  # noqa: PLC0415 (see the module's docstring)

        stems = self.config.stash.setdefault(_STEMS_KEY, {})
        if self.path in stems:
            return stems[self.path]
        try:
            rel = self.path.relative_to(self.config.rootpath)
        except ValueError:
            rel = self.path
        parts = [p for p in rel.parent.parts if p not in ("/", "")] + [_stem(self.path)]
        stem = name = safe_stem("-".join(parts))
        taken, n = set(stems.values()), 1
        while name in taken:
            n += 1
            name = f"{stem}-{n}"
        stems[self.path] = name
        return name

    def runtest(self) -> None:
        from tracer.engine import RunFault, UnsupportedScenario, get_context  # noqa: PLC0415
        from tracer.scenario import ScenarioError, load_scenario  # noqa: PLC0415

        try:
            plan = load_scenario(self.path)
        except ScenarioError as exc:
            message = str(exc)  # file:line: what is wrong
            if ("'actors' is required" in message  # not a scenario at all, it seems
                    and not self.path.name.endswith(_TRACER_SUFFIXES)):
                ignore = shlex.quote(f"--ignore={self.path}")
                message += (f"\n{self.path.name} was collected as a tracer scenario (every "
                            "*.yaml in a folder named 'scenarios' is one): if it is not one, "
                            f"move it, or leave it out with {ignore} (or turn the plugin off "
                            "with -p no:tracer)")
            raise ScenarioFailure(message) from None
        self.config.stash[_RAN_KEY] = True
        try:
            if plan.scenario.explore is not None:
                if any(a.kind == "process" for a in plan.actors):
                    get_context()  # multiprocessing's helpers start before explore's threads
                self._explore(plan)
            else:
                self._run(plan)
        except (RunFault, UnsupportedScenario) as exc:
            raise ScenarioFailure(f"{self.path}: the scenario cannot be run: {exc}") from None

    def _run(self, plan: Plan) -> None:
        from tracer.analyze import expect_mismatch, render_profile  # noqa: PLC0415
        from tracer.api import analyze, run  # noqa: PLC0415

        result = run(plan)
        if result.status == "interrupted":  # Ctrl-C: stop the session, as pytest does
            raise KeyboardInterrupt(result.detail)
        path = _traces_dir(self.config) / f"{self._trace_stem()}.json"
        _write_trace(path, result.write)
        report = analyze(result.trace_data(str(path)))
        if result.status == "error" and "internal error in tracer" in result.detail:
            raise ScenarioFailure(f"{self.path}: tracer failed while running the scenario "
                                  f"(a bug in tracer, not in the scenario): {result.detail}"
                                  f"\ntrace: {path}")
        expect = plan.scenario.expect
        if expect is None:
            return  # the run ended (a finding is no failure where nothing is expected)
        mismatch = expect_mismatch(expect, report.kinds)
        if mismatch is None:
            return
        lines = [f"{self.path}: expect: {_expect_text(expect)}, but the run {mismatch}",
                 f"{plan.scenario.name}: {result.status} after {result.duration:.3f} s, "
                 f"{result.event_count} events, {len(result.actors)} actors", ""]
        lines += _analysis_text(report, path, render_profile(report.profile))
        lines += ["", f"trace: {path}", f"replay it: {_replay_command(path)}",
                  f"graphs and details: tracer analyze {shlex.quote(str(path))}"]
        raise ScenarioFailure("\n".join(lines))

    def _explore(self, plan: Plan) -> None:
        from tracer.analyze import expect_mismatch, parse_trace_data  # noqa: PLC0415
        from tracer.api import analyze, explore  # noqa: PLC0415
        from tracer.trace import write_atomic  # noqa: PLC0415

        how = plan.scenario.explore
        assert how is not None
        found: Exploration = explore(plan, strategy=how.strategy, runs=how.runs, seed=how.seed)
        if found.interrupted:
            raise KeyboardInterrupt("exploration interrupted")
        groups = sorted(found.groups.values(), key=lambda g: (g["first_run"], g["kind"]))
        expect = plan.scenario.expect
        mismatch = None if expect is None else expect_mismatch(
            expect, [g["kind"] for g in groups])
        if any(g["kind"] == "error" and "internal error in tracer" in g["message"]
               for g in groups):  # as for a run: tracer's own failure fails the item
            mismatch = "hit an internal error of tracer (a bug in tracer, not in the scenario)"
        if mismatch is None:
            return
        covered = (f"{how.strategy}" + (f", seed {how.seed}" if how.strategy != "dfs" else "")
                   + f": {found.runs} schedules"
                   + (", every distinct one" if found.exhaustive else ""))
        verdict = "" if expect is None else f"expect: {_expect_text(expect)}, but "
        lines = [f"{self.path}: {verdict}the exploration ({covered}) {mismatch}"]
        if not groups:
            lines.append("no problem found in any schedule")
        else:
            lines.append(f"{len(groups)} distinct problem(s):")
        texts: dict[int, Path] = {}  # a schedule's trace, written once
        for g in groups:
            run_ = g["first_run"]
            if run_ not in texts:
                path = (_traces_dir(self.config)
                        / f"{self._trace_stem()}.explore-{run_}.json")
                _write_trace(path, functools.partial(write_atomic, data=g["text"]))
                texts[run_] = path
            lines += [f"- {g['kind']} in {g['count']} of {found.runs} schedules (first in "
                      f"schedule {run_}): {g['message']}",
                      f"  trace: {texts[run_]}",
                      f"  replay it: {_replay_command(texts[run_])}"]
        for run_, path in texts.items():
            report = analyze(parse_trace_data(path.read_text(encoding="utf-8"), str(path)))
            lines += ["", f"schedule {run_}:", *_analysis_text(report, path)]
        raise ScenarioFailure("\n".join(lines))

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException],
                     style: Any = None) -> str | Any:
        """The report of a failed scenario, without a traceback of tracer's internals."""
        if isinstance(excinfo.value, ScenarioFailure):
            return str(excinfo.value)
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self) -> tuple[os.PathLike[str] | str, int | None, str]:
        return self.path, None, f"scenario {self.name}"


# ---------------------------------------------------------------------------------------------
# The fixture


@dataclass(frozen=True)
class TracerRun:
    """What :func:`tracer_run` did: the run's outcome (``status``, ``detail``), its
    ``findings``, the ``trace`` it wrote, and the run's result and analysis in full."""

    status: str
    detail: str
    findings: list[Finding]
    trace: Path
    result: RunResult
    report: Report

    @property
    def kinds(self) -> list[str]:
        """The kinds of the findings, sorted, each once."""
        return self.report.kinds

    @property
    def expect_mismatch(self) -> str | None:
        """How the findings differ from the scenario's ``expect`` ("did not show deadlock"),
        None when they agree or when the scenario has no ``expect``."""
        from tracer.analyze import expect_mismatch  # noqa: PLC0415

        expect = self.result.plan.scenario.expect
        return None if expect is None else expect_mismatch(expect, self.kinds)

    @property
    def replay_command(self) -> str:
        return _replay_command(self.trace)


@pytest.fixture
def tracer_run(tmp_path: Path, pytestconfig: pytest.Config) -> Callable[..., TracerRun]:
    """Run a scenario — a file's path, or a mapping as its YAML would load — on real
    primitives; write its trace under ``tmp_path``; return a :class:`TracerRun`. A scenario
    that does not validate raises :class:`tracer.ScenarioError` with the checker's message."""
    used: set[str] = set()

    def run_scenario(scenario: str | os.PathLike[str] | Mapping[str, Any], *,
                     start_method: str | None = None,
                     max_events: int | None = None) -> TracerRun:
        __tracebackhide__ = True
        from tracer.api import analyze, run  # noqa: PLC0415
        from tracer.scenario import (  # noqa: PLC0415
            ScenarioError,
            load_scenario,
            load_scenario_mapping,
        )
        from tracer.trace import safe_stem  # noqa: PLC0415

        try:
            plan = (load_scenario_mapping(scenario) if isinstance(scenario, Mapping)
                    else load_scenario(os.fspath(scenario)))
        except ScenarioError as exc:
            raise exc.with_traceback(None) from None  # the message, not the checker's frames
        pytestconfig.stash[_RAN_KEY] = True  # its helpers are stopped at the session's end
        result = run(plan, start_method=start_method, max_events=max_events)
        stem = safe_stem(plan.scenario.name)
        name, n = stem, 1
        while name in used:
            n += 1
            name = f"{stem}-{n}"
        used.add(name)
        path = tmp_path / f"{name}.json"
        result.write(path)
        report = analyze(result.trace_data(str(path)))
        return TracerRun(result.status, result.detail, list(report.findings), path, result,
                         report)

    return run_scenario
