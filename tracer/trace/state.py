"""The shared state pass: who holds what and happens-before, derived once per trace for every
analysis and renderer.

It knows no primitive type by name: each type's module in :mod:`tracer.prims` declares its
``FACTS`` (:mod:`tracer.prims._facts`), and the pass reads them through the registry. A name
the scenario does not declare is a plain lock (what the engine's events on it can only be).

Two parts, both computed lazily and at most once per trace (:func:`state_of` keeps the state
of the last trace asked about):

- :attr:`TraceState.holds`, a :class:`HoldLog`: every change of who holds what, by event
  (an ``ok`` acquire takes a hold, a release gives one back, a condition's wait lets go of its
  lock at the call and takes it back at the return; counted holds for semaphores, re-entry for
  rlocks, the mode of a shared/exclusive hold), and the counts that went below their floor.
  The analyses mirror the holders they need from it instead of re-deriving them.
- :class:`Clocks`: the vector clock of every actor at every event. Each actor keeps a vector
  clock; a synchronisation edge the trace shows joins the sender's clock into the receiver's:
  the types' channels (a release -> a later acquire, semaphore releases accumulating, a set ->
  waits, a notify -> the waits that return ok after it, a put -> the get of that item, a send
  -> the recv, a barrier round's arrivals -> its departures), and the actors' own edges: spawn
  -> the started actor's start, end -> join, and a pool task's end -> the start of the next
  task on the same worker.

An actor's clock is a :class:`VClock` replaced, never changed in place, whenever it changes: a
clock seen earlier stays what it was, and two events with the same clock object are not
separated by any synchronisation. A VClock keeps its entries in chunks shared with the clocks
it was made from, and a join right after the joining actor's own tick (an acquire after its
last release: the common case) is the other clock with one entry set (FastTrack's epoch
argument, see ``clean`` in :class:`Clocks`), so a run of 10,000 actors on one lock costs a
chunk per acquire, not 10,000 entries (``reference=True``: plain lists, joined entry by entry,
which the tests compare against).

After each event that publishes its clock (a release, set, notify, put, send, barrier
arrival, spawn, end) the actor ticks, so an epoch holds at most one publishing event, its
last. Hence event x of actor p happens-before event y iff ``clock(y)[p] >=
clock(x)[p]`` (y saw the publication that ends x's epoch, which is at or after x).

``mutex=False`` leaves out the channels of mutual exclusion (a lock's release -> its next
acquire, the same for a semaphore that starts with a value: only one that starts at 0
signals) and one pool task -> the next on the same worker (unless the pool has only one
worker). Those orders are accidents of one run: in another, the other actor takes the lock
first. The lock-order analysis reasons about other interleavings, so it must not count them;
the race detector judges this run's accesses, so it does.

Ticking after a publication nobody ever takes up only tells apart events that no other actor
can tell apart: ``consumed[p]`` (filled when ``track``) is the set of p's epochs that reached
another actor's clock, and a pass given them as ``ticks`` ticks only after those. Its clocks
are the first pass's with each entry renumbered in order (epoch e of p becomes 1 + the number
of consumed epochs below e), so ``clock(y)[p] >= clock(x)[p]`` comes out the same for every
event y of another actor, while a clock changes only when something another actor saw
separates it from the last. The lock-order analysis keys its occurrence groups on clock
identity: with such clocks, an actor that sets an event nobody waits for between occurrences
keeps one group, not one per set.

Atomics. An access of a shared variable whose event carries ``"atomic": true`` (every access
of a variable the scenario lists in ``atomic:``, and an ``add`` with ``atomic: true``) orders
like Go's ``sync/atomic`` as Go's race detector models it (ThreadSanitizer's atomics, which the
Go memory model's "if the effect of an atomic operation A is observed by atomic operation B,
then A is synchronized before B" allows): each variable keeps the clock its last atomic write
published. An atomic write (``write`` or ``append``) *release-stores*: its clock replaces the
variable's, then the actor ticks. An atomic read *acquires*: the reader joins the variable's
clock. An atomic read-modify-write (the one ``write`` event of an atomic ``add``, with
``old``; an atomic ``append``) acquires, then releases, so a chain of atomic adds orders each
after all before it. A plain (non-atomic) write or append of the variable clears its clock:
a value nobody released orders nothing. So a flag handed over atomically orders the plain data
accesses on either side of it, which is what a message passed through an atomic flag means;
which actor's atomic access came first is otherwise this run's accident, so the lock-order
pass (``mutex=False``) does not count atomics, as it does not count locks.
"""

from __future__ import annotations

import weakref
from array import array
from collections import deque
from collections.abc import Callable, Hashable, Iterator
from typing import Any, NamedTuple

import orjson

from tracer.prims import REGISTRY
from tracer.prims._facts import NO_FACTS, UNDECLARED, Channel, Counter, Facts, HoldMode, Op
from tracer.trace._read import TraceData

# ops on shared variables: they change no hold, and no clock but an atomic one's (see Atomics)
ACCESS = frozenset({"read", "write", "append"})


def is_atomic(e: Any) -> bool:
    """Whether an access event is atomic (its payload says ``"atomic": true``)."""
    return e.get("atomic") is True


def prim_specs(data: TraceData) -> dict[str, dict[str, Any]]:
    """primitive name -> its spec as a mapping with at least ``type``."""
    out: dict[str, dict[str, Any]] = {}
    for name, spec in (data.scenario.get("primitives") or {}).items():
        if isinstance(spec, str):
            out[name] = {"type": spec}
        elif isinstance(spec, dict):
            out[name] = {**spec, "type": spec.get("type", "?")}
    return out


def facts_of_type(kind: str) -> Facts:
    """The facts the registry declares for type ``kind`` (none for an unknown type)."""
    t = REGISTRY.get(kind)
    facts = t.part("FACTS") if t is not None else None
    return facts if isinstance(facts, Facts) else NO_FACTS


def item_key(item: Any) -> Hashable:
    """A hashable key for an item carried through a queue or pipe (JSON data)."""
    if item is None or isinstance(item, (str, int, float, bool)):
        return (type(item).__name__, item)
    try:
        return ("json", orjson.dumps(item, option=orjson.OPT_SORT_KEYS))
    except TypeError:
        return ("repr", repr(item))


class Change(NamedTuple):
    """One change of who holds what, at one event.

    ``kind``: ``take`` (a hold taken; ``times`` the times the actor now holds it),
    ``give`` (one given back; ``times`` what is left), ``unheld`` (a release by an actor
    that did not hold it: nothing changes, but it publishes as a release), ``free`` (the
    holder ``actor`` lost it to another's release), ``let_go`` (a condition wait lets go of
    all ``times`` holds), ``retake`` (its return takes them back). ``held``: the resources the
    actor holds after it, in the order taken."""

    kind: str
    actor: int
    resource: str
    times: int
    mode: str
    held: tuple[str, ...]


def _change(kind: str, actor: int, resource: str, times: int, mode: str,
            held: tuple[str, ...]) -> Change:
    """A :class:`Change`, made without the named tuple's Python-level ``__new__`` (the hold
    log makes one per acquire and release)."""
    c: Change = _new(Change, (kind, actor, resource, times, mode, held))
    return c


_new: Any = tuple.__new__


class CountMisuse(NamedTuple):
    """A count that went below its floor: the event, its actor, the primitive, where the count
    went, and the message the type's :class:`Counter` gives for it."""

    seq: int
    actor: str
    name: str
    value: int
    message: str


class TraceState:
    """What the analyses and renderers derive from a trace: its primitives with their facts,
    the ops that occur, and (lazily, once) who holds what. See :func:`state_of`."""

    def __init__(self, data: TraceData) -> None:
        self.data = data
        self.specs = specs = prim_specs(data)
        self.types: dict[str, str] = {name: s["type"] for name, s in specs.items()}
        self.facts: dict[str, Facts] = {name: facts_of_type(t) for name, t in self.types.items()}
        # what acquiring each name holds: itself, or the declared primitive its lock option
        # names (for a type whose holds are on its lock)
        self.res_of: dict[str, str] = {}
        for name, spec in specs.items():
            lock = spec.get("lock") if self.facts[name].resource == "lock" else None
            self.res_of[name] = lock if isinstance(lock, str) and lock in specs else name
        self.ops: set[str] = {e.op for e in data.events}
        self.actor_names: list[str] = [a["name"] for a in data.actors]
        self.index: dict[str, int] = {n: i for i, n in enumerate(self.actor_names)}
        self._holds: HoldLog | None = None
        self._calls: CallLog | None = None
        self._kinds: dict[Any, Any] | None = None

    def facts_of(self, name: str) -> Facts:
        """The facts of the primitive ``name`` (a plain lock's for an undeclared name)."""
        f = self.facts.get(name)
        return UNDECLARED if f is None else f

    def resource(self, name: str) -> str:
        """What acquiring ``name`` holds."""
        return self.res_of.get(name, name)

    def mode_of(self, resource: str, mode: str | None = None) -> HoldMode | None:
        """The hold mode ``mode`` of a resource (None: it is never held)."""
        return self.facts_of(resource).mode(mode)

    def holdable(self, resource: str) -> bool:
        return bool(self.facts_of(resource).modes)

    def exclusive(self, resource: str) -> bool:
        """Whether holds on ``resource`` (in its default mode) are lock-order nodes: a lock,
        an rlock, a condition's lock, not a semaphore."""
        m = self.mode_of(resource)
        return m is not None and m.ordered

    def reentrant(self, resource: str, actor: str) -> bool:
        """Whether ``actor`` taking ``resource`` again while holding it is re-entry."""
        if self._kinds is None:
            self._kinds = {a.get("name"): a.get("kind") for a in self.data.actors}
        return self.facts_of(resource).reentrant_for(self._kinds.get(actor))

    @property
    def calls(self) -> CallLog:
        """Which call each return ends, and the calls never returned (computed on first
        use)."""
        if self._calls is None:
            self._calls = CallLog(self.data)
        return self._calls

    @property
    def holds(self) -> HoldLog:
        """Who holds what, event by event (computed on first use)."""
        if self._holds is None:
            self._holds = HoldLog(self)
        return self._holds


_last: tuple[weakref.ref[TraceData], int, TraceState] | None = None


def state_of(data: TraceData) -> TraceState:
    """The :class:`TraceState` of ``data``: made once and shared by every analysis and
    renderer that asks about the same trace (the last one asked about is kept)."""
    global _last
    if _last is not None and _last[0]() is data and _last[1] == len(data.events):
        return _last[2]
    st = TraceState(data)
    _last = (weakref.ref(data), len(data.events), st)
    return st


class CallLog:
    """The calls and returns of the trace paired as the reader checks them (the same actor,
    op and target): ``call_of[return seq]`` is its call's seq (-1 for any other event: an
    array, 8 bytes an event); ``open`` the seqs of the calls with no return, in seq order."""

    def __init__(self, data: TraceData) -> None:
        self.call_of: array[int] = array("q", [-1]) * len(data.events)
        pending: dict[tuple[Any, Any, Any], int] = {}
        for e in data.events:
            phase = e.phase
            if phase is None or e.actor is None:
                continue
            key = (e.actor, e.op, e.target)
            if phase == "call":
                pending[key] = e.seq
            else:
                got = pending.pop(key, None)
                if got is not None:
                    self.call_of[e.seq] = got
        self.open: list[int] = sorted(pending.values())




class HoldLog:
    """Who holds what: one pass over the events, giving the :class:`Change` list of each event
    that changes a hold (``changes[seq]``, None for the others; equal ones shared) and the
    counts that went below their floor (``count_misuse``)."""

    def __init__(self, state: TraceState) -> None:
        data = state.data
        # by seq (a list: most events of a big trace change a hold, and a slot is cheaper
        # than a dict entry); the held tuples are shared, as most repeat
        self.changes: list[tuple[Change, ...] | None] = [None] * len(data.events)
        self.count_misuse: list[CountMisuse] = []
        shared: dict[tuple[str, ...], tuple[str, ...]] = {}
        seen_cs: dict[tuple[Change, ...], tuple[Change, ...]] = {}

        def frozen(h: dict[str, int]) -> tuple[str, ...]:
            held_now = tuple(h)
            return shared.setdefault(held_now, held_now)
        index = state.index
        n = len(state.actor_names)
        held: list[dict[str, int]] = [{} for _ in range(n)]  # per actor: resource -> times
        modes: list[dict[str, str]] = [{} for _ in range(n)]  # per actor: resource -> mode
        holders: dict[str, dict[int, None]] = {}  # resource -> its holders, in order
        pending_mode: dict[tuple[int, str], str] = {}
        let_go: dict[int, tuple[str, int, str]] = {}  # actor -> (resource, times, mode)
        counts: dict[str, int] = {}
        changes = self.changes

        def take(t: int, r: str, k: int, mode: str, kind: str) -> Change:
            h = held[t]
            if r in h:
                h[r] += k
            else:
                h[r] = k
                modes[t][r] = mode
                holders.setdefault(r, {})[t] = None
            return _change(kind, t, r, h[r], mode, frozen(h))

        def drop(t: int, r: str) -> tuple[int, str]:
            h = held[t]
            k = h.pop(r, 0)
            mode = modes[t].pop(r, "")
            hr = holders.get(r)
            if hr is not None:
                hr.pop(t, None)
            return k, mode

        # per op, per target: (the op's hold kind, the resource, its facts, the target's
        # counter), or None when the op means nothing for holding or counting there
        plans: dict[str, dict[str, tuple[str | None, str, Facts, Counter | None] | None]] = {}

        def plan(op: str, target: str) -> tuple[str | None, str, Facts, Counter | None] | None:
            f = state.facts_of(target)
            of = f.ops.get(op)
            counter = f.counter if f.counter is not None and op in f.counter.ops else None
            hold = of.hold if of is not None else None
            if hold is None and counter is None:
                return None
            r = state.resource(target)
            return (hold, r, state.facts_of(r), counter)

        for e in data.events:
            actor = e.actor
            if actor is None:
                continue
            op = e.op
            if op in ACCESS:
                continue
            target: str = e.target or "?"
            by_target = plans.get(op)
            if by_target is None:
                by_target = plans[op] = {}
            if target in by_target:
                pl = by_target[target]
            else:
                pl = by_target[target] = plan(op, target)
            if pl is None:
                continue
            hold, r, rf, counter = pl
            t = index[actor]
            phase = e.phase
            if hold == "take":
                if phase == "call":
                    if rf.mode_field is not None:
                        pending_mode[(t, r)] = str(e.get(rf.mode_field) or rf.default_mode)
                elif e.result == "ok" and rf.modes:
                    mode = pending_mode.pop((t, r), rf.default_mode) if pending_mode \
                        else rf.default_mode
                    h = held[t]  # take(t, r, 1, mode, "take"), inlined: the common case
                    if r in h:
                        h[r] += 1
                    else:
                        h[r] = 1
                        modes[t][r] = mode
                        hr_ = holders.get(r)
                        if hr_ is None:
                            holders[r] = {t: None}
                        else:
                            hr_[t] = None
                    hn = tuple(h)
                    one = (_new(Change, ("take", t, r, h[r], mode, shared.setdefault(hn, hn))),)
                    changes[e.seq] = seen_cs.setdefault(one, one)
                elif pending_mode:
                    pending_mode.pop((t, r), None)
                if counter is None:
                    continue
            out: list[Change] = []
            if hold == "give":
                if "error" not in e:
                    h = held[t]
                    k = h.get(r, 0)
                    if k > 1:
                        h[r] = k - 1
                        out.append(_change("give", t, r, k - 1, modes[t][r], frozen(h)))
                    elif k == 1:
                        del h[r]  # drop(t, r), inlined
                        mode = modes[t].pop(r, "")
                        hr_ = holders.get(r)
                        if hr_ is not None:
                            hr_.pop(t, None)
                        hn = tuple(h)
                        one = (_new(Change, ("give", t, r, 0, mode,
                                             shared.setdefault(hn, hn))),)
                        changes[e.seq] = seen_cs.setdefault(one, one)
                        if counter is None:
                            continue
                    else:
                        out.append(_change("unheld", t, r, 0, rf.default_mode, frozen(h)))
                        if rf.foreign_release_frees:
                            for u in list(holders.get(r, ())):
                                _, mode = drop(u, r)
                                out.append(_change("free", u, r, 0, mode, frozen(held[u])))
            elif hold == "let_go":
                if phase == "call":
                    if r in held[t]:
                        k, mode = drop(t, r)
                        let_go[t] = (r, k, mode)
                        out.append(_change("let_go", t, r, k, mode, frozen(held[t])))
                else:
                    got = let_go.pop(t, None)
                    if got is not None and e.result != "error":
                        out.append(take(t, got[0], got[1], got[2], "retake"))
            if counter is not None:
                step = counter.ops.get(op)
                # an op the real primitive refused (it carries an error) changed nothing; it
                # is still the misuse when it would have gone below the floor (a latch
                # counted down below zero)
                refused = "error" in e
                if step is not None and (phase is None or (phase == "return"
                                                           and e.result == "ok")):
                    amount = e.get(counter.amount) if counter.amount else None
                    if not isinstance(amount, int) or isinstance(amount, bool):
                        amount = 1
                    if target not in counts:
                        start = state.specs.get(target, {}).get(counter.option) \
                            if counter.option else None
                        counts[target] = start if isinstance(start, int) else counter.start
                    c = counts[target] + step * amount
                    if c < counter.floor:
                        self.count_misuse.append(CountMisuse(
                            e.seq, actor, target, c,
                            _count_message(counter, actor, target, e.seq, c,
                                           state.specs.get(target, {}))))
                        c = counter.floor
                    if not refused:
                        counts[target] = c
            if out:
                cs = tuple(out)
                changes[e.seq] = seen_cs.setdefault(cs, cs)


def _count_message(counter: Counter, actor: str, name: str, seq: int, count: int,
                   spec: dict[str, Any]) -> str:
    about = spec.get(counter.about[0], counter.about[1]) if counter.about else ""
    return counter.misuse.format(actor=actor, name=name, seq=seq, count=count, about=about)


def _join(a: list[int], b: list[int]) -> list[int]:
    """The pointwise maximum of two vector clocks (a new list)."""
    return [x if x >= y else y for x, y in zip(a, b, strict=True)]


# A clock of many actors is kept in chunks of 2**_SHIFT entries, shared between the clocks
# that agree on them: setting one entry copies one chunk and the list of chunks, not the whole
# clock, and a join skips the chunks both sides share.
_SHIFT = 6
_MASK = (1 << _SHIFT) - 1


class VClock:
    """A vector clock that is never changed once made (see :class:`Clocks`): ``c[i]`` is its
    entry for actor i. Its entries are in chunks (tuples) shared with the clocks it was made
    from, so that a clock of 10,000 actors costs a chunk and a list of chunks to copy with one
    entry changed, not 10,000 entries."""

    __slots__ = ("chunks",)

    def __init__(self, chunks: list[tuple[int, ...]]) -> None:
        self.chunks = chunks

    def __getitem__(self, i: int) -> int:
        return self.chunks[i >> _SHIFT][i & _MASK]

    def __len__(self) -> int:
        return sum(map(len, self.chunks))

    def __iter__(self) -> Iterator[int]:
        for ch in self.chunks:
            yield from ch

    def __repr__(self) -> str:
        return f"VClock({list(self)})"


def _vc_zero(n: int) -> VClock:
    """The clock of n actors with every entry 0."""
    size = 1 << _SHIFT
    whole = (0,) * size
    chunks = [whole] * (n >> _SHIFT)
    if n & _MASK:
        chunks.append((0,) * (n & _MASK))
    return VClock(chunks)


def _vc_set(c: VClock, i: int, v: int) -> VClock:
    """``c`` with entry i set to v (a new clock; ``c`` is left as it was)."""
    chunks = c.chunks.copy()
    k = i >> _SHIFT
    ch = list(chunks[k])
    ch[i & _MASK] = v
    chunks[k] = tuple(ch)
    return VClock(chunks)


def _vc_join(a: VClock, b: VClock) -> VClock:
    """The pointwise maximum of two clocks (a new clock, sharing their chunks where it can)."""
    ca, cb = a.chunks, b.chunks
    if ca is cb:
        return VClock(ca)
    out = []
    for x, y in zip(ca, cb, strict=True):
        if x is y or x == y:
            out.append(x)
        else:
            m = tuple(map(max, x, y))
            out.append(x if m == x else y if m == y else m)
    return VClock(out)


def _vc_copy(c: VClock) -> VClock:
    """Another clock object with the same entries (a clock's identity marks a change)."""
    return VClock(c.chunks)


def _list_zero(n: int) -> list[int]:
    return [0] * n


def _list_set(c: list[int], i: int, v: int) -> list[int]:
    out = c.copy()
    out[i] = v
    return out


class _Mailbox:
    """Items in flight through a mail channel: per item, the senders' clocks in order."""

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


_ACTOR_OPS = frozenset({"spawn", "start", "end", "join"})


def _ignore_access(t: int, var: str) -> None:
    """An atomic access in a pass without mutual exclusion: it orders nothing."""


def _ignore_write(var: str) -> None:
    """A plain write in a pass without mutual exclusion."""


class Clocks:
    """The happens-before clocks of a pass over a trace's events, in seq order.

    For each actor event, call ``step(e, t)`` (``t`` the actor's index in ``data.actors``;
    reads, writes and appends change no clock and may be left out). Then ``clocks[t]`` is the
    actor's clock at that event (an acquisition's return has joined what it acquired).

    The accesses of shared variables are the caller's to step, as only the race detector
    needs them (``mutex=True``): before an atomic read, or an atomic read-modify-write,
    ``atomic_acquire(t, var)``; after an atomic write (the RMW's too: its event is checked
    with the clock between the two), ``atomic_release(t, var)``; after a plain write or
    append, ``plain_write(var)``. With ``mutex=False`` they do nothing: which actor's atomic
    access came first is this run's accident, as for a lock."""


    def __init__(self, state: TraceState, mutex: bool = True, track: bool = False,
                 ticks: list[set[int]] | None = None, reference: bool = False) -> None:
        data = state.data
        specs = state.specs
        n = len(state.actor_names)
        # the clock algebra: persistent chunked clocks (VClock), or, with ``reference``,
        # plain lists joined entry by entry (what the tests compare the fast path against)
        zero: Callable[[int], Any] = _list_zero if reference else _vc_zero
        set_: Callable[[Any, int, int], Any] = _list_set if reference else _vc_set
        join: Callable[[Any, Any], Any] = _join if reference else _vc_join
        copy: Callable[[Any], Any] = list.copy if reference else _vc_copy
        empty = zero(n)
        clocks: list[Any] = [set_(empty, i, 1) for i in range(n)]
        self.clocks = clocks
        # FastTrack's observation, for the joins (an acquire taking up the last release):
        # right after t ticks, t's clock is what it published (``pub[t]`` its entry for t)
        # with its own entry one more, and any clock whose entry for t is at least
        # ``pub[t]`` holds that publication, hence all of t's clock but its own entry. Such
        # a join is the other clock with one entry set: no walk over every actor. ``clean[t]``
        # says t's clock is still that (no join since its tick; at the start, the zero
        # clock with t's entry 1). Off when epochs may be shared by publications (``ticks``)
        # or every entry is looked at anyway (``track``), and for the reference.
        fast = not reference and ticks is None and not track
        clean = [True] * n
        pub = [0] * n
        # per actor: its epochs that reached another actor's clock (when ``track``)
        self.consumed: list[set[int]] = [set() for _ in range(n)]
        consumed = self.consumed if track else None
        raw = [1] * n  # per actor: its epoch as if every publication ticked
        changes = state.holds.changes if mutex or self._signals(state) else None

        # "last" channels: key -> (clock at the last publication, publisher)
        last: dict[Any, tuple[Any, int]] = {}
        # "all" channels: key -> [clock, version]; seen[t][key] is the version t joined last
        acc: dict[Any, list[Any]] = {}
        seen: list[dict[Any, int]] = [{} for _ in range(n)]
        # "round" channels: key -> [round number, arrivals in it]; (key, round) -> [the clock
        # joining every arrival of the round, departures so far]; (actor, key) -> its round
        rounds: dict[Any, list[int]] = {}
        gen_clock: dict[tuple[Any, int], list[Any]] = {}
        round_of: dict[tuple[int, Any], int] = {}
        mail: dict[Any, _Mailbox] = {}
        pending_put: dict[tuple[int, str, str], list[Any]] = {}
        to_start: dict[str, tuple[Any, int]] = {}
        ended: dict[str, tuple[Any, int]] = {}

        # per (name, channel name): the channel, when this pass counts it (None: it does not)
        active: dict[tuple[str, str], Channel | None] = {}

        def channel(name: str, cname: str, f: Facts) -> Channel | None:
            key = (name, cname)
            if key in active:
                return active[key]
            ch = f.channels.get(cname)
            if ch is not None and ch.mutex and not mutex:
                sig = ch.signal
                if sig is None or specs.get(name, {}).get(sig[0], sig[2]) != sig[1]:
                    ch = None
            active[key] = ch
            return ch

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
        worker_last: dict[tuple[Any, ...], tuple[Any, int]] = {}
        # mail channels with two ends: (name, one end) -> the other
        peer: dict[tuple[str, str], str] = {}
        for name, f in state.facts.items():
            for ch in f.channels.values():
                if ch.kind == "mail" and ch.endpoints:
                    between = specs[name].get(ch.endpoints)
                    if isinstance(between, list) and len(between) == 2:
                        a, b = between
                        peer[(name, a)] = b
                        peer[(name, b)] = a

        def take(t: int, other: Any) -> None:
            """Join ``other`` into t's clock: t takes up what another actor published."""
            c = clocks[t]
            if consumed is not None:
                for i, (x, y) in enumerate(zip(c, other, strict=True)):
                    if y > x:
                        consumed[i].add(y)
            elif fast and clean[t] and other[t] >= pub[t]:
                # t's clock is the other's but for t's own entry (see ``clean``)
                mine = c[t]
                clocks[t] = set_(other, t, mine) if other[t] < mine else copy(other)
                clean[t] = False
                return
            clocks[t] = join(c, other)
            clean[t] = False

        def join_into(t: int, other: Any, src: int) -> None:
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
                seen[t][key] = 1
            else:
                # t has seen the sum only if it had seen it before adding to it: the others'
                # publications in it are not in t's clock otherwise
                up_to_date = seen[t].get(key) == box[1]
                box[0] = join(box[0], c)
                box[1] += 1
                if up_to_date:
                    seen[t][key] = box[1]
            tick(t)

        def tick(t: int) -> None:
            k = raw[t]
            raw[t] = k + 1
            if ticks is not None and k not in ticks[t]:
                return  # nobody ever takes up this epoch: no need to tell it from the next
            c = clocks[t]
            mine = c[t]
            clocks[t] = set_(c, t, mine + 1)
            pub[t] = mine
            clean[t] = True

        def publish(t: int, name: str, ch: Channel, key: Any) -> None:
            if ch.kind == "last":
                last[key] = (clocks[t], t)
                tick(t)
            else:  # "all" (a mail or round channel published outside its op: accumulate)
                publish_acc(t, key)

        def take_up(t: int, ch: Channel, key: Any) -> None:
            if ch.kind == "last":
                got = last.get(key)
                if got is not None and got[1] != t:
                    join_into(t, got[0], got[1])
            else:
                join_acc(t, key)

        # (resource, mode, gives?) -> the channels a change of hold publishes on (gives) or
        # takes up, with their keys
        hold_plan: dict[tuple[str, str, bool], tuple[tuple[Channel, Any], ...]] = {}
        # (resource, mode, change kind) -> (channel, key, gives?) for each: the same, for the
        # inlined path of step
        hold_fast: dict[tuple[str, str, str], tuple[tuple[Channel, Any, bool], ...]] = {}

        def hold_channels(t: int, r: str, c: Change) -> None:
            """The clocks a change of hold publishes or takes up (the resource's mode's)."""
            kind = c.kind
            gives = kind in ("give", "unheld", "let_go")
            if not gives and kind not in ("take", "retake"):
                return
            k = (r, c.mode, gives)
            chans = hold_plan.get(k)
            if chans is None:
                rf = state.facts_of(r)
                m = rf.mode(c.mode)
                names_ = () if m is None else m.gives if gives else m.takes
                found = []
                for cname in names_:
                    ch = channel(r, cname, rf)
                    if ch is not None:
                        found.append((ch, (r, cname)))
                chans = hold_plan[k] = tuple(found)
            hold_fast[(r, c.mode, kind)] = tuple((ch, key, gives) for ch, key in chans)
            for ch, key in chans:
                if gives:
                    publish(t, r, ch, key)
                else:
                    take_up(t, ch, key)

        # per op, per target: (its facts, the op's facts, whether its hold changes publish
        # or take up anything in this pass), or None when the op does nothing here
        plans: dict[str, dict[str, tuple[Facts, Op, bool] | None]] = {}

        def plan(op: str, target: str) -> tuple[Facts, Op, bool] | None:
            f = state.facts_of(target or "?")
            of = f.ops.get(op)
            if of is None:
                return None
            own = any(channel(target, c, f) is not None for c in (*of.take, *of.publish))
            holds = False
            if of.hold is not None and changes is not None:
                r = state.resource(target or "?")
                rf = state.facts_of(r)
                holds = any(channel(r, c, rf) is not None for m in rf.modes.values()
                            for c in (*m.gives, *m.takes))
            return (f, of, holds) if own or holds else None

        def step(e: Any, t: int) -> None:
            op = e.op
            if op in _ACTOR_OPS:
                actor_step(e, t, op)
                return
            target: str = e.target or ""
            by_target = plans.get(op)
            if by_target is None:
                by_target = plans[op] = {}
            if target in by_target:
                pl = by_target[target]
            else:
                pl = by_target[target] = plan(op, target)
            if pl is None:
                return
            f, of, holds = pl
            phase = e.phase
            if of.take and phase == "return":
                for cname in of.take:
                    ch = channel(target, cname, f)
                    if ch is None:
                        continue
                    if ch.kind == "round":
                        depart(e, t, target, ch)
                    elif e.result != "ok":
                        continue
                    elif ch.kind == "mail":
                        got = peer.get((target, e.actor))
                        box = mail.get((target, cname, e.actor if got is not None else None))
                        if box is not None:
                            entry = box.take(item_key(e.item))
                            if entry is not None:
                                join_into(t, entry[0], entry[1])
                    else:
                        take_up(t, ch, (target, cname))
            if of.publish:
                for cname in of.publish:
                    ch = channel(target, cname, f)
                    if ch is None:
                        continue
                    if ch.kind == "mail":
                        if phase == "call":
                            box_key = (target, cname, peer.get((target, e.actor)))
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
                    elif ch.kind == "round":
                        if phase == "call":
                            arrive(t, target, ch)
                    elif phase in (None, "call") and "error" not in e:
                        publish(t, target, ch, (target, cname))
            if holds:
                cs = changes[e.seq]  # type: ignore[index]
                if cs is not None:
                    for c in cs:
                        if c.actor != t:
                            continue
                        # hold_channels(t, c.resource, c), its common case inlined: a lock's
                        # release publishes its clock, its acquire takes the last one up
                        k = (c.resource, c.mode, c.kind)
                        chans = hold_fast.get(k)
                        if chans is None:
                            hold_channels(t, c.resource, c)
                            continue
                        for ch, key, gives in chans:
                            if ch.kind != "last":
                                if gives:
                                    publish_acc(t, key)
                                else:
                                    join_acc(t, key)
                            elif gives:
                                last[key] = (clocks[t], t)
                                tick(t)
                            else:
                                prev = last.get(key)
                                if prev is not None and prev[1] != t:
                                    join_into(t, prev[0], prev[1])

        def actor_step(e: Any, t: int, op: str) -> None:
            target = e.target
            if op == "spawn":
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
            elif op == "join" and e.phase == "return" and e.result == "ok":
                got_e = ended.get(target)
                if got_e is not None:
                    join_into(t, got_e[0], got_e[1])

        def parties_of(target: str, ch: Channel) -> int | None:
            parties = specs.get(target, {}).get(ch.parties) if ch.parties else None
            return parties if isinstance(parties, int) and parties >= 1 else None

        def arrive(t: int, target: str, ch: Channel) -> None:
            parties = parties_of(target, ch)
            if parties is None:
                publish_acc(t, (target, "round"))
                return
            b = rounds.get(target)
            if b is None:
                b = rounds[target] = [0, 0]
            gkey = (target, b[0])
            g = gen_clock.get(gkey)
            if g is None:
                gen_clock[gkey] = [clocks[t], 0]
            else:
                g[0] = join(g[0], clocks[t])
            round_of[(t, target)] = b[0]
            tick(t)
            b[1] += 1
            if b[1] >= parties:  # the round is complete: the next one begins
                b[0] += 1
                b[1] = 0

        def depart(e: Any, t: int, target: str, ch: Channel) -> None:
            parties = parties_of(target, ch)
            if parties is None:
                if e.result == "ok":
                    join_acc(t, (target, "round"))
                return
            gen = round_of.pop((t, target), -1)
            g = gen_clock.get((target, gen))
            if g is not None:
                if e.result == "ok":
                    take(t, g[0])
                else:
                    b = rounds.get(target)
                    if b is not None and b[0] == gen:
                        b[0] += 1  # a broken round: later arrivals are another one
                        b[1] = 0
                g[1] += 1
                if g[1] >= parties:
                    del gen_clock[(target, gen)]

        self.step = step

        # atomic accesses of shared variables (see the module's docstring, "Atomics"):
        # variable -> (the clock its last atomic write published, its writer)
        var_sync: dict[str, tuple[Any, int]] = {}

        def atomic_acquire(t: int, var: str) -> None:
            """An atomic read (or the read half of an atomic read-modify-write) of ``var``
            by t: t takes up what the last atomic write of ``var`` published."""
            got = var_sync.get(var)
            if got is not None and got[1] != t:
                join_into(t, got[0], got[1])

        def atomic_release(t: int, var: str) -> None:
            """An atomic write (or the write half of an atomic read-modify-write) of ``var``
            by t: its clock replaces what ``var`` published (an RMW acquired it first, so
            its clock holds the earlier writers' too), and t ticks."""
            var_sync[var] = (clocks[t], t)
            tick(t)

        def plain_write(var: str) -> None:
            """A write of ``var`` that is not atomic: the value it leaves was released by
            nobody, so an atomic read of it takes up nothing."""
            var_sync.pop(var, None)

        self.atomic_acquire: Callable[[int, str], None] = \
            atomic_acquire if mutex else _ignore_access
        self.atomic_release: Callable[[int, str], None] = \
            atomic_release if mutex else _ignore_access
        self.plain_write: Callable[[str], None] = plain_write if mutex else _ignore_write
        # the ops that never change a clock in this pass, whatever their target: a caller
        # need not step them (acquires and releases of locks, without mutual exclusion)
        quiet = set()
        for op in {op for f in (*state.facts.values(), UNDECLARED) for op in f.ops}:
            if all(plan(op, name) is None for name in (*state.facts, "?")
                   if op in state.facts_of(name).ops):
                quiet.add(op)
        self.quiet: frozenset[str] = frozenset(quiet)

    @staticmethod
    def _signals(state: TraceState) -> bool:
        """Whether a hold channel orders even without mutual exclusion (a semaphore that
        starts at 0): then a pass with ``mutex=False`` needs the holds too."""
        for name, f in state.facts.items():
            for ch in f.channels.values():
                sig = ch.signal
                if ch.mutex and sig is not None and \
                        state.specs[name].get(sig[0], sig[2]) == sig[1]:
                    return True
        return False


__all__ = ["ACCESS", "CallLog", "Change", "Clocks", "CountMisuse", "HoldLog", "TraceState",
           "facts_of_type", "is_atomic", "item_key", "prim_specs", "state_of"]
