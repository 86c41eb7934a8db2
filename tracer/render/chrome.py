"""``tracer export --chrome``: a trace in the Chrome Trace Event format (Perfetto,
chrome://tracing).

Layout, and why:

- One thread track per actor (``pid`` the actor's pid or 1, ``tid`` its tid or its index;
  actors that share an OS thread — coroutines on one event loop, pool tasks — get a free
  synthetic tid so that each still has a track of its own), named and ordered with ``M``
  metadata events.
- Blocked intervals (call -> return of acquire, wait, get, put, send, recv, join), sleeps,
  computes (category ``compute``: CPU work, not a wait) and holding intervals (acquire ->
  release of that lock by the same actor) overlap without nesting (take A, take B, release
  A), which ``B``/``E``/``X`` slices of one thread cannot show. So they are async slices
  (``b``/``e``), each with an id of its own. Perfetto draws async slices per process on
  tracks named after the slice, so their names start with the actor (``t1: holds A``);
  chrome://tracing draws them under the actor's thread.
- Point events (set, notify, log, start, end, read, write, ...) are thread instants
  (``i``, ``s: t``); deadlock, stall and timeout are global instants (``s: g``).
- Happens-before edges are flow arrows (``s`` -> ``f``, ``bp: e``, one ``cat``, ``name``
  and ``id``). Flow ends bind to slices, so each event at an end of an arrow is drawn as a
  short ``X`` slice (an *anchor*, at most 1 µs) instead of an instant, and its flow events have
  the anchor's ``ts`` and ``cat`` (``happens-before``). The viewers bind differently, each
  read in its source:

  * Perfetto (``src/trace_processor/importers/json/json_trace_parser.cc`` and
    ``importers/common/flow_tracker.cc``) matches the two ends on ``id``, ``cat`` and
    ``name``, sorts events by ts (at one ts: ``X`` before the rest, else file order) and binds
    ``s`` (and ``f`` with ``bp: e``) to the slice on *top of the thread track's stack* when
    the flow event is read — a stack it pops only when the next slice begins, so a stale or
    same-ts slice (a thread instant is a 0-length slice there) would take the arrow. It also
    reads ``tid: 0`` as ``tid = pid``.
  * DevTools (``FlowsHandler``) binds a flow end to the event with the same ``cat``, ``pid``,
    ``tid`` and ``ts``, and drops a flow whose two ends have the same ts.
  * chrome://tracing binds to the slice of the thread that encloses the ts.

  So every event of one actor gets a time of its own, strictly later than the actor's
  previous event (by 2 ns at least: events of one microsecond are spread a few ns apart), and
  an arrow's destination is strictly later than its source; an anchor lasts until 1 ns
  before its actor's next event (1 µs at most). One actor's thread-track slices (anchors and
  instants) are therefore disjoint, never nested — nesting is legal in Perfetto, but the
  stack rule above would then give an arrow to whichever slice was pushed last, and
  DevTools ignores nesting altogether — and at a flow end's ts exactly one slice of its track
  begins, the anchor, the only event with its category. A synthetic tid is never 0. Thus
  every arrow binds to exactly one slice at each end in each of these viewers
  (tests/test_chrome_viewers.py checks every export against a model of Perfetto's importer
  and of DevTools' handler). The edges: lock release -> the next acquire return of that
  lock by another actor (a condition's wait counts as a release and a re-acquire of its
  lock; who holds what, hence the holding intervals and which release frees a lock, is the
  shared state pass's, :mod:`tracer.trace.state`), event set -> later wait returns, put ->
  the get that received the item (FIFO per queue, matched on the item), send -> recv, spawn
  -> start, end -> join return, and a variable's last atomic write -> an atomic read (or
  atomic add) of it by another actor (the state pass's rule for atomics; a plain write in
  between ends it).
- An event's scenario ``line`` (when the trace has it; the file is ``meta.source``, in
  ``otherData.source``) is in its slice's or instant's args: ``line``, and ``return_line`` /
  ``release_line`` for the event that ends an interval.

Everything is derived in seq order with ids from one counter, so the same trace always gives
the same bytes.
"""

from __future__ import annotations

from array import array
from collections import deque
from collections.abc import Iterator
from itertools import accumulate
from pathlib import Path
from typing import Any

import orjson

from tracer._gc import gc_paused
from tracer.trace._io import write_atomic
from tracer.trace._read import TraceData
from tracer.trace.state import TraceState, is_atomic, state_of

_BLOCKING = {"acquire", "wait", "get", "put", "send", "recv", "join"}
_ACCESS = frozenset({"read", "write", "append"})
_TIMED = frozenset({"sleep", "compute"})  # phased ops that take time but wait for nothing
_INSTANT = {"set", "clear", "notify", "notify_all", "log", "spawn", "start", "end", "read",
            "write", "append", "callback"}
_ANCHOR_NS = 1000  # longest anchor slice, in nanoseconds
_GAP_NS = 2  # least time between two events of one actor: room for an anchor and a gap of 1 ns
_RADIX_BITS = 16  # the digit of the radix sort of the arrows by source
_RADIX = 1 << _RADIX_BITS
_NAME_MAX = 80  # longest log text or value shown in a name (the full text is in args)

# one category for the anchors and the flows bound to them: DevTools binds a flow event to
# the event of the same ts, pid, tid *and* cat; Perfetto matches a flow's ends on id, cat, name
_FLOW_CAT = "happens-before"
_FLOW_KINDS = ("release → acquire", "set → wait", "put → get", "send → recv", "spawn → start",
               "end → join", "atomic write → read")


def _us(ts: Any) -> float:
    try:
        return round(float(ts) * 1e6, 3)
    except (TypeError, ValueError):
        return 0.0


def _short(text: Any) -> str:
    s = text if isinstance(text, str) else orjson.dumps(text).decode()
    return s if len(s) <= _NAME_MAX else s[:_NAME_MAX - 1] + "…"


def _what(e: dict[str, Any]) -> str:
    """The operation of an event in a few words (no actor)."""
    op = str(e.get("op"))
    target = e.get("target")
    text = f"{op} {target}" if target is not None else op
    if op == "log":
        return f"log: {_short(e.get('detail', ''))}"
    if op == "end":
        return f"end ({e.get('result', '?')})"
    if e.get("phase") == "return":
        text += f" → {e.get('result', '?')}"
    if is_atomic(e):
        text += " (atomic)"
    return text


def _args(e: dict[str, Any], *keys: str) -> dict[str, Any]:
    out: dict[str, Any] = {"seq": e.get("seq")}
    if "line" in e:  # the scenario line of the step that made it (traces that have it)
        out["line"] = e["line"]
    for k in keys:
        if k in e:
            out[k] = e[k]
    return out


# the categories of intervals, by code (an interval's category is one byte of a column)
# an interval while it is found: (id, category, the seq of the event that begins it, its
# index in the order intervals begin)
_Handle = tuple[int, str, int, int]
_NONE: list[_Handle] = []


class _Interval:
    """A blocked call, a sleep, a compute or a holding: from its ``begin`` event to its ``end``
    event (None: until the end of the trace). Names and args are made when it is written:
    one is made from the columns of :class:`_Chrome` only then, and dropped at once (a trace
    of millions of events has about one interval per two events)."""

    __slots__ = ("actor", "begin", "cat", "end", "id")

    def __init__(self, id_: int, actor: str, cat: str, begin: Any, end: Any = None) -> None:
        self.id = id_
        self.actor = actor
        self.cat = cat
        self.begin = begin
        self.end: Any = end

    def name(self) -> str:
        e = self.begin
        actor = self.actor
        if self.cat == "holding":
            text = f"{actor}: holds {e.get('target')}"
            return text if self.end is not None else text + " (never released)"
        if self.cat == "sleep":
            text = f"{actor}: sleep {e.get('value', '?')} s"
        elif self.cat == "compute":
            text = f"{actor}: compute {e.get('value', '?')} units"
        else:
            text = f"{actor}: {e.get('op')} {e.get('target')}"
        end = self.end
        if end is None:
            return text + (" — blocked (never returned)" if self.cat == "blocked"
                           else " (never returned)")
        result = end.get("result")
        if result != "ok" and result is not None and self.cat not in _TIMED:
            text += f" → {result}"
        return text

    def begin_args(self) -> dict[str, Any]:
        e = self.begin
        if self.cat in _TIMED:
            return _args(e, "value")
        if self.cat == "blocked":
            return _args(e, "item", "value", "timeout")
        return _args(e)

    def end_args(self) -> dict[str, Any]:
        e = self.end
        if e is None:
            return {"released": False} if self.cat == "holding" else {"returned": False}
        if self.cat == "holding":
            out: dict[str, Any] = {"release_seq": e.get("seq")}
            if "line" in e:
                out["release_line"] = e["line"]
            return out
        out = {"return_seq": e.get("seq")}
        if "line" in e:
            out["return_line"] = e["line"]
        out.update({k: e[k] for k in ("result", "item", "error") if k in e})
        return out


class _Chrome:
    """Builds the Chrome trace of one :class:`TraceData` (two passes over its events)."""

    def __init__(self, data: TraceData) -> None:
        self.data = data
        self.events = data.events
        self.next_id = 1
        self.tracks: dict[str, tuple[int, int]] = {}
        self.kinds: dict[str, dict[str, Any]] = {}
        # compact, for traces of millions of events: the flows as columns (id, kind, source
        # seq, destination seq) in the order of their destination events, 4 bytes a seq or
        # id while they fit (ids count intervals and flows, at most a few per event). The
        # intervals are not kept: the pass that finds them runs again as the events are
        # written (:meth:`_steps`), with the same ids
        code = self.code = "i" if len(data.events) < 1 << 28 else "q"
        self.recording = True  # whether _flow records the flows (the first pass)
        self._opened: list[_Handle] = []  # the intervals the current event begins, in order
        self._closed: list[_Handle] = []  # and those it ends
        self._results_: dict[int, str | None] | None = None
        self._n_open = 0  # intervals begun so far in this pass
        self.iv_end = array(code)  # by interval, in the order they begin: its end seq or -1
        self.flow_id = array(code)
        self.flow_kind = array("B")
        self.flow_src = array(code)
        self.flow_dst = array(code)
        self.end_us = 0.0  # set by _layout
        self.state: TraceState = state_of(data)

    def _id(self) -> int:
        n = self.next_id
        self.next_id += 1
        return n

    def _open(self, cat: str, seq: int) -> _Handle:
        """A new interval of category ``cat`` beginning at event ``seq``."""
        k = self._n_open
        self._n_open = k + 1
        if self.recording:
            self.iv_end.append(-1)
        h = (self._id(), cat, seq, k)
        self._opened.append(h)
        return h

    def _close(self, h: _Handle, seq: int) -> None:
        """Interval ``h`` ends at event ``seq`` (the current one)."""
        if self.recording:
            self.iv_end[h[3]] = seq
        self._closed.append(h)

    def _interval(self, h: _Handle) -> _Interval:
        """Interval ``h`` as an object, to name and write it (its name and args say how it
        ends, known from the first pass)."""
        events = self.events
        begin = events[h[2]]
        end = self.iv_end[h[3]]
        return _Interval(h[0], str(begin.get("actor")), h[1], begin,
                         events[end] if end >= 0 else None)

    # -- tracks ---------------------------------------------------------------------------

    def _make_tracks(self) -> list[dict[str, Any]]:
        actors = [a for a in self.data.actors if isinstance(a.get("name"), str)]
        names = [a["name"] for a in actors]
        for e in self.events:  # a hand-made trace may name actors it does not list
            a = e.get("actor")
            if isinstance(a, str) and a not in names:
                names.append(a)
                actors.append({"name": a})
        # a tid names one track across processes (Perfetto's thread tracker keys threads on
        # the tid first), and is never 0 (Perfetto reads tid 0 as tid = pid)
        used: set[int] = set()
        n = len(names)
        for i, a in enumerate(actors):
            pid = a.get("pid")
            tid = a.get("tid")
            pid = pid if isinstance(pid, int) and not isinstance(pid, bool) and pid > 0 else 1
            if not isinstance(tid, int) or isinstance(tid, bool) or tid <= 0 or tid in used:
                tid = i + 1  # no OS thread, or one shared with an earlier actor
                while tid in used:
                    tid += n
            used.add(tid)
            self.tracks[a["name"]] = (pid, tid)
            self.kinds[a["name"]] = a
        return self._metadata(actors)

    def _metadata(self, actors: list[dict[str, Any]]) -> list[dict[str, Any]]:
        scenario = str(self.data.scenario.get("name", "trace"))
        groups: dict[int, list[dict[str, Any]]] = {}
        for a in actors:
            groups.setdefault(self.tracks[a["name"]][0], []).append(a)
        out: list[dict[str, Any]] = []
        for index, (pid, members) in enumerate(groups.items()):
            real = [a for a in members if a.get("pid") == pid]
            if not real:
                pname = f"{scenario}: not started"
            elif len(real) == 1 and real[0].get("kind") == "process":
                pname = f"{real[0]['name']} (process {pid})"
            else:
                pname = f"{scenario} (pid {pid})"
            out.append({"name": "process_name", "ph": "M", "ts": 0.0, "pid": pid, "tid": 0,
                        "args": {"name": pname}})
            out.append({"name": "process_sort_index", "ph": "M", "ts": 0.0, "pid": pid, "tid": 0,
                        "args": {"sort_index": index}})
        for index, a in enumerate(actors):
            pid, tid = self.tracks[a["name"]]
            out.append({"name": "thread_name", "ph": "M", "ts": 0.0, "pid": pid, "tid": tid,
                        "args": {"name": a["name"]}})
            out.append({"name": "thread_sort_index", "ph": "M", "ts": 0.0, "pid": pid, "tid": tid,
                        "args": {"sort_index": index}})
        return out

    # -- pass 1: intervals and happens-before edges ---------------------------------------

    def _analyse(self) -> None:
        """The first pass: the flows (kept), and the intervals (counted for their ids)."""
        self.next_id = 1
        self.recording = True
        for _ in self._steps():
            pass
        self.recording = False

    def _steps(self) -> Iterator[tuple[int, list[_Handle], list[_Handle]]]:
        """The intervals and flows, in seq order: for each event that ends or begins an
        interval, ``(seq, ended, begun)`` in the order they are made. Each run makes the
        same ones with the same ids (its state is its own); the flows are recorded only
        while ``recording``."""
        if self._results_ is None:
            self._results_ = self._results()
        results = self._results_
        self._opened, self._closed = [], []
        self._n_open = 0
        last_seq = -1

        calls: dict[str, _Handle] = {}  # actor -> its open blocking call, sleep or compute
        # (actor, resource) -> a stack of holdings
        holding: dict[tuple[str, str], list[_Handle]] = {}
        freed: dict[str, dict[str, Any]] = {}  # resource -> the release that last freed it
        last_set: dict[str, dict[str, Any]] = {}
        puts: dict[str, deque[dict[str, Any]]] = {}
        sends: dict[tuple[str, str], deque[dict[str, Any]]] = {}
        spawned: dict[str, dict[str, Any]] = {}
        ended: dict[str, dict[str, Any]] = {}
        released: dict[str, dict[str, Any]] = {}  # variable -> its last atomic write
        state = self.state
        changes = state.holds.changes
        names = state.actor_names
        holds_op: dict[tuple[str, str], bool] = {}  # (target, op) -> whether it holds

        for e in self.events:
            if self._closed or self._opened:
                yield last_seq, self._closed, self._opened
                self._opened, self._closed = [], []
            actor, op, phase = e.get("actor"), e.get("op"), e.get("phase")
            if not isinstance(actor, str):
                continue
            target = e.get("target")
            ok = e.get("result") == "ok"
            seq = last_seq = e["seq"]
            if phase == "call" and (op in _BLOCKING or op in _TIMED):
                calls[actor] = self._open(op if op in _TIMED else "blocked", seq)
            elif phase == "return" and actor in calls:
                self._close(calls.pop(actor), seq)

            tk = (str(target), str(op))
            holds = holds_op.get(tk)
            if holds is None:
                of = state.facts_of(tk[0]).ops.get(tk[1])
                holds = holds_op[tk] = of is not None and of.hold is not None
            if holds:  # acquire, release, a condition's wait: the state pass says
                for c in changes[seq] or ():
                    res = c.resource
                    kind = c.kind
                    if kind == "take":
                        self._acquired(freed.pop(res, None), e)
                        holding.setdefault((actor, res), []).append(self._open("holding", seq))
                    elif kind == "retake":
                        if ok:
                            self._acquired(freed.pop(res, None), e)
                    elif kind in ("give", "free"):
                        who = actor if kind == "give" else names[c.actor]
                        stack = holding.get((who, res))
                        if stack:
                            self._close(stack.pop(), seq)
                        mode = state.mode_of(res, c.mode)
                        if c.times <= 0 or (mode is not None and mode.sharing == "counted"):
                            freed[res] = e  # a release that leaves it held frees nothing
                    else:  # unheld (a release by an actor not holding it), let_go
                        freed[res] = e
            elif op == "set":
                last_set[str(target)] = e
            elif op == "wait" and phase == "return" and ok and str(target) in last_set:
                self._flow("set → wait", last_set[str(target)], e)
            elif op == "put" and phase == "call" and results.get(seq) == "ok":
                puts.setdefault(str(target), deque()).append(e)
            elif op == "get" and phase == "return" and ok:
                src = self._take(puts.get(str(target)), e.get("item"))
                if src is not None:
                    self._flow("put → get", src, e)
            elif op == "send" and phase == "call" and results.get(seq) == "ok":
                sends.setdefault((str(target), actor), deque()).append(e)
            elif op == "recv" and phase == "return" and ok:
                ends = [q for (p, sender), q in sends.items()
                        if p == target and sender != actor and q]
                ends.sort(key=lambda q: q[0]["seq"])
                src = self._take(ends[0] if ends else None, e.get("item"))
                if src is not None:
                    self._flow("send → recv", src, e)
            elif op == "spawn" and isinstance(target, str):
                spawned[target] = e
            elif op == "start" and actor in spawned:
                self._flow("spawn → start", spawned.pop(actor), e)
            elif op == "end":
                ended[actor] = e
            elif op == "join" and phase == "return" and ok and str(target) in ended:
                self._flow("end → join", ended[str(target)], e)
            elif op in _ACCESS:  # the state pass's rule for atomics (tracer.trace.state)
                var = str(target)
                if not is_atomic(e):
                    if op != "read":
                        released.pop(var, None)  # a plain write: nobody released its value
                    continue
                if op in ("read", "append") or "old" in e:  # it acquires
                    src_w = released.get(var)
                    if src_w is not None:
                        self._flow("atomic write → read", src_w, e)
                if op != "read":
                    released[var] = e
        if self._closed or self._opened:
            yield last_seq, self._closed, self._opened

    def _results(self) -> dict[int, str | None]:
        """put/send call seq -> its return's result (the calls and returns paired as the
        reader pairs them: the same actor, op and target), for the puts and sends only."""
        results: dict[int, str | None] = {}
        if "put" not in self.state.ops and "send" not in self.state.ops:
            return results
        pending: dict[tuple[Any, Any, Any], int] = {}
        for e in self.events:
            op = e.get("op")
            if op != "put" and op != "send":  # noqa: PLR1714 (the fast test)
                continue
            phase = e.get("phase")
            actor = e.get("actor")
            if phase is None or actor is None:
                continue
            key = (actor, op, e.get("target"))
            if phase == "call":
                pending[key] = e["seq"]
            else:
                got = pending.pop(key, None)
                if got is not None:
                    results[got] = e.get("result")
        return results

    def _acquired(self, release: dict[str, Any] | None, e: dict[str, Any]) -> None:
        if release is not None and release.get("actor") != e.get("actor"):
            self._flow("release → acquire", release, e)

    def _flow(self, name: str, src: dict[str, Any], dst: dict[str, Any]) -> None:
        if src.get("actor") != dst.get("actor"):  # program order needs no arrow
            fid = self._id()  # (the second pass counts them too: the intervals' ids follow)
            if not self.recording:
                return
            self.flow_id.append(fid)
            self.flow_kind.append(_FLOW_KINDS.index(name))
            self.flow_src.append(src["seq"])
            self.flow_dst.append(dst["seq"])

    @staticmethod
    def _take(queue: deque[dict[str, Any]] | None, item: Any) -> dict[str, Any] | None:
        """The put (send) that delivered ``item``: the first one with that item, else the
        first one (FIFO)."""
        if not queue:
            return None
        for i, e in enumerate(queue):
            if e.get("item") == item:
                del queue[i]
                return e
        return queue.popleft()

    # -- pass 2: the events, written as they are made ---------------------------------------

    def _by_src(self) -> array[int]:
        """The flows' indexes in the order of their source events (stable: creation order at
        one source), by a radix sort on the source seqs, 16 bits at a time: no Python int
        per flow, and nothing the size of the trace."""
        src = self.flow_src
        order = array(self.code, range(len(src)))
        top = max(src, default=0)
        shift = 0
        while True:
            count = array("q", bytes(8 * (_RADIX + 1)))
            for i in order:
                count[((src[i] >> shift) & (_RADIX - 1)) + 1] += 1
            start = array("q", accumulate(count))
            del count
            out = array(self.code, bytes(order.itemsize * len(order)))
            for i in order:
                d = (src[i] >> shift) & (_RADIX - 1)
                out[start[d]] = i
                start[d] += 1
            order = out
            shift += _RADIX_BITS
            if top >> shift == 0:
                return order

    def _walk(self, by_src: array[int]) -> Iterator[tuple[int, Any, int, bool]]:
        """Each event in seq order with its time in nanoseconds and whether it is an anchor
        (an end of an arrow): ``(seq, event, t, anchor)``.

        An actor's event is at its recorded time, or ``_GAP_NS`` after the actor's previous
        event if that is later (events of one microsecond), and strictly after the source of
        each arrow that ends at it; an engine event is never before an earlier event. Walked
        twice (:meth:`_layout`, :meth:`_emit`): no time is kept per event, only the times of
        the arrows' sources until their destinations (a trace of millions of events)."""
        src, dst = self.flow_src, self.flow_dst
        n_flow = len(dst)
        src_t = array("q", bytes(8 * n_flow))  # by flow: its source's time
        last: dict[Any, int] = {}  # actor -> the time of its last event
        latest = 0
        nin = nout = 0
        for seq, e in enumerate(self.events):
            t = round(_us(e.get("ts")) * 1000)
            actor = e.get("actor")
            anchor = False
            if actor is None:
                t = max(t, latest)
            else:
                prev = last.get(actor)
                if prev is not None:
                    t = max(t, prev + _GAP_NS)
                while nin < n_flow and dst[nin] == seq:
                    t = max(t, src_t[nin] + 1)
                    nin += 1
                    anchor = True
                while nout < n_flow and src[by_src[nout]] == seq:
                    src_t[by_src[nout]] = t
                    nout += 1
                    anchor = True
                last[actor] = t
            latest = max(latest, t)
            yield seq, e, t, anchor
        self.end_us = latest / 1000  # the end of the trace: where open intervals end

    def _layout(self, by_src: array[int]) -> array[int]:
        """The length of every anchor in nanoseconds, in seq order (see :meth:`_walk` for the
        times). An anchor lasts ``_ANCHOR_NS`` at most and ends at least 1 ns before its
        actor's next event, so one actor's slices are disjoint and an arrow's two ends have
        different times (see the module's comment for why each viewer needs that)."""
        durs = array("i")  # at most _ANCHOR_NS
        open_anchor: dict[Any, tuple[int, int]] = {}  # actor -> its anchor still unended
        for _seq, e, t, anchor in self._walk(by_src):
            actor = e.get("actor")
            if actor is None:
                continue
            got = open_anchor.pop(actor, None)
            if got is not None:
                durs[got[0]] = min(_ANCHOR_NS, t - got[1] - 1)
            if anchor:
                open_anchor[actor] = (len(durs), t)
                durs.append(_ANCHOR_NS)
        return durs

    def _emit(self) -> Iterator[dict[str, Any]]:
        """The events, in seq order; every index is a list walked in step with the seqs."""
        fid, kind, src, dst = self.flow_id, self.flow_kind, self.flow_src, self.flow_dst
        by_src = self._by_src()
        durs = self._layout(by_src)
        g_pid, g_tid = next(iter(self.tracks.values()), (1, 1))
        n_flow = len(fid)
        nin = nout = na = 0  # the next flow in, flow out, anchor
        # the second pass of the intervals, walked in step with the events
        self.next_id = 1
        steps = self._steps()
        step = next(steps, None)
        begun: dict[_Handle, int] = {}  # interval -> the time it began, while it is open
        for seq, e, t, anchor in self._walk(by_src):
            ts = t / 1000
            actor, op = e.get("actor"), e.get("op")
            if actor is None:  # engine events: deadlock, stall, timeout
                yield {"name": str(op), "cat": "engine", "ph": "i", "s": "g", "ts": ts,
                       "pid": g_pid, "tid": g_tid,
                       "args": _args(e, "actors", "detail", "objects", "waits")}
                continue
            pid, tid = self.tracks[str(actor)]
            if step is not None and step[0] == seq:
                _, closing, opening = step
                step = next(steps, None)
            else:
                closing = opening = _NONE
            ends_here = bool(closing)
            for h in closing:
                iv = self._interval(h)
                # (ended by another actor's event, whose time may be a few ns earlier)
                at = max(ts, begun.pop(h, t) / 1000)
                yield self._slice("e", iv, at, iv.end_args())
            if anchor:  # the flows' time and category are the anchor's own
                yield {"name": _what(e), "cat": _FLOW_CAT, "ph": "X", "ts": ts,
                       "dur": durs[na] / 1000, "pid": pid, "tid": tid,
                       "args": self._event_args(e)}
                na += 1
                while nin < n_flow and dst[nin] == seq:
                    yield {"name": _FLOW_KINDS[kind[nin]], "cat": _FLOW_CAT, "ph": "f",
                           "bp": "e", "id": fid[nin], "ts": ts, "pid": pid, "tid": tid}
                    nin += 1
                while nout < n_flow and src[by_src[nout]] == seq:
                    i = by_src[nout]
                    yield {"name": _FLOW_KINDS[kind[i]], "cat": _FLOW_CAT, "ph": "s",
                           "bp": "e", "id": fid[i], "ts": ts, "pid": pid, "tid": tid}
                    nout += 1
            elif op in _INSTANT or (op == "release" and not ends_here):
                yield {"name": _what(e), "cat": "op", "ph": "i", "s": "t", "ts": ts,
                       "pid": pid, "tid": tid, "args": self._event_args(e)}
            for h in opening:
                if h not in closing:  # (one that ended at the event that began it is done)
                    begun[h] = t
                iv = self._interval(h)
                yield self._slice("b", iv, ts, iv.begin_args())
        for h in begun:  # never ended, in the order they began
            iv = self._interval(h)
            yield self._slice("e", iv, self.end_us, iv.end_args())

    def _event_args(self, e: Any) -> dict[str, Any]:
        args = _args(e, "target", "result", "value", "old", "atomic", "item", "detail",
                     "error")
        if e.get("op") == "start":
            a = self.kinds.get(str(e.get("actor")), {})
            args.update({k: a[k] for k in ("kind", "pid", "tid", "pool") if k in a})
        return args

    def _slice(self, ph: str, iv: _Interval, ts: float, args: dict[str, Any]) -> dict[str, Any]:
        pid, tid = self.tracks[iv.actor]
        return {"name": iv.name(), "cat": iv.cat, "ph": ph, "id": iv.id, "ts": ts, "pid": pid,
                "tid": tid, "args": args}

    def events_json(self) -> Iterator[dict[str, Any]]:
        """Every trace event, in order: the metadata, then the trace's events."""
        meta = self._make_tracks()
        self._analyse()
        yield from meta
        yield from self._emit()

    def other_data(self) -> dict[str, Any]:
        meta_keys = ("tracer_version", "mode", "seed", "started_at", "source")
        return {"scenario": self.data.scenario.get("name"),
                "outcome": self.data.outcome.get("status"),
                "detail": self.data.outcome.get("detail"),
                **{k: self.data.meta[k] for k in meta_keys if k in self.data.meta}}


def to_chrome(data: TraceData) -> dict[str, Any]:
    """The trace as a Chrome Trace Event format object (``traceEvents``, ``displayTimeUnit``
    and ``otherData``), ready for Perfetto or chrome://tracing. (For tests and small traces:
    :func:`write_chrome` streams instead.)"""
    with gc_paused():  # builds many small acyclic dicts: collecting would only rescan them
        chrome = _Chrome(data)
        return {"traceEvents": list(chrome.events_json()), "displayTimeUnit": "ms",
                "otherData": chrome.other_data()}


def dumps_chrome(doc: dict[str, Any]) -> bytes:
    """Compact UTF-8 JSON, one trace event per line (so diffs stay readable)."""
    return b"".join(_chunks(iter(doc.get("traceEvents", [])),
                            {k: v for k, v in doc.items() if k != "traceEvents"}))


def _chunks(events: Iterator[dict[str, Any]], rest: dict[str, Any]) -> Iterator[bytes]:
    """The bytes of :func:`dumps_chrome`, about a megabyte at a time (gathered in one
    bytearray: no small bytes object per event is kept until the chunk is written, which
    would scatter the memory the events are made in)."""
    dumps = orjson.dumps
    buf = bytearray()
    first = next(events, None)
    yield b'{"traceEvents":[\n'
    if first is not None:
        buf += dumps(first)
        for ev in events:
            buf += b",\n"
            buf += dumps(ev)
            if len(buf) > 1 << 20:
                yield bytes(buf)
                buf.clear()
    tail = [dumps(k) + b":" + dumps(v) for k, v in rest.items()]
    buf += b"\n]" + b"".join(b"," + t for t in tail) + b"}\n"
    yield bytes(buf)


def write_chrome(data: TraceData, out: Path) -> Path:
    """Write the Chrome trace of ``data`` to ``out`` (UTF-8, compact JSON, the same bytes as
    ``dumps_chrome(to_chrome(data))``), each event as it is made: the whole document is never
    in memory. Written atomically (a device or FIFO in place); returns ``out``."""
    with gc_paused():
        chrome = _Chrome(data)
        write_atomic(out, _chunks(chrome.events_json(),
                                  {"displayTimeUnit": "ms", "otherData": chrome.other_data()}))
    return out


def happens_before(data: TraceData) -> list[tuple[int, int, str]]:
    """The happens-before arrows between actors that the export draws, for other renderers
    (``tracer report``): (source seq, destination seq, kind such as ``release → acquire``),
    in the order of their destination events."""
    chrome = _Chrome(data)
    chrome._make_tracks()
    chrome._analyse()
    return [(s, d, _FLOW_KINDS[k]) for s, d, k in
            zip(chrome.flow_src, chrome.flow_dst, chrome.flow_kind, strict=True)]
