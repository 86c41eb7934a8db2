"""Wait-for reasoning: given who waits for what, who holds what and what each actor may still
do, decide which actors are blocked for good, and whether that is a deadlock or a stall.

A pure function over a :class:`WaitState`, so the engine's watchdog (live state) and the
analyzer (state rebuilt from a trace) share it; it lives in the trace layer, below both.

The model is the OR-model of wait-for graphs: a waiting actor can be freed by any one of its
*providers* (the holder of a lock, any live actor whose remaining program may set the event,
put into the queue, ...). The actors that stay blocked are the greatest set D such that every
member's providers all lie in D. A cycle among them is a deadlock (a knot); a member with no
provider at all is a stall, and so is everyone who waits, directly or not, only on it. An actor
held in a spin loop (kind ``spin``: what it reads nobody can change any more, as the scheduler
that holds it found) has no provider: a livelock is a stall.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace

from tracer.prims import REGISTRY


def freed_by(kind: str, op: str) -> tuple[str, ...]:
    """Which remaining step of another actor can free a wait ``op`` on a primitive of type
    ``kind``: its type's ``FREED_BY`` (an event's wait by a set, a queue's get by a put...);
    a lock's acquire is freed by its holders instead."""
    t = REGISTRY.get(kind)
    return tuple(t.part("FREED_BY", {}).get(op, ())) if t is not None else ()


def _shared_mode(w: Waiter) -> bool:
    """Whether ``w`` waits to take a hold in a mode its type shares among holders (a read)."""
    t = REGISTRY.get(w.kind)
    facts = t.part("FACTS") if t is not None else None
    if facts is None or not getattr(facts, "modes", None):
        return False
    mode = facts.mode(w.mode)
    return mode is not None and mode.sharing == "shared"


def _flag(kind: str, name: str) -> bool:
    t = REGISTRY.get(kind)
    return bool(t.part(name, False)) if t is not None else False

@dataclass(frozen=True)
class Waiter:
    """An actor waiting without a timeout."""

    actor: str
    op: str  # acquire, wait, get, put, recv, send, join, start (not started), queued (pool)
    target: str  # the primitive, the actor joined, or the pool
    kind: str  # primitive type, "actor" or "pool"
    call_seq: int | None = None
    resource: str | None = None  # what holding means for it (a condition's lock), else target
    mode: str | None = None  # the mode of an acquire, for a type with modes (an rwlock's read)
    loop: str | None = None  # a spinner's loop ("'while: flag == 0' (line 7)")
    watched: tuple[str, ...] = ()  # what a spinner's loop reads
    # the YAML line of the step that waits (its call's ``line``); a program's: ``bank.py:12``
    line: int | str | None = None


@dataclass
class WaitState:
    """A consistent picture of a run at one moment."""

    live: set[str]  # actors that have not ended (running, waiting, queued or startable)
    waiting: dict[str, Waiter]  # actor -> what it waits for, no timeout
    holders: dict[str, dict[str, int]]  # resource -> actor -> times held
    caps: dict[str, frozenset[tuple[str, str]]]  # actor -> (verb, target) it may still do
    available: set[str] = field(default_factory=set)  # actors whose wait is satisfied now
    pool_running: dict[str, set[str]] = field(default_factory=dict)  # pool -> running tasks
    daemons: set[str] = field(default_factory=set)
    # where: the scenario file (a trace's ``meta.source``), and (resource, actor) -> the YAML
    # line of the step that took that hold; messages name them ("A (deadlock.yaml:15)")
    source: str | None = None
    hold_line: Callable[[str, str], int | str | None] | None = None
    # (actor, seq) -> the YAML line of that event (a waiter's call), for a Waiter without one
    call_line: Callable[[str, int], int | str | None] | None = None


def at_line(source: str | None, line: int | str | None) -> str:
    """Where a step is, as editors and terminals link it: ``scenarios/x.yaml:12`` (``line
    12`` without a file); empty without a line. A program's line names its file already
    (``bank.py:12``)."""
    if line is None:
        return ""
    if isinstance(line, str):
        return line
    return f"{source}:{line}" if source else f"line {line}"


def source_of_plan(source: str | None) -> str | None:
    """A plan's or trace's source as messages name the file: None when it is none."""
    return source if source and not source.startswith("<") else None


def source_of(data: object) -> str | None:
    """The scenario file a trace's lines are in (its ``meta.source``), or None: also for a
    scenario that came from no file (``<string>``, ``<test>``: messages then say ``line
    12``)."""
    meta = getattr(data, "meta", None)
    source = meta.get("source") if isinstance(meta, dict) else None
    return source_of_plan(source) if isinstance(source, str) else None


def _at(source: str | None, line: int | str | None) -> str:
    where = at_line(source, line)
    return f" ({where})" if where else ""


@dataclass(frozen=True)
class Blocked:
    """One deadlock (a cycle) or stall found in a :class:`WaitState`."""

    kind: str  # "deadlock" or "stall"
    actors: tuple[str, ...]
    objects: tuple[str, ...]
    message: str
    call_seqs: tuple[int, ...]
    waits: tuple[dict[str, object], ...]


def providers(state: WaitState, w: Waiter) -> set[str]:
    """Live actors that could free ``w``."""
    if w.kind == "spin":
        return set()  # (held for good: those who could change what it reads cannot go on)
    if w.kind == "actor" and w.op == "join":
        return {w.target} & state.live
    if w.op == "start":
        return {a for a in state.live if ("start", w.actor) in state.caps.get(a, ())}
    if w.op == "queued":
        return set(state.pool_running.get(w.target, set())) & state.live
    out: set[str] = set()
    if w.op == "acquire":
        out |= set(state.holders.get(w.resource or w.target, {}))
        if _shared_mode(w):
            # a reader waits behind the writers waiting for the same rwlock (writer
            # preference): they go first, and their release lets it in
            out |= {o.actor for o in state.waiting.values()
                    if o.actor != w.actor and o.op == "acquire" and o.target == w.target
                    and not _shared_mode(o)}
    verbs = freed_by(w.kind, w.op)
    if verbs:
        self_frees = _flag(w.kind, "SELF_FREES")  # (a semaphore's)
        arrives_once = _flag(w.kind, "ARRIVES_ONCE")  # (a barrier's)
        for a in state.live:
            if a == w.actor and not self_frees:
                continue
            caps = state.caps.get(a, frozenset())
            if any((v, w.target) in caps for v in verbs):
                if arrives_once and _waits_on(state, a, w.target):
                    continue  # already at the barrier: it cannot arrive twice
                out.add(a)
    return out & state.live


def _waits_on(state: WaitState, actor: str, target: str) -> bool:
    w = state.waiting.get(actor)
    return w is not None and w.target == target and w.op == "wait"


def find_blocked(state: WaitState) -> list[Blocked]:
    """The deadlocks and stalls of ``state``; empty when every waiter may still be freed."""
    stuck = {a for a in state.waiting if a not in state.available and a in state.live}
    prov = {a: providers(state, state.waiting[a]) for a in stuck}
    changed = True
    while changed:
        changed = False
        for a in list(stuck):
            if prov[a] - stuck:
                stuck.discard(a)
                changed = True
    # actors that are merely not started yet are not "blocked" unless something waits on them
    real = {a for a in stuck if state.waiting[a].op != "start"}
    if not real or all(a in state.daemons for a in real):
        return []
    edges = {a: sorted(prov[a] & stuck) for a in stuck}
    out: list[Blocked] = []
    in_cycle: set[str] = set()
    for comp in _sccs(sorted(stuck), edges):
        if len(comp) > 1 or comp[0] in edges[comp[0]]:
            cycle = _cycle_order(comp, edges)
            in_cycle |= set(comp)
            out.append(_describe("deadlock", cycle, state, prov))
    rest = sorted(real - in_cycle)
    if rest:
        # the roots: waiters with no provider; everyone else waits on them (or on a cycle)
        reach_cycle = _reaching(rest, edges, in_cycle)
        stall = [a for a in rest if a not in reach_cycle]
        if stall:
            out.append(_describe("stall", stall, state, prov))
        if reach_cycle and out and out[0].kind == "deadlock":
            first = out[0]
            extra = [a for a in rest if a in reach_cycle]
            tail = _describe("deadlock", extra, state, prov)
            out[0] = Blocked(first.kind, first.actors + tail.actors,
                             tuple(dict.fromkeys(first.objects + tail.objects)),
                             first.message + "; " + tail.message,
                             first.call_seqs + tail.call_seqs, first.waits + tail.waits)
    return out


def _reaching(nodes: list[str], edges: dict[str, list[str]], goal: set[str]) -> set[str]:
    out: set[str] = set()
    for start in nodes:
        seen = {start}
        todo = [start]
        while todo:
            n = todo.pop()
            if n in goal:
                out.add(start)
                break
            for m in edges.get(n, []):
                if m not in seen:
                    seen.add(m)
                    todo.append(m)
    return out


def _sccs(nodes: list[str], edges: dict[str, list[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components, iteratively (no recursion limit)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on: set[str] = set()
    stack: list[str] = []
    out: list[list[str]] = []
    none: list[str] = []
    for root in nodes:
        if root in index:
            continue
        work = [(root, 0)]
        while work:
            node, i = work.pop()
            if i == 0:
                index[node] = low[node] = len(index)
                stack.append(node)
                on.add(node)
            succ = edges.get(node, none)
            if i < len(succ):
                work.append((node, i + 1))
                nxt = succ[i]
                if nxt not in index:
                    work.append((nxt, 0))
                elif nxt in on and index[nxt] < low[node]:
                    low[node] = index[nxt]
                continue
            if low[node] == index[node]:
                if stack[-1] == node:  # a component of one node, the common case
                    stack.pop()
                    on.discard(node)
                    out.append([node])
                else:
                    comp = []
                    while True:
                        top = stack.pop()
                        on.discard(top)
                        comp.append(top)
                        if top == node:
                            break
                    comp.sort()
                    out.append(comp)
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
    return out


def _cycle_order(comp: list[str], edges: dict[str, list[str]]) -> list[str]:
    """The members of a strongly connected component, starting with the first, following
    edges where possible so the message reads as a cycle (t1 -> t2 -> t1)."""
    members = set(comp)
    order = [comp[0]]
    while True:
        nxt = [m for m in edges[order[-1]] if m in members and m not in order]
        if not nxt:
            break
        order.append(nxt[0])
    order += [m for m in comp if m not in order]
    return order


def held_by(state: WaitState, actor: str) -> list[str]:
    return sorted(r for r, hs in state.holders.items() if hs.get(actor))


def _describe(kind: str, actors: Iterable[str], state: WaitState,
              prov: dict[str, set[str]]) -> Blocked:
    parts: list[str] = []
    objects: list[str] = []
    seqs: list[int] = []
    waits: list[dict[str, object]] = []
    hold_line = state.hold_line
    for a in actors:
        w = state.waiting[a]
        held = held_by(state, a)
        hold_lines = {r: n for r in held
                      if (n := hold_line(r, a) if hold_line is not None else None) is not None}
        objects += held
        objects += w.watched if w.kind == "spin" else [w.target]
        if w.call_seq is not None:
            seqs.append(w.call_seq)
        who = sorted(prov.get(a, set()))
        if w.line is None and w.call_seq is not None and state.call_line is not None:
            w = replace(w, line=state.call_line(a, w.call_seq))
        parts.append(_sentence(a, w, held, who, state, hold_lines))
        waits.append({"actor": a, "op": w.op, "target": w.target, "kind": w.kind,
                      "holds": held, "providers": who, "call_seq": w.call_seq,
                      **({"loop": w.loop, "watched": list(w.watched)} if w.kind == "spin"
                         else {}),
                      **({"line": w.line} if w.line is not None else {}),
                      **({"hold_lines": hold_lines} if hold_lines else {})})
    return Blocked(kind, tuple(actors), tuple(dict.fromkeys(objects)), "; ".join(parts),
                   tuple(seqs), tuple(waits))


def _names(xs: list[str]) -> str:
    if len(xs) <= 1:
        return "".join(xs)
    return ", ".join(xs[:-1]) + " and " + xs[-1]


def _words(kind: str, op: str) -> tuple[str | None, str]:
    """How a message says a wait ``op`` on a ``kind`` (``waits for event {target}``) and what
    its providers would do (``set``): the type's ``WAITS``."""
    t = REGISTRY.get(kind)
    words = t.part("WAITS", {}).get(op) if t is not None else None
    return (words[0], words[1]) if words else (None, "provide")


def _sentence(a: str, w: Waiter, held: list[str], who: list[str], state: WaitState,
              hold_lines: dict[str, int | str]) -> str:
    src = state.source
    shown = [f"{r}{_at(src, hold_lines.get(r))}" for r in held]
    holds = f"{a} holds {_names(shown)} and " if held else f"{a} "
    at = _at(src, w.line)  # where it waits
    if w.kind == "spin":
        return (f"{holds}spins in {w.loop or 'a while loop'} reading {_names(list(w.watched))}"
                f", which no actor will change (a livelock)")
    phrase, verb = _words(w.kind, w.op)
    # (a verb may place its object itself: "count it down")
    only = f", which only {_names(who)} could {verb.replace(' it', '')}" if who else \
        f", and no live actor will ever {verb if ' it' in verb else verb + ' it'}"
    if w.op == "acquire":
        if _flag(w.kind, "HELD_BY_OWNER"):  # a lock: its holders are who it waits for
            owners = sorted(state.holders.get(w.resource or w.target, {}))
            gone = [o for o in owners if o not in state.live]
            if gone and not who:
                return (f"{holds}waits for {w.target}{at}, held by {_names(gone)}, which "
                        "ended without releasing it")
            return f"{holds}waits for {w.target}{at}"
        return f"{holds}waits for {w.kind} {w.target}{at}{only}"
    if w.op == "join":
        return f"{holds}waits to join {w.target}{at}"
    if w.op == "queued":
        running = _names(sorted(state.pool_running.get(w.target, set())))
        return f"{a} is queued in pool {w.target} behind {running or 'nobody'}"
    if w.op == "start":
        return f"{a} is not started yet"
    what = phrase.format(target=w.target) if phrase else f"waits for {w.target} ({w.op})"
    return f"{holds}{what}{at}{only}"
