"""The ``tracer`` command line.

Exit codes (docs/formats.md): 0 success and clean; 1 the run found a problem (deadlock, stall,
timeout, an actor error, a broken invariant); 2 bad input or usage, with a message on stderr and
no traceback; 3 an internal error of tracer (one line; TRACER_DEBUG=1 shows the traceback);
130 interrupted by Ctrl-C (the trace is still written); 143 and 129 the same for SIGTERM and
SIGHUP (128 + the signal's number).

Streams (README, "Output"): results on stdout — the outcome, the findings, the paths written,
the JSON; status on stderr — the ``running …`` line, progress bars, warnings and errors. Color
only where ``--color`` (auto: stdout/stderr is a terminal and ``NO_COLOR`` is unset or empty)
says so; a suggested command is one shell command, each argument quoted (``_cmd``).
"""

from __future__ import annotations

import dataclasses
import gc
import json
import os
import re
import shlex
import signal
import sys
from collections.abc import Iterable
from contextlib import nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click
from pydantic import ValidationError

from tracer._gc import gc_paused
from tracer._version import __version__
from tracer.analyze import Report, expect_mismatch, render_profile
from tracer.api import (
    DFS_NO_SHARD,
    MergeError,
    ProgramError,
    explore_document,
    is_program,
    shard_schedules,
)
from tracer.api import analyze as analyze_trace
from tracer.api import check_program as check_traced_program
from tracer.api import explore as explore_scenario
from tracer.api import explore_program as explore_traced_program
from tracer.api import merge as merge_shards
from tracer.api import replay as replay_trace
from tracer.api import replay_program as replay_traced_program
from tracer.api import run as run_scenario
from tracer.api import run_program as run_traced_program
from tracer.engine import (
    STOPS,
    RunFault,
    RunResult,
    Stopped,
    UnsupportedScenario,
    get_context,
    shielded,
    stop_helpers,
    stop_on_signals,
)
from tracer.render import timeline
from tracer.render.chrome import write_chrome
from tracer.render.html import render_html
from tracer.render.report import render_text
from tracer.scenario import (
    MAX_MAX_EVENTS,
    Explore,
    Plan,
    ScenarioError,
    load_scenario,
    plan_from_mapping,
    with_lines_of,
)
from tracer.trace import (
    TraceError,
    default_trace_path,
    load_trace_data,
    not_a_regular_file,
    os_reason,
    parse_trace_data,
    safe_stem,
    same_file,
    write_atomic,
)

if TYPE_CHECKING:
    from tracer.engine.schedule.explore.search import Exploration

EXIT_OK, EXIT_PROBLEM, EXIT_BAD_INPUT, EXIT_INTERNAL, EXIT_INTERRUPTED = 0, 1, 2, 3, 130


def _interrupted_exit() -> int:
    """128 + the number of the signal that stopped the command: 130 for Ctrl-C (SIGINT),
    143 for SIGTERM, 129 for SIGHUP."""
    return 128 + (STOPS.got or signal.SIGINT)


def _exit_if_stopped() -> None:
    """A stop signal that came once the run was over still ends the command as stopped."""
    if STOPS.got is not None:
        sys.exit(_interrupted_exit())


_COLOR_MODE = ["auto"]  # --color, set by the group for the command being run


def _color(err: bool = False) -> bool:
    """Whether to color stderr (``err``) or stdout: ``--color always`` yes, ``never`` no;
    ``auto`` when the stream is a terminal and NO_COLOR is unset or empty (no-color.org)."""
    mode = _COLOR_MODE[0]
    if mode != "auto":
        return mode == "always"
    if os.environ.get("NO_COLOR"):
        return False
    stream = sys.stderr if err else sys.stdout
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a closed or odd stream
        return False


def _result(message: str = "") -> None:
    """A result line on stdout (the outcome, findings, paths written), painted when colored."""
    color = _color()
    click.echo(_paint(message) if color else message, color=color)


def _status(message: str) -> None:
    """A status line on stderr (what is going on, not what was found)."""
    click.echo(message, err=True, color=_color(err=True))


def _n(count: int, noun: str) -> str:
    """``1 actor``, ``2 actors``."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _cmd(*args: str | Path) -> str:
    """A command to suggest: one shell command, each argument quoted, that pastes back."""
    return " ".join(shlex.quote(str(a)) for a in args)


_RED_KINDS = frozenset({"deadlock", "stall", "timeout", "error", "invariant", "race", "misuse",
                        "interrupted"})
_YELLOW_KINDS = frozenset({"potential_deadlock", "capped"})
_GREEN = ("no findings", "no problem found", "identical", "the run and its analysis agree")
_KIND_AT = [  # where a result line names a kind or an outcome (the group to paint)
    re.compile(r"^[^\s:][^:]*: (\w+) after "),  # run: "NAME: STATUS after 0.1 s, …"
    re.compile(r"^  (\w+): "),  # run: "  KIND: message"
    re.compile(r"^\[\d+\] ([A-Z][A-Z ]*) \((?P<hue>\w+)\)$"),  # analyze: "[1] DEADLOCK (error)"
    re.compile(r"^  (\w+)  "),  # explore: the table's rows
    re.compile(r"^- (\w+) \(first in schedule"),  # explore: each problem
]


def _hue(word: str) -> str | None:
    if word in ("ok", "clean"):
        return "green"
    if word in _RED_KINDS or word == "error":
        return "red"
    if word in _YELLOW_KINDS or word == "warning":
        return "yellow"
    return None


def _paint(text: str) -> str:
    """``text`` with its kinds and outcomes colored: problems red (warnings yellow), ok and
    clean green. Only ever called for a stream that is colored."""
    out = []
    for raw in text.split("\n"):
        line = raw
        if line.startswith("diverged:") or (line.startswith("expect: [")
                                            and ", but the run " in line):
            out.append(click.style(line, fg="red"))
            continue
        for pattern in _KIND_AT:
            m = pattern.match(line)  # (the hue from the severity, when the line has one)
            hue = _hue(m.group("hue") if "hue" in pattern.groupindex else m.group(1)) \
                if m else None
            if m and hue:
                line = line[:m.start(1)] + click.style(m.group(1), fg=hue) + line[m.end(1):]
                break
        for phrase in _GREEN:
            if phrase in line:
                line = line.replace(phrase, click.style(phrase, fg="green"), 1)
        out.append(line)
    return "\n".join(out)


def _error(message: str) -> None:
    """An error line on stderr (``tracer: error: …``, its prefix red when colored)."""
    color = _color(err=True)
    head = click.style("tracer: error:", fg="red", bold=True) if color else "tracer: error:"
    click.echo(f"{head} {message}", err=True, color=color)


def _fail(message: str) -> NoReturn:
    _error(message)
    sys.exit(EXIT_BAD_INPUT)


def _not_an_input(output: str | Path, inputs: dict[str, str]) -> None:
    """Refuse (exit 2) an output path that names one of the command's inputs: writing there
    would destroy the input (the scenario, the trace being replayed or exported)."""
    for what, path in inputs.items():
        if same_file(output, path):
            _fail(f"{output} is {what} ({path}): writing there would destroy it; "
                  "give another output path")


GRAPH_NAMES = (".wait-for.dot", ".wait-for.svg", ".lock-order.dot", ".lock-order.svg")


def _graphs_not_inputs(output: Path, inputs: dict[str, str]) -> None:
    """Refuse (exit 2, before anything runs) an output whose graphs, drawn beside it as
    STEM.wait-for.dot/.svg and STEM.lock-order.dot/.svg, would overwrite an input."""
    if not_a_regular_file(output) is not None:  # no graphs beside a device or FIFO
        return
    for name in GRAPH_NAMES:
        graph = output.with_name(output.stem + name)
        for what, path in inputs.items():
            if same_file(graph, path):
                _fail(f"{path} is {what}: the graphs of {output}, drawn beside it as "
                      f"{output.stem}.wait-for.dot/.svg and {output.stem}.lock-order.dot/.svg, "
                      "would overwrite it; give another output path (-o) or rename "
                      f"{what}")


def _write(path: Path, data: str | bytes | Iterable[bytes], what: str) -> str | None:
    """Write a file atomically (a device or FIFO in place); None, or the message to print
    once the command has said what it found (a full disk must not hide the outcome)."""
    try:
        write_atomic(path, data)
    except OSError as exc:
        left = "" if not_a_regular_file(path) else "; no partial file was left"
        return f"cannot write {what} to {path}: {os_reason(exc)}{left}"
    return None


def _load(path: str, max_events: int | None = None) -> Plan:
    """The checked scenario at ``path``; ``max_events`` (--max-events) replaces its cap (and
    is recorded in the trace's scenario, so that a replay keeps it)."""
    try:
        plan = load_scenario(path)
    except ScenarioError as exc:
        _fail(str(exc))
    if max_events is not None:
        scenario = plan.scenario.model_copy(update={"max_events": max_events})
        plan = dataclasses.replace(plan, scenario=scenario)
    return plan


def _parse_shard(_ctx: click.Context, _param: click.Parameter,
                 value: str | None) -> tuple[int, int] | None:
    """--shard K/N: two integers with 1 <= K <= N."""
    if value is None:
        return None
    k, slash, n = value.partition("/")
    if not (slash and k.strip().isdigit() and n.strip().isdigit()):
        raise click.BadParameter(f"{value!r}: expected K/N, two whole numbers such as 2/4 "
                                 "(the 2nd of 4 shards)")
    index, count = int(k), int(n)
    if not 1 <= index <= count:
        raise click.BadParameter(f"{value}: expected 1 <= K <= N (the shards are numbered "
                                 f"1 to N{f', here 1 to {count}' if count else ''})")
    return index, count


_MAX_EVENTS_HELP = ("Stop a run after N events (outcome capped; default: the scenario's "
                    "max_events, else 1,000,000).")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="tracer")
@click.option("--color", "color", type=click.Choice(["auto", "always", "never"]),
              default="auto", show_default=True,
              help="Color the output: auto colors a terminal unless NO_COLOR is set; always "
                   "beats NO_COLOR.")
def cli(color: str) -> None:
    """Run concurrency scenarios on real, instrumented primitives; record, show and check
    their traces. Results go to stdout, status and errors to stderr."""
    _COLOR_MODE[0] = color


@cli.command()
@click.argument("scenario", required=False, type=click.Path(dir_okay=False, path_type=str))
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@click.option("-m", "--module", metavar="MODULE",
              help="Run this module of a program, as 'python -m MODULE' does.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=str),
              help="Where to write the trace (default: traces/<scenario name>.json).")
@click.option("-q", "--quiet", is_flag=True, help="Print only the trace path and problems.")
@click.option("--timeout", type=click.FloatRange(0.1, 86_400), metavar="SECONDS",
              help="A program's timeout (default 10 s; a scenario has its own timeout:).")
@click.option("--start-method", type=click.Choice(["forkserver", "spawn", "fork"]),
              help="How process actors are started (default: forkserver on Linux, "
                   "else spawn; or $TRACER_START_METHOD).")
@click.option("--max-events", type=click.IntRange(1, MAX_MAX_EVENTS), metavar="N",
              help=_MAX_EVENTS_HELP)
def run(scenario: str | None, args: tuple[str, ...], module: str | None, output: str | None,
        quiet: bool, timeout: float | None, start_method: str | None,
        max_events: int | None) -> None:
    """Run SCENARIO (YAML) and write its JSON trace; or run a Python program
    (PROG.py [-- ARGS...], or -m MODULE [-- ARGS...]) unchanged, traced."""
    if module is not None or (scenario is not None and is_program(scenario)):
        argv = ([scenario] if module is not None and scenario is not None else []) + list(args)
        _run_program_cmd(None if module is not None else scenario, module, argv, output,
                         quiet, 10.0 if timeout is None else timeout)
        return
    if scenario is None:
        raise click.UsageError("Missing argument 'SCENARIO': give a scenario (a YAML file), "
                               "a Python program (PROG.py) or -m MODULE")
    if args:
        _fail(f"{scenario} is a scenario; the arguments after it ({_cmd(*args)}) are for "
              "programs (PROG.py -- ARGS)")
    if timeout is not None:
        _fail(f"--timeout is a program's; a scenario sets its own (timeout: in {scenario})")
    plan = _load(scenario, max_events)
    path = Path(output) if output else default_trace_path(plan.scenario.name)
    _not_an_input(output or path, {"the scenario": scenario})
    _graphs_not_inputs(path, {"the scenario": scenario})

    def started() -> None:
        if not quiet:
            _status(f"running {plan.scenario.name}: {_n(len(plan.actors), 'actor')}, timeout "
                    f"{plan.scenario.timeout:g} s")
    # the collector stays paused through the run, the trace and the analysis (see
    # tracer._gc: they allocate millions of small acyclic objects), and then leaves what
    # they made out of its later collections (gc.freeze): re-enabled over them, its first
    # collection walked every one of them again (a second with 10,000 actors), and the
    # command ends a moment later, freeing them all
    with gc_paused():
        try:
            result = run_scenario(plan, on_started=started, start_method=start_method)
        except UnsupportedScenario as exc:
            _fail(f"{scenario}: {exc}")
        text = result.to_json()
        with shielded():  # a stop signal does not cut the trace in half
            error = _write(path, text, "the trace")
        written = error is None
        del text  # (the memory of a large run: the analysis does not read it)
        # the analysis reads the run's events in memory, not the text it just wrote: the same
        # TraceData as parsing the file would give (RunResult.trace_data), at a fraction of the
        # cost, as `tracer explore` does for each schedule
        data = result.trace_data(str(path))
        report = None
        if error is None and not_a_regular_file(path) is None:  # no graphs beside /dev/null
            try:
                report = analyze_trace(data, path.parent, stem=path.stem, always_graph=False)
            except OSError as exc:
                error = f"cannot write the graphs beside {path}: {os_reason(exc)}"
        if report is None:  # the outcome is printed all the same
            report = analyze_trace(data, None)
        del data
        gc.freeze()
    _summary(result, report, path if written else None, quiet)
    if error is not None:
        _fail(error)
    if result.status == "interrupted":
        sys.exit(_interrupted_exit())
    _exit_if_stopped()
    if result.status != "ok" or report.findings:
        sys.exit(EXIT_PROBLEM)


def _run_program_cmd(path: str | None, module: str | None, argv: list[str],
                     output: str | None, quiet: bool, timeout: float) -> None:
    """``tracer run PROG.py [-- ARGS]``: run the program traced, then analyze its trace as
    ``tracer run`` does a scenario's."""
    shown = path if path is not None else f"-m {module}"

    def started() -> None:
        if not quiet:
            _status(f"running {shown}" + (f" {_cmd(*argv)}" if argv else "")
                    + f": timeout {timeout:g} s")
    try:
        result = run_traced_program(path, module=module, argv=argv, timeout=timeout,
                                    on_started=started)
    except ProgramError as exc:
        _fail(str(exc))
    name = Path(path).stem if path is not None else (module or "program").rsplit(".", 1)[-1]
    out = Path(output) if output else default_trace_path(name)
    if path is not None:
        _not_an_input(out, {"the program": path})
        _graphs_not_inputs(out, {"the program": path})
    with gc_paused():
        text = result.to_json()
    with shielded():
        error = _write(out, text, "the trace")
    del text  # (written: the analysis reads the run in memory, not its text)
    written = error is None
    data = result.trace_data(str(out))  # (what the text reads back as: no need to read it)
    report = None
    if error is None and not_a_regular_file(out) is None:
        try:
            report = analyze_trace(data, out.parent, stem=out.stem, always_graph=False)
        except OSError as exc:
            error = f"cannot write the graphs beside {out}: {os_reason(exc)}"
    if report is None:
        report = analyze_trace(data, None)
    problem = result.status != "ok" or bool(report.findings)
    if not quiet or problem:
        _result(f"{shown}: {result.status} after {result.duration:.3f} s, "
                f"{_n(result.event_count, 'event')}, {_n(len(result.actors), 'actor')}")
        told = {"deadlock": ("deadlock", "stall"), "stall": ("deadlock", "stall"),
                "timeout": ("timeout",), "error": ("error",)}.get(result.status, ())
        if result.detail and result.status not in ("ok", "error"):
            _result(f"  {result.detail}")
        shown_findings = [f for f in report.findings
                          if f.kind not in told or result.status == "error"]
        for f in shown_findings[:8]:
            _result(f"  {f.kind}: {f.message}")
        if len(shown_findings) > 8:
            _result(f"  ... and {len(shown_findings) - 8} more"
                    + (f": {_cmd('tracer', 'analyze', out)}" if written else ""))
    if written:
        _result(f"trace: {out}")
        if not quiet and not_a_regular_file(out) is None:
            _result(_report_hint(out))
    for kind, graph in sorted(report.graphs.items()):
        _result(f"graph ({kind.replace('_', '-')}): {graph}")
    if error is not None:
        _fail(error)
    if result.status == "interrupted":
        sys.exit(_interrupted_exit())
    _exit_if_stopped()
    if problem:
        sys.exit(EXIT_PROBLEM)


def _summary(result: RunResult, report: Report, path: Path | None, quiet: bool) -> None:
    """The run's outcome and findings (``path`` None: the trace could not be written)."""
    sc = result.plan.scenario
    problem = result.status != "ok" or bool(report.findings)
    if not quiet or problem:
        _result(f"{sc.name}: {result.status} after {result.duration:.3f} s, "
                f"{_n(result.event_count, 'event')}, {_n(len(result.actors), 'actor')}")
        # the outcome's detail says what the deadlock, stall or timeout was (its findings say
        # the same, so they are not repeated); an actor's error is told by its finding, which
        # also names the step, but a cause outside the actors (a killed process or Manager) is
        # told by the detail alone
        own_errors = result.status == "error" and all(
            " failed: " in part for part in result.detail.split("; "))
        if result.detail and result.status != "ok" and not own_errors:
            _result(f"  {result.detail}")
        told = {"deadlock": ("deadlock", "stall"), "stall": ("deadlock", "stall"),
                "timeout": ("timeout",)}.get(result.status, ())
        shown = [f for f in report.findings if f.kind not in told]
        for f in shown[:8]:
            _result(f"  {f.kind}: {f.message}")
        if len(shown) > 8:
            _result(f"  ... and {len(shown) - 8} more"
                    + (f": {_cmd('tracer', 'analyze', path)}" if path is not None else ""))
    if path is not None:
        _result(f"trace: {path}")
        if not quiet and not_a_regular_file(path) is None:  # not for -o /dev/null
            _result(_report_hint(path))
    for kind, graph in sorted(report.graphs.items()):
        _result(f"graph ({kind.replace('_', '-')}): {graph}")
    for hint in report.hints:
        _result(f"note: {hint}")
    if quiet or sc.expect is None:
        return
    mismatch = expect_mismatch(sc.expect, report.kinds)
    if mismatch is None:
        _result(f"expect: [{', '.join(sc.expect)}] — the run and its analysis agree")
    else:
        _result(f"expect: [{', '.join(sc.expect)}], but the run {mismatch}")


@cli.command()
@click.argument("scenarios", nargs=-1, required=True,
                type=click.Path(dir_okay=False, path_type=str))
def validate(scenarios: tuple[str, ...]) -> None:
    """Check SCENARIOS without running them (exit 0 if all are valid, 2 if not)."""
    bad = 0
    for path in scenarios:
        if is_program(path):  # a program: that it can be run (a readable Python file)
            try:
                check_traced_program(path, None, [])
            except ProgramError as exc:
                _error(str(exc))
                bad += 1
                continue
            _result(f"ok: {path} (a Python program: tracer run {_cmd(path)} traces it)")
            continue
        try:
            plan = load_scenario(path)
        except ScenarioError as exc:
            _error(str(exc))
            bad += 1
            continue
        sc = plan.scenario
        _result(f"ok: {path} ({sc.name}: {_n(len(plan.actors), 'actor')}, "
                f"{_n(len(sc.primitives), 'primitive')})")
    if bad:
        sys.exit(EXIT_BAD_INPUT)


@cli.command()
@click.argument("trace", type=click.Path(dir_okay=False, path_type=str))
@click.option("--actor", help="Show only this actor's events (and the engine's).")
def show(trace: str, actor: str | None) -> None:
    """Print TRACE as a timeline: one line per event, blocked periods marked."""
    try:
        data = load_trace_data(trace)
    except TraceError as exc:
        _fail(str(exc))
    names = [a["name"] for a in data.actors]
    if actor is not None and actor not in names:
        _fail(f"{trace}: no actor named {actor!r} (actors: {', '.join(names)})")
    out = sys.stdout
    for line in timeline(data, actor):
        out.write(line)
        out.write("\n")


@cli.command()
@click.argument("trace", type=click.Path(dir_okay=False, path_type=str))
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True, help="text for people, json for tools and CI.")
@click.option("--graphs", "graphs_dir", type=click.Path(file_okay=False, path_type=str),
              help="Folder for the graphs (default: the trace's folder).")
@click.option("--no-graphs", is_flag=True, help="Do not draw graphs.")
@click.option("--at", "at_seq", type=click.IntRange(min=0),
              help="Draw the wait-for graph as it was after event SEQ.")
def analyze(trace: str, fmt: str, graphs_dir: str | None, no_graphs: bool,
            at_seq: int | None) -> None:
    """Find deadlocks, stalls, potential deadlocks, races, broken invariants and misuse in
    TRACE; draw the wait-for and lock-order graphs (exit 0 clean, 1 findings, 2 bad trace)."""
    try:
        data = load_trace_data(trace)
    except TraceError as exc:
        _fail(str(exc))
    if at_seq is not None and at_seq >= len(data.events):
        _fail(f"{trace}: --at {at_seq}, but the trace has events 0 to {len(data.events) - 1}")
    folder = None if no_graphs else Path(graphs_dir) if graphs_dir else Path(trace).parent
    error = None
    try:
        report = analyze_trace(data, folder, at_seq, stem=Path(trace).stem)
    except OSError as exc:  # the findings are printed all the same
        error = f"cannot write the graphs to {folder}: {os_reason(exc)}"
        report = analyze_trace(data, None, at_seq)
    if fmt == "json":
        click.echo(json.dumps(report.as_json(), ensure_ascii=False, indent=2))
    else:
        show_them = _cmd("tracer", "show", trace)
        for line in render_text(report, render_profile(report.profile)):
            _result(line.replace("tracer show TRACE", show_them))
    if error is not None:
        _fail(error)
    if report.findings:
        sys.exit(EXIT_PROBLEM)


@cli.command()
@click.argument("trace", type=click.Path(dir_okay=False, path_type=str))
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=str),
              help="Where to write the replay's trace (default: beside TRACE, .replay.json).")
@click.option("--real-time", is_flag=True, help="Keep the sleeps (by default they take no time).")
@click.option("--until", "until", type=click.IntRange(min=0),
              help="Stop after event SEQ: write the trace so far and the wait-for graph.")
def replay(trace: str, output: str | None, real_time: bool, until: int | None) -> None:
    """Re-execute TRACE in exactly its recorded order and compare (exit 0 identical, 1 a
    divergence or a replayed deadlock/stall, 2 bad input)."""
    try:
        data = load_trace_data(trace)
    except TraceError as exc:
        _fail(str(exc))
    if "program" in data.extra:
        _replay_program_cmd(trace, data, output, real_time, until)
        return
    try:
        plan = with_lines_of(plan_from_mapping(data.scenario, f"{trace} (its scenario)"),
                             data.meta.get("source"))
    except ScenarioError as exc:
        _fail(f"the scenario inside {trace} no longer validates:\n{exc}")
    except ValidationError as exc:
        _fail(f"the scenario inside {trace} no longer validates: "
              f"{exc.errors(include_url=False)[0]['msg']}")
    if until is not None and until >= len(data.events):
        _fail(f"{trace}: --until {until}, but the trace has events 0 to {len(data.events) - 1}")
    src = Path(trace)
    out = Path(output) if output else src.with_name(f"{src.stem}.replay.json")
    _not_an_input(output or out, {"the trace to replay": trace})
    if until is not None:  # only then are graphs drawn beside the replay's trace
        _graphs_not_inputs(out, {"the trace to replay": trace})
    done = replay_trace(data, plan=plan, until=until, real_time=real_time)
    result = done.result
    with gc_paused():
        text = result.to_json()
    with shielded():
        error = _write(out, text, "the replay's trace")
    replayed = parse_trace_data(text, str(out))
    _replay_verdict(out, error, result.status, result.detail,
                    done.divergence.message() if done.divergence is not None else None,
                    lambda: done.difference(replayed), replayed)
    if until is not None and error is None:
        folder = out.parent if not_a_regular_file(out) is None else None  # not beside /dev/null
        try:
            report = analyze_trace(replayed, folder, stem=out.stem)
        except OSError as exc:
            _fail(f"cannot write the graphs beside {out}: {os_reason(exc)}")
        for kind, graph in sorted(report.graphs.items()):
            _result(f"graph ({kind.replace('_', '-')}): {graph}")
        return
    _exit_or_fail(error, EXIT_OK if result.status == "ok" or until is not None
                  else EXIT_PROBLEM)


def _replay_program_cmd(trace: str, data: Any, output: str | None, real_time: bool,
                        until: int | None) -> None:
    """``tracer replay TRACE`` of a program's trace: run the same program again, its threads
    one at a time in the recorded order, and say whether it kept to it."""
    if until is not None or real_time:
        _fail(f"{'--until' if until is not None else '--real-time'} replays scenario traces; "
              f"{trace} is a program's: replay it without")
    src = Path(trace)
    out = Path(output) if output else src.with_name(f"{src.stem}.replay.json")
    _not_an_input(output or out, {"the trace to replay": trace})
    try:
        done = replay_traced_program(data)
    except ProgramError as exc:
        _fail(str(exc))
    result = done.result
    text = result.to_json()
    with shielded():
        error = _write(out, text, "the replay's trace")
    replayed = parse_trace_data(text, str(out))
    _replay_verdict(out, error, result.status, result.detail, done.divergence,
                    lambda: done.difference(replayed), replayed)
    _exit_or_fail(error, EXIT_OK if result.status == "ok" else EXIT_PROBLEM)


def _replay_verdict(out: Path, error: str | None, status: str, detail: str,
                    divergence: str | None, difference: Any, replayed: Any) -> None:
    """What a replay of a scenario's or a program's trace says: where its trace is, then
    whether it was interrupted (exits), left the recorded order (exits 1), or kept to it
    (``replayed N events, identical``: the caller decides the exit)."""
    if error is None:
        _result(f"replay trace: {out}")
    if status == "interrupted" and detail.startswith("interrupted by"):
        if error is None:
            _result(f"replay {detail}; the trace so far is written")
        _exit_or_fail(error, _interrupted_exit())
    _exit_if_stopped()
    if divergence is not None:
        _result(divergence)
        _exit_or_fail(error, EXIT_PROBLEM)
    diff = difference()
    if diff is not None:
        _result(f"diverged: {diff}")
        _exit_or_fail(error, EXIT_PROBLEM)
    n = sum(1 for e in replayed.events if e.get("actor") is not None)
    _result(f"replayed {n} events, identical ({status}"
            f"{': ' + detail if status != 'ok' else ''})")


def _exit_or_fail(error: str | None, code: int) -> NoReturn:
    """Exit with ``code``, or with the write error's message and exit 2 if there was one."""
    if error is not None:
        _fail(error)
    sys.exit(code)


@cli.command()
@click.argument("scenario", required=False, type=click.Path(dir_okay=False, path_type=str))
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@click.option("-m", "--module", metavar="MODULE",
              help="Explore this module of a program, as 'python -m MODULE' runs it.")
@click.option("--runs", type=click.IntRange(1, 1_000_000), default=None,
              help="How many schedules to try (dfs: at most). Default: the scenario's "
                   "explore: runs, else 100.")
@click.option("--seed", type=int, default=None,
              help="Makes the whole exploration repeatable. Default: the scenario's "
                   "explore: seed, else 0.")
@click.option("--strategy", type=click.Choice(["random", "pct", "dfs"]), default=None,
              help="random walk; PCT (random priorities, --depth); dfs (every distinct "
                   "schedule, in order, until all are covered). Default: the scenario's "
                   "explore: strategy, else random.")
@click.option("--depth", type=click.IntRange(1, 20), default=3, show_default=True,
              help="PCT's bug depth d: d-1 priority change points per schedule.")
@click.option("--max-preemptions", type=click.IntRange(0, 1000), default=None,
              help="dfs: only schedules with at most N preemptions (switches away from an "
                   "actor that could have gone on). Default: no bound.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True)
@click.option("--traces", "traces_dir", type=click.Path(file_okay=False, path_type=str),
              default="traces", show_default=True,
              help="Folder for the first trace of each problem found.")
@click.option("--jobs", type=click.IntRange(1, 64), default=1, show_default=True,
              help="Worker processes (random, pct); the findings are the same as with one.")
@click.option("--max-events", type=click.IntRange(1, MAX_MAX_EVENTS), metavar="N",
              help="Stop each schedule after N events (default: the scenario's max_events, "
                   "else 1,000,000).")
@click.option("--shard", callback=_parse_shard, metavar="K/N",
              help="Run only the K-th of N disjoint parts of the exploration (random, pct); "
                   "`tracer merge` combines the N --format json outputs into the whole's.")
@click.option("--timeout", type=click.FloatRange(0.1, 86_400), metavar="SECONDS",
              help="A program's timeout per schedule (default 10 s).")
def explore(scenario: str | None, args: tuple[str, ...], module: str | None,
            runs: int | None, seed: int | None,
            strategy: str | None, depth: int, max_preemptions: int | None, fmt: str,
            traces_dir: str, jobs: int, max_events: int | None,
            shard: tuple[int, int] | None, timeout: float | None) -> None:
    """Run SCENARIO under many schedules, one actor at a time, and report every distinct
    problem once, with a replayable trace (exit 0 clean, 1 found, 2 bad input). The
    scenario's `explore:` mapping gives the defaults of --runs, --seed and --strategy.
    A Python program (PROG.py [-- ARGS...]) is explored the same way, unchanged."""
    if module is not None or (scenario is not None and is_program(scenario)):
        given_opts = [name for name, bad in (
            ("--strategy dfs", strategy == "dfs"), ("--max-preemptions", max_preemptions),
            ("--jobs", jobs != 1), ("--max-events", max_events), ("--shard", shard)) if bad]
        if given_opts:
            _fail(f"{given_opts[0]} is for scenarios: a program is explored with --strategy "
                  "random or pct, --runs, --seed, --depth, --timeout")
        argv = ([scenario] if module is not None and scenario is not None else []) + list(args)
        _explore_program_cmd(None if module is not None else scenario, module, argv,
                             100 if runs is None else runs, 0 if seed is None else seed,
                             strategy or "random", depth, fmt, traces_dir,
                             10.0 if timeout is None else timeout)
        return
    if scenario is None:
        raise click.UsageError("Missing argument 'SCENARIO': give a scenario (a YAML file), "
                               "a Python program (PROG.py) or -m MODULE")
    if args:
        _fail(f"{scenario} is a scenario; the arguments after it ({_cmd(*args)}) are for "
              "programs (PROG.py -- ARGS)")
    if timeout is not None:
        _fail(f"--timeout is a program's; a scenario sets its own (timeout: in {scenario})")
    plan = _load(scenario, max_events)
    given = plan.scenario.explore or Explore()  # the options given on the line win
    runs = given.runs if runs is None else runs
    seed = given.seed if seed is None else seed
    from_file = strategy is None and plan.scenario.explore is not None
    strategy = given.strategy if strategy is None else strategy
    if any(a.kind == "process" for a in plan.actors):
        get_context()  # multiprocessing's helpers start now, while this is the one thread
    if jobs > 1 and any(a.kind == "process" for a in plan.actors):
        _fail(f"{scenario}: --jobs cannot run process actors (its workers cannot start "
              "children); run it with one worker")
    if max_preemptions is not None and strategy != "dfs":
        _fail("--max-preemptions bounds the dfs strategy: add --strategy dfs")
    if jobs > 1 and strategy == "dfs":
        _fail("--jobs splits random and pct explorations; dfs runs in one process")
    if shard is not None and strategy == "dfs":
        _fail(DFS_NO_SHARD + (f" (dfs is {scenario}'s explore: strategy; --strategy random "
                              "or pct replaces it)" if from_file else ""))
    show_bar = fmt == "text" and sys.stderr.isatty()
    length = len(shard_schedules(runs, shard))  # a shard runs only its part
    bar: Any = (click.progressbar(length=length, label="exploring", file=sys.stderr)
                if show_bar and jobs == 1 else nullcontext(None))
    with bar as b:
        found = explore_scenario(plan, strategy=strategy, runs=runs, seed=seed, depth=depth,
                                 max_preemptions=max_preemptions, jobs=jobs,
                                 progress=b.update if b is not None else None, shard=shard)
    stem = safe_stem(plan.scenario.name)
    problems = []
    errors = []  # printed after the outcome: a full disk must not hide what was found
    for g in sorted(found.groups.values(), key=lambda g: (g["first_run"], g["kind"])):
        path = Path(traces_dir) / f"{stem}.explore-{g['first_run']}.json"
        with shielded():  # a stop signal does not cut a trace in half
            error = _write(path, g.pop("text"), "the trace")
        if error is not None:
            errors.append(error)
        problems.append({**g, "trace": str(path) if error is None else None})
    if fmt == "json":
        doc = explore_document(found, strategy, seed, problems, max_preemptions)
        click.echo(json.dumps(doc, ensure_ascii=False, indent=2))
    else:
        _result(explore_summary(plan.scenario.name, strategy, seed, max_preemptions, found,
                                problems))
        if found.shard is not None:
            part, sh = found.shard.schedules, found.shard
            ran = ("no schedule (more shards than runs)" if not part else
                   f"schedule {part.start}" if len(part) == 1 else
                   f"schedules {part.start} to {part.stop - 1}")
            _result(f"shard {sh.index}/{sh.count}: {ran} of 0 to {runs - 1}; to combine "
                    "the shards, run each with --format json and give the outputs to "
                    "`tracer merge`")
    _explore_exit(errors, found.interrupted, bool(problems))


def _explore_program_cmd(path: str | None, module: str | None, argv: list[str], runs: int,
                         seed: int, strategy: str, depth: int, fmt: str, traces_dir: str,
                         timeout: float) -> None:
    """``tracer explore PROG.py [-- ARGS]`` (or ``-m MODULE``): as for a scenario, with the
    program's trace of each problem's first schedule."""
    shown = path if path is not None else f"-m {module}"

    def started() -> None:
        if fmt == "text":
            _status(f"exploring {shown}" + (f" {_cmd(*argv)}" if argv else "")
                    + f": {runs} schedules ({strategy}, seed {seed}), timeout {timeout:g} s "
                    "each")
    try:
        found = explore_traced_program(path, module=module, argv=argv, strategy=strategy,
                                       runs=runs,
                                       seed=seed, depth=depth, timeout=timeout,
                                       on_started=started)
    except ProgramError as exc:
        _fail(str(exc))
    stem = safe_stem(Path(path).stem if path is not None
                     else (module or "program").rsplit(".", 1)[-1])
    problems = []
    errors = []
    for g in sorted(found.groups.values(), key=lambda g: (g["first_run"], g["kind"])):
        out = Path(traces_dir) / f"{stem}.explore-{g['first_run']}.json"
        with shielded():
            error = _write(out, g.pop("text"), "the trace")
        if error is not None:
            errors.append(error)
        problems.append({**g, "trace": str(out) if error is None else None})
    if fmt == "json":
        doc = explore_document(found, strategy, seed, problems)
        click.echo(json.dumps(doc, ensure_ascii=False, indent=2))
    else:
        _result(explore_summary(shown, strategy, seed, None, found, problems,
                                more="more --runs cover more"))
    _explore_exit(errors, found.interrupted, bool(problems))


def _explore_exit(errors: list[str], interrupted: bool, problems: bool) -> None:
    """How an exploration (of a scenario or a program) ends: a trace not written (exit 2),
    stopped by a signal (its exit), a problem found (exit 1), else it returns (exit 0)."""
    if errors:
        more = f" (and {len(errors) - 1} more trace(s) not written)" if len(errors) > 1 else ""
        _fail(errors[0] + more)
    if interrupted or STOPS.got is not None:
        how = signal.Signals(STOPS.got).name if STOPS.got is not None else "Ctrl-C"
        _status(f"tracer: interrupted by {how}; the findings above are those of the "
                "schedules run before")
        sys.exit(_interrupted_exit())
    if problems:
        sys.exit(EXIT_PROBLEM)


def explore_summary(name: str, strategy: str, seed: int, max_preemptions: int | None,
                    found: Exploration, problems: list[dict[str, Any]],
                    no_trace: str = "its trace could not be written (see the error below)",
                    more: str = "`--strategy dfs` covers every schedule") -> str:
    """The text report of an exploration: what was covered, then a table of the problems
    (``no_trace`` said for a problem whose trace was not written)."""
    n = found.runs
    bound = (f" with at most {max_preemptions} preemption(s)"
             if max_preemptions is not None else "")
    if strategy == "dfs":
        distinct = len(found.keys)
        if found.complete and max_preemptions is None:
            head = f"all {distinct} distinct schedules explored"
            if distinct != n:
                head += (f" (in {n} runs: the others differed only in when a blocked actor "
                         "tried again)")
        elif found.complete and not found.cut:
            head = (f"all {distinct} distinct schedules explored (in {n} runs; the bound of "
                    f"{max_preemptions} preemption(s) left none out)")
        elif found.complete:
            head = (f"all {n} schedules{bound} explored ({len(found.keys)} distinct: "
                    "no reduction under a bound)")
        else:
            head = (f"{n} schedules{bound} explored (dfs); the search was not complete: "
                    "raise --runs to cover more")
        if found.pruned:
            head += f"; {found.pruned} equivalent schedule(s) skipped"
        if found.unfollowed:
            head += (f"; {found.unfollowed} schedule(s) did not repeat their planned choices "
                     "(the scenario is not deterministic under control)")
    else:
        head = (f"{n} schedules ({strategy}, seed {seed}), {len(found.keys)} distinct "
                "(different order of operations on some object)")
    lines = [f"{name}: {head}"]
    # what was covered, and how to cover more, when it was not every distinct schedule
    if found.interrupted:
        cover, advice = (f"{n} schedule(s): interrupted, the search is incomplete",
                         "run it again to the end")
    elif strategy != "dfs":
        cover, advice = (f"{n} schedules ({len(found.keys)} distinct)", more)
    elif found.complete:
        cover, advice = (f"the schedules{bound}",
                         "raise --max-preemptions, or drop it to cover every schedule")
    else:
        cover, advice = (f"{n} schedules: the search is incomplete (stopped by --runs)",
                         "raise --runs to cover every schedule")
    if not problems:
        lines.append("no problem found: every distinct schedule was explored"
                     if found.exhaustive else f"no problem in {cover} — not a proof; {advice}")
        return "\n".join(lines)
    if not found.exhaustive:
        lines.append(f"note: this covers {cover}; other schedules may hide other problems "
                     f"— {advice}")
    lines.append(f"{len(problems)} distinct problem(s):")
    rows = [("kind", "schedules", "first", "actors", "objects")]
    for g in problems:
        rows.append((g["kind"], f"{g['count']} of {n}", str(g["first_run"]),
                     ", ".join(g["actors"]) or "-", ", ".join(g["objects"]) or "-"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        lines.append("  " + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True))
                     .rstrip())
    for g in problems:
        lines.append(f"- {g['kind']} (first in schedule {g['first_run']}): {g['message']}")
        lines.append(f"  replay it: {_cmd('tracer', 'replay', g['trace'])}"
                     if g["trace"] is not None
                     else f"  {no_trace}")
        if g["trace"] is not None:
            lines.append(f"  {_report_hint(Path(g['trace']))}")
    return "\n".join(lines)


@cli.command()
@click.argument("shards", nargs=-1, required=True,
                type=click.Path(dir_okay=False, path_type=str))
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="json",
              show_default=True)
def merge(shards: tuple[str, ...], fmt: str) -> None:
    """Combine the --format json outputs of `tracer explore --shard K/N`, one per shard,
    into the findings, counts and first schedules of the unsharded exploration (exit 0
    clean, 1 found, 2 bad input)."""
    docs = []
    for path in shards:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = os_reason(exc) if isinstance(exc, OSError) else "not UTF-8 text"
            _fail(f"cannot read {path}: {reason}")
        try:
            docs.append(json.loads(text))
        except ValueError as exc:
            _fail(f"{path} is not JSON ({exc}): give the output of `tracer explore --shard "
                  "K/N --format json`")
    try:
        found = merge_shards(docs, shards)
    except MergeError as exc:
        _fail(str(exc))
    whole = found.whole
    assert whole is not None
    problems = sorted(found.groups.values(), key=lambda g: (g["first_run"], g["kind"]))
    if fmt == "json":
        doc = explore_document(found, whole.strategy, whole.seed, problems)
        click.echo(json.dumps(doc, ensure_ascii=False, indent=2))
    else:
        _result(explore_summary(whole.scenario, whole.strategy, whole.seed, None, found,
                                problems, no_trace="its shard could not write its trace "
                                "(the shard's run said why)"))
    if found.interrupted:
        _status("tracer: some shards were interrupted; the findings above are those of "
                "the schedules they ran")
    if problems:
        sys.exit(EXIT_PROBLEM)


@cli.command()
@click.argument("trace", type=click.Path(dir_okay=False, path_type=str))
@click.option("--chrome", "chrome_out", required=True,
              type=click.Path(dir_okay=False, path_type=str),
              help="Write the Chrome Trace Event format (Perfetto, chrome://tracing) here.")
def export(trace: str, chrome_out: str) -> None:
    """Convert TRACE for a timeline viewer: a track per actor, blocked and holding
    intervals, an arrow for each happens-before edge."""
    try:
        data = load_trace_data(trace)
    except TraceError as exc:
        _fail(str(exc))
    _not_an_input(chrome_out, {"the trace to export": trace})
    try:
        out = write_chrome(data, Path(chrome_out))
    except OSError as exc:
        left = "" if not_a_regular_file(chrome_out) else "; no partial file was left"
        _fail(f"cannot write the chrome trace to {chrome_out}: {os_reason(exc)}{left}")
    _result(f"chrome trace: {out} (open it in https://ui.perfetto.dev or chrome://tracing)")


@cli.command("report")
@click.argument("trace", type=click.Path(dir_okay=False, path_type=str))
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=str),
              help="Where to write the page (default: beside TRACE, with .html).")
def report_cmd(trace: str, output: str | None) -> None:
    """Write one self-contained HTML page of TRACE: a timeline per actor, the findings linked
    to their events, the wait-for and lock-order graphs, and a slider over the events showing
    who holds and who waits for what (opens from file://, needs no network)."""
    try:
        data = load_trace_data(trace)
    except TraceError as exc:
        _fail(str(exc))
    src = Path(trace)
    out = Path(output) if output else src.with_name(f"{src.stem}.html")
    _not_an_input(output or out, {"the trace": trace})
    page = render_html(data, analyze_trace(data, None))
    error = _write(out, page.encode("utf-8"), "the report")
    if error is not None:
        _fail(error)
    _result(f"report: {out}")


def _report_hint(trace: Path) -> str:
    """How to make the HTML report of ``trace``: one shell-quoted command."""
    return f"report: {_cmd('tracer', 'report', trace)}"


@cli.command()
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=str), default=None,
              help="Write the schema here instead of printing it.")
def schema(output: str | None) -> None:
    """Print the JSON Schema (draft-07) of the scenario format, for editors' YAML servers:
    put `# yaml-language-server: $schema=PATH` at the top of a scenario."""
    from tracer.scenario import schema_text  # noqa: PLC0415 (only this command)

    text = schema_text()
    if output is None:
        click.echo(text, nl=False)
        return
    error = _write(Path(output), text, "the schema")
    if error is not None:
        _fail(error)
    _result(f"schema: {output}")


def main() -> None:
    """Entry point of the console script."""
    try:
        with stop_on_signals():
            cli.main(prog_name="tracer", standalone_mode=False)
    except click.exceptions.Abort as exc:
        cause = exc.__cause__
        how = f" by {cause.signame}" if isinstance(cause, Stopped) else ""
        click.echo(f"tracer: interrupted{how}", err=True)
        sys.exit(_interrupted_exit())
    except click.ClickException as exc:
        exc.show()
        sys.exit(EXIT_BAD_INPUT)
    except RunFault as exc:  # a fault outside the scenario: say what it is, in one line
        _fail(str(exc))
    except SystemExit:
        raise
    except BrokenPipeError:
        sys.exit(EXIT_OK)
    except Exception as exc:  # a bug of tracer's: say so in one line, not a traceback
        if os.environ.get("TRACER_DEBUG"):
            raise
        click.echo(f"tracer: internal error: {type(exc).__name__}: {exc} (this is a bug in "
                   "tracer; run again with TRACER_DEBUG=1 for the traceback)", err=True)
        sys.exit(EXIT_INTERNAL)
    finally:
        stop_helpers()


if __name__ == "__main__":  # pragma: no cover
    main()
