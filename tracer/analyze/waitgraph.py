"""Who holds what and who waits for what, at any moment of a trace; the deadlocks and stalls
that did happen.

Who holds what is the shared state pass's (:mod:`tracer.trace.state`: an ``acquire`` return
with ``ok`` takes a lock or semaphore, a ``release`` gives it back, a condition ``wait`` call
lets go of the condition's lock and its return takes it again), mirrored up to the moment
asked about; an actor is waiting from the ``call`` of a blocking op until its ``return``
(sleeps and computes are not waits: they wait for nobody). At the end of a run that
deadlocked or stalled, the engine's own event says who is on the cycle; at any other moment
(or when the run ended another way, such as a timeout) lock cycles are computed from the
replayed state with the engine's wait-for reasoning (:mod:`tracer.trace.waits`).
"""

from __future__ import annotations

from itertools import islice
from typing import Any

from tracer.analyze._model import Finding, TraceData, WaitForGraph
from tracer.trace.state import TraceState, state_of
from tracer.trace.waits import Blocked, Waiter, WaitState, find_blocked, source_of

_ENGINE = ("deadlock", "stall")
_NOT_WAITS = frozenset({"sleep", "compute"})  # phased ops that take time but wait for nobody


class _State:
    """Who holds and who waits for what after some event (see :func:`_replay`)."""

    __slots__ = ("ended", "engine", "holders", "since", "waiting")

    def __init__(self) -> None:
        self.holders: dict[str, dict[str, int]] = {}  # resource -> actor -> times held
        self.since: dict[tuple[str, str], int] = {}  # (resource, actor) -> seq taken
        self.waiting: dict[str, tuple[str, str, int]] = {}  # actor -> op, target, call seq
        self.ended: set[str] = set()
        self.engine: list[Any] = []  # deadlock and stall events (Ev)


def _replay(data: TraceData, state: TraceState, upto: int) -> _State:
    st = _State()
    holders, since, waiting = st.holders, st.since, st.waiting
    changes = state.holds.changes
    names = state.actor_names
    events = data.events
    for e in events if upto + 1 >= len(events) else islice(events, max(0, upto + 1)):
        actor = e.actor
        op = e.op
        if actor is None:
            if op in _ENGINE:
                st.engine.append(e)
            continue
        phase = e.phase
        if phase == "call":
            if op not in _NOT_WAITS:
                waiting[actor] = (op, e.target or "?", e.seq)
        elif phase == "return":
            waiting.pop(actor, None)
        elif op == "end":
            st.ended.add(actor)
            waiting.pop(actor, None)
        cs = changes[e.seq]
        if cs is None:
            continue
        for c in cs:
            a = names[c.actor]
            r = c.resource
            kind = c.kind
            if kind == "take":
                holders.setdefault(r, {})[a] = c.times
                since.setdefault((r, a), e.seq)
            elif kind == "retake":
                holders.setdefault(r, {})[a] = c.times
                since[(r, a)] = e.seq
            elif kind == "give" and c.times > 0:
                holders.setdefault(r, {})[a] = c.times
            elif kind in ("give", "free", "let_go"):
                hr = holders.get(r)
                if hr is not None:
                    hr.pop(a, None)
                since.pop((r, a), None)
    return st


def _lock_blocked(data: TraceData, state: TraceState, st: _State) -> list[Blocked]:
    """Deadlocks (and actors waiting for a lock whose holder ended) among the actors that are
    inside a lock acquire in ``st``; other waits are left out, so nothing is claimed about
    them."""
    waiting: dict[str, Waiter] = {}
    available: set[str] = set()
    for actor, (op, target, call) in st.waiting.items():
        if op != "acquire":
            continue
        r = state.resource(target)
        if not state.exclusive(r):
            continue
        kind = state.types.get(target, "lock")
        waiting[actor] = Waiter(actor, "acquire", target, kind, call, r,
                                line=data.events[call].get("line"))
        if not st.holders.get(r):
            available.add(actor)  # the lock is free: it is about to get it
    if not waiting:
        return []
    live = {a["name"] for a in data.actors} - st.ended
    holders = {r: dict(h) for r, h in st.holders.items()
               if h and state.exclusive(r)}
    events = data.events

    def hold_line(resource: str, actor: str) -> int | None:
        seq = st.since.get((resource, actor))
        line: int | None = events[seq].get("line") if seq is not None else None
        return line

    return find_blocked(WaitState(live=live, waiting=waiting, holders=holders, caps={},
                                  available=available, source=source_of(data),
                                  hold_line=hold_line))


def _upto(data: TraceData, at_seq: int | None) -> tuple[int, bool]:
    last = len(data.events) - 1
    if at_seq is None or at_seq >= last:
        return last, True
    return max(at_seq, -1), False


def wait_for_graph(data: TraceData, at_seq: int | None = None) -> WaitForGraph:
    """Who holds and who waits for what after event ``at_seq`` (default: the end)."""
    state = state_of(data)
    upto, at_end = _upto(data, at_seq)
    st = _replay(data, state, upto)
    actors = [a["name"] for a in data.actors]
    resources = dict(state.types)
    holds = sorted((r, a, n) for r, h in st.holders.items() for a, n in h.items() if n > 0)
    waits = [(a, st.waiting[a][0], st.waiting[a][1]) for a in actors if a in st.waiting]
    for _a, op, target in waits:
        if op == "join":
            resources.setdefault(target, "actor")
        else:
            resources.setdefault(target, "?")
    for r, _a, _n in holds:
        resources.setdefault(r, "lock")
    cycle: set[str] = set()
    stalled: set[str] = set()
    if at_end and st.engine:
        for e in st.engine:
            ws = [w for w in e.get("waits") or () if isinstance(w, dict)]
            for w in ws:  # waits the events do not show: queued in a pool, not started
                wa, wop, wt = w.get("actor"), w.get("op"), w.get("target")
                if isinstance(wa, str) and wa not in st.waiting and isinstance(wop, str) \
                        and isinstance(wt, str) and all(x[0] != wa for x in waits):
                    waits.append((wa, wop, wt))
                    resources.setdefault(wt, str(w.get("kind") or "?"))
            if e.op == "deadlock":
                targets = set()
                for w in ws:
                    wt = w.get("target")
                    if isinstance(wt, str):
                        targets.add(wt)
                        targets.add(state.resource(wt))
                for w in ws:
                    if isinstance(w.get("actor"), str):
                        cycle.add(w["actor"])
                    cycle.update(h for h in w.get("holds") or () if h in targets)
                cycle |= {t for t in targets if t in resources}
                if not ws:
                    cycle.update(x for x in e.get("actors") or () if isinstance(x, str))
            else:
                stalled.update(w["actor"] for w in ws if isinstance(w.get("actor"), str))
                if not ws:
                    stalled.update(x for x in e.get("actors") or () if isinstance(x, str))
    else:
        for b in _lock_blocked(data, state, st):
            if b.kind == "deadlock":
                cycle.update(b.actors)
                cycle.update(b.objects)
            else:
                stalled.update(b.actors)
    return WaitForGraph(None if at_end else upto, actors, resources, holds, waits, cycle,
                        stalled)


def _acquiring_at_end(data: TraceData) -> bool:
    """Whether an actor is inside an ``acquire`` at the end of the trace, as :func:`_replay`
    would leave ``waiting``: each actor's last call (sleeps and computes aside), return or end
    decides, so the events are read backwards only until every actor has been decided."""
    undecided = {a["name"] for a in data.actors}
    events = data.events
    for i in range(len(events) - 1, -1, -1):
        e = events[i]
        actor = e.actor
        if actor not in undecided:
            continue
        phase = e.phase
        if phase == "call":
            op = e.op
            if op in _NOT_WAITS:
                continue
            if op == "acquire":
                return True
        elif phase != "return" and e.op != "end":
            continue
        undecided.discard(actor)
        if not undecided:
            return False
    return False


def find_blocked_findings(data: TraceData, state: TraceState | None = None) -> list[Finding]:
    """``deadlock`` and ``stall`` findings: the engine's own events when the run ended that way,
    else a lock cycle among the actors still blocked at the end of the trace (a run that
    timed out or was interrupted with them blocked)."""
    if state is None:
        state = state_of(data)
    if state.ops.isdisjoint(_ENGINE) and not _acquiring_at_end(data):
        return []  # no engine verdict, and nobody inside an acquire at the end
    st = _replay(data, state, len(data.events) - 1)
    out: list[Finding] = []
    for e in st.engine:
        seqs: set[int] = set()
        for w in e.get("waits") or ():
            if not isinstance(w, dict):
                continue
            if isinstance(w.get("call_seq"), int):
                seqs.add(w["call_seq"])
            actor = w.get("actor")
            for r in w.get("holds") or ():
                got = st.since.get((r, actor)) if isinstance(r, str) and isinstance(
                    actor, str) else None
                if got is not None:
                    seqs.add(got)
        actors = tuple(x for x in e.get("actors") or () if isinstance(x, str))
        objects = tuple(x for x in e.get("objects") or () if isinstance(x, str))
        out.append(Finding(e.op, actors, objects, str(e.get("detail") or ""),
                           tuple(sorted(seqs)), {"waits": list(e.get("waits") or ())}))
    if out:
        return out
    status = data.outcome.get("status")
    ended_by = {"timeout": "the run hit its timeout with them blocked",
                "interrupted": "the run was interrupted with them blocked"}.get(
                    str(status), "the trace ends with them blocked")
    for b in _lock_blocked(data, state, st):
        if b.kind != "deadlock":
            continue
        seqs = set(b.call_seqs)
        for w in b.waits:
            actor, holds = w.get("actor"), w.get("holds")
            if isinstance(actor, str) and isinstance(holds, list):
                for r in holds:
                    got = st.since.get((r, actor))
                    if got is not None:
                        seqs.add(got)
        out.append(Finding("deadlock", b.actors, b.objects, f"{b.message} ({ended_by})",
                           tuple(sorted(seqs)), {"waits": [dict(w) for w in b.waits]}))
    return out
