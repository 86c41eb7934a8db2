"""``tracer export --chrome``: a trace in the Chrome Trace Event format (Perfetto,
chrome://tracing).

Layout, and why:

- One thread track per actor (``pid`` the actor's pid or 1, ``tid`` its tid or its index;
  actors that share an OS thread — coroutines on one event loop, pool tasks — get a free
  synthetic tid so that each still has a track of its own), named and ordered with ``M``
  metadata events.
- Blocked intervals (call -> return of acquire, wait, get, put, send, recv, join), sleeps and
  holding intervals (acquire -> release of that lock by the same actor) overlap without
  nesting (take A, take B, release A), which ``B``/``E``/``X`` slices of one thread cannot
  show. So they are async slices (``b``/``e``), each with an id of its own. Perfetto draws
  async slices per process on tracks named after the slice, so their names start with the
  actor (``t1: holds A``); chrome://tracing draws them under the actor's thread.
- Point events (set, notify, log, start, end, read, write, ...) are thread instants
  (``i``, ``s: t``); deadlock, stall and timeout are global instants (``s: g``).
- Happens-before edges are flow arrows (``s`` -> ``f`` with ``bp: e``). Flow ends bind to
  a slice of the thread, so each event at an end of an arrow is drawn as a short ``X`` slice
  (an *anchor*, at most 1 µs, cut short so anchors of one actor never overlap) instead of
  an instant. The edges: lock release -> the next acquire return of that lock by another
  actor (a condition's wait counts as a release and a re-acquire of its lock), event set ->
  later wait returns, put -> the get that received the item (FIFO per queue, matched on the
  item), send -> recv, spawn -> start, end -> join return.

Everything is derived in seq order with ids from one counter, so the same trace always gives
the same bytes.
"""

from __future__ import annotations

import gc
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from tracer.analyze._model import TraceData

_BLOCKING = {"acquire", "wait", "get", "put", "send", "recv", "join"}
_INSTANT = {"set", "clear", "notify", "notify_all", "log", "spawn", "start", "end", "read",
            "write", "append", "callback"}
_SEMAPHORES = {"semaphore", "bounded_semaphore"}
_ANCHOR_US = 1.0  # longest anchor slice, in microseconds
_NAME_MAX = 80  # longest log text or value shown in a name (the full text is in args)

_FLOW_CAT = "happens-before"


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
    return text


def _args(e: dict[str, Any], *keys: str) -> dict[str, Any]:
    out: dict[str, Any] = {"seq": e.get("seq")}
    for k in keys:
        if k in e:
            out[k] = e[k]
    return out


@dataclass
class _Interval:
    id: int
    actor: str
    cat: str
    name: str
    begin: dict[str, Any]
    end: dict[str, Any] | None = None  # None: until the end of the trace
    begin_args: dict[str, Any] = field(default_factory=dict)
    end_args: dict[str, Any] = field(default_factory=dict)


@dataclass
class _Flow:
    id: int
    name: str
    src: int  # seq
    dst: int  # seq


class _Chrome:
    """Builds the Chrome trace of one :class:`TraceData` (two passes over its events)."""

    def __init__(self, data: TraceData) -> None:
        self.data = data
        self.events = data.events
        self.next_id = 1
        self.tracks: dict[str, tuple[int, int]] = {}
        self.kinds: dict[str, dict[str, Any]] = {}
        self.intervals: list[_Interval] = []
        self.flows: list[_Flow] = []
        self.us = [_us(e.get("ts")) for e in self.events]  # times in microseconds, by seq
        self.end_us = max(self.us, default=0.0)
        specs = data.scenario.get("primitives") or {}
        self.types = data.primitive_types if isinstance(specs, dict) else {}
        # acquiring a condition built on lock L takes L
        self.resource: dict[str, str] = {}
        if isinstance(specs, dict):
            for name, spec in specs.items():
                if isinstance(spec, dict) and isinstance(spec.get("lock"), str):
                    self.resource[name] = spec["lock"]

    def _id(self) -> int:
        n = self.next_id
        self.next_id += 1
        return n

    # -- tracks ---------------------------------------------------------------------------

    def _make_tracks(self) -> list[dict[str, Any]]:
        actors = [a for a in self.data.actors if isinstance(a.get("name"), str)]
        names = [a["name"] for a in actors]
        for e in self.events:  # a hand-made trace may name actors it does not list
            a = e.get("actor")
            if isinstance(a, str) and a not in names:
                names.append(a)
                actors.append({"name": a})
        used: set[tuple[int, int]] = set()
        n = len(names)
        for i, a in enumerate(actors):
            pid = a.get("pid")
            tid = a.get("tid")
            pid = pid if isinstance(pid, int) and not isinstance(pid, bool) else 1
            tid = tid if isinstance(tid, int) and not isinstance(tid, bool) else i
            if (pid, tid) in used:  # shares an OS thread with an earlier actor
                tid = i
                while (pid, tid) in used:
                    tid += n
            used.add((pid, tid))
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
        results: dict[int, str | None] = {}  # call seq -> its return's result
        open_call: dict[tuple[Any, Any, Any], int] = {}
        for e in self.events:
            key = (e.get("actor"), e.get("op"), e.get("target"))
            if e.get("phase") == "call":
                open_call[key] = e["seq"]
            elif e.get("phase") == "return" and key in open_call:
                results[open_call.pop(key)] = e.get("result")

        calls: dict[str, _Interval] = {}  # actor -> its open blocking call or sleep
        holding: dict[tuple[str, str], list[_Interval]] = {}  # (actor, resource) -> stack
        freed: dict[str, dict[str, Any]] = {}  # resource -> the release that last freed it
        last_set: dict[str, dict[str, Any]] = {}
        puts: dict[str, deque[dict[str, Any]]] = {}
        sends: dict[tuple[str, str], deque[dict[str, Any]]] = {}
        spawned: dict[str, dict[str, Any]] = {}
        ended: dict[str, dict[str, Any]] = {}

        for e in self.events:
            actor, op, phase = e.get("actor"), e.get("op"), e.get("phase")
            if not isinstance(actor, str):
                continue
            target = e.get("target")
            res = self.resource.get(str(target), str(target))
            ok = e.get("result") == "ok"
            if phase == "call" and (op in _BLOCKING or op == "sleep"):
                if op == "sleep":
                    iv = _Interval(self._id(), actor, "sleep",
                                   f"{actor}: sleep {e.get('value', '?')} s", e,
                                   begin_args=_args(e, "value"))
                else:
                    iv = _Interval(self._id(), actor, "blocked", f"{actor}: {op} {target}", e,
                                   begin_args=_args(e, "item", "value", "timeout"))
                self.intervals.append(iv)
                calls[actor] = iv
            elif phase == "return" and actor in calls:
                iv = calls.pop(actor)
                iv.end = e
                iv.end_args = {"return_seq": e.get("seq"),
                               **{k: e[k] for k in ("result", "item", "error") if k in e}}
                if not ok and e.get("result") is not None and op != "sleep":
                    iv.name += f" → {e.get('result')}"

            if op == "acquire" and phase == "return" and ok:
                self._acquired(freed.pop(res, None), e)
                iv = _Interval(self._id(), actor, "holding", f"{actor}: holds {target}", e,
                               begin_args=_args(e))
                self.intervals.append(iv)
                holding.setdefault((actor, res), []).append(iv)
            elif op == "release":
                stack = holding.get((actor, res))
                if stack:
                    iv = stack.pop()
                    iv.end = e
                    iv.end_args = {"release_seq": e.get("seq")}
                if self.types.get(str(target)) in _SEMAPHORES or not stack:
                    freed[res] = e  # a release that leaves the actor holding it frees nothing
            elif op == "wait" and self.types.get(str(target)) == "condition":
                # waiting on a condition releases its lock, and returning re-takes it
                if phase == "call" and holding.get((actor, res)):
                    freed[res] = e
                elif phase == "return" and ok:
                    self._acquired(freed.pop(res, None), e)
            elif op == "set":
                last_set[str(target)] = e
            elif op == "wait" and phase == "return" and ok and str(target) in last_set:
                self._flow("set → wait", last_set[str(target)], e)
            elif op == "put" and phase == "call" and results.get(e["seq"]) == "ok":
                puts.setdefault(str(target), deque()).append(e)
            elif op == "get" and phase == "return" and ok:
                src = self._take(puts.get(str(target)), e.get("item"))
                if src is not None:
                    self._flow("put → get", src, e)
            elif op == "send" and phase == "call" and results.get(e["seq"]) == "ok":
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

        for iv in self.intervals:  # still open at the end of the trace
            if iv.end is None:
                iv.end_args = {"returned": False} if iv.cat != "holding" \
                    else {"released": False}
                iv.name += {"holding": " (never released)",
                            "blocked": " — blocked (never returned)"}.get(iv.cat,
                                                                        " (never returned)")

    def _acquired(self, release: dict[str, Any] | None, e: dict[str, Any]) -> None:
        if release is not None and release.get("actor") != e.get("actor"):
            self._flow("release → acquire", release, e)

    def _flow(self, name: str, src: dict[str, Any], dst: dict[str, Any]) -> None:
        if src.get("actor") != dst.get("actor"):  # program order needs no arrow
            self.flows.append(_Flow(self._id(), name, src["seq"], dst["seq"]))

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

    # -- pass 2: the events ---------------------------------------------------------------

    def _anchor_durations(self, anchors: set[int]) -> dict[int, float]:
        """Each anchor lasts at most ``_ANCHOR_US``, and ends before its actor's next one."""
        dur: dict[int, float] = {}
        last: dict[str, int] = {}
        for seq in sorted(anchors):
            e = self.events[seq]
            actor = str(e.get("actor"))
            if actor in last:
                prev = last[actor]
                gap = self.us[seq] - self.us[prev]
                dur[prev] = round(max(0.0, min(_ANCHOR_US, gap)), 3)
            last[actor] = seq
            dur[seq] = _ANCHOR_US
        return dur

    def _emit(self) -> list[dict[str, Any]]:
        begins: dict[int, list[_Interval]] = {}
        ends: dict[int, list[_Interval]] = {}
        unended: list[_Interval] = []
        for iv in self.intervals:
            begins.setdefault(iv.begin["seq"], []).append(iv)
            if iv.end is None:
                unended.append(iv)
            else:
                ends.setdefault(iv.end["seq"], []).append(iv)
        flows_out: dict[int, list[_Flow]] = {}
        flows_in: dict[int, list[_Flow]] = {}
        for f in self.flows:
            flows_out.setdefault(f.src, []).append(f)
            flows_in.setdefault(f.dst, []).append(f)
        anchor_dur = self._anchor_durations(set(flows_out) | set(flows_in))
        g_pid, g_tid = next(iter(self.tracks.values()), (1, 0))

        out: list[dict[str, Any]] = []
        for e in self.events:
            seq = e["seq"]
            ts = self.us[seq]
            actor, op = e.get("actor"), e.get("op")
            if actor is None:  # engine events: deadlock, stall, timeout
                out.append({"name": str(op), "cat": "engine", "ph": "i", "s": "g", "ts": ts,
                            "pid": g_pid, "tid": g_tid,
                            "args": _args(e, "actors", "detail", "objects", "waits")})
                continue
            pid, tid = self.tracks[str(actor)]
            where = {"pid": pid, "tid": tid}
            for iv in ends.get(seq, []):
                out.append(self._slice("e", iv, ts, iv.end_args))
            if seq in anchor_dur:
                out.append({"name": _what(e), "cat": "sync", "ph": "X", "ts": ts,
                            "dur": anchor_dur[seq], **where, "args": self._event_args(e)})
                for f in flows_in.get(seq, []):
                    out.append({"name": f.name, "cat": _FLOW_CAT, "ph": "f", "bp": "e",
                                "id": f.id, "ts": ts, **where})
                for f in flows_out.get(seq, []):
                    out.append({"name": f.name, "cat": _FLOW_CAT, "ph": "s", "id": f.id,
                                "ts": ts, **where})
            elif op in _INSTANT or (op == "release" and not ends.get(seq)):
                out.append({"name": _what(e), "cat": "op", "ph": "i", "s": "t", "ts": ts,
                            **where, "args": self._event_args(e)})
            for iv in begins.get(seq, []):
                out.append(self._slice("b", iv, ts, iv.begin_args))
        for iv in unended:
            out.append(self._slice("e", iv, self.end_us, iv.end_args))
        return out

    def _event_args(self, e: dict[str, Any]) -> dict[str, Any]:
        args = _args(e, "target", "result", "value", "item", "detail", "error")
        if e.get("op") == "start":
            a = self.kinds.get(str(e.get("actor")), {})
            args.update({k: a[k] for k in ("kind", "pid", "tid", "pool") if k in a})
        return args

    def _slice(self, ph: str, iv: _Interval, ts: float, args: dict[str, Any]) -> dict[str, Any]:
        pid, tid = self.tracks[iv.actor]
        return {"name": iv.name, "cat": iv.cat, "ph": ph, "id": iv.id, "ts": ts, "pid": pid,
                "tid": tid, "args": args}

    def build(self) -> dict[str, Any]:
        meta = self._make_tracks()
        self._analyse()
        body = self._emit()
        meta_keys = ("tracer_version", "mode", "seed", "started_at", "source")
        other: dict[str, Any] = {"scenario": self.data.scenario.get("name"),
                                 "outcome": self.data.outcome.get("status"),
                                 "detail": self.data.outcome.get("detail"),
                                 **{k: self.data.meta[k] for k in meta_keys
                                    if k in self.data.meta}}
        return {"traceEvents": meta + body, "displayTimeUnit": "ms", "otherData": other}


def to_chrome(data: TraceData) -> dict[str, Any]:
    """The trace as a Chrome Trace Event format object (``traceEvents``, ``displayTimeUnit``
    and ``otherData``), ready for Perfetto or chrome://tracing."""
    was_enabled = gc.isenabled()
    gc.disable()  # builds many small acyclic dicts: collecting would only rescan them
    try:
        return _Chrome(data).build()
    finally:
        if was_enabled:
            gc.enable()


def dumps_chrome(doc: dict[str, Any]) -> bytes:
    """Compact UTF-8 JSON, one trace event per line (so diffs stay readable)."""
    lines = b",\n".join(orjson.dumps(ev) for ev in doc.get("traceEvents", []))
    rest = [orjson.dumps(k) + b":" + orjson.dumps(v) for k, v in doc.items()
            if k != "traceEvents"]
    return b",".join([b'{"traceEvents":[\n' + lines + b"\n]", *rest]) + b"}\n"


def write_chrome(data: TraceData, out: Path) -> Path:
    """Write ``to_chrome(data)`` to ``out`` (UTF-8, compact JSON); returns ``out``."""
    doc = to_chrome(data)
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        raw = dumps_chrome(doc)
    finally:
        if was_enabled:
            gc.enable()
    out.write_bytes(raw)
    return out
