"""The public entry points: :func:`run`, :func:`replay`, :func:`explore`, :func:`analyze`
(re-exported by :mod:`tracer`). The CLI is built on them.

Layering: the engine runs, the analyses read traces, the renderers draw; only this module
(and the CLI above it) knows all three. The analyses and the renderers are imported inside
the functions that use them: every process a run starts (process actors, pool workers, the
forkserver) imports the :mod:`tracer` package, and must load only the engine it runs.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tracer.engine import (
    Divergence,
    ReplayScheduler,
    RunResult,
    first_difference,
    recorded_spins,
    recorded_steps,
    run_plan,
)
from tracer.scenario import Plan, load_scenario, plan_from_mapping, with_lines_of
from tracer.trace import TraceData, load_trace_data

if TYPE_CHECKING:
    from tracer.analyze import Finding, Report
    from tracer.engine.schedule.explore.search import Exploration

__all__ = ["Replay", "analyze", "explore", "replay", "run"]

Scenario = Plan | str | Path  # a checked plan, or the path of a scenario file


def _plan(scenario: Scenario, max_events: int | None = None) -> Plan:
    """The plan of ``scenario`` (a file is read and checked: ScenarioError); ``max_events``
    replaces its cap on events (and is recorded in the trace's scenario, so a replay keeps
    it)."""
    plan = scenario if isinstance(scenario, Plan) else load_scenario(scenario)
    if max_events is not None:
        capped = plan.scenario.model_copy(update={"max_events": max_events})
        plan = dataclasses.replace(plan, scenario=capped)
    return plan


def run(scenario: Scenario, *, on_started: Callable[[], object] | None = None,
        start_method: str | None = None, max_events: int | None = None) -> RunResult:
    """Run a scenario (a plan, or a scenario file's path) on real, instrumented primitives.

    ``on_started`` is called once the actors are started; ``start_method`` is how process
    actors start (forkserver, spawn, fork; default: $TRACER_START_METHOD, else forkserver on
    Linux); ``max_events`` stops the run after that many events (outcome ``capped``).
    ``result.write(path)`` writes the trace."""
    return run_plan(_plan(scenario, max_events), on_started=on_started,
                    start_method=start_method)


def _trace_data(trace: str | Path | TraceData) -> TraceData:
    return trace if isinstance(trace, TraceData) else load_trace_data(trace)


@dataclass
class Replay:
    """What a replay did: its run, and whether it kept to the recorded order."""

    result: RunResult
    recorded: Sequence[Any]  # the recorded trace's events
    until: int | None  # the replay stopped after this seq (None: it went to the end)
    divergence: Divergence | None  # where the run left the recorded order, if it did

    def difference(self, replayed: TraceData | None = None) -> str | None:
        """The first actor event where the replay's trace (``replayed``: the trace as
        written and read back; default: the run's own) differs from the recorded one, as a
        sentence; None when they are the same operation sequence."""
        data = replayed if replayed is not None else self.result.trace_data("<replay>")
        return first_difference(self.recorded, data.events, self.until)


def replay(trace: str | Path | TraceData, *, plan: Plan | None = None,
           until: int | None = None, real_time: bool = False,
           patience: float | None = None) -> Replay:
    """Re-execute a trace (a file's path, or a read trace) in exactly its recorded order.

    ``plan``: the run plan (default: built from the scenario embedded in the trace, which
    raises ScenarioError, or pydantic's ValidationError, when it no longer validates);
    ``until``: stop after that event; ``real_time``: keep the sleeps; ``patience``: how long
    to wait for a recorded operation before calling it a divergence (default: 10 s with
    process actors, whose children take a while to start, else 2 s)."""
    data = _trace_data(trace)
    if plan is None:
        plan = with_lines_of(plan_from_mapping(data.scenario, f"{data.source} (its scenario)"),
                             data.meta.get("source"))
    if patience is None:
        patience = 10.0 if any(a.kind == "process" for a in plan.actors) else 2.0
    scheduler = ReplayScheduler(recorded_steps(data.events), until, real_time, patience,
                                recorded_spins(data.events))
    result = run_plan(plan, scheduler, mode="replay")
    return Replay(result, data.events, until, scheduler.divergence)


def _judge(result: RunResult, source: str) -> list[Finding]:
    """Every finding of a schedule's run (module-level: explore's worker processes get it)."""
    from tracer.analyze import find_all  # noqa: PLC0415 (see the module's docstring)

    return find_all(result.trace_data(source))


def explore(scenario: Scenario, *, strategy: str = "random", runs: int = 100, seed: int = 0,
            depth: int = 3, max_preemptions: int | None = None, jobs: int = 1,
            progress: Callable[[int], object] | None = None, max_events: int | None = None,
            reuse: bool = True) -> Exploration:
    """Run a scenario under many schedules, one actor at a time, and group the findings of
    every schedule's analysis by problem.

    ``strategy``: ``random``, ``pct`` (random priorities, ``depth``: PCT's bug depth) or
    ``dfs`` (every distinct schedule, ``runs`` at most; ``max_preemptions`` bounds it);
    ``seed`` makes random and pct repeatable; ``jobs`` splits random and pct among worker
    processes (the same findings as with one); ``progress(1)`` is called after each
    schedule; ``reuse=False`` analyzes even the schedules equivalent to one seen before."""
    from tracer.engine.schedule.explore.search import explore_dfs, explore_jobs, explore_runs  # noqa: PLC0415

    plan = _plan(scenario, max_events)
    if strategy not in ("random", "pct", "dfs"):
        raise ValueError(f"strategy {strategy!r}: expected random, pct or dfs")
    if max_preemptions is not None and strategy != "dfs":
        raise ValueError("max_preemptions bounds the dfs strategy")
    if jobs > 1 and (strategy == "dfs" or any(a.kind == "process" for a in plan.actors)):
        raise ValueError("jobs splits random and pct explorations of scenarios without "
                         "process actors")
    if strategy == "dfs":
        return explore_dfs(plan, runs, _judge, max_preemptions, progress=progress)
    if jobs > 1:
        return explore_jobs(plan, runs, seed, strategy, depth, jobs, _judge)
    return explore_runs(plan, _counted(runs, progress), seed, strategy, depth, _judge,
                        reuse=reuse)


def _counted(runs: int, progress: Callable[[int], object] | None) -> Iterable[int]:
    """Schedules 0..runs-1, calling ``progress(1)`` as each one is done."""
    if progress is None:
        return range(runs)

    def each() -> Iterator[int]:
        for run_ in range(runs):
            yield run_
            progress(1)
    return each()


def analyze(trace: str | Path | TraceData | RunResult, graphs_dir: str | Path | None = None,
            at_seq: int | None = None, *, stem: str | None = None,
            always_graph: bool = True) -> Report:
    """Find deadlocks, stalls, potential deadlocks, races, broken invariants and misuse in a
    trace (a file's path, a read trace, or a run's result); draw the graphs into
    ``graphs_dir`` when given.

    The wait-for graph is drawn for ``at_seq`` (default: the end of the trace), always when
    ``always_graph``, else only when the run deadlocked or stalled; the lock-order graph when
    locks were taken while holding others. ``stem`` names the graph files (default: the
    scenario's name)."""
    from tracer.analyze import analyze as analyze_data  # noqa: PLC0415

    data = trace.trace_data() if isinstance(trace, RunResult) else _trace_data(trace)
    report = analyze_data(data)
    if graphs_dir is not None:
        from tracer.render.graphs import draw_graphs  # noqa: PLC0415

        draw_graphs(report, data, Path(graphs_dir), at_seq, stem, always_graph)
    return report
