"""Exploration: many schedules of one scenario, each problem reported once.

Random and PCT: schedules are numbered 0..N-1; schedule ``run`` uses the seed
``schedule_seed(seed, run)``, so the findings depend only on the seed, never on how the runs
are split among worker processes (``jobs``): each worker explores a contiguous range, and the
ranges' results merge by schedule number. Shards (``--shard K/N``, :func:`shard_range`) are
the same split across commands and machines: their results merge the same way (the keys of
the distinct schedules are digests, equal in every process). DFS is not split: its reduction
decides what to explore in one subtree from the subtrees explored before it.

DFS: a systematic search of the tree of choices (stateless, as in CHESS and loom): each
schedule follows the choices of the one before up to the deepest choice with an alternative
left, takes that alternative, and goes on with the default (no preemption). Without a bound,
dynamic partial-order reduction (source sets: only the alternatives that reverse a race of
the schedules run so far) and sleep sets skip the schedules that only reorder independent
operations, so each schedule run is a distinct one and the search ends when all are covered. With
``--max-preemptions N`` it covers every schedule with at most N preemptions (a switch away
from an actor that could have gone on), the bound of CHESS's iterative context bounding; the
reduction is then off (combined with a bound it could skip a schedule whose only equivalent
needs more preemptions).

Every schedule's run is judged by the caller's ``judge`` (the public API gives the analyses:
this module, on the engine's side, never imports them); a problem is identified by its kind,
the *set* of its actors and the set of its objects (:func:`problem_key`): the same race or
deadlock seen in another order is the same problem.
"""

from __future__ import annotations

import gc
import hashlib
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from tracer._show import show
from tracer.engine._proc import KillingPool, exit_with_parent, get_context
from tracer.engine._run import RunResult, run_plan
from tracer.engine._workers import Workers
from tracer.engine.schedule.explore.scheduler import (
    ANY,
    ExploreScheduler,
    Pending,
    Point,
    Systematic,
    dependent,
    make_scheduler,
    object_groups,
    operation_object,
    schedule_seed,
)
from tracer.scenario import Plan, plan_from_mapping

Group = dict[str, Any]
ProblemKey = tuple[str, frozenset[str], frozenset[str]]


class Problem(Protocol):
    """What an exploration reads of a finding (a :class:`tracer.analyze.Finding`)."""

    @property
    def kind(self) -> str: ...
    @property
    def actors(self) -> tuple[str, ...]: ...
    @property
    def objects(self) -> tuple[str, ...]: ...
    @property
    def message(self) -> str: ...
    @property
    def details(self) -> dict[str, Any]: ...


# The problems of one schedule's run; the second argument names the run ("schedule 3").
Judge = Callable[[RunResult, str], Sequence[Problem]]


def problem_key(f: Problem) -> ProblemKey:
    """What makes two findings one problem: the kind, who is involved and what they touch,
    in any order (a race seen as a then b and as b then a is one race). Two kinds say what
    the problem is more precisely than who took part (docs/formats.md section 4):

    - an ``invariant``: the declared invariant broken (``x == 2``), whoever wrote last (the
      finding's actors are that last writer: which one it is varies with the schedule);
    - an ``error`` whose ``end`` event names the failing step: that step of that declared
      actor (``actors[0].steps[1]``), so the copies ``t[0]``, ``t[1]`` of a ``count: 3``
      actor failing at one ``fail`` step are one problem; the row lists the copies seen.
    """
    d = f.details
    if f.kind == "invariant" and isinstance(d.get("var"), str) and "op" in d:
        return f.kind, frozenset(), frozenset({f"{d['var']} {d['op']} {show(d.get('value'))}"})
    if f.kind == "error" and isinstance(d.get("path"), str):
        return f.kind, frozenset(), frozenset({*f.objects, f"step {d['path']}"})
    return f.kind, frozenset(f.actors), frozenset(f.objects)


def _add_actors(group: Group, key: ProblemKey, actors: Iterable[str]) -> None:
    """A problem whose key does not name its actors (an invariant, a step that failed) lists
    every actor seen in it: each last writer, each copy that failed there."""
    if not key[1]:
        group["actors"] = sorted({*group["actors"], *actors})


def shard_range(runs: int, index: int, count: int) -> range:
    """The schedules of shard ``index`` (1-based) of ``count``: the index-th of ``count``
    contiguous, disjoint ranges that cover 0..runs-1 (empty when there are more shards than
    runs). A schedule's seed depends only on the exploration's seed and its number, so the
    shards together run exactly the schedules of the unsharded exploration."""
    return range((index - 1) * runs // count, index * runs // count)


@dataclass(frozen=True)
class Shard:
    """Which part of which exploration a sharded exploration is: what ``tracer merge``
    checks before it combines shards (same scenario, strategy, seed, runs and depth; every
    shard once)."""

    index: int  # 1-based
    count: int
    scenario: str  # its name
    digest: str  # of the checked scenario (with its max_events), as embedded in traces
    strategy: str
    seed: int
    runs: int  # of the whole exploration
    depth: int
    max_events: int | None  # the scenario's (or --max-events)

    @property
    def schedules(self) -> range:
        return shard_range(self.runs, self.index, self.count)


@dataclass
class Exploration:
    """What an exploration found: per distinct problem (:func:`problem_key`) its message,
    how many schedules hit it, the first one, and that schedule's trace text."""

    groups: dict[ProblemKey, Group] = field(default_factory=dict)
    runs: int = 0  # schedules run to their end
    keys: set[int] = field(default_factory=set)  # one per distinct schedule (see schedule_key)
    pruned: int = 0  # DFS: schedules cut short as equivalent to one explored before
    complete: bool = False  # DFS: every schedule (within the bound) was explored
    cut: bool = False  # DFS: the preemption bound left out some schedule
    unfollowed: int = 0  # DFS: schedules that could not follow their planned choices
    interrupted: bool = False  # stopped by Ctrl-C: what was found so far
    # per distinct schedule (its key), the problems its analysis found
    found_in: dict[int, list[ProblemKey]] = field(default_factory=dict)
    reuse: bool = True  # count an equivalent schedule's problems without analyzing it again
    shard: Shard | None = None  # the part of a sharded exploration this is (--shard K/N)
    whole: Shard | None = None  # a merge of shards: the exploration they were parts of

    @property
    def exhaustive(self) -> bool:
        """Whether every distinct schedule was covered: a systematic search that ended, and
        that no preemption bound cut short."""
        return self.complete and not self.cut and not self.interrupted

    def add(self, run: int, result: RunResult, groups_of: dict[str, str], judge: Judge) -> None:
        """Judge schedule ``run``'s result and count what it found. A schedule equivalent
        to one analyzed before (same ``schedule_key``) has the same findings: happens-before,
        the final state, the lock order and who waits for what are the same, so they are
        counted again without analyzing it again."""
        self.runs += 1
        skey = schedule_key(result, groups_of)
        self.keys.add(skey)
        known = self.found_in.get(skey) if self.reuse else None
        if known is not None:
            for key in known:
                self.groups[key]["count"] += 1
            return
        found = self.found_in[skey] = []
        text: str | None = None  # the trace, written out only for a new problem's first run
        for f in judge(result, f"schedule {run}"):
            key = problem_key(f)
            if key in found:  # one schedule counts once per problem (copies: their actors)
                _add_actors(self.groups[key], key, f.actors)
                continue
            found.append(key)
            group = self.groups.get(key)
            if group is None:
                if text is None:
                    text = result.to_json()
                self.groups[key] = {"kind": f.kind, "actors": list(f.actors),
                                    "objects": list(f.objects), "message": f.message,
                                    "count": 1, "first_run": run, "text": text}
            else:
                _add_actors(group, key, f.actors)
                group["count"] += 1


def schedule_key(result: RunResult, groups_of: dict[str, str]) -> int:
    """A fingerprint of a schedule up to the order of independent operations: each actor's
    own sequence of events (with items and values), and per object the order in which the
    actors operated on it. Two schedules that differ only in the order of operations on
    different objects have the same key (they are the same Mazurkiewicz trace).

    A digest, not ``hash()``: the key must be the same in every process (``--shard`` merges
    the keys of explorations run on other machines, under other hash seeds)."""
    per: dict[str, list[tuple[Any, ...]]] = {}
    for _seq, _ts, tag, payload in result.records:
        actor = tag.actor
        if actor is None:
            continue
        what = (tag.op, tag.target, tag.phase, tag.result,
                repr(payload.get("item", payload.get("value"))) if payload else None)
        per.setdefault("actor:" + actor, []).append(what)
        obj = operation_object(actor, tag, groups_of)
        if obj is not None:
            per.setdefault("object:" + obj, []).append((actor, tag.op))
    text = repr(sorted((k, tuple(v)) for k, v in per.items()))
    digest = hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def explore_runs(plan: Plan, runs: Iterable[int], seed: int, strategy: str,
                 depth: int, judge: Judge, reuse: bool = True) -> Exploration:
    """Run the schedules ``runs`` of a random or PCT exploration, each judged by ``judge``
    (``reuse``: see ``Exploration.add``)."""
    out = Exploration(reuse=reuse)
    order = [a.name for a in plan.actors]
    groups_of = object_groups(plan)
    with Workers() as workers, _heap_frozen():
        try:
            length = 64
            if strategy == "pct":
                # PCT's change points must fall inside a schedule: measure its length on one
                # schedule without preemptions (the same in every worker of --jobs)
                probe = ExploreScheduler(Systematic(), order, groups_of)
                run_plan(plan, probe, mode="explore", workers=workers)
                length = max(2, len(probe.log))
            for run in runs:
                sched_seed = schedule_seed(seed, run)
                sched = make_scheduler(strategy, sched_seed, depth, order, length, groups_of)
                result = run_plan(plan, sched, mode="explore", workers=workers)
                if result.status == "interrupted":  # Ctrl-C in the run: keep what was found
                    out.interrupted = True
                    break
                result.seed = sched_seed
                out.add(run, result, groups_of, judge)
        except KeyboardInterrupt:  # Ctrl-C between runs
            out.interrupted = True
    return out


@contextmanager
def _heap_frozen() -> Iterator[None]:
    """Leave what the process held before the exploration out of the garbage collector's
    passes while it runs (``gc.freeze``): a run with process actors ends with a full
    collection (``tracer._gc.collect_run``), which would otherwise walk the whole heap of
    the command (its imports, the scenario) once per schedule, most of a small schedule's
    time. Only the objects made since are walked; nothing is lost (the frozen ones are
    given back to the collector at the end). Not when something froze the heap already
    (a forked program's child)."""
    if gc.get_freeze_count():
        yield
        return
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def explore_range(scenario: dict[str, Any], start: int, stop: int, seed: int, strategy: str,
                  depth: int, judge: Judge, lines: dict[Any, int] | None = None,
                  source: str = "<trace>") -> Exploration:
    """A worker process's share: schedules start..stop-1 (the plan is rebuilt here, with the
    YAML ``lines`` and the ``source`` of the parent's plan, so that its findings read as the
    parent's; ``judge`` must be a module-level function, to reach the worker)."""
    plan = replace(plan_from_mapping(scenario, source), lines=lines or {})
    return explore_runs(plan, range(start, stop), seed, strategy, depth, judge)


def explore_jobs(plan: Plan, schedules: range, seed: int, strategy: str, depth: int, jobs: int,
                 judge: Judge) -> Exploration:
    """The ``schedules`` (numbers, a step-1 range) of a random or PCT exploration, split in
    contiguous ranges among ``jobs`` worker processes; the same findings as in one process
    (see the module's docstring)."""
    first, stop = schedules.start, schedules.stop
    if stop <= first:
        return Exploration()
    size = -(-(stop - first) // jobs)
    ranges = [(i, min(stop, i + size)) for i in range(first, stop, size)]
    # (its workers ignore SIGTERM, like every process of a run: terminate kills them)
    with KillingPool(jobs, exit_with_parent, (os.getpid(),), context=get_context()) as pool:
        parts = pool.starmap(explore_range, [
            (plan.scenario.as_mapping(), a, b, seed, strategy, depth, judge, plan.lines,
             plan.source)
            for a, b in ranges])
    return merge(parts)


def merge(parts: Iterable[Exploration]) -> Exploration:
    """Merge the results of ranges (of worker processes, or of shards): counts add up, the
    earliest schedule's trace is kept, the distinct schedules are the union of theirs."""
    out = Exploration()
    for part in parts:
        out.runs += part.runs
        out.interrupted |= part.interrupted
        out.keys |= part.keys
        for key, g in part.groups.items():
            have = out.groups.get(key)
            if have is None:
                out.groups[key] = dict(g)
                continue
            have["count"] += g["count"]
            before = have["actors"]
            if g["first_run"] < have["first_run"]:
                have.update(first_run=g["first_run"], message=g["message"],
                            actors=g["actors"], objects=g["objects"])
                for what in ("text", "trace"):  # the trace's text (a run), or its path (JSON)
                    if what in g:
                        have[what] = g[what]
            _add_actors(have, key, [*before, *g["actors"]])
    return out


@dataclass
class _Node:
    """A choice of the DFS's current path."""

    ready: tuple[str, ...]
    prev: str | None
    chosen: str
    sleep: frozenset[str]
    done: set[str]  # alternatives explored here (the chosen one among them)
    backtrack: set[str]  # alternatives that must be explored here
    preemptions: int  # preemptions on the path before this choice

    def preempts(self, name: str) -> bool:
        return self.prev is not None and name != self.prev


def _add_backtracks(log: list[Point], stack: list[_Node]) -> None:
    """Source-DPOR (Abdulla, Aronis, Jonsson and Sagonas, POPL 2014), over one schedule's
    choices: for each actor's next operation at each choice, the latest earlier operation of
    another actor on the same object, when it does not happen before, is a race; the order
    that reverses it must be explored too. So at the choice before the earlier operation, one
    actor that can start the reversed order (an *initial* of what does not depend on the
    earlier operation, followed by the racing one) joins the backtrack set, unless one is
    there already.

    Happens-before is program order plus the order of operations on one object, kept as
    vector clocks. Every parked actor's next operation is checked, not only the chosen one's:
    a blocked actor's retry, never made in this schedule, may be what another order lets
    through (a deadlock's last state)."""
    clock_of: dict[str, dict[str, int]] = {}  # actor -> its vector clock
    last_on: dict[str | None, dict[str, int]] = {}  # object -> clock of its last operation
    everything: dict[str, int] = {}  # join of all clocks (for an operation on ANY)
    history: list[tuple[Pending, str, int, dict[str, int]]] = []  # op, actor, own, clock
    for i, point in enumerate(log):
        for waiter, nxt in point.pending:
            if nxt[0] is None:
                continue
            seen = clock_of.get(waiter, {})
            for j in range(i - 1, -1, -1):
                op_j, other, own_j, _ = history[j]
                if not dependent(op_j, nxt):
                    continue
                if other != waiter and seen.get(other, 0) < own_j and j < len(stack):
                    _reverse(j, i, waiter, nxt, seen, history, stack[j])
                break  # earlier operations on this object happen before this one
        actor, doing = point.chosen, point.doing
        clock = dict(clock_of.get(actor, {}))
        sources = ([everything] if doing[0] == ANY else
                   [last_on.get(doing[0], {}), last_on.get(ANY, {})] if doing[0] is not None
                   else [])
        for src in sources:
            for k, v in src.items():
                if clock.get(k, 0) < v:
                    clock[k] = v
        clock[actor] = clock.get(actor, 0) + 1
        clock_of[actor] = clock
        if doing[0] is not None:
            last_on[doing[0]] = clock
        for k, v in clock.items():
            if everything.get(k, 0) < v:
                everything[k] = v
        history.append((doing, actor, clock[actor], clock))


def _reverse(j: int, i: int, waiter: str, nxt: Pending, seen: dict[str, int],
             history: list[tuple[Pending, str, int, dict[str, int]]], node: _Node) -> None:
    """Make sure the choice before operation ``j`` explores an order where ``waiter``'s
    ``nxt`` (next at choice ``i``) comes first: add an initial of v, the operations between
    them that do not depend on ``j``, followed by ``nxt``."""
    actor_j, own_j = history[j][1], history[j][2]
    first_own: dict[str, int] = {}  # per actor: the clock value of its first operation in v
    firsts: list[int] = []
    before_nxt = False  # an operation of v that comes before nxt
    for k in range(j + 1, i):
        op_k, q, own_k, clk_k = history[k]
        if clk_k.get(actor_j, 0) >= own_j:
            continue  # happens after j: not in v
        if q not in first_own:
            first_own[q] = own_k
            firsts.append(k)
        if q == waiter or dependent(op_k, nxt):
            before_nxt = True
    initials = [history[k][1] for k in firsts
                if all(history[k][3].get(r, 0) < own for r, own in first_own.items()
                       if r != history[k][1])]
    if not before_nxt and all(seen.get(r, 0) < own for r, own in first_own.items()):
        initials.append(waiter)
    if any(q in node.backtrack for q in initials):
        return
    for q in initials:
        if q in node.ready:
            node.backtrack.add(q)
            return
    node.backtrack.update(node.ready)  # none can start it there: try them all


def explore_dfs(plan: Plan, runs: int, judge: Judge, max_preemptions: int | None = None,
                progress: Callable[[int], object] | None = None,
                dpor: bool = True) -> Exploration:
    """A systematic search of at most ``runs`` schedules, each judged by ``judge`` (see the
    module's docstring); ``dpor=False`` explores every alternative of each choice (sleep sets
    only: for tests)."""
    search = _Search(plan, judge, max_preemptions, dpor, progress)
    with Workers() as workers, _heap_frozen():
        try:
            while search.out.runs < runs and not search.out.interrupted:
                if search.step(workers):
                    search.out.complete = True
                    break
        except KeyboardInterrupt:  # Ctrl-C between runs: keep what was found
            search.out.interrupted = True
    return search.out


class _Search:
    """The state of a depth-first search: the path of choices of the current schedule."""

    def __init__(self, plan: Plan, judge: Judge, max_preemptions: int | None, dpor: bool,
                 progress: Callable[[int], object] | None) -> None:
        self.plan = plan
        self.judge = judge
        self.order = [a.name for a in plan.actors]
        self.groups_of = object_groups(plan)
        self.reduce = max_preemptions is None  # sleep sets, and DPOR unless dpor is False
        self.dpor = dpor and self.reduce
        self.bound = max_preemptions if max_preemptions is not None else 1 << 30
        self.progress = progress
        self.stack: list[_Node] = []
        self.out = Exploration()

    def step(self, workers: Workers) -> bool:
        """Run the schedule the path leads to, then move the path to the next branch;
        whether the search is complete."""
        stack, out = self.stack, self.out
        strategy = Systematic([n.chosen for n in stack],
                              [frozenset(n.done - {n.chosen}) for n in stack],
                              sleep_sets=self.reduce)
        sched = ExploreScheduler(strategy, self.order, self.groups_of)
        result = run_plan(self.plan, sched, mode="explore", workers=workers)
        if result.status == "interrupted" and not sched.pruned:  # Ctrl-C
            out.interrupted = True
            return False
        start = len(stack)
        if strategy.diverged is not None:  # the scenario did not repeat itself
            out.unfollowed += 1
            start = strategy.diverged
        del stack[start:]
        pre = stack[-1].preemptions + stack[-1].preempts(stack[-1].chosen) if stack else 0
        for p in sched.log[start:]:
            node = _Node(p.ready, p.prev, p.chosen, p.sleep, {p.chosen},
                         {p.chosen} if self.dpor else set(p.ready), pre)
            stack.append(node)
            pre += node.preempts(p.chosen)
        if self.dpor:
            _add_backtracks(sched.log, stack)
        if sched.pruned:
            out.pruned += 1
        else:
            out.add(out.runs, result, self.groups_of, self.judge)
            if self.progress is not None:
                self.progress(1)
        # the next branch: the deepest choice with an alternative left
        while stack:
            node = stack[-1]
            alt = next((n for n in node.ready if n in node.backtrack and n not in node.done
                        and n not in node.sleep
                        and node.preemptions + node.preempts(n) <= self.bound), None)
            if alt is not None:
                node.done.add(alt)
                node.chosen = alt
                return False
            if not out.cut and any(n in node.backtrack and n not in node.done
                                   and n not in node.sleep for n in node.ready):
                out.cut = True  # an alternative left only because of the preemption bound
            stack.pop()
        return True
