"""Every Chrome export reads the same way in every viewer: each arrow binds to exactly one
slice at each end, the same one in Perfetto and in DevTools.

The checker models the binding rules as they are written in the viewers' sources (read at
google/perfetto ec5d16b, 2026-08; ChromeDevTools/devtools-frontend, 2024):

- Perfetto, ``src/trace_processor/importers/json/json_trace_tokenizer.cc``: ``ts``/``dur`` in
  µs become ns by ``llround(v * 1000)``; an event with ``tid`` 0 (and a pid) gets
  ``tid = pid``; ``sorter/trace_sorter.h``: events are read in ts order, and once an ``X``
  was seen ("slow sorting"), at one ts ``E`` first, then ``X`` by longest ``dur``, then the
  rest, each in file order.
- Perfetto, ``importers/json/json_trace_parser.cc``: ``X``, ``B``/``E`` and thread instants
  (``i``, ``s: t``: a slice of duration 0) are slices of the thread track (pid, tid); ``b``/
  ``e`` go to async tracks; ``s``/``t``/``f`` are v1 flows whose ends match on (``id``,
  ``cat``, ``name``); ``bind_id``/``flow_in``/``flow_out`` on a slice are v2 flows.
- Perfetto, ``importers/common/slice_tracker.cc``: a new slice first pops the slices that
  ended before it (or at its ts, unless both are instants) and is dropped if it overlaps one
  partially; ``importers/common/flow_tracker.cc``: ``s`` (and ``f`` with ``bp: e``) binds to
  the slice on top of the track's stack *as it is when the flow event is read* (the stack is
  not popped for it: a stale slice takes the arrow), ``f`` without ``bp: e`` to the next
  slice that begins on its track; an ``s`` whose key is bound already, an end without start
  and a flow end with no slice are counted as errors.
- DevTools, ``front_end/models/trace/handlers/FlowsHandler.ts``: flow events group on
  (``cat``, ``name``, ``id``) in ts order; a flow end binds to the non-flow event with the same
  (``cat``, ``tid``, ``pid``, ``ts``) (the last one read, when several have them); the ends
  of a flow are found by ``times.indexOf(ts)``, so a flow whose ends share a ts is dropped.

Applied to the export of a run of every bundled scenario.
"""

from __future__ import annotations

import bisect
import itertools
import json
import math
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from conftest import SCENARIOS

from tracer import load_scenario, run_plan
from tracer.analyze._model import TraceData, parse_trace_data
from tracer.render.chrome import to_chrome

BUNDLED = sorted(SCENARIOS.glob("*.yaml"))
_PENDING = -1  # the duration of a B slice not yet ended


def _ns(v: Any) -> int:
    """json_trace_tokenizer.cc CoerceToTs: µs (int or float) -> ns."""
    if isinstance(v, int):
        return v * 1000
    f = float(v)
    return int(f) * 1000 if f == math.trunc(f) else round(f * 1000.0)


@dataclass
class Slice:
    """A row of Perfetto's slice table, with the JSON event that made it."""

    id: int
    track: tuple[Any, ...]
    ts: int
    dur: int
    cat: str | None
    name: str | None
    depth: int
    event: dict[str, Any]


@dataclass
class Imported:
    """What Perfetto's importer makes of a JSON trace: slices, flows (source slice id,
    destination slice id, name, cat) and the import errors (stat names)."""

    slices: list[Slice] = field(default_factory=list)
    flows: list[tuple[int, int, str | None, str | None]] = field(default_factory=list)
    errors: list[tuple[str, dict[str, Any]]] = field(default_factory=list)


def perfetto_import(doc: dict[str, Any]) -> Imported:
    """Perfetto's JSON importer, as far as slices and flows go (see the module's comment)."""
    out = Imported()
    events: list[tuple[int, int, dict[str, Any]]] = []  # (ts ns, file index, event)
    for i, e in enumerate(doc["traceEvents"]):
        ph = e.get("ph")
        if not ph:
            continue
        ts = 0 if ph == "M" and "ts" not in e else _ns(e["ts"])
        if ts < 0:
            out.errors.append(("trace_sorter_negative_timestamp_dropped", e))
            continue
        events.append((ts, i, e))
    slow = any(e["ph"] == "X" for _, _, e in events)

    def key(item: tuple[int, int, dict[str, Any]]) -> tuple[int, int, int]:
        ts, i, e = item
        if not slow:
            return ts, 0, i
        k = -(2 ** 63) if e["ph"] == "E" else (2 ** 63 - 1) - (
            _ns(e["dur"]) if e["ph"] == "X" else 0)
        return ts, k, i

    stacks: dict[tuple[Any, ...], list[Slice]] = defaultdict(list)
    bound: dict[tuple[Any, ...], int] = {}  # v1 flow key or v2 bind id -> source slice id
    pending: dict[tuple[Any, ...], list[tuple[Any, ...]]] = defaultdict(list)  # track -> flows

    def thread(e: dict[str, Any]) -> tuple[Any, ...]:
        pid, tid = e.get("pid", 0), e.get("tid", 0)
        if tid == 0 and pid != 0:  # json_trace_tokenizer.cc: tid = pid when tid is not set
            tid = pid
        return ("thread", tid, pid)

    def close_stack(track: tuple[Any, ...], ts: int, dur: int) -> Slice | None:
        """slice_tracker.cc MaybeCloseStack: pop what ended; the slice overlapped partially,
        if any (then the new slice is not nested)."""
        stack = stacks[track]
        for s in reversed(list(stack)):
            if s.dur == _PENDING:
                continue  # (B without E: not used by the export; kept simple)
            end = s.ts + s.dur
            if end < ts or (end == ts and not (s.dur == 0 and dur == 0)):
                stack.remove(s)
                continue
            if dur != _PENDING and ts < end < ts + dur:
                return s
        return None

    def begin(track: tuple[Any, ...], ts: int, dur: int, e: dict[str, Any]) -> Slice | None:
        overlap = close_stack(track, ts, dur)
        if overlap is not None:
            out.errors.append(("slice_spill_overlapping_complete_event", e))
            return None
        stack = stacks[track]
        s = Slice(len(out.slices), track, ts, dur, e.get("cat"), e.get("name"), len(stack), e)
        out.slices.append(s)
        stack.append(s)
        for fk in pending.pop(track, []):  # flow_tracker.cc ClosePendingEventsOnTrack
            out.flows.append((bound[fk], s.id, fk[2], fk[1]))
        return s

    def top(track: tuple[Any, ...], e: dict[str, Any]) -> Slice | None:
        """flow_tracker.cc: GetTopmostSliceOnTrack, the stack as it is (not popped)."""
        stack = stacks[track]
        if not stack:
            out.errors.append(("flow_no_enclosing_slice", e))
            return None
        return stack[-1]

    def flow_begin(fk: tuple[Any, ...], s: Slice | None, e: dict[str, Any]) -> None:
        if s is None:
            return
        if fk in bound:
            out.errors.append(("flow_duplicate_id", e))
            return
        bound[fk] = s.id

    def flow_end(fk: tuple[Any, ...], s: Slice | None, e: dict[str, Any]) -> None:
        if s is None:
            return
        if fk not in bound:
            out.errors.append(("flow_end_without_start", e))
            return
        out.flows.append((bound[fk], s.id, fk[2], fk[1]))

    def v2_flows(s: Slice | None, e: dict[str, Any]) -> None:  # json_trace_parser MaybeAddFlow
        if s is None or "bind_id" not in e:
            return
        fk = ("v2", e["bind_id"], None)
        if e.get("flow_out") and not e.get("flow_in"):
            flow_begin(fk, s, e)
        elif e.get("flow_in") and not e.get("flow_out"):
            flow_end(fk, s, e)
        else:
            out.errors.append(("flow_without_direction or step (not modelled)", e))

    async_open: dict[tuple[Any, ...], list[Slice]] = defaultdict(list)
    for ts, _, e in sorted(events, key=key):
        ph = e["ph"]
        if ph == "X":
            v2_flows(begin(thread(e), ts, _ns(e["dur"]), e), e)
        elif ph == "B":
            v2_flows(begin(thread(e), ts, _PENDING, e), e)
        elif ph == "E":
            stack = stacks[thread(e)]
            close_stack(thread(e), ts, _PENDING)
            match = [s for s in stack if s.dur == _PENDING
                     and (e.get("cat") is None or s.cat == e.get("cat"))
                     and (e.get("name") is None or s.name == e.get("name"))]
            if not match:
                out.errors.append(("E without B", e))
                continue
            s = match[-1]
            s.dur = ts - s.ts
            if stack and stack[-1] is s:
                stack.pop()
        elif ph in ("i", "I", "R") and e.get("s", "t") == "t":
            begin(thread(e), ts, 0, e)
        elif ph in ("b", "e", "n"):
            if "pid" not in e or "id" not in e:
                out.errors.append(("json_parser_failure", e))
                continue
            cookie = ("async", e["pid"], e.get("cat"), e["id"])
            if ph == "b":
                s = Slice(len(out.slices), (*cookie, e.get("name")), ts, _PENDING,
                          e.get("cat"), e.get("name"), len(async_open[cookie]), e)
                out.slices.append(s)
                async_open[cookie].append(s)
                v2_flows(s, e)
            elif ph == "e":
                match = [s for s in async_open[cookie]
                         if e.get("name") is None or s.name == e.get("name")]
                if not match:
                    out.errors.append(("e without b", e))
                    continue
                match[-1].dur = ts - match[-1].ts
                if match[-1].dur < 0:
                    out.errors.append(("async slice ends before it begins", e))
                async_open[cookie].remove(match[-1])
        elif ph in ("s", "t", "f"):
            if "id" not in e:
                out.errors.append(("flow_invalid_id", e))
                continue
            fk = ("v1", e["id"], e.get("name"), e.get("cat"))
            fk = (fk[1], fk[3], fk[2])  # (id, cat, name), as GetFlowIdForV1Event
            track = thread(e)
            if ph == "s":
                flow_begin(fk, top(track, e), e)
            elif ph == "t":
                out.errors.append(("flow step (not used by the export)", e))
            elif e.get("bp") == "e":
                flow_end(fk, top(track, e), e)
            elif fk not in bound:
                out.errors.append(("flow_end_without_start", e))
            else:
                pending[track].append(fk)
    for s in out.slices:
        if s.dur == _PENDING:
            out.errors.append(("slice never ended", s.event))
    return out


def devtools_flows(doc: dict[str, Any]) -> list[list[dict[str, Any]]]:
    """DevTools' FlowsHandler: each flow as the list of events it binds, in time order."""
    trace = sorted(enumerate(doc["traceEvents"]), key=lambda p: (p[1].get("ts", 0), p[0]))
    flow_events = [e for _, e in trace if e.get("ph") in ("s", "t", "f")]
    others = [e for _, e in trace if e.get("ph") not in ("s", "t", "f")]

    def token(e: dict[str, Any]) -> tuple[Any, ...]:
        return (e.get("cat"), e.get("tid"), e.get("pid"), e.get("ts"))

    by_group: dict[tuple[Any, ...], dict[str, Any]] = {}
    by_token: dict[tuple[Any, ...], set[Any]] = defaultdict(set)
    flows: dict[Any, dict[str, Any]] = {}
    for fe in flow_events:
        group = (fe.get("cat"), fe.get("name"), fe.get("id"))
        if fe["ph"] == "s":
            by_group[group] = {"id": fe["id"], "times": [fe["ts"]]}
            by_token[token(fe)].add(fe["id"])
            continue
        flow = by_group.get(group)
        if flow is None:
            continue
        by_token[token(fe)].add(flow["id"])
        flow["times"].append(fe["ts"])
        if fe["ph"] == "f":
            flows[flow["id"]] = {"times": flow["times"], "events": {}}
            del by_group[group]
    for e in others:
        for flow_id in by_token.get(token(e), ()):
            flow = flows.get(flow_id)
            if flow is None or e["ts"] not in flow["times"]:
                continue
            flow["events"][flow["times"].index(e["ts"])] = e
    return [[f["events"][i] for i in sorted(f["events"])] for f in flows.values()
            if len(f["events"]) > 1]


def check_viewers(doc: dict[str, Any], data: TraceData) -> None:
    """The export's arrows bind, in Perfetto and in DevTools, each end to exactly one slice:
    the anchor of the right event on the right actor's track; one actor's thread slices are
    disjoint; async slices balanced; the scenario lines shown."""
    imported = perfetto_import(doc)
    assert not imported.errors, f"Perfetto's importer would report: {imported.errors[:3]}"
    raw = doc["traceEvents"]
    # one track per actor, told apart as Perfetto tells threads apart (tid first)
    names = {(e["pid"], e["tid"]): e["args"]["name"] for e in raw
             if e["ph"] == "M" and e["name"] == "thread_name"}
    assert all(tid != 0 for _, tid in names), "tid 0 is read as the pid by Perfetto"
    assert len({tid for _, tid in names}) == len(names), "one tid per actor track"
    actor_of_track = {("thread", tid, pid): name for (pid, tid), name in names.items()}
    # thread slices: disjoint (never nested: depth 0), ts increasing per track in file order
    by_track: dict[tuple[Any, ...], list[Slice]] = defaultdict(list)
    for s in imported.slices:
        if s.track[0] == "thread":
            assert s.depth == 0, f"nested slice on a thread track: {s.event}"
            by_track[s.track].append(s)
    for slices in by_track.values():
        for a, b in itertools.pairwise(slices):
            assert a.ts + a.dur < b.ts, (a.event, b.event)
    last: dict[tuple[Any, Any], float] = {}
    for e in raw:
        if e["ph"] in ("X", "i", "s", "f") and e.get("s") != "g":
            k = (e["pid"], e["tid"])
            assert e["ts"] >= last.get(k, -1.0), f"ts goes back on its track at {e}"
            last[k] = e["ts"]
    assert not any(e["ph"] in ("B", "E") for e in raw)  # (balanced: none)
    # every s/f pair: exactly one Perfetto flow, anchor to anchor, on the tracks of the
    # actors of its two events (two actors: program order needs no arrow)
    seqs = {e["seq"]: e for e in data.events}
    slices = imported.slices
    starts = {e["id"]: e for e in raw if e["ph"] == "s"}
    finishes = {e["id"]: e for e in raw if e["ph"] == "f"}
    assert starts.keys() == finishes.keys()
    assert len(imported.flows) == len(starts), "each arrow is one flow"
    got = []
    for out_id, in_id, name, cat in imported.flows:
        src, dst = slices[out_id], slices[in_id]
        for end in (src, dst):
            assert end.event["ph"] == "X" and end.cat == cat == "happens-before", end.event
            assert actor_of_track[end.track] == seqs[end.event["args"]["seq"]]["actor"]
        assert src.track != dst.track
        assert src.ts < dst.ts
        got.append((name, src.event["args"]["seq"], dst.event["args"]["seq"]))
    want = []
    index = track_slices(raw)
    for i, st in starts.items():
        f = finishes[i]
        assert st["ts"] < f["ts"], "DevTools drops a flow whose ends share a ts"
        assert (st["cat"], st["name"]) == (f["cat"], f["name"])
        want.append((st["name"], anchor_seq(raw, st, index), anchor_seq(raw, f, index)))
    assert sorted(got) == sorted(want), "Perfetto binds other slices than the enclosing ones"
    # DevTools binds the same events
    dev = sorted((f[0]["args"]["seq"], f[-1]["args"]["seq"]) for f in devtools_flows(doc))
    assert dev == sorted((s, d) for _, s, d in want), "DevTools binds other events"
    # the scenario line of each event, when the trace has it
    for e in raw:
        if e["ph"] in ("X", "i") and e.get("s") != "g":
            ev = seqs[e["args"]["seq"]]
            assert e["args"].get("line") == ev.get("line")


def anchor_seq(raw: list[dict[str, Any]], end: dict[str, Any],
               index: dict[tuple[Any, Any], list[dict[str, Any]]] | None = None) -> int:
    """The seq of the one slice of a flow end's track that encloses its ts (chrome://tracing's
    rule, edges included): there must be exactly one. ``index``: the thread slices by track
    (made from ``raw`` when not given)."""
    if index is None:
        index = track_slices(raw)
    track = index.get((end["pid"], end["tid"]), [])
    # the slices of a track are disjoint and in ts order (checked before): only the last one
    # that starts at or before the ts, and its neighbours, can enclose it
    at = bisect.bisect_right(track, end["ts"], key=lambda x: x["ts"])
    enclosing = [x for x in track[max(0, at - 2):at + 1]
                 if x["ts"] <= end["ts"] <= x["ts"] + x.get("dur", 0)]
    assert len(enclosing) == 1, f"flow end {end} is on {len(enclosing)} slices: {enclosing}"
    return int(enclosing[0]["args"]["seq"])


def track_slices(raw: list[dict[str, Any]]) -> dict[tuple[Any, Any], list[dict[str, Any]]]:
    index: dict[tuple[Any, Any], list[dict[str, Any]]] = defaultdict(list)
    for x in raw:
        if x["ph"] in ("X", "i") and x.get("s") != "g":
            index[(x["pid"], x["tid"])].append(x)
    return index


# --------------------------------------------------------------------------------------------
# the checker catches what it is for (hand-made Chrome documents)

def _x(ts: float, tid: int, seq: int, dur: float = 0.5) -> dict[str, Any]:
    return {"ph": "X", "name": f"e{seq}", "cat": "happens-before", "ts": ts, "dur": dur,
            "pid": 1, "tid": tid, "args": {"seq": seq}}


def _flow(ph: str, ts: float, tid: int, id_: int = 7) -> dict[str, Any]:
    return {"ph": ph, "name": "a → b", "cat": "happens-before", "bp": "e", "id": id_,
            "ts": ts, "pid": 1, "tid": tid}


def test_model_binds_a_flow_to_the_top_of_the_stack_even_a_stale_or_later_slice() -> None:
    # an instant at the anchor's ts is read after the X (X first at one ts), so Perfetto
    # gives it the arrow; a flow event after the anchor ended still binds to it
    instant = {"ph": "i", "s": "t", "name": "write", "cat": "op", "ts": 1.0, "pid": 1,
               "tid": 1, "args": {"seq": 0}}
    doc = {"traceEvents": [instant, _x(1.0, 1, 1), _flow("s", 1.0, 1),
                           _x(5.0, 2, 2), _flow("f", 9.0, 2)]}
    imported = perfetto_import(doc)
    assert not imported.errors
    [(src, dst, name, cat)] = imported.flows
    assert imported.slices[src].event is instant
    assert imported.slices[dst].event["args"]["seq"] == 2  # ended at 5.5, bound at 9.0
    assert (name, cat) == ("a → b", "happens-before")


def test_model_counts_ends_without_slice_or_start() -> None:
    doc = {"traceEvents": [_flow("s", 1.0, 1), _x(2.0, 2, 0), _flow("f", 2.0, 2, id_=8)]}
    kinds = [k for k, _ in perfetto_import(doc).errors]
    assert kinds == ["flow_no_enclosing_slice", "flow_end_without_start"]


def test_model_reads_tid_zero_as_the_pid() -> None:
    a = _x(1.0, 0, 0)  # tid 0, pid 1: Perfetto's thread (pid 1, tid 1)
    b = _x(1.2, 1, 1)  # overlaps a on that same thread, partially
    b["dur"] = 1.0
    kinds = [k for k, _ in perfetto_import({"traceEvents": [a, b]}).errors]
    assert kinds == ["slice_spill_overlapping_complete_event"]


def test_devtools_model_drops_a_flow_whose_ends_share_a_ts() -> None:
    doc = {"traceEvents": [_x(1.0, 1, 0), _x(1.0, 2, 1), _flow("s", 1.0, 1),
                           _flow("f", 1.0, 2)]}
    assert devtools_flows(doc) == []
    doc["traceEvents"][1]["ts"] = doc["traceEvents"][3]["ts"] = 2.0
    assert [[e["args"]["seq"] for e in f] for f in devtools_flows(doc)] == [[0, 1]]


# --------------------------------------------------------------------------------------------
# the export


def _ev(seq: int, ts: float, actor: str | None, op: str, **kw: Any) -> dict[str, Any]:
    return {"seq": seq, "ts": ts, "actor": actor, "op": op, **kw}


def _data(events: list[dict[str, Any]], actors: list[dict[str, Any]],
          primitives: dict[str, Any]) -> TraceData:
    trace = {"format": "tracer-trace/1",
             "scenario": {"name": "t", "primitives": primitives},
             "meta": {"tracer_version": "0.1.0", "mode": "run", "source": "t.yaml"},
             "actors": actors, "events": events, "outcome": {"status": "ok"}, "final": {}}
    return parse_trace_data(json.dumps(trace), "<test>")


def test_same_microsecond_instant_and_anchor_bind_each_arrow_to_its_anchor() -> None:
    """Exported before this change, t1's write (an instant) and release (an anchor) had
    one ts: Perfetto read the release's anchor, then the write's instant, then the flow, which
    went to the write; and t2's acquire return and release shared the µs of t1's next set."""
    t1, t2 = "t1", "t2"
    events = [
        _ev(0, 0.000001, t1, "acquire", target="A", phase="call", line=4),
        _ev(1, 0.000001, t1, "acquire", target="A", phase="return", result="ok", line=4),
        _ev(2, 0.000001, t2, "acquire", target="A", phase="call", line=9),
        _ev(3, 0.000002, t1, "write", target="x", value=1, line=5),
        _ev(4, 0.000002, t1, "release", target="A", line=6),
        _ev(5, 0.000002, t2, "acquire", target="A", phase="return", result="ok", line=9),
        _ev(6, 0.000002, t2, "release", target="A", line=10),
        _ev(7, 0.000002, t1, "set", target="E", line=7),
        _ev(8, 0.000002, t2, "wait", target="E", phase="call", line=11),
        _ev(9, 0.000002, t2, "wait", target="E", phase="return", result="ok", line=11),
    ]
    data = _data(events, [{"name": t1}, {"name": t2}],  # no pid, no tid: synthetic tracks
                 {"A": "lock", "E": "event"})
    doc = to_chrome(data)
    check_viewers(doc, data)
    tracks = {e["args"]["name"]: e["tid"] for e in doc["traceEvents"]
              if e["name"] == "thread_name"}
    assert tracks == {t1: 1, t2: 2}  # never tid 0
    anchors = {e["args"]["seq"]: e for e in doc["traceEvents"] if e["ph"] == "X"}
    assert sorted(anchors) == [4, 5, 7, 9]
    assert anchors[5]["ts"] > anchors[4]["ts"]  # the arrow's destination after its source
    # the lines: in the instants' and anchors' args, and at both ends of the intervals
    write = next(e for e in doc["traceEvents"] if e["name"] == "write x")
    assert write["args"]["line"] == 5
    assert anchors[4]["args"]["line"] == 6
    hold = [e for e in doc["traceEvents"] if e["name"] == "t2: holds A"]
    assert [(e["ph"], e["args"].get("line"), e["args"].get("release_line")) for e in hold] \
        == [("b", 9, None), ("e", None, 10)]
    wait = [e for e in doc["traceEvents"] if e["name"] == "t2: wait E"]
    assert [e["args"].get("return_line") for e in wait] == [None, 11]


def test_old_traces_without_lines_have_no_line_args() -> None:
    events = [_ev(0, 0.001, "t1", "acquire", target="A", phase="call"),
              _ev(1, 0.002, "t1", "acquire", target="A", phase="return", result="ok"),
              _ev(2, 0.003, "t1", "release", target="A")]
    data = _data(events, [{"name": "t1", "pid": 5, "tid": 6}], {"A": "lock"})
    doc = to_chrome(data)
    check_viewers(doc, data)
    assert not any("line" in e.get("args", {}) or "release_line" in e.get("args", {})
                   for e in doc["traceEvents"])


@pytest.mark.parametrize("path", BUNDLED, ids=lambda p: p.stem)
def test_every_bundled_scenario_export_binds_in_every_viewer(path: Path) -> None:
    result = run_plan(load_scenario(path))
    data = parse_trace_data(result.to_json(), path.name)
    doc = to_chrome(data)
    check_viewers(doc, data)


def test_a_hold_freed_by_another_actor_in_the_same_microsecond_does_not_end_before_it_began(
) -> None:
    """t1's acquire return is moved 2 ns after its call; t2's release of t1's lock (a plain
    lock may be released by another thread) keeps its recorded time, 2 ns earlier."""
    events = [_ev(0, 0.000001, "t1", "acquire", target="A", phase="call"),
              _ev(1, 0.000001, "t1", "acquire", target="A", phase="return", result="ok"),
              _ev(2, 0.000001, "t2", "release", target="A")]
    data = _data(events, [{"name": "t1"}, {"name": "t2"}], {"A": "lock"})
    doc = to_chrome(data)
    check_viewers(doc, data)
    hold = [(e["ph"], e["ts"]) for e in doc["traceEvents"] if e["name"] == "t1: holds A"]
    assert hold == [("b", 1.002), ("e", 1.002)]
