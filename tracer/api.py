"""The public entry points: :func:`run`, :func:`replay`, :func:`explore`, :func:`analyze`
(re-exported by :mod:`tracer`). The CLI is built on them.

Layering: the engine runs, the analyses read traces, the renderers draw; only this module
(and the CLI above it) knows all three. The analyses and the renderers are imported inside
the functions that use them: every process a run starts (process actors, pool workers, the
forkserver) imports the :mod:`tracer` package, and must load only the engine it runs.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
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
from tracer.program import is_program
from tracer.program._explore import ProgramReplay
from tracer.program._launch import ProgramError, ProgramRun, check_program
from tracer.program._launch import run_program as _run_program
from tracer.scenario import Plan, load_scenario, plan_from_mapping, with_lines_of
from tracer.trace import TraceData, load_trace_data

if TYPE_CHECKING:
    from tracer.analyze import Finding, Report
    from tracer.engine.schedule.explore.search import Exploration

__all__ = ["MergeError", "ProgramError", "ProgramReplay", "ProgramRun", "Replay", "analyze",
           "check_program", "explore", "explore_document", "explore_program", "is_program",
           "merge", "replay", "replay_program", "run", "run_program", "shard_document",
           "shard_schedules"]

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


def run_program(path: str | Path | None = None, *, module: str | None = None,
                argv: Sequence[str] = (), timeout: float = 10.0,
                on_started: Callable[[], object] | None = None) -> ProgramRun:
    """Run an unchanged Python program (the file ``path``, or ``module`` as ``python -m``
    would, from the current folder) with its arguments ``argv``, recording its threads'
    primitives and shared accesses; ends it on a deadlock or stall, or after ``timeout``
    seconds. Raises :class:`ProgramError` when it cannot be run (no such file, not Python,
    a syntax error). ``result.doc`` is the trace; ``result.to_json()`` its text."""
    program = check_program(None if path is None else str(path), module, list(argv))
    return _run_program(program, timeout, on_started=on_started)


def explore_program(path: str | Path | None = None, *, module: str | None = None,
                    argv: Sequence[str] = (), strategy: str = "random", runs: int = 100,
                    seed: int = 0, depth: int = 3, timeout: float = 10.0,
                    on_started: Callable[[], object] | None = None) -> Exploration:
    """Run an unchanged program under ``runs`` schedules, its threads one at a time at each
    recorded operation (sleeps in virtual time), and group the findings of every schedule's
    analysis by problem, as :func:`explore` does for a scenario (``found.groups``: each
    problem's kind, actors, objects, count, first schedule and that schedule's trace
    ``text``). ``strategy``: ``random`` or ``pct`` (``depth``); schedule i's seed depends
    only on (``seed``, i); ``timeout``: each schedule's. Raises :class:`ProgramError` when
    the program cannot be run."""
    from tracer.analyze import find_all  # noqa: PLC0415 (see the module's docstring)
    from tracer.engine.schedule.explore.search import Exploration  # noqa: PLC0415
    from tracer.program._explore import explore as explore_schedules  # noqa: PLC0415
    from tracer.trace import parse_trace_data  # noqa: PLC0415

    if strategy not in ("random", "pct"):
        raise ValueError(f"strategy {strategy!r}: a program is explored with random or pct")
    program = check_program(None if path is None else str(path), module, list(argv))
    found = Exploration()

    def add(run_: int, result: ProgramRun | None, key: int, _seed: int) -> None:
        found.runs += 1
        found.keys.add(key)
        if result is None:  # equivalent to a schedule judged before: the same findings
            for k in found.found_in.get(key, ()):
                found.groups[k]["count"] += 1
            return
        text = result.to_json()
        _add_findings(found, run_, key, text,
                      find_all(parse_trace_data(text, f"schedule {run_}")))
    found.interrupted = explore_schedules(program, runs, seed, strategy, depth, timeout, add,
                                          on_started)
    return found


def _add_findings(found: Exploration, run_: int, key: int, text: str,
                  findings: Sequence[Finding]) -> None:
    """Count schedule ``run_``'s findings in ``found``, by problem (as ``Exploration.add``
    does for a scenario's run)."""
    from tracer.engine.schedule.explore.search import problem_key  # noqa: PLC0415

    seen = found.found_in[key] = []
    for f in findings:
        pkey = problem_key(f)
        group = found.groups.get(pkey)
        if pkey in seen:
            if group is not None and not pkey[1]:
                group["actors"] = sorted({*group["actors"], *f.actors})
            continue
        seen.append(pkey)
        if group is None:
            found.groups[pkey] = {"kind": f.kind, "actors": list(f.actors),
                                  "objects": list(f.objects), "message": f.message,
                                  "count": 1, "first_run": run_, "text": text}
        else:
            if not pkey[1]:
                group["actors"] = sorted({*group["actors"], *f.actors})
            group["count"] += 1


def replay_program(trace: str | Path | TraceData, *, timeout: float = 10.0) -> ProgramReplay:
    """Run the program of a program's trace again (the same file: raises
    :class:`ProgramError` when it is not there or its source changed), its threads one at a
    time in the recorded order. ``done.divergence`` says where it left that order;
    :func:`tracer.engine.first_difference` compares the traces."""
    from tracer.program._explore import replay as replay_schedule  # noqa: PLC0415

    data = _trace_data(trace)
    record = data.extra.get("program")
    if not isinstance(record, dict):
        raise ProgramError(f"{data.source}: not a program's trace (it has no 'program')")
    return replay_schedule(record, data.events, timeout, data.source)


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


DFS_NO_SHARD = (
    "--shard splits random and pct explorations; dfs cannot be split exactly: its reduction "
    "(DPOR and sleep sets) decides what to skip in one part of the search tree from the "
    "schedules run in the parts before it, and numbers schedules in that order, so disjoint "
    "parts run apart would not add up to one search; run dfs in one process")


def explore(scenario: Scenario, *, strategy: str = "random", runs: int = 100, seed: int = 0,
            depth: int = 3, max_preemptions: int | None = None, jobs: int = 1,
            progress: Callable[[int], object] | None = None, max_events: int | None = None,
            reuse: bool = True, shard: tuple[int, int] | None = None) -> Exploration:
    """Run a scenario under many schedules, one actor at a time, and group the findings of
    every schedule's analysis by problem.

    ``strategy``: ``random``, ``pct`` (random priorities, ``depth``: PCT's bug depth) or
    ``dfs`` (every distinct schedule, ``runs`` at most; ``max_preemptions`` bounds it);
    ``seed`` makes random and pct repeatable; ``jobs`` splits random and pct among worker
    processes (the same findings as with one); ``progress(1)`` is called after each
    schedule; ``reuse=False`` analyzes even the schedules equivalent to one seen before.
    ``shard=(k, n)`` runs only the k-th of n disjoint parts of a random or pct exploration
    (``found.shard`` says which); :func:`merge` combines the n parts into the findings and
    counts of the whole."""
    from tracer.engine.schedule.explore.search import (  # noqa: PLC0415
        Shard,
        explore_dfs,
        explore_jobs,
        explore_runs,
    )

    plan = _plan(scenario, max_events)
    if strategy not in ("random", "pct", "dfs"):
        raise ValueError(f"strategy {strategy!r}: expected random, pct or dfs")
    if max_preemptions is not None and strategy != "dfs":
        raise ValueError("max_preemptions bounds the dfs strategy")
    if jobs > 1 and (strategy == "dfs" or any(a.kind == "process" for a in plan.actors)):
        raise ValueError("jobs splits random and pct explorations of scenarios without "
                         "process actors")
    if shard is not None:
        index, count = shard
        if not 1 <= index <= count:
            raise ValueError(f"shard {index}/{count}: expected K/N with 1 <= K <= N")
        if strategy == "dfs":
            raise ValueError(DFS_NO_SHARD)
    if strategy == "dfs":
        return explore_dfs(plan, runs, _judge, max_preemptions, progress=progress)
    schedules = shard_schedules(runs, shard)
    if jobs > 1:
        found = explore_jobs(plan, schedules, seed, strategy, depth, jobs, _judge)
    else:
        found = explore_runs(plan, _counted(schedules, progress), seed, strategy, depth,
                             _judge, reuse=reuse)
    if shard is not None:
        found.shard = Shard(shard[0], shard[1], plan.scenario.name, _digest(plan), strategy,
                            seed, runs, depth, plan.scenario.max_events)
    return found


def _digest(plan: Plan) -> str:
    """What identifies the explored scenario across machines: a digest of the checked
    scenario as embedded in traces (its max_events included)."""
    text = json.dumps(plan.scenario.as_mapping(), sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def shard_schedules(runs: int, shard: tuple[int, int] | None) -> range:
    """The schedule numbers an exploration of ``runs`` schedules runs: all of them, or with
    ``shard=(k, n)`` the k-th of n contiguous, disjoint ranges that cover them."""
    from tracer.engine.schedule.explore.search import shard_range  # noqa: PLC0415

    return range(runs) if shard is None else shard_range(runs, *shard)


def _counted(schedules: range, progress: Callable[[int], object] | None) -> Iterable[int]:
    """The schedules' numbers, calling ``progress(1)`` as each one is done."""
    if progress is None:
        return schedules

    def each() -> Iterator[int]:
        for run_ in schedules:
            yield run_
            progress(1)
    return each()


def _ordered(found: Exploration) -> list[tuple[Any, dict[str, Any]]]:
    """The problems in the order reports list them: by first schedule, then kind."""
    return sorted(found.groups.items(), key=lambda kv: (kv[1]["first_run"], kv[1]["kind"]))


def explore_document(found: Exploration, strategy: str, seed: int,
                     problems: Sequence[Mapping[str, Any]],
                     max_preemptions: int | None = None) -> dict[str, Any]:
    """The JSON document of ``tracer explore --format json`` (docs/formats.md): the
    exploration's counts and ``problems``, its findings as reported (each with its
    ``trace`` path), in the order of ``found``'s problems by first schedule then kind."""
    doc: dict[str, Any] = {"runs": found.runs, "strategy": strategy, "seed": seed,
                           "findings": list(problems), "distinct_schedules": len(found.keys),
                           "complete": found.exhaustive}
    if strategy == "dfs":
        doc.update(exhausted=found.complete, max_preemptions=max_preemptions,
                   pruned=found.pruned)
    if found.interrupted:
        doc["interrupted"] = True
    if found.shard is not None:
        doc["shard"] = shard_document(found)
    return doc


def shard_document(found: Exploration) -> dict[str, Any]:
    """The ``shard`` field of a sharded exploration's JSON document: which part of which
    exploration it is, the keys of the distinct schedules it ran (the union over the shards
    is the whole's ``distinct_schedules``) and the identity of each of its problems, in the
    order of its findings (what tells that two shards found the same problem)."""
    sh = found.shard
    if sh is None:
        raise ValueError("not a sharded exploration")
    return {"index": sh.index, "count": sh.count, "scenario": sh.scenario,
            "digest": sh.digest, "runs": sh.runs, "depth": sh.depth,
            "max_events": sh.max_events,
            "schedules": [sh.schedules.start, sh.schedules.stop],
            "keys": [f"{k:016x}" for k in sorted(found.keys)],
            "problems": [[key[0], sorted(key[1]), sorted(key[2])]
                         for key, _g in _ordered(found)]}


class MergeError(ValueError):
    """Shards that :func:`merge` cannot combine into one exploration (the message says why)."""


def _field(doc: Mapping[str, Any], key: str, kind: type | tuple[type, ...], name: str) -> Any:
    value = doc.get(key)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise MergeError(f"{name}: its {key!r} field is missing or malformed; give the output "
                         "of `tracer explore --shard K/N --format json` unchanged")
    return value


def _from_document(doc: Any, name: str) -> Exploration:
    """A shard's exploration, read back from its JSON document (groups carry their trace's
    path as ``trace``)."""
    from tracer.engine.schedule.explore.search import Exploration, Shard  # noqa: PLC0415

    if not isinstance(doc, Mapping) or "findings" not in doc:
        raise MergeError(f"{name}: not the JSON output of `tracer explore --format json`")
    sh = doc.get("shard")
    if not isinstance(sh, Mapping):
        raise MergeError(f"{name}: the output of an exploration that was not sharded (no "
                         "'shard' field): merge the outputs of `tracer explore --shard K/N "
                         "--format json`")
    index, count = _field(sh, "index", int, name), _field(sh, "count", int, name)
    max_events = sh.get("max_events")
    if max_events is not None and not isinstance(max_events, int):
        _field(sh, "max_events", int, name)
    shard = Shard(index, count, _field(sh, "scenario", str, name),
                  _field(sh, "digest", str, name), _field(doc, "strategy", str, name),
                  _field(doc, "seed", int, name), _field(sh, "runs", int, name),
                  _field(sh, "depth", int, name), max_events)
    if shard.strategy not in ("random", "pct"):
        raise MergeError(f"{name}: its strategy is {shard.strategy!r}, but only random and pct "
                         "explorations are sharded; give the output of `tracer explore "
                         "--shard K/N --format json` unchanged")
    if not 1 <= index <= count or _field(sh, "schedules", list, name) != [
            shard.schedules.start, shard.schedules.stop]:
        raise MergeError(f"{name}: its 'shard' field does not describe shard {index}/{count} "
                         f"of {shard.runs} runs; give the output of `tracer explore --shard "
                         "K/N --format json` unchanged")
    findings = _field(doc, "findings", list, name)
    problems = _field(sh, "problems", list, name)
    keys = _field(sh, "keys", list, name)
    out = Exploration(runs=_field(doc, "runs", int, name), shard=shard,
                      interrupted=doc.get("interrupted") is True)
    size = shard.schedules.stop - shard.schedules.start  # (len() fails past 2**63)
    if out.runs > size or (out.runs < size and not out.interrupted):
        raise MergeError(f"{name}: it ran {out.runs} schedules, but shard {index}/{count} of "
                         f"{shard.runs} runs has {size} (and it was not interrupted); give "
                         "the output of `tracer explore --shard K/N --format json` unchanged")
    try:
        out.keys = {int(k, 16) for k in keys}
        if len(problems) != len(findings):
            raise ValueError
        for f, (kind, actors, objects) in zip(findings, problems, strict=True):
            if f["kind"] != kind:
                raise ValueError
            group = {k: f[k] for k in ("kind", "actors", "objects", "message", "count",
                                       "first_run", "trace")}
            if not isinstance(group["count"], int) or not isinstance(group["first_run"], int):
                raise ValueError
            # a problem's first schedule is one the shard ran, and it hit no more than those
            if group["first_run"] not in shard.schedules or not 1 <= group["count"] <= out.runs:
                raise ValueError
            out.groups[(kind, frozenset(actors), frozenset(objects))] = group
    except (ValueError, TypeError, KeyError, AttributeError):
        raise MergeError(f"{name}: its findings do not match its 'shard' field; give the "
                         "output of `tracer explore --shard K/N --format json` "
                         "unchanged") from None
    return out


_SAME = (("scenario", "scenario"), ("digest", "scenario (its content or --max-events)"),
         ("strategy", "--strategy"), ("seed", "--seed"), ("runs", "--runs"),
         ("depth", "--depth"), ("count", "number of shards N of --shard K/N"))


def merge(parts: Sequence[Exploration | Mapping[str, Any]],
          names: Sequence[str] | None = None) -> Exploration:
    """Combine the shards of one exploration (each part an :func:`explore` result with
    ``shard=(k, n)``, or the parsed output of ``tracer explore --shard K/N --format json``)
    into the findings, counts and first schedules of the unsharded exploration. ``names``
    name the parts in messages (default: "shard input 1", ...).

    Every one of the n shards must be given once, all of the same exploration (scenario,
    strategy, seed, runs, depth): else :class:`MergeError`. The result's ``shard`` is None
    and ``whole`` describes the exploration; a problem's first trace is its group's
    ``text`` (explorations) or ``trace`` path (documents), that of the shard that ran its
    first schedule."""
    from tracer.engine.schedule.explore.search import Exploration  # noqa: PLC0415
    from tracer.engine.schedule.explore.search import merge as merge_parts  # noqa: PLC0415

    if names is None:
        names = [f"shard input {i + 1}" for i in range(len(parts))]
    if not parts:
        raise MergeError("nothing to merge: give the JSON outputs of every shard")
    read = [p if isinstance(p, Exploration) else _from_document(p, n)
            for p, n in zip(parts, names, strict=True)]
    by_index: dict[int, str] = {}
    first = None
    for part, name in zip(read, names, strict=True):
        sh = part.shard
        if sh is None:
            raise MergeError(f"{name}: not a sharded exploration (explore it with shard=(k, n))")
        if first is None:
            first = (sh, name)
        for attr, what in _SAME:
            mine, theirs = getattr(sh, attr), getattr(first[0], attr)
            if mine != theirs:
                raise MergeError(f"{first[1]} and {name} are shards of different explorations "
                                 f"({what}: {theirs} and {mine}); merge the shards of one "
                                 "exploration, each run with the same options")
        if sh.index in by_index:
            raise MergeError(f"shard {sh.index}/{sh.count} given twice ({by_index[sh.index]} "
                             f"and {name}); give each shard once")
        by_index[sh.index] = name
    assert first is not None
    whole = first[0]
    if len(by_index) < whole.count:
        # the first few missing ones (N may be huge: a typo in --shard K/N)
        missing = list(itertools.islice(
            (i for i in range(1, whole.count + 1) if i not in by_index), 10))
        listed = ", ".join(f"{i}/{whole.count}" for i in missing)
        if whole.count - len(by_index) > len(missing):
            listed += f" and {whole.count - len(by_index) - len(missing)} more"
        raise MergeError(f"shard(s) {listed} missing: merge needs all {whole.count} shards "
                         "of the exploration (a partial merge would not be the exploration's "
                         "findings and counts); run the missing ones and merge again")
    out = merge_parts(read)
    # in the order the unsharded run found them: by first schedule, then as the shard that
    # ran it found them (two problems of one kind first seen in one schedule keep their order)
    rank: dict[Any, int] = {}
    for part in read:
        for i, (key, g) in enumerate(part.groups.items()):
            if out.groups[key]["first_run"] == g["first_run"]:
                rank[key] = i
    out.groups = dict(sorted(out.groups.items(),
                             key=lambda kv: (kv[1]["first_run"], rank[kv[0]])))
    out.whole = whole
    return out


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
