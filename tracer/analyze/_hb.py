"""Happens-before over a trace: the vector clock of every actor at every event.

One derivation, shared by the race detector (``races``) and the lock-order analysis
(``lockorder``). Each actor keeps a vector clock; a synchronisation edge the trace shows joins
the sender's clock into the receiver's:

- lock release -> a later acquire of that lock by another actor (a condition's wait releases
  its lock at the call and takes it back at the return);
- semaphore release -> later acquires (the releases accumulate);
- event set -> wait, notify -> the condition waits that return ok after it;
- queue put -> the get that received that item, pipe send -> the recv on the other end;
- barrier: every arrival of a round -> every departure of it;
- spawn -> the started actor's start, end -> join, and a pool task's end -> the start of the
  next task on the same worker.

An actor's clock is a list replaced, never changed in place, whenever it changes: a clock seen
earlier stays what it was, and two events with the same list object are not separated by any
synchronisation. After each event that publishes its clock (a release, set, notify, put,
send, barrier arrival, spawn, end) the actor ticks, so an epoch holds at most one publishing
event, its last. Hence event x of actor p happens-before event y iff ``clock(y)[p] >=
clock(x)[p]`` (y saw the publication that ends x's epoch, which is at or after x).

``mutex=False`` leaves out the edges of mutual exclusion: a lock's release -> its next acquire,
the same for a semaphore that starts with a value (only a semaphore that starts at 0
signals), and one pool task -> the next on the same worker (unless the pool has only one
worker). Those orders are accidents of one run: in another, the other actor takes the lock
first. The lock-order analysis reasons about other interleavings, so it must not count them;
the race detector judges this run's accesses, so it does.

Ticking after a publication nobody ever takes up only tells apart events that no other actor
can tell apart: ``consumed[p]`` (filled when ``track``) is the set of p's epochs that reached
another actor's clock, and a pass given them as ``ticks`` ticks only after those. Its clocks
are the first pass's with each entry renumbered in order (epoch e of p becomes 1 + the number
of consumed epochs below e), so ``clock(y)[p] >= clock(x)[p]`` comes out the same for every
event y of another actor, while a clock changes only when something another actor saw
separates it from the last. The
lock-order analysis keys its occurrence groups on clock identity: with such clocks, an actor
that sets an event nobody waits for between occurrences keeps one group, not one per set.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable
from typing import Any

import orjson

from tracer.analyze._model import TraceData

SEMAPHORE_TYPES = frozenset({"semaphore", "bounded_semaphore"})


def item_key(item: Any) -> Hashable:
    """A hashable key for an item carried through a queue or pipe (JSON data)."""
    if item is None or isinstance(item, (str, int, float, bool)):
        return (type(item).__name__, item)
    try:
        return ("json", orjson.dumps(item, option=orjson.OPT_SORT_KEYS))
    except TypeError:
        return ("repr", repr(item))


def _join(a: list[int], b: list[int]) -> list[int]:
    """The pointwise maximum of two vector clocks (a new list)."""
    return [x if x >= y else y for x, y in zip(a, b, strict=True)]


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


class HappensBefore:
    """The clocks of a pass over a trace's events, in seq order.

    For each actor event, call ``step(e, t)`` (``t`` the actor's index in ``data.actors``)
    with every event except reads, writes and appends, which change no clock (nor, when
    ``mutex`` is False, acquires and releases of anything but the ``signals``). Then
    ``clocks[t]`` is the actor's clock at that event (an acquisition's return has joined
    what it acquired), and, when ``mutex``, ``held[t]`` / ``held_t[t]`` what it holds
    (resource -> times, and the resources in the order taken)."""

    def __init__(self, data: TraceData, specs: dict[str, dict[str, Any]],
                 res_of: dict[str, str], types: dict[str, str], mutex: bool = True,
                 track: bool = False, ticks: list[set[int]] | None = None) -> None:
        actor_names = [a["name"] for a in data.actors]
        n = len(actor_names)
        clocks: list[list[int]] = []
        for i in range(n):
            c = [0] * n
            c[i] = 1
            clocks.append(c)
        held: list[dict[str, int]] = [{} for _ in range(n)]
        held_t: list[tuple[str, ...]] = [() for _ in range(n)]
        self.clocks = clocks
        self.held = held
        self.held_t = held_t
        # per actor: its epochs that reached another actor's clock (when ``track``)
        self.consumed: list[set[int]] = [set() for _ in range(n)]
        consumed = self.consumed if track else None
        raw = [1] * n  # per actor: its epoch as if every publication ticked

        # semaphores whose release -> acquire orders: all of them, or (mutex=False) the ones
        # that start at 0, whose every acquisition needs a release
        self.signals = signals = frozenset(
            name for name, s in specs.items() if s["type"] in SEMAPHORE_TYPES
            and (mutex or s.get("value", 1) == 0))
        # lock resource -> (clock at the last release, releaser)
        lock_vc: dict[str, tuple[list[int], int]] = {}
        # accumulating objects (semaphore releases, event sets, condition notifies, a barrier
        # with unknown parties): key -> [clock, version]; seen[t][key] is the version t
        # joined last
        acc: dict[Any, list[Any]] = {}
        seen: list[dict[Any, int]] = [{} for _ in range(n)]
        # barriers: name -> [round number, arrivals in it]; (name, round) -> [the clock
        # joining every arrival of the round, departures so far]; (actor, name) -> its round
        barriers: dict[str, list[int]] = {}
        gen_clock: dict[tuple[str, int], list[Any]] = {}
        barrier_gen: dict[tuple[int, str], int] = {}
        mail: dict[Any, _Mailbox] = {}
        pending_put: dict[tuple[int, str, str], list[Any]] = {}
        cond_wait: dict[int, tuple[str, int]] = {}  # actor -> (resource released, times held)
        to_start: dict[str, tuple[list[int], int]] = {}
        ended: dict[str, tuple[list[int], int]] = {}

        # a pool runs its tasks on workers: tasks on one worker (same pid and tid) run one
        # after the other, so a task's end happens-before the start of the next task there.
        # Which worker runs a task is this run's accident unless the pool has one worker:
        # without mutual exclusion, only such a pool orders its tasks
        worker_of: dict[str, tuple[Any, ...]] = {}
        for a in data.actors:
            pool = a.get("pool")
            if pool is not None and (a.get("pid") is not None or a.get("tid") is not None) \
                    and (mutex or specs.get(pool, {}).get("workers") == 1):
                worker_of[a["name"]] = (pool, a.get("pid"), a.get("tid"))
        worker_last: dict[tuple[Any, ...], tuple[list[int], int]] = {}
        pipe_peer: dict[tuple[str, str], str | None] = {}
        for name, spec in specs.items():
            if spec["type"] == "pipe":
                between = spec.get("between")
                if isinstance(between, list) and len(between) == 2:
                    a, b = between
                    pipe_peer[(name, a)] = b
                    pipe_peer[(name, b)] = a

        def take(t: int, other: list[int]) -> None:
            """Join ``other`` into t's clock: t takes up what another actor published."""
            c = clocks[t]
            if consumed is not None:
                for i, (x, y) in enumerate(zip(c, other, strict=True)):
                    if y > x:
                        consumed[i].add(y)
            clocks[t] = _join(c, other)

        def join_into(t: int, other: list[int], src: int) -> None:
            if src >= 0 and other[src] <= clocks[t][src]:
                return  # t already saw the source's event, hence everything before it
            take(t, other)

        def join_acc(t: int, key: Any) -> None:
            box = acc.get(key)
            if box is None:
                return
            if seen[t].get(key) == box[1]:
                return
            seen[t][key] = box[1]
            take(t, box[0])

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
            k = raw[t]
            raw[t] = k + 1
            if ticks is not None and k not in ticks[t]:
                return  # nobody ever takes up this epoch: no need to tell it from the next
            c = clocks[t].copy()
            c[t] += 1
            clocks[t] = c

        def release_lock(t: int, r: str) -> None:
            if mutex:
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

        def unhold(t: int, r: str) -> None:
            h = held[t]
            k = h.pop(r, 0)
            if k > 1:
                h[r] = k - 1
            held_t[t] = tuple(h)

        def step(e: Any, t: int) -> None:
            op = e.op
            phase = e.phase
            target: str = e.target or ""
            if op == "acquire":
                if not mutex and target not in signals:
                    return  # without mutual exclusion, only a signal's acquire orders
                if phase == "return" and e.result == "ok":
                    r = res_of.get(target, target)
                    if types.get(r, "lock") in SEMAPHORE_TYPES:
                        if r in signals:
                            join_acc(t, ("sem", r))
                    else:
                        acquire_lock(t, r)
                    hold(t, r)
            elif op == "release":
                if not mutex and target not in signals:
                    return
                if "error" in e:
                    return  # the real release failed: it released nothing
                r = res_of.get(target, target)
                unhold(t, r)
                if types.get(r, "lock") in SEMAPHORE_TYPES:
                    if r in signals:
                        publish_acc(t, ("sem", r))
                else:
                    release_lock(t, r)
            elif op == "wait":
                kind = types.get(target, "event")
                if kind == "condition":
                    if not mutex:
                        if phase == "return" and e.result == "ok":
                            join_acc(t, ("cond", target))
                        return
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
                    barrier(e, t, target, phase)
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
                        box_key = ("pipe", target, pipe_peer.get((target, e.actor)))
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
                        peer = pipe_peer.get((target, e.actor))
                        box_key = ("pipe", target, e.actor if peer is not None else None)
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
                actor = e.actor
                got_s = to_start.pop(actor, None)
                if got_s is not None:
                    join_into(t, got_s[0], got_s[1])
                w = worker_of.get(actor)
                if w is not None:
                    got_w = worker_last.get(w)
                    if got_w is not None:  # the task before it on the same pool worker
                        join_into(t, got_w[0], got_w[1])
            elif op == "end":
                actor = e.actor
                ended[actor] = (clocks[t], t)
                w = worker_of.get(actor)
                if w is not None:
                    worker_last[w] = (clocks[t], t)
                tick(t)
            elif op == "join" and phase == "return" and e.result == "ok":
                got_e = ended.get(target)
                if got_e is not None:
                    join_into(t, got_e[0], got_e[1])

        def barrier(e: Any, t: int, target: str, phase: str | None) -> None:
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
                        take(t, g[0])
                    else:
                        b = barriers.get(target)
                        if b is not None and b[0] == gen:
                            b[0] += 1  # a broken round: later arrivals are another one
                            b[1] = 0
                    g[1] += 1
                    if g[1] >= parties:
                        del gen_clock[(target, gen)]

        self.step = step
