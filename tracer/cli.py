"""The ``tracer`` command line.

Exit codes (docs/formats.md): 0 success and clean; 1 the run found a problem (deadlock, stall,
timeout, an actor error, a broken invariant); 2 bad input or usage, with a message on stderr and
no traceback; 3 an internal error of tracer (one line; TRACER_DEBUG=1 shows the traceback);
130 interrupted by Ctrl-C (the trace is still written); 143 and 129 the same for SIGTERM and
SIGHUP (128 + the signal's number).
"""

from __future__ import annotations

import dataclasses
import json
import os
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
from tracer.analyze import Report, render_profile
from tracer.api import analyze as analyze_trace
from tracer.api import explore as explore_scenario
from tracer.api import replay as replay_trace
from tracer.api import run as run_scenario
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
from tracer.render.report import render_text
from tracer.scenario import (
    MAX_MAX_EVENTS,
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

def _fail(message: str) -> NoReturn:
    click.echo(f"tracer: error: {message}", err=True)
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


_MAX_EVENTS_HELP = ("Stop a run after N events (outcome capped; default: the scenario's "
                    "max_events, else 1,000,000).")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="tracer")
def cli() -> None:
    """Run concurrency scenarios on real, instrumented primitives; record, show and check
    their traces."""


@cli.command()
@click.argument("scenario", type=click.Path(dir_okay=False, path_type=str))
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=str),
              help="Where to write the trace (default: traces/<scenario name>.json).")
@click.option("-q", "--quiet", is_flag=True, help="Print only the trace path and problems.")
@click.option("--start-method", type=click.Choice(["forkserver", "spawn", "fork"]),
              help="How process actors are started (default: forkserver on Linux, "
                   "else spawn; or $TRACER_START_METHOD).")
@click.option("--max-events", type=click.IntRange(1, MAX_MAX_EVENTS), metavar="N",
              help=_MAX_EVENTS_HELP)
def run(scenario: str, output: str | None, quiet: bool, start_method: str | None,
        max_events: int | None) -> None:
    """Run SCENARIO (YAML) and write its JSON trace."""
    plan = _load(scenario, max_events)
    path = Path(output) if output else default_trace_path(plan.scenario.name)
    _not_an_input(output or path, {"the scenario": scenario})
    _graphs_not_inputs(path, {"the scenario": scenario})

    def started() -> None:
        if not quiet:
            click.echo(f"running {plan.scenario.name}: {len(plan.actors)} actors, timeout "
                       f"{plan.scenario.timeout:g} s")
            sys.stdout.flush()
    try:
        result = run_scenario(plan, on_started=started, start_method=start_method)
    except UnsupportedScenario as exc:
        _fail(f"{scenario}: {exc}")
    with gc_paused():
        text = result.to_json()
    with shielded():  # a stop signal does not cut the trace in half
        error = _write(path, text, "the trace")
    written = error is None
    # the analysis reads the trace as written, like `tracer analyze` would
    data = parse_trace_data(text, str(path))
    report = None
    if error is None and not_a_regular_file(path) is None:  # no graphs beside /dev/null
        try:
            report = analyze_trace(data, path.parent, stem=path.stem, always_graph=False)
        except OSError as exc:
            error = f"cannot write the graphs beside {path}: {os_reason(exc)}"
    if report is None:  # the outcome is printed all the same
        report = analyze_trace(data, None)
    _summary(result, report, path if written else None, quiet)
    if error is not None:
        _fail(error)
    if result.status == "interrupted":
        sys.exit(_interrupted_exit())
    _exit_if_stopped()
    if result.status != "ok" or report.findings:
        sys.exit(EXIT_PROBLEM)


def _summary(result: RunResult, report: Report, path: Path | None, quiet: bool) -> None:
    """The run's outcome and findings (``path`` None: the trace could not be written)."""
    sc = result.plan.scenario
    problem = result.status != "ok" or bool(report.findings)
    if not quiet or problem:
        click.echo(f"{sc.name}: {result.status} after {result.duration:.3f} s, "
                   f"{result.event_count} events, {len(result.actors)} actors")
        # the outcome's detail says what the deadlock, stall or timeout was (its findings say
        # the same, so they are not repeated); an actor's error is told by its finding, which
        # also names the step, but a cause outside the actors (a killed process or Manager) is
        # told by the detail alone
        own_errors = result.status == "error" and all(
            " failed: " in part for part in result.detail.split("; "))
        if result.detail and result.status != "ok" and not own_errors:
            click.echo(f"  {result.detail}")
        told = {"deadlock": ("deadlock", "stall"), "stall": ("deadlock", "stall"),
                "timeout": ("timeout",)}.get(result.status, ())
        shown = [f for f in report.findings if f.kind not in told]
        for f in shown[:8]:
            click.echo(f"  {f.kind}: {f.message}")
        if len(shown) > 8:
            click.echo(f"  ... and {len(shown) - 8} more"
                       + (f": tracer analyze {path}" if path is not None else ""))
    if path is not None:
        click.echo(f"trace: {path}")
    for kind, graph in sorted(report.graphs.items()):
        click.echo(f"graph ({kind.replace('_', '-')}): {graph}")
    for hint in report.hints:
        click.echo(f"note: {hint}")
    if quiet or sc.expect is None:
        return
    got = set(report.kinds)
    want = set(sc.expect)
    if got == want:
        click.echo(f"expect: [{', '.join(sc.expect)}] — the run and its analysis agree")
    else:
        parts = []
        if want - got:
            parts.append(f"did not show {', '.join(sorted(want - got))}")
        if got - want:
            parts.append(f"showed {', '.join(sorted(got - want))}")
        click.echo(f"expect: [{', '.join(sc.expect)}], but the run " + " and ".join(parts))


@cli.command()
@click.argument("scenarios", nargs=-1, required=True,
                type=click.Path(dir_okay=False, path_type=str))
def validate(scenarios: tuple[str, ...]) -> None:
    """Check SCENARIOS without running them (exit 0 if all are valid, 2 if not)."""
    bad = 0
    for path in scenarios:
        try:
            plan = load_scenario(path)
        except ScenarioError as exc:
            click.echo(f"tracer: error: {exc}", err=True)
            bad += 1
            continue
        sc = plan.scenario
        click.echo(f"ok: {path} ({sc.name}: {len(plan.actors)} actors, "
                   f"{len(sc.primitives)} primitives)")
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
        for line in render_text(report, render_profile(report.profile)):
            click.echo(line)
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
    if error is None:
        click.echo(f"replay trace: {out}")
    if result.status == "interrupted" and result.detail.startswith("interrupted by"):
        if error is None:
            click.echo(f"replay {result.detail}; the trace so far is written")
        _exit_or_fail(error, _interrupted_exit())
    _exit_if_stopped()
    if done.divergence is not None:
        click.echo(done.divergence.message())
        _exit_or_fail(error, EXIT_PROBLEM)
    diff = done.difference(replayed)
    if diff is not None:
        click.echo(f"diverged: {diff}")
        _exit_or_fail(error, EXIT_PROBLEM)
    n = sum(1 for e in replayed.events if e.get("actor") is not None)
    click.echo(f"replayed {n} events, identical ({result.status}"
               f"{': ' + result.detail if result.status != 'ok' else ''})")
    if until is not None and error is None:
        folder = out.parent if not_a_regular_file(out) is None else None  # not beside /dev/null
        try:
            report = analyze_trace(replayed, folder, stem=out.stem)
        except OSError as exc:
            _fail(f"cannot write the graphs beside {out}: {os_reason(exc)}")
        for kind, graph in sorted(report.graphs.items()):
            click.echo(f"graph ({kind.replace('_', '-')}): {graph}")
        return
    _exit_or_fail(error, EXIT_OK if result.status == "ok" or until is not None
                  else EXIT_PROBLEM)


def _exit_or_fail(error: str | None, code: int) -> NoReturn:
    """Exit with ``code``, or with the write error's message and exit 2 if there was one."""
    if error is not None:
        _fail(error)
    sys.exit(code)


@cli.command()
@click.argument("scenario", type=click.Path(dir_okay=False, path_type=str))
@click.option("--runs", type=click.IntRange(1, 1_000_000), default=100, show_default=True,
              help="How many schedules to try (dfs: at most).")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Makes the whole exploration repeatable.")
@click.option("--strategy", type=click.Choice(["random", "pct", "dfs"]), default="random",
              show_default=True,
              help="random walk; PCT (random priorities, --depth); dfs (every distinct "
                   "schedule, in order, until all are covered).")
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
def explore(scenario: str, runs: int, seed: int, strategy: str, depth: int,
            max_preemptions: int | None, fmt: str, traces_dir: str, jobs: int,
            max_events: int | None) -> None:
    """Run SCENARIO under many schedules, one actor at a time, and report every distinct
    problem once, with a replayable trace (exit 0 clean, 1 found, 2 bad input)."""
    plan = _load(scenario, max_events)
    if any(a.kind == "process" for a in plan.actors):
        get_context()  # multiprocessing's helpers start now, while this is the one thread
    if jobs > 1 and any(a.kind == "process" for a in plan.actors):
        _fail(f"{scenario}: --jobs cannot run process actors (its workers cannot start "
              "children); run it with one worker")
    if max_preemptions is not None and strategy != "dfs":
        _fail("--max-preemptions bounds the dfs strategy: add --strategy dfs")
    if jobs > 1 and strategy == "dfs":
        _fail("--jobs splits random and pct explorations; dfs runs in one process")
    show_bar = fmt == "text" and sys.stderr.isatty()
    bar: Any = (click.progressbar(length=runs, label="exploring", file=sys.stderr)
                if show_bar and jobs == 1 else nullcontext(None))
    with bar as b:
        found = explore_scenario(plan, strategy=strategy, runs=runs, seed=seed, depth=depth,
                                 max_preemptions=max_preemptions, jobs=jobs,
                                 progress=b.update if b is not None else None)
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
        doc: dict[str, Any] = {"runs": found.runs, "strategy": strategy, "seed": seed,
                               "findings": problems, "distinct_schedules": len(found.keys),
                               "complete": found.exhaustive}
        if strategy == "dfs":
            doc.update(exhausted=found.complete, max_preemptions=max_preemptions,
                       pruned=found.pruned)
        if found.interrupted:
            doc["interrupted"] = True
        click.echo(json.dumps(doc, ensure_ascii=False, indent=2))
    else:
        click.echo(explore_summary(plan.scenario.name, strategy, seed, max_preemptions, found,
                                   problems))
    if errors:
        more = f" (and {len(errors) - 1} more trace(s) not written)" if len(errors) > 1 else ""
        _fail(errors[0] + more)
    if found.interrupted or STOPS.got is not None:
        how = signal.Signals(STOPS.got).name if STOPS.got is not None else "Ctrl-C"
        click.echo(f"tracer: interrupted by {how}; the findings above are those of the "
                   "schedules run before", err=True)
        sys.exit(_interrupted_exit())
    if problems:
        sys.exit(EXIT_PROBLEM)


def explore_summary(name: str, strategy: str, seed: int, max_preemptions: int | None,
                    found: Exploration, problems: list[dict[str, Any]]) -> str:
    """The text report of an exploration: what was covered, then a table of the problems."""
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
        cover, advice = (f"{n} schedules ({len(found.keys)} distinct)",
                         "`--strategy dfs` covers every schedule")
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
        lines.append(f"  replay it: tracer replay {g['trace']}" if g["trace"] is not None
                     else "  its trace could not be written (see the error below)")
    return "\n".join(lines)


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
    click.echo(f"chrome trace: {out} (open it in https://ui.perfetto.dev or chrome://tracing)")


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
    click.echo(f"schema: {output}", err=True)


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
        click.echo(f"tracer: error: {exc}", err=True)
        sys.exit(EXIT_BAD_INPUT)
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
