"""The ``tracer`` command line.

Exit codes (docs/formats.md): 0 success and clean; 1 the run found a problem (deadlock, stall,
timeout, an actor error, a broken invariant); 2 bad input or usage, with a message on stderr and
no traceback; 3 an internal error of tracer (one line; TRACER_DEBUG=1 shows the traceback);
130 interrupted by Ctrl-C (the trace is still written).
"""

from __future__ import annotations

import json
import os
import sys
from contextlib import nullcontext
from pathlib import Path
from typing import Any, NoReturn

import click
from pydantic import ValidationError

from tracer import __version__
from tracer.analyze import Report, load_trace_data, parse_trace_data, render_profile
from tracer.analyze import analyze as analyze_trace
from tracer.engine import RunResult, UnsupportedScenario, run_plan
from tracer.engine._proc import get_context
from tracer.engine._replay import ReplayScheduler, first_difference, recorded_steps
from tracer.explore import explore_range, explore_runs, merge
from tracer.render import timeline
from tracer.render.chrome import write_chrome
from tracer.render.report import render_text
from tracer.scenario import Plan, ScenarioError, load_scenario, plan_from_mapping
from tracer.trace import TraceError, default_trace_path, load_trace, safe_stem, write_atomic

EXIT_OK, EXIT_PROBLEM, EXIT_BAD_INPUT, EXIT_INTERNAL, EXIT_INTERRUPTED = 0, 1, 2, 3, 130

def _fail(message: str) -> NoReturn:
    click.echo(f"tracer: error: {message}", err=True)
    sys.exit(EXIT_BAD_INPUT)


def _load(path: str) -> Plan:
    try:
        return load_scenario(path)
    except ScenarioError as exc:
        _fail(str(exc))


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
def run(scenario: str, output: str | None, quiet: bool, start_method: str | None) -> None:
    """Run SCENARIO (YAML) and write its JSON trace."""
    plan = _load(scenario)

    def started() -> None:
        if not quiet:
            click.echo(f"running {plan.scenario.name}: {len(plan.actors)} actors, timeout "
                       f"{plan.scenario.timeout:g} s")
            sys.stdout.flush()
    try:
        result = run_plan(plan, on_started=started, start_method=start_method)
    except UnsupportedScenario as exc:
        _fail(f"{scenario}: {exc}")
    path = Path(output) if output else default_trace_path(plan.scenario.name)
    try:
        text = result.write(path)
    except OSError as exc:
        _fail(f"cannot write the trace to {path}: {exc.strerror or exc}")
    # the analysis reads the trace as written, like `tracer analyze` would
    report = analyze_trace(parse_trace_data(text, str(path)), path.parent, stem=path.stem,
                           always_graph=False)
    _summary(result, report, path, quiet)
    if result.status == "interrupted":
        sys.exit(EXIT_INTERRUPTED)
    if result.status != "ok" or report.findings:
        sys.exit(EXIT_PROBLEM)


def _summary(result: RunResult, report: Report, path: Path, quiet: bool) -> None:
    sc = result.plan.scenario
    problem = result.status != "ok" or bool(report.findings)
    if not quiet or problem:
        click.echo(f"{sc.name}: {result.status} after {result.duration:.3f} s, "
                   f"{result.event_count} events, {len(result.actors)} actors")
        if result.detail and result.status != "ok":
            click.echo(f"  {result.detail}")
        shown = [f for f in report.findings if f.kind not in ("deadlock", "stall")
                 or result.status not in ("deadlock", "stall")]
        for f in shown[:8]:
            click.echo(f"  {f.kind}: {f.message}")
        if len(shown) > 8:
            click.echo(f"  ... and {len(shown) - 8} more: tracer analyze {path}")
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
        data = load_trace(trace)
    except TraceError as exc:
        _fail(str(exc))
    if actor is not None and actor not in {a.name for a in data.actors}:
        names = ", ".join(a.name for a in data.actors)
        _fail(f"{trace}: no actor named {actor!r} (actors: {names})")
    for line in timeline(data, actor):
        click.echo(line)


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
    try:
        report = analyze_trace(data, folder, at_seq, stem=Path(trace).stem)
    except OSError as exc:
        _fail(f"cannot write the graphs to {folder}: {exc.strerror or exc}")
    if fmt == "json":
        click.echo(json.dumps(report.as_json(), ensure_ascii=False, indent=2))
    else:
        for line in render_text(report, render_profile(report.profile)):
            click.echo(line)
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
        plan = plan_from_mapping(data.scenario, f"{trace} (its scenario)")
    except ScenarioError as exc:
        _fail(f"the scenario inside {trace} no longer validates:\n{exc}")
    except ValidationError as exc:
        _fail(f"the scenario inside {trace} no longer validates: "
              f"{exc.errors(include_url=False)[0]['msg']}")
    kinds = {a.kind for a in plan.actors}
    if until is not None and until >= len(data.events):
        _fail(f"{trace}: --until {until}, but the trace has events 0 to {len(data.events) - 1}")
    # children take a while to start (forkserver, spawn): give them time before a divergence
    patience = 10.0 if "process" in kinds else 2.0
    scheduler = ReplayScheduler(recorded_steps(data.events), until, real_time, patience)
    result = run_plan(plan, scheduler, mode="replay")
    src = Path(trace)
    out = Path(output) if output else src.with_name(f"{src.stem}.replay.json")
    try:
        text = result.write(out)
    except OSError as exc:
        _fail(f"cannot write the replay's trace to {out}: {exc.strerror or exc}")
    replayed = parse_trace_data(text, str(out))
    click.echo(f"replay trace: {out}")
    if scheduler.divergence is not None:
        click.echo(scheduler.divergence.message())
        sys.exit(EXIT_PROBLEM)
    diff = first_difference(data.events, replayed.events, until)
    if diff is not None:
        click.echo(f"diverged: {diff}")
        sys.exit(EXIT_PROBLEM)
    n = sum(1 for e in replayed.events if e.get("actor") is not None)
    click.echo(f"replayed {n} events, identical ({result.status}"
               f"{': ' + result.detail if result.status != 'ok' else ''})")
    if until is not None:
        report = analyze_trace(replayed, out.parent, stem=out.stem)
        for kind, graph in sorted(report.graphs.items()):
            click.echo(f"graph ({kind.replace('_', '-')}): {graph}")
        return
    if result.status != "ok":
        sys.exit(EXIT_PROBLEM)


@cli.command()
@click.argument("scenario", type=click.Path(dir_okay=False, path_type=str))
@click.option("--runs", type=click.IntRange(1, 1_000_000), default=100, show_default=True,
              help="How many schedules to try.")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Makes the whole exploration repeatable.")
@click.option("--strategy", type=click.Choice(["random", "pct"]), default="random",
              show_default=True, help="random walk, or PCT (random priorities, --depth).")
@click.option("--depth", type=click.IntRange(1, 20), default=3, show_default=True,
              help="PCT's bug depth d: d-1 priority change points per schedule.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True)
@click.option("--traces", "traces_dir", type=click.Path(file_okay=False, path_type=str),
              default="traces", show_default=True,
              help="Folder for the first trace of each problem found.")
@click.option("--jobs", type=click.IntRange(1, 64), default=1, show_default=True,
              help="Worker processes; the findings are the same as with one.")
def explore(scenario: str, runs: int, seed: int, strategy: str, depth: int, fmt: str,
            traces_dir: str, jobs: int) -> None:
    """Run SCENARIO under many schedules, one actor at a time, and report every distinct
    problem once, with a replayable trace (exit 0 clean, 1 found, 2 bad input)."""
    plan = _load(scenario)
    kinds = {a.kind for a in plan.actors}
    types = {spec.type for spec in plan.scenario.primitives.values()}
    if kinds != {"thread"} or types & {"barrier", "pool"}:
        _fail(f"{scenario}: this first version of explore runs thread actors without "
              "barriers or pools")
    if jobs == 1:
        progress: Any = (click.progressbar(range(runs), label="exploring", file=sys.stderr)
                         if fmt == "text" and sys.stderr.isatty() else nullcontext(range(runs)))
        with progress as schedules:
            groups = explore_runs(plan, schedules, seed, strategy, depth)
    else:
        size = -(-runs // jobs)
        ranges = [(i, min(runs, i + size)) for i in range(0, runs, size)]
        with get_context().Pool(jobs) as pool:
            parts = pool.starmap(explore_range, [
                (plan.scenario.as_mapping(), a, b, seed, strategy, depth) for a, b in ranges])
        groups = merge(parts)
    stem = safe_stem(plan.scenario.name)
    found = []
    for g in sorted(groups.values(), key=lambda g: (g["first_run"], g["kind"])):
        path = Path(traces_dir) / f"{stem}.explore-{g['first_run']}.json"
        try:
            write_atomic(path, g.pop("text"))
        except OSError as exc:
            _fail(f"cannot write {path}: {exc.strerror or exc}")
        found.append({**g, "trace": str(path)})
    if fmt == "json":
        click.echo(json.dumps({"runs": runs, "strategy": strategy, "seed": seed,
                               "findings": found}, ensure_ascii=False, indent=2))
    else:
        click.echo(f"{plan.scenario.name}: {runs} schedules ({strategy}, seed {seed}), "
                   f"{len(found)} distinct problem(s)")
        for g in found:
            click.echo(f"  {g['kind']}: {g['message']}")
            click.echo(f"    hit in {g['count']} of {runs} schedules, first in schedule "
                       f"{g['first_run']}; replay it: tracer replay {g['trace']}")
    if found:
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
    try:
        out = write_chrome(data, Path(chrome_out))
    except OSError as exc:
        _fail(f"cannot write {chrome_out}: {exc.strerror or exc}")
    click.echo(f"chrome trace: {out} (open it in https://ui.perfetto.dev or chrome://tracing)")


def main() -> None:
    """Entry point of the console script."""
    try:
        cli.main(prog_name="tracer", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("tracer: interrupted", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except click.ClickException as exc:
        exc.show()
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


if __name__ == "__main__":  # pragma: no cover
    main()
