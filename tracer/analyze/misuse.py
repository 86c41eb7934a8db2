"""Misuse of primitives: what the program did wrong with a lock, a semaphore or a condition.

It reads who holds what from the shared state pass (:mod:`tracer.trace.state`: acquire
returns with ``ok``, releases, a condition wait releasing and re-taking its lock) and reports:

- a release of a lock that the releasing actor does not hold (also any release the primitive
  refused: the event carries ``error``);
- a count taken below its floor (a bounded semaphore released more times than it was
  acquired: the types' counters);
- a non-reentrant lock (type ``lock``, or an asyncio condition's own lock) acquired again by
  the actor that holds it: it waits for itself;
- a condition waited on or notified without holding its lock;
- a ``start`` of an actor already started, a ``join`` of an actor never started.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

from tracer.analyze._model import Finding, TraceData, where
from tracer.analyze.races import names
from tracer.prims import REGISTRY
from tracer.trace.state import Change, TraceState, state_of
from tracer.trace.waits import at_line, source_of

_SEQ = re.compile(r"\(seq (\d+)\)|since seq (\d+)")


def _with_lines(data: TraceData, f: Finding) -> Finding:
    """``f`` with the lines of the events its message names: ``(seq 5)`` becomes
    ``(scenarios/x.yaml:12, seq 5)``, ``since seq 3`` ``since seq 3 (scenarios/x.yaml:9)``."""
    def lined(m: re.Match[str]) -> str:
        if m.group(1) is not None:
            at = where(data, int(m.group(1)))
            return f"({at}, seq {m.group(1)})" if at else m.group(0)
        at = where(data, int(m.group(2)))
        return f"since seq {m.group(2)} ({at})" if at else m.group(0)
    msg = _SEQ.sub(lined, f.message)
    return f if msg == f.message else replace(f, message=msg)


def find_misuse(data: TraceData, state: TraceState | None = None) -> list[Finding]:
    """One ``misuse`` finding per problem, in trace order, each naming its lines."""
    return [_with_lines(data, f) for f in _find_misuse(data, state)]


def _find_misuse(data: TraceData, state: TraceState | None = None) -> list[Finding]:
    if state is None:
        state = state_of(data)
    log = state.holds
    if state.ops.isdisjoint(_OPS) and not log.count_misuse:
        return []
    changes = log.changes
    names_ = state.actor_names
    # per target: (is a condition wait, what it holds, that one's type, is it exclusive,
    # are its holds counted)
    about_target: dict[str, tuple[bool, str, str, bool, bool]] = {}
    holders: dict[str, dict[str, list[int]]] = {}  # resource -> actor -> acquire seqs
    stash: dict[str, list[int]] = {}  # actor -> the seqs its condition wait let go of
    cond_wait: dict[str, tuple[str, list[int], int]] = {}  # actor -> (resource, seqs, call)
    self_acquire: dict[str, tuple[int, str, str, int]] = {}  # actor -> (call, target, res, seq)
    out: list[Finding] = []

    def add(msg: str, actor: str, objects: tuple[str, ...], seqs: tuple[int, ...],
            **details: Any) -> None:
        out.append(Finding("misuse", (actor,), objects, msg, seqs, details))

    def mirror(seq: int, cs: tuple[Change, ...]) -> None:
        """Apply the state pass's changes of hold at event ``seq`` to ``holders``."""
        for c in cs:
            a = names_[c.actor]
            kind = c.kind
            if kind == "take":
                holders.setdefault(c.resource, {}).setdefault(a, []).append(seq)
            elif kind == "retake":
                holders.setdefault(c.resource, {})[a] = stash.pop(a, [])
            elif kind == "give":
                mine = holders.get(c.resource, {}).get(a)
                if mine:
                    mine.pop()
                    if not mine:
                        del holders[c.resource][a]
            elif kind == "let_go":
                stash[a] = holders.get(c.resource, {}).pop(a, [])
            elif kind == "free":
                holders.get(c.resource, {}).pop(a, None)

    for e in data.events:
        actor = e.actor
        if actor is None:
            continue
        op = e.op
        cs = changes[e.seq]
        if op not in _OPS:
            if cs is not None:
                mirror(e.seq, cs)
            continue
        seq = e.seq
        target = e.target or "?"
        about = about_target.get(target)
        if about is None:
            r = state.resource(target)
            wait = state.facts_of(target).ops.get("wait")
            mode = state.mode_of(r)
            about = about_target[target] = (
                wait is not None and wait.hold == "let_go", r, state.types.get(r, "lock"),
                state.exclusive(r), mode is not None and mode.sharing == "counted")
        let_go, r, kind, lockish, counted = about
        phase = e.phase
        if op == "acquire":
            if phase == "call":
                hr = holders.get(r)
                h = hr.get(actor) if hr else None
                if lockish and h and not state.reentrant(r, actor):
                    self_acquire[actor] = (seq, target, r, h[-1])
                continue
            pending = self_acquire.pop(actor, None)
            if e.result == "error" and "error" in e:
                # the primitive refused it (an rwlock asked again, or upgraded): its reason
                call = pending[0] if pending is not None else seq
                add(f"{e['error']} (seq {seq})", actor, (target,), (call, seq),
                    error=e["error"])
            elif pending is not None and e.result != "fail":
                out.append(_self_acquire(actor, pending, seq))
        elif op == "release":
            if "error" in e:
                add(_release_error(actor, target, kind, r, _via(target, r), seq,
                                   str(e["error"]), holders.get(r, {})),
                    actor, (target,), (seq,), error=e["error"])
                continue
            unheld = cs is not None and any(c.kind == "unheld" for c in cs)
            if unheld and not counted:
                others = {a: s for a, s in holders.get(r, {}).items() if s}
                seqs: tuple[int, ...]
                if others:
                    who = f"{r} is held by {names(sorted(others))}"
                    seqs = (min(s[-1] for s in others.values()), seq)
                else:
                    who = f"nobody holds {r}"
                    seqs = (seq,)
                add(f"{actor} releases {kind} {r}{_via(target, r)} (seq {seq}) without holding "
                    f"it; {who} — release a lock only in the actor that acquired it, once per "
                    "acquire",
                    actor, (r,), seqs)
        elif op == "wait" and let_go:
            if phase == "call":
                mine = holders.get(r, {}).get(actor)
                cond_wait[actor] = (r, list(mine or []), seq)
            else:
                got = cond_wait.pop(actor, None)
                had = got[1] if got is not None else []
                call = got[2] if got is not None else seq
                if e.result == "error" or not had:
                    add(_cond(actor, "waits on", target, r, call, holders.get(r, {})),
                        actor, (target,), tuple(sorted({call, seq})),
                        **({"error": e["error"]} if "error" in e else {}))
        elif op in ("notify", "notify_all"):
            if "error" in e or not holders.get(r, {}).get(actor):
                add(_cond(actor, "notifies", target, r, seq, holders.get(r, {})),
                    actor, (target,), (seq,),
                    **({"error": e["error"]} if "error" in e else {}))
        elif op == "spawn" and "error" in e:
            add(f"{actor} starts {target} (seq {seq}), which was already started — start "
                "each actor once", actor, (target,), (seq,), error=e["error"])
        elif op == "join" and phase == "return" and e.result == "error":
            add(f"{actor} joins {target} (seq {seq}), which was never started — start it "
                "before joining it, or do not join it", actor, (target,), (seq,),
                error=e.get("error"))
        if cs is None:
            continue
        if len(cs) == 1 and cs[0].kind == "take":  # mirror(seq, cs), its common case inlined
            hr = holders.get(cs[0].resource)
            if hr is None:
                holders[cs[0].resource] = {actor: [seq]}
            else:
                mine = hr.get(actor)
                if mine is None:
                    hr[actor] = [seq]
                else:
                    mine.append(seq)
            continue
        mirror(seq, cs)
    for actor, pending in self_acquire.items():
        out.append(_self_acquire(actor, pending, None))
    for actor, (r, had, call) in cond_wait.items():
        if not had:
            add(_cond(actor, "waits on", data.events[call].get("target") or r, r, call,
                      holders.get(r, {})), actor, (r,), (call,))
    told = {seq for f in out for seq in f.events}
    for m in log.count_misuse:
        if m.seq not in told:  # (a refused release already said it)
            add(m.message, m.actor, (m.name,), (m.seq,))
    if any("error" in f.details for f in out):
        out = _ended(data, out)
    out.sort(key=lambda f: f.events)
    return out


# ops that lower a type's count (a latch's count_down): refused below its floor, reported here
_COUNTED = frozenset(
    op for t in REGISTRY.values() for f in [t.part("FACTS")]
    if f is not None and f.counter is not None
    for op, step in f.counter.ops.items() if step < 0)


def reports_error(e: Any) -> bool:
    """Whether :func:`find_misuse` reports the error this event carries (a refused release,
    wait, notify, start, join or acquire, a count taken below zero). An actor that ended with
    that very error has one problem, not two: the misuse finding says it ended with it, and no
    ``error`` finding repeats it."""
    if "error" not in e:
        return False
    op = e.op
    return (op in ("release", "notify", "notify_all", "spawn") or op in _COUNTED
            or (op in ("join", "acquire") and e.phase == "return")
            or (op == "wait" and e.get("result") == "error"))


def _ended(data: TraceData, found: list[Finding]) -> list[Finding]:
    """Say, in each misuse finding whose error ended its actor, that it did."""
    ends = {e.actor: e for e in data.events
            if e.op == "end" and e.result == "error" and e.actor is not None}
    out = []
    for found_one in found:
        f = found_one
        error = f.details.get("error")
        actor = f.actors[0] if f.actors else None
        end = ends.get(actor) if actor is not None else None
        if error is not None and end is not None and end.get("error") == error:
            path = end.get("step")
            # (an end's line is its failed step's when it names the step, else the actor's)
            line = end.get("line") if path is not None else None
            at = ", ".join(str(x) for x in (
                path, None if line is None else at_line(source_of(data), line))
                if x is not None)
            head, sep, advice = f.message.partition(" — ")
            f = replace(f, message=f"{head}; {actor} ended with this error"
                                   f"{f' (at {at})' if at else ''}{sep}{advice}",
                        details={**f.details, "ended": True,
                                 **({"path": path} if path is not None else {}),
                                 **({"line": line} if line is not None else {})})
        out.append(f)
    return out


_OPS = frozenset({"acquire", "release", "wait", "notify", "notify_all", "spawn", "join"})


def _via(target: str, r: str) -> str:
    """How a message names a lock taken through a condition."""
    return f" (through condition {target})" if target != r else ""


def _self_acquire(actor: str, pending: tuple[int, str, str, int], ret: int | None) -> Finding:
    call, target, r, taken = pending
    msg = (f"{actor} acquires lock {r}{_via(target, r)} again (seq {call}) while holding it "
           f"since seq {taken}; a lock is not re-entrant, so it waits for itself — use an "
           f"rlock, or do not take {r} again while holding it")
    seqs = (taken, call) if ret is None else (taken, call, ret)
    return Finding("misuse", (actor,), (r,), msg, seqs)


def _release_error(actor: str, target: str, kind: str, r: str, via: str, seq: int,
                   error: str, holders: dict[str, list[int]]) -> str:
    why = _reason(actor, error)
    if kind == "bounded_semaphore":
        return (f"{actor} releases bounded semaphore {r} (seq {seq}) more times than it was "
                f"acquired ({why}) — release it only after acquiring it, once per acquire")
    others = sorted(a for a, s in holders.items() if s and a != actor)
    who = f"; {r} is held by {names(others)}" if others else ""
    return (f"{actor} releases {kind} {r}{via} (seq {seq}) without holding it ({why}){who} "
            f"— release a lock only in the actor that acquired it, once per acquire")


def _reason(actor: str, error: str) -> str:
    """What Python said, from an engine error that restates the misuse around it
    (``a released bounded semaphore S more times ... (Semaphore released too many times)``):
    the message already says the rest."""
    if error.startswith(f"{actor} ") and error.endswith(")") and " (" in error:
        return "Python: " + error[error.rindex(" (") + 2:-1]
    return error


def _cond(actor: str, verb: str, target: str, r: str, seq: int,
          holders: dict[str, list[int]]) -> str:
    lock = f"its lock {r}" if r != target else "its lock"
    others = sorted(a for a, s in holders.items() if s and a != actor)
    who = f" ({r} is held by {names(others)})" if others else ""
    return (f"{actor} {verb} condition {target} (seq {seq}) without holding {lock}{who} — "
            f"acquire {target} first: `with: {target}` around the wait or notify")
