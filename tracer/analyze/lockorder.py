"""Potential deadlocks from the order in which locks are taken (lockdep, Goodlock).

Every acquisition of a lock B while holding a lock A adds the edge A -> B to the lock-order
graph, remembered per *occurrence group*: the actor, every lock it held at that moment, and
its happens-before clocks there. An acquisition made with ``blocking: false`` (its call event
says so) adds no edge: it cannot wait, so it cannot be part of a deadlock (the lock it got is
held all the same). A cycle of edges is a potential deadlock when one occurrence can be
chosen per edge such that the chosen actors could be inside their acquisitions at the same
time (iGoodlock's conditions):

- the actors are all different (one actor cannot wait for itself across a cycle);
- the locks they held are pairwise disjoint (a common *gate* lock held by all makes the cycle
  impossible: two actors cannot hold it at once);
- their *hold intervals* are pairwise unordered by happens-before. The interval of an
  occurrence A -> B runs from the acquisition of A to the acquisition of B: the time the actor
  holds A and wants B. Two occurrences can only be in their intervals at once (each holding
  its lock, each wanting the other's) if neither interval ends before the other begins in
  every interleaving: for intervals [s1, e1] and [s2, e2], neither e1 -> s2 nor e2 -> s1.
  A barrier, an event set -> wait, a queue or pipe hand-off, a notify, a join... between the
  two orders makes one of those true: no run can deadlock there.

Happens-before is the shared state pass's (:mod:`tracer.trace.state`), the race detector's,
but without the edges of mutual exclusion
(a lock's release -> its next acquire, a semaphore that starts with a value): those order two
actors only in this run, and in the observed run every cycle's halves are ordered by the
cycle's own locks (one actor released A and B before the other took them) — counting them
would hide every cycle. What remains is this run's: a wait on an event set by several actors
is ordered after every set it could have seen here, although in another run an earlier one
alone might let it through (the race detector's approximation, kept to have one).

A cycle that did deadlock in this run (the trace's deadlock event names its locks) is not
reported here: it is a deadlock, reported by ``waitgraph``.

Cycles are searched per strongly connected component, shortest first, with a budget; once
many have been reported (a dense graph: every lock taken under every other), a cycle through
every lock of a reported one is not searched any more, so such a graph costs bounded time
and gives a bounded number of findings.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tracer.analyze._model import Finding, LockOrderGraph, TraceData, line_of, where
from tracer.analyze.races import names
from tracer.trace.state import ACCESS, Clocks, TraceState, state_of
from tracer.trace.waits import _sccs

MAX_SEARCH = 200_000  # DFS steps spent looking for cycles, over the whole graph
MAX_CHOICE = 20_000  # backtracking steps spent choosing occurrences for one cycle
MAX_EDGE_SEQS = 16  # occurrence pairs listed per edge in the graph
PRUNE_AFTER = 50  # findings after which cycles through a reported one are not searched


@dataclass
class _Group:
    """Occurrences of one edge by one actor, with the same locks held, between the same
    synchronisations (the same clocks at both acquisitions). ``first`` are the seqs of the
    first occurrence: the held lock's acquisition and the acquired lock's; ``start_vc`` and
    ``end_vc`` the actor's happens-before clocks there."""

    actor: int
    held: frozenset[str]
    first: tuple[int, int]
    start_vc: list[int]
    end_vc: list[int]
    count: int = 1
    # whether the held lock is held, and the acquired one taken, in a mode holders share (an
    # rwlock's read): a cycle needs a conflict at each lock, two readers never wait for each
    # other
    shared: tuple[bool, bool] = (False, False)


_Edges = dict[tuple[str, str], dict[tuple[Any, ...], _Group]]


@dataclass
class _Result:
    locks: list[str]
    edges: _Edges
    cycles: list[list[str]]
    findings: list[Finding]


_last: tuple[weakref.ref[TraceData], int, _Result] | None = None


def lock_order_graph(data: TraceData) -> LockOrderGraph:
    """The lock-order graph of the trace, with the potential-deadlock cycles marked."""
    r = _analyze(data)
    graph_edges: list[tuple[str, str, list[int]]] = []
    for (a, b), groups in r.edges.items():
        seqs: list[int] = []
        for g in sorted(groups.values(), key=lambda g: g.first)[:MAX_EDGE_SEQS]:
            seqs += g.first
        graph_edges.append((a, b, seqs))
    return LockOrderGraph(list(r.locks), graph_edges, [list(c) for c in r.cycles])


_TAKES = frozenset({"acquire", "wait"})  # the ops that take locks (a condition wait re-takes)


def find_potential_deadlocks(data: TraceData,
                             state: TraceState | None = None) -> list[Finding]:
    """One ``potential_deadlock`` finding per feasible lock-order cycle."""
    if state is None:
        state = state_of(data)
    if state.ops.isdisjoint(_TAKES):
        return []  # no lock is ever taken: no lock-order edge
    return list(_analyze(data, state).findings)


def _analyze(data: TraceData, state: TraceState | None = None) -> _Result:
    # the CLI asks for both the graph and the findings: compute them once per trace
    global _last
    if _last is not None and _last[0]() is data and _last[1] == len(data.events):
        return _last[2]
    result = _compute(data, state or state_of(data))
    _last = (weakref.ref(data), len(data.events), result)
    return result


def _compute(data: TraceData, state: TraceState) -> _Result:
    # most traces have no cycle at all: find the edges without clocks first (cheap), and
    # derive happens-before only when the graph has a cycle to judge
    try:
        edges, locks, deadlocks = _scan(data, state, False)
    except _TwoCycle:
        pass  # an edge and its reverse: judge them with clocks
    else:
        if not edges or not _has_cycle(edges):
            return _Result(list(locks), edges, [], [])
    edges, locks, deadlocks = _scan(data, state, True)
    deadlocked = _deadlocked_sets(deadlocks, state)
    cycles, findings = _cycles(data, edges, deadlocked, state.actor_names)
    return _Result(list(locks), edges, cycles, findings)


class _TwoCycle(Exception):
    """The scan without clocks met an edge whose reverse it has seen: the graph has a cycle,
    so the rest of that scan would be wasted."""


def _has_cycle(edges: _Edges) -> bool:
    """Whether the lock-order graph has a cycle (a strongly connected part of 2 or more)."""
    succ: dict[str, list[str]] = {}
    for a, b in edges:
        succ.setdefault(a, []).append(b)
        succ.setdefault(b, [])
    return any(len(comp) > 1 for comp in _sccs(sorted(succ), succ))


def _scan(data: TraceData, state: TraceState,
          with_hb: bool) -> tuple[_Edges, dict[str, None], list[dict[str, Any]]]:
    """The lock-order edges of the trace (with happens-before clocks when ``with_hb``, else
    all-zero ones), the locks taken and the deadlock events. Who holds what is the state
    pass's: a hold whose mode is a lock-order node (a lock, rlock or condition's lock; an
    undeclared name is a lock) is taken and given back as its changes say."""
    index = state.index
    n = len(state.actor_names)
    ordered: dict[str, bool] = {}  # resource -> whether its holds are lock-order nodes

    # happens-before without the edges of mutual exclusion: only what orders two actors in
    # every interleaving (events, queues, barriers, joins, ...) separates them
    step: Callable[[Any, int], None] | None = None
    quiet: frozenset[str] = frozenset()
    if with_hb:
        # a first pass finds the epochs another actor takes up; the second ticks only after
        # those (see tracer.trace.state), so an occurrence group is split only by what some
        # actor saw
        first = Clocks(state, mutex=False, track=True)
        _steps(data, first, index)
        hb = Clocks(state, mutex=False, ticks=first.consumed)
        clocks = hb.clocks
        step = hb.step
        quiet = hb.quiet
    else:
        clocks = [[0] * n] * n  # one clock for all: occurrences group by actor and locks

    # per actor: resource -> [times held, seq of the acquisition, clock there]
    held: list[dict[str, list[Any]]] = [{} for _ in range(n)]
    nonblocking: set[int] = set()  # actors inside an acquire made with blocking: false
    edges: _Edges = {}
    locks: dict[str, None] = {}
    changes = state.holds.changes

    shared_modes: dict[tuple[str, str], bool] = {}

    def shared(r: str, mode: str) -> bool:
        k = (r, mode)
        v = shared_modes.get(k)
        if v is None:
            m = state.facts_of(r).mode(mode)
            v = shared_modes[k] = m is not None and m.sharing == "shared"
        return v

    def acquired(t: int, r: str, seq: int, times: int, edge: bool = True,
                 mode: str = "") -> None:
        h = held[t]
        if r in h:
            h[r][0] = times  # re-entry (rlock): no edge
            return
        if r not in locks:
            locks[r] = None
        c = clocks[t]
        sr = shared(r, mode)
        if h and edge:
            hs = frozenset(h)
            for a, info in h.items():
                groups = edges.get((a, r))
                if groups is None:
                    if not with_hb and (r, a) in edges:
                        raise _TwoCycle
                    groups = edges[(a, r)] = {}
                # occurrences between the same synchronisations are one group: a clock is
                # replaced whenever it changes, and the group keeps both lists alive, so
                # their ids stay theirs while the key exists
                key = (t, hs, id(info[2]), id(c), info[3], sr)
                g = groups.get(key)
                if g is None:
                    groups[key] = _Group(t, hs, (info[1], seq), info[2], c,
                                         shared=(info[3], sr))
                else:
                    g.count += 1
        h[r] = [times, seq, c, sr]

    deadlocks: list[dict[str, Any]] = []
    for e in data.events:
        actor = e.actor
        op = e.op
        if actor is None:
            if op == "deadlock":
                deadlocks.append(e)
            continue
        if op in ACCESS:
            continue  # no lock, no clock
        t = index[actor]
        if step is not None and op not in quiet:
            step(e, t)
        if op == "acquire" and e.phase == "call":
            if e.get("blocking") is False:
                nonblocking.add(t)  # it cannot wait: no lock-order edge
            continue
        cs = changes[e.seq]
        if cs is not None:
            for c in cs:
                r = c.resource
                o = ordered.get(r)
                if o is None:
                    o = ordered[r] = state.exclusive(r)
                if not o:
                    continue
                kind = c.kind
                if kind == "take":
                    acquired(t, r, e.seq, c.times, t not in nonblocking, c.mode)
                elif kind == "retake":
                    acquired(t, r, e.seq, c.times, mode=c.mode)  # the wait re-takes it
                elif kind == "give":
                    if c.times <= 0:
                        held[c.actor].pop(r, None)
                    else:
                        held[c.actor][r][0] = c.times
                elif kind in ("free", "let_go"):
                    held[c.actor].pop(r, None)
        if op == "acquire":
            nonblocking.discard(t)

    return edges, locks, deadlocks


def _steps(data: TraceData, hb: Clocks, index: dict[str, int]) -> None:
    """Step ``hb`` through the events of the trace that can change a clock."""
    step = hb.step
    quiet = hb.quiet
    for e in data.events:
        actor = e.actor
        if actor is None or e.op in ACCESS or e.op in quiet:
            continue
        step(e, index[actor])


def _deadlocked_sets(deadlocks: list[dict[str, Any]], state: TraceState) -> list[set[str]]:
    """The resources named by each deadlock event of the trace."""
    out = []
    for e in deadlocks:
        s: set[str] = set()
        for obj in e.get("objects") or ():
            if isinstance(obj, str):
                s.add(state.resource(obj))
        for w in e.get("waits") or ():
            if isinstance(w, dict):
                target = w.get("target")
                if isinstance(target, str):
                    s.add(state.resource(target))
                s.update(h for h in w.get("holds") or () if isinstance(h, str))
        out.append(s)
    return out


def _cycles(data: TraceData, edges: _Edges, deadlocked: list[set[str]],
            actor_names: list[str]) -> tuple[list[list[str]], list[Finding]]:
    succ: dict[str, list[str]] = {}
    for a, b in edges:
        succ.setdefault(a, []).append(b)
        succ.setdefault(b, [])
    for v in succ.values():
        v.sort()
    reported: list[frozenset[str]] = []
    by_node: dict[str, list[frozenset[str]]] = {}
    cycles: list[list[str]] = []
    findings: list[Finding] = []
    budget = [MAX_SEARCH, 0]  # DFS steps left, findings so far

    def consider(cycle: list[str]) -> None:
        lockset = frozenset(cycle)
        if deadlocked and any(lockset <= d for d in deadlocked):
            return
        chosen = _choose(cycle, edges, budget)
        if chosen is None:
            return
        reported.append(lockset)
        for x in lockset:
            by_node.setdefault(x, []).append(lockset)
        cycles.append(cycle)
        findings.append(_finding(data, cycle, chosen, actor_names))
        budget[1] += 1

    if len(succ) == 2:  # two locks (ABBA, the common case): a cycle when both edges exist
        a, b = sorted(succ)
        comps = [[a, b]] if (b, a) in edges and (a, b) in edges else []
    else:
        comps = _sccs(sorted(succ), succ)
    for comp in comps:
        if len(comp) < 2:
            continue
        members = set(comp)
        order = {x: i for i, x in enumerate(comp)}
        # 2-cycles first: cheap, and the most common potential deadlock (ABBA)
        for a in comp:
            for b in succ[a]:
                if b in members and order[b] > order[a] and (b, a) in edges:
                    consider([a, b])
        # then longer cycles, shortest first, each started at its smallest lock
        for length in range(3, len(comp) + 1):
            if budget[0] <= 0:
                break
            for s in comp:
                if budget[0] <= 0:
                    break
                path = [s]
                on = {s}
                _dfs(s, length, path, on, succ, members, order, by_node, budget, consider)
    return cycles, findings


def _dfs(s: str, length: int, path: list[str], on: set[str], succ: dict[str, list[str]],
         members: set[str], order: dict[str, int], by_node: dict[str, list[frozenset[str]]],
         budget: list[int], consider: Callable[[list[str]], None]) -> None:
    """Simple cycles of exactly ``length`` locks through ``s``, all other locks after ``s`` in
    ``order`` (so each cycle is found once), skipping paths that contain a reported cycle."""
    stack = [(s, 0)]
    while stack:
        node, i = stack.pop()
        nxt = succ[node]
        if i >= len(nxt):
            if node != s:
                path.pop()
                on.discard(node)
            continue
        stack.append((node, i + 1))
        budget[0] -= 1
        if budget[0] <= 0:
            return
        m = nxt[i]
        if m == s:
            if len(path) == length:
                consider(list(path))
            continue
        if m not in members or m in on or order[m] < order[s] or len(path) >= length:
            continue
        # past PRUNE_AFTER findings, a path through every lock of a reported cycle is not
        # followed: in a dense graph it would mostly repeat what was said
        if budget[1] >= PRUNE_AFTER and any(all(x == m or x in on for x in r)
                                            for r in by_node.get(m, ())):
            continue
        path.append(m)
        on.add(m)
        stack.append((m, 0))


def _choose(cycle: list[str], edges: _Edges, budget: list[int]) -> list[_Group] | None:
    """One occurrence group per edge of ``cycle`` that could run at the same time, or None.
    The work is charged to the search ``budget``."""
    k = len(cycle)
    options = [list(edges[(cycle[i - 1], cycle[i])].values()) for i in range(1, k)]
    options.append(list(edges[(cycle[-1], cycle[0])].values()))
    actors: set[int] = set()
    common: frozenset[str] | None = None
    for opts in options:
        budget[0] -= len(opts)
        for g in opts:
            actors.add(g.actor)
            common = g.held if common is None else common & g.held
    if len(actors) < k:
        return None  # fewer actors than edges: some actor would have to wait for itself
    if common:
        return None  # a gate lock held at every occurrence
    steps = [MAX_CHOICE]
    chosen: list[_Group] = []
    found = _pick(0, options, chosen, steps)
    budget[0] -= MAX_CHOICE - steps[0]
    return chosen if found else None


def _pick(i: int, options: list[list[_Group]], chosen: list[_Group], steps: list[int]) -> bool:
    """Backtracking for :func:`_choose`: extend ``chosen`` (one group per edge before ``i``)
    to every edge; each group tried costs a step."""
    if i == len(options):
        return True
    for g in options[i]:
        steps[0] -= 1
        if steps[0] <= 0:
            return False
        if _compatible(chosen, g) and _conflicts(chosen, g, len(options)):
            chosen.append(g)
            if _pick(i + 1, options, chosen, steps):
                return True
            chosen.pop()
    return False


def _conflicts(chosen: list[_Group], g: _Group, k: int) -> bool:
    """Whether, with ``g`` next on the cycle, each lock between two of its edges is taken by
    one actor in a mode that waits for the other's hold (not both shared: readers)."""
    if chosen and chosen[-1].shared[1] and g.shared[0]:
        return False
    return not (len(chosen) == k - 1 and g.shared[1] and chosen[0].shared[0])


def _compatible(chosen: list[_Group], g: _Group) -> bool:
    """Whether ``g`` could be inside its acquisition while every one of ``chosen`` is."""
    for c in chosen:
        if c.actor == g.actor or c.held & g.held:
            return False
        # event x of actor p happens-before event y iff clock(y)[p] >= clock(x)[p] (see
        # tracer.trace.state): is c's interval over (its end, the acquisition of its second
        # lock, happened before) when g's begins, or the reverse? Then they are never inside
        # together.
        if c.end_vc[c.actor] <= g.start_vc[c.actor] or \
                g.end_vc[g.actor] <= c.start_vc[g.actor]:
            return False  # one is over before the other begins, in every interleaving
    return True


def _finding(data: TraceData, cycle: list[str], chosen: list[_Group],
             actor_names: list[str]) -> Finding:
    k = len(cycle)
    parts = []
    edges_info = []
    seqs: list[int] = []
    for i, g in enumerate(chosen):
        a, b = cycle[i], cycle[(i + 1) % k]
        who = actor_names[g.actor]
        first, then = g.first
        at_a, at_b = where(data, first), where(data, then)  # the line of each acquisition
        parts.append(f"{who} takes {a}{f' ({at_a})' if at_a else ''} then "
                     f"{b}{f' ({at_b})' if at_b else ''} (seq {first}, {then})")
        seqs.append(first)
        seqs.append(then)
        edge: dict[str, Any] = {"from": a, "to": b, "actor": who, "seqs": [first, then],
                                "holding": sorted(g.held), "count": g.count}
        lines = [line_of(data, first), line_of(data, then)]
        if lines != [None, None]:
            edge["lines"] = lines
        edges_info.append(edge)
    if k == 2:
        tail = "each holds one and waits for the other"
        fix = "take them in one order everywhere"
    else:
        tail = "each holds one and waits for the next"
        fix = f"take {names(cycle)} in one order everywhere"
    msg = (f"potential deadlock: {', '.join(parts)}; in another interleaving {tail} — {fix}")
    actors = tuple(dict.fromkeys([actor_names[g.actor] for g in chosen]))
    seqs.sort()
    return Finding("potential_deadlock", actors, tuple(cycle), msg, tuple(seqs),
                   {"cycle": list(cycle), "edges": edges_info})
