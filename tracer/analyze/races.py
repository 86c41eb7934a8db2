"""Data races: conflicting accesses to a shared variable not ordered by happens-before.

Happens-before is computed with vector clocks over every synchronisation edge the trace shows
(lock release -> later acquire, event set -> wait, notify -> condition wait, queue put -> the
get that received the item, pipe send -> recv, barrier arrivals -> departures, spawn -> start,
end -> join, a pool task's end -> the start of the next task on the same worker: the shared
state pass, :mod:`tracer.trace.state`, which also says who holds what), and accesses are
checked with FastTrack's epochs (Flanagan & Freund, PLDI 2009): a variable keeps the epoch
(clock@actor) of its last write and of its last read, and only promotes them to a vector
clock while several actors access it concurrently, so the common case costs O(1) per access.
Each (variable, pair of actors) is reported once: in a racy variable, an access is checked
only against the actors not yet reported with its own, which keeps even a program that races
everywhere close to linear.

Atomics (an access whose event says ``"atomic": true``: every access of a variable listed in
the scenario's ``atomic:``, an ``add`` with ``atomic: true``). Two atomic accesses never race.
An atomic access still races with a plain access of the same variable that is not ordered with
it, one side a write. And atomics order: an atomic read acquires what the last atomic write of
its variable released, an atomic read-modify-write both (the rule is the state pass's, see
"Atomics" in :mod:`tracer.trace.state`), so data handed over through an atomic flag is no
race. The plain accesses of a variable keep their FastTrack state; its atomic accesses keep
another, the last one of each actor, which only plain accesses are checked against (and which
an atomic access checks against the plain state, never changing it).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from tracer.analyze._model import Finding, TraceData, line_of, where
from tracer.trace.state import Clocks, TraceState, is_atomic, state_of


def names(xs: Iterable[str]) -> str:
    """``A``, ``A and B``, ``A, B and C``."""
    items = list(xs)
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


_NONE: frozenset[int] = frozenset()


# ---------------------------------------------------------------------------------------------

_VERB = {"read": "reads", "write": "writes", "append": "appends to"}
_VERB_IT = {"read": "reads it", "write": "writes it", "append": "appends to it"}

# A variable's FastTrack state, a list indexed by these:
# the last write's epoch, seq and locks held; the last read's; the reads that are concurrent
# (a read vector clock, None while one epoch says it all); the writes that are concurrent
_WT, _WC, _WSEQ, _WHELD, _RT, _RC, _RSEQ, _RHELD, _RVC, _WVC = range(10)


_ACCESS = frozenset({"read", "write", "append"})

# An entry of a variable's atomic state: (clock value of its actor, seq, locks held)
_Entry = tuple[int, int, tuple[str, ...]]


def find_races(data: TraceData, state: TraceState | None = None, *,
               reference: bool = False) -> list[Finding]:
    """One finding per (shared variable, unordered pair of actors) whose accesses race.

    ``reference``: happens-before with plain vector clocks joined entry by entry (a clock the
    size of the actor count per join), not the shared chunks and epoch joins of
    :class:`tracer.trace.state.Clocks`: the same findings, slower; the tests compare them."""
    if state is None:
        state = state_of(data)
    if state.ops.isdisjoint(_ACCESS):
        return []  # no shared variable is accessed: nothing can race
    actor_names = state.actor_names
    index = state.index
    hb = Clocks(state, reference=reference)
    clocks = hb.clocks  # the list of the actors' clocks, updated by hb.step
    held_t: list[tuple[str, ...]] = [() for _ in actor_names]  # per actor: what it holds
    holds = state.holds.changes
    step = hb.step
    variables: dict[str, list[Any]] = {}
    # var -> [its atomic writes, its atomic reads]: per actor, its last (see the docstring)
    atomics: dict[str, tuple[dict[int, _Entry], dict[int, _Entry]]] = {}
    acquire, release, plain_write = hb.atomic_acquire, hb.atomic_release, hb.plain_write
    done: dict[str, dict[int, set[int]]] = {}  # var -> actor -> actors reported with it
    findings: list[Finding] = []

    def report(var: str, first: tuple[int, int, tuple[str, ...]],
               second: tuple[int, int, tuple[str, ...]]) -> None:
        a, b = first[1], second[1]
        dv = done.get(var)
        if dv is None:
            dv = done[var] = {}
        da = dv.get(a)
        if da is None:
            da = dv[a] = set()
        if b in da:
            return
        da.add(b)
        dv.setdefault(b, set()).add(a)
        findings.append(_race(data, var, sorted((first, second)), actor_names))

    def against_atomics(var: str, entries: dict[int, _Entry], t: int, c: list[int],
                        me: tuple[int, int, tuple[str, ...]]) -> None:
        """A plain access ``me`` of t against the atomic ones of ``entries`` (writes, or
        reads for a write): each not ordered before it is a race."""
        dv = done.get(var)
        dt = dv.get(t, _NONE) if dv is not None else _NONE
        for u, (uc, useq, uheld) in list(entries.items()):
            if u != t and uc > c[u] and u not in dt:
                report(var, (useq, u, uheld), me)

    def atomic_access(e: Any, t: int, var: str, op: str) -> None:
        """An atomic access: it takes up what the variable's last atomic write released
        (a read, a read-modify-write), is checked against the plain accesses, and releases
        its clock (a write)."""
        rmw = op == "append" or (op == "write" and "old" in e)
        if op == "read" or rmw:
            acquire(t, var)
        c = clocks[t]
        seq = e.seq
        me = (seq, t, held_t[t])
        st = variables.get(var)
        if st is not None:  # the plain accesses: its writes, and its reads for a write
            dv = done.get(var)
            dt = dv.get(t, _NONE) if dv is not None else _NONE
            wvc = st[_WVC]
            if wvc is None:
                wt = st[_WT]
                if wt >= 0 and wt != t and st[_WC] > c[wt] and wt not in dt:
                    report(var, (st[_WSEQ], wt, st[_WHELD]), me)
            else:
                for u, (wc, wseq, wheld) in list(wvc.items()):
                    if u != t and wc > c[u] and u not in dt:
                        report(var, (wseq, u, wheld), me)
            if op != "read":
                rvc = st[_RVC]
                if rvc is None:
                    rt = st[_RT]
                    if rt >= 0 and rt != t and st[_RC] > c[rt] and rt not in dt:
                        report(var, (st[_RSEQ], rt, st[_RHELD]), me)
                else:
                    for u, (rc, rseq, rheld) in list(rvc.items()):
                        if u != t and rc > c[u] and u not in dt:
                            report(var, (rseq, u, rheld), me)
        mine = atomics.get(var)
        if mine is None:
            mine = atomics[var] = ({}, {})
        mine[0 if op != "read" else 1][t] = (c[t], seq, me[2])
        if op != "read":
            release(t, var)

    var: str
    events = data.events
    for e in events:
        actor = e.actor
        if actor is None:
            continue
        t = index[actor]
        op = e.op
        if op in _ACCESS:
            rest = e.rest
            if rest is not None and rest.get("atomic") is True:
                atomic_access(e, t, e.target or "?", op)
                continue
        if op == "read":
            var = e.target or "?"
            st = variables.get(var)
            c = clocks[t]
            ct = c[t]
            if st is None:
                st = variables[var] = [-1, 0, -1, (), -1, 0, -1, (), None, None]
            rvc = st[_RVC]
            if rvc is None:
                if st[_RT] == t and st[_RC] == ct:
                    continue  # read in this epoch already
            else:
                prev = rvc.get(t)
                if prev is not None and prev[0] == ct:
                    continue
            seq = e.seq
            dv = done.get(var)
            dt = dv.get(t, _NONE) if dv is not None else _NONE
            wvc = st[_WVC]
            if wvc is None:
                wt = st[_WT]
                if wt >= 0 and wt != t and st[_WC] > c[wt] and wt not in dt:
                    report(var, (st[_WSEQ], wt, st[_WHELD]), (seq, t, held_t[t]))
            else:
                # only actors not yet reported with t: in a racy program that is few
                for u in (wvc.keys() - dt if dt else list(wvc)):
                    if u != t:
                        wc, wseq, wheld = wvc[u]
                        if wc > c[u]:
                            report(var, (wseq, u, wheld), (seq, t, held_t[t]))
            if atomics:
                got = atomics.get(var)
                if got is not None:
                    against_atomics(var, got[0], t, c, (seq, t, held_t[t]))
            if rvc is None:
                rt = st[_RT]
                if rt < 0 or rt == t or st[_RC] <= c[rt]:
                    st[_RT] = t
                    st[_RC] = ct
                    st[_RSEQ] = seq
                    st[_RHELD] = held_t[t]
                else:  # concurrent reads: promote to a read vector clock
                    st[_RVC] = {rt: (st[_RC], st[_RSEQ], st[_RHELD]),
                                t: (ct, seq, held_t[t])}
            else:
                rvc[t] = (ct, seq, held_t[t])
            continue
        if op in ("write", "append"):
            var = e.target or "?"
            st = variables.get(var)
            c = clocks[t]
            ct = c[t]
            if atomics:
                plain_write(var)  # what the last atomic write released is no longer there
            if st is None:
                st = variables[var] = [-1, 0, -1, (), -1, 0, -1, (), None, None]
            elif st[_WT] == t and st[_WC] == ct:
                continue  # written in this epoch already
            seq = e.seq
            me = (seq, t, held_t[t])
            mine = (ct, seq, me[2])
            if atomics:
                got = atomics.get(var)
                if got is not None:
                    against_atomics(var, got[0], t, c, me)
                    against_atomics(var, got[1], t, c, me)
            dv = done.get(var)
            dt = dv.get(t, _NONE) if dv is not None else _NONE
            wvc = st[_WVC]
            if wvc is None:
                wt = st[_WT]
                if wt >= 0 and wt != t and st[_WC] > c[wt]:
                    if wt not in dt:
                        report(var, (st[_WSEQ], wt, st[_WHELD]), me)
                    # concurrent writes: keep both, as FastTrack keeps concurrent reads
                    st[_WVC] = {wt: (st[_WC], st[_WSEQ], st[_WHELD]), t: mine}
            else:
                drop = []
                for u in (wvc.keys() - dt if dt else list(wvc)):
                    if u != t:
                        wc, wseq, wheld = wvc[u]
                        if wc > c[u]:
                            report(var, (wseq, u, wheld), me)
                        else:
                            drop.append(u)  # ordered before this write: it says no more
                for u in drop:
                    del wvc[u]
                wvc[t] = mine
                if len(wvc) == 1:
                    st[_WVC] = None
            rvc = st[_RVC]
            if rvc is None:
                rt = st[_RT]
                if rt >= 0 and rt != t and st[_RC] > c[rt] and rt not in dt:
                    report(var, (st[_RSEQ], rt, st[_RHELD]), me)
            else:
                drop = []
                for u in (rvc.keys() - dt if dt else list(rvc)):
                    rc, rseq, rheld = rvc[u]
                    if u != t and rc > c[u]:
                        report(var, (rseq, u, rheld), me)
                    else:
                        drop.append(u)
                for u in drop:
                    del rvc[u]
                if len(rvc) <= 1:
                    st[_RVC] = None
                    if rvc:
                        (u, (rc, rseq, rheld)), = rvc.items()
                        st[_RT], st[_RC], st[_RSEQ], st[_RHELD] = u, rc, rseq, rheld
                    else:
                        st[_RT] = -1
            st[_WT] = t
            st[_WC] = ct
            st[_WSEQ] = seq
            st[_WHELD] = me[2]
            continue
        step(e, t)
        cs = holds[e.seq]
        if cs is not None:
            for ch in cs:
                held_t[ch.actor] = ch.held
    return findings


def _verb(e: Any, it: bool) -> str:
    """What an access did, for a race's message: ``writes`` (``writes it`` when ``it``);
    an atomic access says so (``atomically adds to``, for an atomic add's write)."""
    op: str = e.op
    if not is_atomic(e):
        return (_VERB_IT if it else _VERB).get(op, op)
    verb = ("adds to" if op == "write" and "old" in e else
            _VERB.get(op, op))
    return f"atomically {verb}{' it' if it else ''}"


def _held_text(held: tuple[str, ...]) -> str:
    return f"holding {names(held)}" if held else "holding nothing"


def _race(data: TraceData, var: str, pair: list[tuple[int, int, tuple[str, ...]]],
          actor_names: list[str]) -> Finding:
    (s1, a1, h1), (s2, a2, h2) = pair
    e1, e2 = data.events[s1], data.events[s2]
    n1, n2 = actor_names[a1], actor_names[a2]
    op1, op2 = e1.op, e2.op

    def side(e: Any, who: str, held: tuple[str, ...]) -> dict[str, Any]:
        value = e.item if e.op == "append" else e.value
        out = {"seq": e.seq, "actor": who, "op": e.op, "value": value,
               "locks_held": list(held)}
        line = line_of(data, e.seq)
        if line is not None:
            out["line"] = line
        if is_atomic(e):
            out["atomic"] = True
        return out

    w1, w2 = where(data, s1), where(data, s2)
    p1, p2 = f"{w1}, " if w1 else "", f"{w2}, " if w2 else ""  # both sides' lines
    at1, at2 = is_atomic(e1), is_atomic(e2)
    if at1 or at2:  # one side atomic (two atomic accesses never race)
        atomic_n, plain_n, plain_e = (n1, n2, e2) if at1 else (n2, n1, e1)
        msg = (f"race on {var}: {n1} {_verb(e1, False)} {var} ({p1}seq {s1}, {_held_text(h1)}) "
               f"and {n2} {_verb(e2, True)} ({p2}seq {s2}, {_held_text(h2)}); {atomic_n}'s "
               f"access is atomic but {plain_n}'s {plain_e.op} is not, and nothing orders "
               f"them — make every access to {var} atomic (list it in the scenario's "
               f"'atomic'), or protect every access to {var} with one lock")
        return Finding("race", (n1, n2), (var,), msg, (s1, s2),
                       {"var": var, "first": side(e1, n1, h1), "second": side(e2, n2, h2)})
    common = [r for r in h1 if r in h2]
    if common:
        fix = (f"both hold {names(common)}, which lets more than one actor in at once — "
               f"protect every access to {var} with one lock")
    elif h1 and not h2:
        fix = f"{n2} holds no lock there — take {h1[0]} around that access too, as {n1} does"
    elif h2 and not h1:
        fix = f"{n1} holds no lock there — take {h2[0]} around that access too, as {n2} does"
    elif h1 and h2:
        fix = (f"they hold different locks ({names(h1)} vs {names(h2)}) — protect every "
               f"access to {var} with the same lock")
    else:
        fix = f"protect every access to {var} with one lock"
    msg = (f"race on {var}: {n1} {_VERB.get(op1, op1)} {var} ({p1}seq {s1}, {_held_text(h1)}) "
           f"and {n2} {_VERB_IT.get(op2, op2)} ({p2}seq {s2}, {_held_text(h2)}); no lock, event "
           f"or join orders them — {fix}")
    return Finding("race", (n1, n2), (var,), msg, (s1, s2),
                   {"var": var, "first": side(e1, n1, h1), "second": side(e2, n2, h2)})
