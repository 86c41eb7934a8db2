"""Misuse of primitives: what the program did wrong with a lock, a semaphore or a condition.

One pass that replays who holds what (acquire returns with ``ok``, releases, a condition wait
releasing and re-taking its lock) and reports:

- a release of a lock that the releasing actor does not hold (also any release the primitive
  refused: the event carries ``error``);
- a bounded semaphore released more times than it was acquired;
- a non-reentrant lock (type ``lock``, or an asyncio condition's own lock) acquired again by
  the actor that holds it: it waits for itself;
- a condition waited on or notified without holding its lock;
- a ``start`` of an actor already started, a ``join`` of an actor never started.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from tracer.analyze._model import Finding, TraceData
from tracer.analyze.races import LOCK_TYPES, SEMAPHORE_TYPES, Prep, names


def find_misuse(data: TraceData, prep: Prep | None = None) -> list[Finding]:
    """One ``misuse`` finding per problem, in trace order."""
    if prep is None:
        prep = Prep(data)
    if prep.ops.isdisjoint(_OPS):
        return []
    specs = prep.specs
    res_of = prep.res_of
    types = prep.types  # names the scenario does not declare are locks
    kinds: dict[str, Any] = {}  # actor -> kind, filled when first needed
    about_target: dict[str, tuple[str | None, str, str]] = {}
    holders: dict[str, dict[str, list[int]]] = {}  # resource -> actor -> acquire seqs
    sem_count: dict[str, int] = {}  # bounded semaphore -> acquires minus releases
    cond_wait: dict[str, tuple[str, list[int], int]] = {}  # actor -> (resource, seqs, call)
    self_acquire: dict[str, tuple[int, str, str, int]] = {}  # actor -> (call, target, res, seq)
    out: list[Finding] = []

    def reentrant(r: str, actor: str) -> bool:
        t = types.get(r, "lock")
        if t == "lock":
            return False
        if t == "condition":  # a condition's own lock: an RLock, except asyncio's
            if not kinds:
                kinds.update((a["name"], a.get("kind")) for a in data.actors)
            return kinds.get(actor) != "coroutine"
        return True

    def add(msg: str, actor: str, objects: tuple[str, ...], seqs: tuple[int, ...],
            **details: Any) -> None:
        out.append(Finding("misuse", (actor,), objects, msg, seqs, details))

    for e in data.events:
        actor = e.actor
        if actor is None:
            continue
        op = e.op
        if op not in _OPS:
            continue
        seq = e.seq
        target = e.target or "?"
        about = about_target.get(target)
        if about is None:
            r = res_of.get(target, target)
            about = about_target[target] = (types.get(target), r, types.get(r, "lock"))
        typ, r, kind = about  # the target's type, what it holds, and that one's type
        phase = e.phase
        if op == "acquire":
            lockish = kind in LOCK_TYPES
            if phase == "call":
                hr = holders.get(r)
                h = hr.get(actor) if hr else None
                if lockish and h and not reentrant(r, actor):
                    self_acquire[actor] = (seq, target, r, h[-1])
                continue
            pending = self_acquire.pop(actor, None)
            if pending is not None and e.result != "fail":
                out.append(_self_acquire(actor, pending, seq))
            if e.result == "ok":
                holders.setdefault(r, {}).setdefault(actor, []).append(seq)
                if kind == "bounded_semaphore":
                    sem_count[r] = sem_count.get(r, 0) + 1
        elif op == "release":
            if "error" in e:
                add(_release_error(actor, target, kind, r, _via(target, r), seq,
                                   str(e["error"]), holders.get(r, {})),
                    actor, (target,), (seq,), error=e["error"])
                continue
            hr = holders.get(r)
            mine = hr.get(actor) if hr else None
            if kind in SEMAPHORE_TYPES:
                if mine:
                    mine.pop()
                if kind == "bounded_semaphore":
                    n = sem_count.get(r, 0) - 1
                    sem_count[r] = n
                    if n < 0:
                        value = specs.get(r, {}).get("value", 1)
                        add(f"{actor} releases bounded semaphore {r} (seq {seq}) more times "
                            f"than it was acquired: its value would rise above {value} — "
                            f"release it only after acquiring it, once per acquire",
                            actor, (r,), (seq,))
                        sem_count[r] = 0
                continue
            if mine:
                mine.pop()
                if not mine:
                    del holders[r][actor]
                continue
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
            if kind == "lock":
                holders.pop(r, None)  # a plain lock is free after any release
        elif op == "wait" and typ == "condition":
            if phase == "call":
                mine = holders.get(r, {}).pop(actor, None)
                cond_wait[actor] = (r, mine or [], seq)
                continue
            got = cond_wait.pop(actor, None)
            had = got[1] if got is not None else []
            call = got[2] if got is not None else seq
            if e.result == "error" or not had:
                add(_cond(actor, "waits on", target, r, call, holders.get(r, {})),
                    actor, (target,), tuple(sorted({call, seq})),
                    **({"error": e["error"]} if "error" in e else {}))
            if had:
                holders.setdefault(r, {})[actor] = had
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
    for actor, pending in self_acquire.items():
        out.append(_self_acquire(actor, pending, None))
    for actor, (r, had, call) in cond_wait.items():
        if not had:
            add(_cond(actor, "waits on", data.events[call].get("target") or r, r, call,
                      holders.get(r, {})), actor, (r,), (call,))
    if any("error" in f.details for f in out):
        out = _ended(data, out)
    out.sort(key=lambda f: f.events)
    return out


def reports_error(e: Any) -> bool:
    """Whether :func:`find_misuse` reports the error this event carries (a refused release,
    wait, notify, start or join). An actor that ended with that very error has one problem,
    not two: the misuse finding says it ended with it, and no ``error`` finding repeats it."""
    if "error" not in e:
        return False
    op = e.op
    return (op in ("release", "notify", "notify_all", "spawn")
            or (op == "join" and e.phase == "return")
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
            path, line = end.get("step"), end.get("line")
            at = ", ".join(str(x) for x in (path, None if line is None else f"line {line}")
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
