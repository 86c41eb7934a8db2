"""Data races: conflicting accesses to a shared variable not ordered by happens-before.

Happens-before is computed with vector clocks over every synchronisation edge the trace shows
(lock release -> later acquire, event set -> wait, notify -> condition wait, queue put -> the
get that received the item, pipe send -> recv, barrier arrivals -> departures, spawn -> start,
end -> join, a pool task's end -> the start of the next task on the same worker), and
accesses are checked with FastTrack's epochs (Flanagan & Freund, PLDI 2009): a variable keeps
the epoch (clock@actor) of its last write and of its last read, and only promotes them to a
vector clock while several actors access it concurrently, so the common case costs O(1) per
access. Each (variable, pair of actors) is reported once: in a racy variable, an access is
checked only against the actors not yet reported with its own, which keeps even a program
that races everywhere close to linear.

The helpers at the top (primitive specs, what acquiring a primitive holds) are shared by the
other analyses of this package.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable, Iterable
from typing import Any

import orjson

from tracer.analyze._model import Finding, TraceData

LOCK_TYPES = frozenset({"lock", "rlock", "condition"})  # acquire/release take a lock
SEMAPHORE_TYPES = frozenset({"semaphore", "bounded_semaphore"})


def prim_specs(data: TraceData) -> dict[str, dict[str, Any]]:
    """primitive name -> its spec as a mapping with at least ``type``."""
    out: dict[str, dict[str, Any]] = {}
    for name, spec in (data.scenario.get("primitives") or {}).items():
        if isinstance(spec, str):
            out[name] = {"type": spec}
        elif isinstance(spec, dict):
            out[name] = {**spec, "type": spec.get("type", "?")}
    return out


def resource_map(specs: dict[str, dict[str, Any]]) -> dict[str, str]:
    """primitive name -> what acquiring it holds: a condition with ``lock: L`` holds L, every
    other primitive holds itself."""
    out = {}
    for name, spec in specs.items():
        lock = spec.get("lock") if spec["type"] == "condition" else None
        out[name] = lock if isinstance(lock, str) and lock in specs else name
    return out


class Prep:
    """What the analyses derive from a whole trace before their pass over its events: the
    primitives' specs and types, what acquiring each holds, and the ops that occur (an
    analysis whose ops do not occur has nothing to find). :func:`tracer.analyze.find_all`
    makes one for all the analyses it runs; each makes its own when called alone."""

    __slots__ = ("ops", "res_of", "specs", "types")

    def __init__(self, data: TraceData) -> None:
        self.specs = specs = prim_specs(data)
        self.types = {name: s["type"] for name, s in specs.items()}
        self.res_of = resource_map(specs)
        self.ops = {e.op for e in data.events}


def resource_type(specs: dict[str, dict[str, Any]], resource: str) -> str:
    """The type of a held resource (``lock`` for a name the scenario does not declare)."""
    spec = specs.get(resource)
    return spec["type"] if spec is not None else "lock"


def names(xs: Iterable[str]) -> str:
    """``A``, ``A and B``, ``A, B and C``."""
    items = list(xs)
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def item_key(item: Any) -> Hashable:
    """A hashable key for an item carried through a queue or pipe (JSON data)."""
    if item is None or isinstance(item, (str, int, float, bool)):
        return (type(item).__name__, item)
    try:
        return ("json", orjson.dumps(item, option=orjson.OPT_SORT_KEYS))
    except TypeError:
        return ("repr", repr(item))


_NONE: frozenset[int] = frozenset()


def _join(a: list[int], b: list[int]) -> list[int]:
    """The pointwise maximum of two vector clocks (a new list)."""
    return [x if x >= y else y for x, y in zip(a, b, strict=True)]


# ---------------------------------------------------------------------------------------------

_VERB = {"read": "reads", "write": "writes", "append": "appends to"}
_VERB_IT = {"read": "reads it", "write": "writes it", "append": "appends to it"}

# A variable's FastTrack state, a list indexed by these:
# the last write's epoch, seq and locks held; the last read's; the reads that are concurrent
# (a read vector clock, None while one epoch says it all); the writes that are concurrent
_WT, _WC, _WSEQ, _WHELD, _RT, _RC, _RSEQ, _RHELD, _RVC, _WVC = range(10)


class _Mailbox:
    """Items in flight through a queue or pipe: per item, the senders' clocks in order."""

    __slots__ = ("boxes",)

    def __init__(self) -> None:
        self.boxes: dict[Hashable, deque[list[Any]]] = {}

    def put(self, key: Hashable, entry: list[Any]) -> None:
        box = self.boxes.get(key)
        if box is None:
            box = self.boxes[key] = deque()
        box.append(entry)

    def take(self, key: Hashable) -> list[Any] | None:
        box = self.boxes.get(key)
        while box:
            entry = box.popleft()
            if entry[2]:
                if not box:
                    del self.boxes[key]
                return entry
        if box is not None:
            del self.boxes[key]
        return None


_ACCESS = frozenset({"read", "write", "append"})


def find_races(data: TraceData, prep: Prep | None = None) -> list[Finding]:
    """One finding per (shared variable, unordered pair of actors) whose accesses race."""
    if prep is None:
        prep = Prep(data)
    if prep.ops.isdisjoint(_ACCESS):
        return []  # no shared variable is accessed: nothing can race
    specs = prep.specs
    res_of = prep.res_of
    types = prep.types
    actor_names = [a["name"] for a in data.actors]
    index = {n: i for i, n in enumerate(actor_names)}
    n = len(actor_names)
    clocks: list[list[int]] = []
    for i in range(n):
        c = [0] * n
        c[i] = 1
        clocks.append(c)
    held: list[dict[str, int]] = [{} for _ in range(n)]
    held_t: list[tuple[str, ...]] = [() for _ in range(n)]

    # lock resource -> (clock at the last release, releaser)
    lock_vc: dict[str, tuple[list[int], int]] = {}
    # accumulating objects (semaphore releases, event sets, condition notifies, a barrier with
    # unknown parties): key -> [clock, version]; seen[t][key] is the version t joined last
    acc: dict[Any, list[Any]] = {}
    seen: list[dict[Any, int]] = [{} for _ in range(n)]
    # barriers: name -> [round number, arrivals in it]; (name, round) -> [the clock joining
    # every arrival of the round, departures so far]; (actor, name) -> its round
    barriers: dict[str, list[int]] = {}
    gen_clock: dict[tuple[str, int], list[Any]] = {}
    barrier_gen: dict[tuple[int, str], int] = {}
    mail: dict[Any, _Mailbox] = {}
    pending_put: dict[tuple[int, str, str], list[Any]] = {}
    cond_wait: dict[int, tuple[str, int]] = {}  # actor -> (resource released, times held)
    to_start: dict[str, tuple[list[int], int]] = {}
    ended: dict[str, tuple[list[int], int]] = {}
    variables: dict[str, list[Any]] = {}
    done: dict[str, dict[int, set[int]]] = {}  # var -> actor -> actors reported with it
    findings: list[Finding] = []

    # a pool runs its tasks on workers: tasks on one worker (same pid and tid) run one after
    # the other, so a task's end happens-before the start of the next task there
    worker_of: dict[str, tuple[Any, ...]] = {}
    for a in data.actors:
        if a.get("pool") is not None and (a.get("pid") is not None or a.get("tid") is not None):
            worker_of[a["name"]] = (a["pool"], a.get("pid"), a.get("tid"))
    worker_last: dict[tuple[Any, ...], tuple[list[int], int]] = {}
    pipe_peer: dict[tuple[str, str], str | None] = {}
    for name, spec in specs.items():
        if spec["type"] == "pipe":
            between = spec.get("between")
            if isinstance(between, list) and len(between) == 2:
                a, b = between
                pipe_peer[(name, a)] = b
                pipe_peer[(name, b)] = a

    def join_into(t: int, other: list[int], src: int) -> None:
        c = clocks[t]
        if src >= 0 and other[src] <= c[src]:
            return  # t already saw the source's event, hence everything before it
        clocks[t] = _join(c, other)

    def join_acc(t: int, key: Any) -> None:
        box = acc.get(key)
        if box is None:
            return
        if seen[t].get(key) == box[1]:
            return
        seen[t][key] = box[1]
        clocks[t] = _join(clocks[t], box[0])

    def publish_acc(t: int, key: Any) -> None:
        c = clocks[t]
        box = acc.get(key)
        if box is None:
            acc[key] = [c, 1]
        else:
            box[0] = _join(box[0], c)
            box[1] += 1
        seen[t][key] = acc[key][1]
        tick(t)

    def tick(t: int) -> None:
        c = clocks[t].copy()
        c[t] += 1
        clocks[t] = c

    def release_lock(t: int, r: str) -> None:
        lock_vc[r] = (clocks[t], t)
        tick(t)

    def acquire_lock(t: int, r: str) -> None:
        got = lock_vc.get(r)
        if got is not None and got[1] != t:
            join_into(t, got[0], got[1])

    def hold(t: int, r: str) -> None:
        h = held[t]
        h[r] = h.get(r, 0) + 1
        held_t[t] = tuple(h)

    def unhold(t: int, r: str) -> int:
        h = held[t]
        k = h.pop(r, 0)
        if k > 1:
            h[r] = k - 1
        held_t[t] = tuple(h)
        return k

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

    var: str
    events = data.events
    for e in events:
        actor = e.actor
        if actor is None:
            continue
        t = index[actor]
        op = e.op
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
            if st is None:
                st = variables[var] = [-1, 0, -1, (), -1, 0, -1, (), None, None]
            elif st[_WT] == t and st[_WC] == ct:
                continue  # written in this epoch already
            seq = e.seq
            me = (seq, t, held_t[t])
            mine = (ct, seq, me[2])
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
        phase = e.phase
        target: str = e.target or ""
        if op == "acquire":
            if phase == "return" and e.result == "ok":
                r = res_of.get(target, target)
                if types.get(r, "lock") in SEMAPHORE_TYPES:
                    join_acc(t, ("sem", r))
                else:
                    acquire_lock(t, r)
                hold(t, r)
        elif op == "release":
            if "error" in e:
                continue  # the real release failed: it released nothing
            r = res_of.get(target, target)
            unhold(t, r)
            if types.get(r, "lock") in SEMAPHORE_TYPES:
                publish_acc(t, ("sem", r))
            else:
                release_lock(t, r)
        elif op == "wait":
            kind = types.get(target, "event")
            if kind == "condition":
                r = res_of.get(target, target)
                if phase == "call":
                    if r in held[t]:
                        k = held[t].pop(r)
                        held_t[t] = tuple(held[t])
                        cond_wait[t] = (r, k)
                        release_lock(t, r)
                else:
                    got = cond_wait.pop(t, None)
                    if e.result == "ok":
                        join_acc(t, ("cond", target))
                    if got is not None and e.result != "error":
                        acquire_lock(t, got[0])
                        held[t][got[0]] = got[1]
                        held_t[t] = tuple(held[t])
            elif kind == "barrier":
                parties = specs.get(target, {}).get("parties")
                if not isinstance(parties, int) or parties < 1:
                    if phase == "call":
                        publish_acc(t, ("barrier", target))
                    elif e.result == "ok":
                        join_acc(t, ("barrier", target))
                elif phase == "call":
                    b = barriers.get(target)
                    if b is None:
                        b = barriers[target] = [0, 0]
                    gkey = (target, b[0])
                    g = gen_clock.get(gkey)
                    if g is None:
                        gen_clock[gkey] = [clocks[t], 0]
                    else:
                        g[0] = _join(g[0], clocks[t])
                    barrier_gen[(t, target)] = b[0]
                    tick(t)
                    b[1] += 1
                    if b[1] >= parties:  # the round is complete: the next one begins
                        b[0] += 1
                        b[1] = 0
                else:
                    gen = barrier_gen.pop((t, target), -1)
                    g = gen_clock.get((target, gen))
                    if g is not None:
                        if e.result == "ok":
                            clocks[t] = _join(clocks[t], g[0])
                        else:
                            b = barriers.get(target)
                            if b is not None and b[0] == gen:
                                b[0] += 1  # a broken round: later arrivals are another one
                                b[1] = 0
                        g[1] += 1
                        if g[1] >= parties:
                            del gen_clock[(target, gen)]
            elif phase == "return" and e.result == "ok":
                join_acc(t, ("event", target))
        elif op == "set":
            publish_acc(t, ("event", target))
        elif op in ("notify", "notify_all"):
            if "error" not in e:
                publish_acc(t, ("cond", target))
        elif op in ("put", "send"):
            if phase == "call":
                if op == "put":
                    box_key: Any = ("queue", target)
                else:
                    box_key = ("pipe", target, pipe_peer.get((target, actor)))
                box = mail.get(box_key)
                if box is None:
                    box = mail[box_key] = _Mailbox()
                entry = [clocks[t], t, True]
                box.put(item_key(e.item), entry)
                pending_put[(t, op, target)] = entry
                tick(t)
            else:
                entry_ = pending_put.pop((t, op, target), None)
                if entry_ is not None and e.result not in ("ok", None):
                    entry_[2] = False  # it did not go through
        elif op in ("get", "recv"):
            if phase == "return" and e.result == "ok":
                if op == "get":
                    box_key = ("queue", target)
                else:
                    peer = pipe_peer.get((target, actor))
                    box_key = ("pipe", target, actor if peer is not None else None)
                box = mail.get(box_key)
                if box is not None:
                    got_entry = box.take(item_key(e.item))
                    if got_entry is not None:
                        join_into(t, got_entry[0], got_entry[1])
        elif op == "spawn":
            if isinstance(target, str):
                to_start[target] = (clocks[t], t)
                tick(t)
        elif op == "start":
            got_s = to_start.pop(actor, None)
            if got_s is not None:
                join_into(t, got_s[0], got_s[1])
            w = worker_of.get(actor)
            if w is not None:
                got_w = worker_last.get(w)
                if got_w is not None:  # the task before it on the same pool worker
                    join_into(t, got_w[0], got_w[1])
        elif op == "end":
            ended[actor] = (clocks[t], t)
            w = worker_of.get(actor)
            if w is not None:
                worker_last[w] = (clocks[t], t)
            tick(t)
        elif op == "join" and phase == "return" and e.result == "ok":
            got_e = ended.get(target)
            if got_e is not None:
                join_into(t, got_e[0], got_e[1])
    return findings


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
        return {"seq": e.seq, "actor": who, "op": e.op, "value": value,
                "locks_held": list(held)}

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
    msg = (f"race on {var}: {n1} {_VERB.get(op1, op1)} {var} (seq {s1}, {_held_text(h1)}) "
           f"and {n2} {_VERB_IT.get(op2, op2)} (seq {s2}, {_held_text(h2)}); no lock, event "
           f"or join orders them — {fix}")
    return Finding("race", (n1, n2), (var,), msg, (s1, s2),
                   {"var": var, "first": side(e1, n1, h1), "second": side(e2, n2, h2)})
