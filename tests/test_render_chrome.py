"""The Chrome Trace Event export: golden file, structure (tracks, slices, flows), determinism.

Golden files live in tests/golden/; TRACER_UPDATE_GOLDEN=1 rewrites them.
"""

from __future__ import annotations

import itertools
import json
import os
from pathlib import Path
from typing import Any

import pytest
from conftest import SCENARIOS, run_yaml
from test_chrome_viewers import check_viewers

from tracer.analyze._model import TraceData, parse_trace_data
from tracer.render.chrome import dumps_chrome, to_chrome, write_chrome

GOLDEN = Path(__file__).parent / "golden"


def check_golden(name: str, actual: bytes) -> None:
    """Compare ``actual`` with tests/golden/NAME (TRACER_UPDATE_GOLDEN=1 rewrites it)."""
    path = GOLDEN / name
    if os.environ.get("TRACER_UPDATE_GOLDEN") == "1":
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(actual)
    assert path.exists(), f"{path} is missing: run with TRACER_UPDATE_GOLDEN=1 to create it"
    assert actual == path.read_bytes(), \
        f"{name} differs from the golden file; if the change is intended, run the tests " \
        "with TRACER_UPDATE_GOLDEN=1 and review the diff"


def _ev(seq: int, ts: float, actor: str | None, op: str, **kw: Any) -> dict[str, Any]:
    return {"seq": seq, "ts": ts, "actor": actor, "op": op, **kw}


def small_trace() -> dict[str, Any]:
    """Two actors, a lock handed over, a queue item, an event, a lock never released and a
    stall at the end."""
    t1, c = "t1", "消费者"
    events = [
        _ev(0, 0.0001, t1, "start"),
        _ev(1, 0.0002, c, "start"),
        _ev(2, 0.0003, t1, "acquire", target="A", phase="call"),
        _ev(3, 0.0004, t1, "acquire", target="A", phase="return", result="ok"),
        _ev(4, 0.0005, c, "acquire", target="A", phase="call"),
        _ev(5, 0.0010, t1, "write", target="账户", value=50),
        _ev(6, 0.0020, t1, "release", target="A"),
        _ev(7, 0.0021, c, "acquire", target="A", phase="return", result="ok"),
        _ev(8, 0.0022, t1, "put", target="馒头框", phase="call", item="馒头1"),
        _ev(9, 0.0023, t1, "put", target="馒头框", phase="return", result="ok"),
        _ev(10, 0.0030, c, "release", target="A"),
        _ev(11, 0.0031, c, "get", target="馒头框", phase="call"),
        _ev(12, 0.0032, c, "get", target="馒头框", phase="return", result="ok", item="馒头1"),
        _ev(13, 0.0033, c, "wait", target="E", phase="call"),
        _ev(14, 0.0040, t1, "log", detail="设置 E"),
        _ev(15, 0.0041, t1, "set", target="E"),
        _ev(16, 0.0042, c, "wait", target="E", phase="return", result="ok"),
        _ev(17, 0.0043, t1, "acquire", target="B", phase="call"),
        _ev(18, 0.0044, t1, "acquire", target="B", phase="return", result="ok"),
        _ev(19, 0.0045, t1, "sleep", phase="call", value=0.01),
        _ev(20, 0.0146, t1, "sleep", phase="return", result="ok"),
        _ev(21, 0.0147, t1, "end", result="ok"),
        _ev(22, 0.0150, c, "read", target="账户", value=50),
        _ev(23, 0.0151, c, "acquire", target="B", phase="call"),
        _ev(24, 0.0260, None, "stall", actors=[c], objects=["B"],
            detail="消费者 waits for B, held by t1, which ended without releasing it"),
    ]
    return {
        "format": "tracer-trace/1",
        "scenario": {"name": "small", "primitives": {"A": "lock", "B": {"type": "lock"},
                                                     "E": "event",
                                                     "馒头框": {"type": "queue"}},
                     "shared": {"账户": 100}},
        "meta": {"tracer_version": "0.1.0", "mode": "run", "seed": None,
                 "started_at": "2026-01-01T00:00:00.000+00:00", "source": "small.yaml"},
        "actors": [{"name": t1, "kind": "thread", "pid": 100, "tid": 101, "status": "ok"},
                   {"name": c, "kind": "thread", "pid": 100, "tid": 102,
                    "status": "blocked"}],
        "events": events,
        "outcome": {"status": "stall", "detail": "消费者 waits for B"},
        "final": {"账户": 50},
    }


def data_of(trace: dict[str, Any]) -> TraceData:
    return parse_trace_data(json.dumps(trace, ensure_ascii=False), "<test>")


def run_scenario(name: str) -> TraceData:
    result, _ = run_yaml((SCENARIOS / f"{name}.yaml").read_text(encoding="utf-8"))
    return parse_trace_data(result.to_json(), name)


def check_structure(doc: dict[str, Any], data: TraceData) -> None:
    """What a viewer needs: named tracks, matched slices and flows bound to slices."""
    assert doc["displayTimeUnit"] == "ms"
    events = doc["traceEvents"]
    names = {(e["pid"], e["tid"]): e["args"]["name"] for e in events
             if e["ph"] == "M" and e["name"] == "thread_name"}
    actors = [a["name"] for a in data.actors]
    assert sorted(names.values()) == sorted(actors), "one named track per actor"
    track = {name: key for key, name in names.items()}
    procs = {e["pid"] for e in events if e["ph"] == "M" and e["name"] == "process_name"}
    assert {pid for pid, _ in names} <= procs, "every process is named"
    for e in events:
        if e["ph"] != "M":
            assert isinstance(e["ts"], float)
            assert e["ts"] >= 0
    # every "b" has one matching "e" (same id, name, cat, track), not before it
    begins = {e["id"]: e for e in events if e["ph"] == "b"}
    ends = {e["id"]: e for e in events if e["ph"] == "e"}
    assert len(begins) == sum(e["ph"] == "b" for e in events), "async ids are unique"
    assert len(ends) == sum(e["ph"] == "e" for e in events)
    assert begins.keys() == ends.keys()
    for i, b in begins.items():
        e = ends[i]
        assert (b["name"], b["cat"], b["pid"], b["tid"]) == \
            (e["name"], e["cat"], e["pid"], e["tid"])
        assert e["ts"] >= b["ts"]
        assert (b["pid"], b["tid"]) in names
    # anchors of one track are strictly disjoint: not even touching (a flow end on a shared
    # edge would bind to either)
    anchors: dict[tuple[int, int], list[dict[str, Any]]] = {}
    for e in events:
        if e["ph"] == "X":
            assert e["dur"] > 0
            anchors.setdefault((e["pid"], e["tid"]), []).append(e)
    for xs in anchors.values():
        for a, b in itertools.pairwise(xs):
            assert a["ts"] + a["dur"] < b["ts"], (a, b)
    # every flow "s" has its "f" after it; both bind to exactly one anchor slice of their
    # track, with the same name, cat and id (Perfetto matches the ends on all three)
    starts = {e["id"]: e for e in events if e["ph"] == "s"}
    finishes = {e["id"]: e for e in events if e["ph"] == "f"}
    assert starts.keys() == finishes.keys()
    assert not starts.keys() & begins.keys(), "flow and slice ids are distinct"
    for i, s in starts.items():
        f = finishes[i]
        assert f["bp"] == "e"
        assert s["bp"] == "e"
        assert (s["name"], s["cat"]) == (f["name"], f["cat"])
        assert f["ts"] >= s["ts"]
        assert (s["pid"], s["tid"]) != (f["pid"], f["tid"]), "arrows join two actors"
        for end in (s, f):
            anchor_of(events, end)
    # global instants are the engine events
    engine = [e for e in data.events if e.get("actor") is None]
    glob = [e for e in events if e["ph"] == "i" and e.get("s") == "g"]
    assert [e["args"]["seq"] for e in glob] == [e["seq"] for e in engine]
    assert track  # (used by callers through names)
    check_viewers(doc, data)  # and as Perfetto's importer and DevTools read it


def anchor_of(events: list[dict[str, Any]], end: dict[str, Any]) -> dict[str, Any]:
    """The one slice a flow end binds to, found the way each viewer finds it; they must
    agree, and none may have a choice.

    Perfetto and chrome://tracing: the slice of its track that encloses its time (edges
    included, as a viewer may count them). DevTools: the event with the same ts, pid, tid and
    cat (the first one, so there must be only one)."""
    where = (end["pid"], end["tid"])
    enclosing = [x for x in events
                 if x["ph"] == "X" and (x["pid"], x["tid"]) == where
                 and x["ts"] <= end["ts"] <= x["ts"] + x["dur"]]
    assert len(enclosing) == 1, f"flow end {end} is on {len(enclosing)} slices: {enclosing}"
    same = [x for x in events
            if x["ph"] not in ("s", "t", "f") and (x["pid"], x["tid"]) == where
            and (x["ts"], x.get("cat")) == (end["ts"], end["cat"])]
    assert same == enclosing, f"DevTools would bind {end} to {same}, not {enclosing}"
    return enclosing[0]


def flows(doc: dict[str, Any]) -> list[tuple[str, int, int]]:
    """(name, seq of the source event, seq of the destination event) of each arrow."""
    events = doc["traceEvents"]

    def anchor_seq(end: dict[str, Any]) -> int:
        return int(anchor_of(events, end)["args"]["seq"])

    fs = {e["id"]: e for e in events if e["ph"] == "f"}
    return sorted((s["name"], anchor_seq(s), anchor_seq(fs[s["id"]]))
                  for s in events if s["ph"] == "s")


def test_golden_small_trace(tmp_path: Path) -> None:
    data = data_of(small_trace())
    out = write_chrome(data, tmp_path / "small.chrome.json")
    assert out == tmp_path / "small.chrome.json"
    raw = out.read_bytes()
    check_golden("small.chrome.json", raw)
    doc = json.loads(raw.decode("utf-8"))
    assert doc == to_chrome(data)
    check_structure(doc, data)


def test_small_trace_content() -> None:
    data = data_of(small_trace())
    doc = to_chrome(data)
    events = doc["traceEvents"]
    assert flows(doc) == [("put → get", 8, 12), ("release → acquire", 6, 7),
                          ("set → wait", 15, 16)]
    by_name = {e["name"]: e for e in events if e["ph"] in ("b", "e", "i", "X")}
    # the lock handed over: t1 holds A from its acquire return to its release
    hold = [e for e in events if e["name"] == "t1: holds A"]
    assert [(e["ph"], e["ts"]) for e in hold] == [("b", 400.0), ("e", 2000.0)]
    # t1 ended holding B: the holding lasts until the end of the trace (the stall)
    never = [e for e in events if e["name"] == "t1: holds B (never released)"]
    assert [(e["ph"], e["ts"]) for e in never] == [("b", 4400.0), ("e", 26000.0)]
    blocked = [e for e in events if e["name"] == "消费者: acquire B — blocked (never returned)"]
    assert [(e["ph"], e["ts"]) for e in blocked] == [("b", 15100.0), ("e", 26000.0)]
    assert by_name["消费者: acquire A"]["cat"] == "blocked"
    assert by_name["t1: sleep 0.01 s"]["cat"] == "sleep"
    # instants, with values
    assert by_name["write 账户"]["args"]["value"] == 50
    assert by_name["read 账户"]["args"]["value"] == 50
    assert by_name["log: 设置 E"]["args"]["detail"] == "设置 E"
    assert by_name["end (ok)"]["ph"] == "i"
    start = [e for e in events if e["name"] == "start"]
    assert [e["args"]["kind"] for e in start] == ["thread", "thread"]
    # the set is an anchor (an arrow leaves it), a short slice rather than an instant
    assert by_name["set E"]["ph"] == "X"
    stall = [e for e in events if e["name"] == "stall"]
    assert len(stall) == 1
    assert stall[0]["s"] == "g"
    assert stall[0]["args"]["detail"].startswith("消费者 waits for B")
    assert stall[0]["ts"] == 26000.0


def test_twice_identical(tmp_path: Path) -> None:
    data = data_of(small_trace())
    a = write_chrome(data, tmp_path / "a.json").read_bytes()
    b = write_chrome(data_of(small_trace()), tmp_path / "b.json").read_bytes()
    assert a == b
    assert dumps_chrome(to_chrome(data)) == a


def test_unicode_names_survive(tmp_path: Path) -> None:
    trace = small_trace()
    raw = write_chrome(data_of(trace), tmp_path / "u.json").read_bytes()
    text = raw.decode("utf-8")
    assert "消费者" in text and "馒头框" in text and "账户" in text  # UTF-8, not \\u escapes
    doc = json.loads(text)
    names = [e["args"]["name"] for e in doc["traceEvents"] if e["name"] == "thread_name"]
    assert names == ["t1", "消费者"]


def test_odd_names_are_valid_json(tmp_path: Path) -> None:
    trace = small_trace()
    odd = 'a "quoted"\\back\nslash 账户'
    trace["actors"][0]["name"] = odd
    for e in trace["events"]:
        if e["actor"] == "t1":
            e["actor"] = odd
    doc = json.loads(write_chrome(data_of(trace), tmp_path / "o.json").read_bytes())
    names = [e["args"]["name"] for e in doc["traceEvents"] if e["name"] == "thread_name"]
    assert names[0] == odd
    assert any(e["name"] == f"{odd}: holds A" for e in doc["traceEvents"])


def test_shared_threads_and_missing_ids_get_their_own_tracks() -> None:
    trace = small_trace()
    trace["actors"][1]["tid"] = 101  # two coroutines on one event loop thread
    trace["actors"].append({"name": "queued", "kind": "thread", "pid": None, "tid": None,
                            "status": "not_started"})
    data = data_of(trace)
    doc = to_chrome(data)
    tracks = {e["args"]["name"]: (e["pid"], e["tid"]) for e in doc["traceEvents"]
              if e["name"] == "thread_name"}
    assert tracks["t1"] == (100, 101)
    assert tracks["消费者"] == (100, 2)  # its index + 1 (Perfetto reads tid 0 as the pid)
    assert tracks["queued"] == (1, 3)  # pid 1, its index + 1
    assert len(set(tracks.values())) == 3
    sort = {(e["pid"], e["tid"]): e["args"]["sort_index"] for e in doc["traceEvents"]
            if e["name"] == "thread_sort_index"}
    assert [sort[tracks[n]] for n in ("t1", "消费者", "queued")] == [0, 1, 2]
    procs = {e["pid"]: e["args"]["name"] for e in doc["traceEvents"]
             if e["name"] == "process_name"}
    assert procs == {100: "small (pid 100)", 1: "small: not started"}
    check_structure(doc, data)


def test_queue_items_matched_fifo_and_by_item() -> None:
    trace = small_trace()
    ev = trace["events"]
    # a second producer's put of the same queue, received first by item
    ev[8:10] = [_ev(8, 0.0022, "t1", "put", target="馒头框", phase="call", item="馒头0"),
                _ev(9, 0.0023, "t1", "put", target="馒头框", phase="return", result="ok")]
    ev[11:13] = [_ev(11, 0.0031, "消费者", "get", target="馒头框", phase="call"),
                 _ev(12, 0.0032, "消费者", "get", target="馒头框", phase="return",
                     result="ok", item="something else")]
    doc = to_chrome(data_of(trace))
    assert ("put → get", 8, 12) in flows(doc)  # no item matched: FIFO


def test_rlock_inner_release_hands_nothing_over() -> None:
    t1, t2 = "t1", "t2"
    events = [
        _ev(0, 0.001, t1, "acquire", target="R", phase="call"),
        _ev(1, 0.002, t1, "acquire", target="R", phase="return", result="ok"),
        _ev(2, 0.003, t1, "acquire", target="R", phase="call"),
        _ev(3, 0.004, t1, "acquire", target="R", phase="return", result="ok"),
        _ev(4, 0.005, t2, "acquire", target="R", phase="call"),
        _ev(5, 0.006, t1, "release", target="R"),
        _ev(6, 0.007, t1, "release", target="R"),
        _ev(7, 0.008, t2, "acquire", target="R", phase="return", result="ok"),
        _ev(8, 0.009, t2, "release", target="R"),
    ]
    trace = small_trace()
    trace.update(scenario={"name": "r", "primitives": {"R": "rlock"}}, events=events,
                 actors=[{"name": t1, "pid": 1, "tid": 1}, {"name": t2, "pid": 1, "tid": 2}])
    data = data_of(trace)
    doc = to_chrome(data)
    assert flows(doc) == [("release → acquire", 6, 7)]
    holds = [(e["ph"], e["args"]) for e in doc["traceEvents"] if e["name"] == "t1: holds R"]
    assert [(ph, a.get("seq", a.get("release_seq"))) for ph, a in holds] == \
        [("b", 1), ("b", 3), ("e", 5), ("e", 6)]  # nested: the inner one ends first
    check_structure(doc, data)


def test_close_events_of_one_actor_bind_each_arrow_to_its_own_slice() -> None:
    """Anchors one microsecond apart, or in the same microsecond, used to touch (one ended
    where the next began), so an arrow's end lay on two slices and a viewer could bind it to
    the wrong event (this made test_real_traces[producer_consumer] flaky)."""
    t1, t2 = "t1", "t2"
    events = [
        _ev(0, 0.000001, t1, "acquire", target="A", phase="call"),
        _ev(1, 0.000001, t1, "acquire", target="A", phase="return", result="ok"),
        _ev(2, 0.000001, t2, "acquire", target="A", phase="call"),
        _ev(3, 0.000002, t1, "release", target="A"),
        _ev(4, 0.000002, t1, "set", target="E"),  # the same microsecond as the release
        _ev(5, 0.000003, t2, "acquire", target="A", phase="return", result="ok"),
        _ev(6, 0.000003, t2, "release", target="A"),
        _ev(7, 0.000004, t2, "wait", target="E", phase="call"),
        _ev(8, 0.000004, t2, "wait", target="E", phase="return", result="ok"),  # 1 µs later
        _ev(9, 0.000004, t1, "spawn", target="t3"),
    ]
    trace = small_trace()
    trace.update(scenario={"name": "close", "primitives": {"A": "lock", "E": "event"}},
                 events=events,
                 actors=[{"name": t1, "pid": 1, "tid": 1}, {"name": t2, "pid": 1, "tid": 2}])
    data = data_of(trace)
    doc = to_chrome(data)
    check_structure(doc, data)
    assert flows(doc) == [("release → acquire", 3, 5), ("set → wait", 4, 8)]
    xs = {x["args"]["seq"]: (x["ts"], x["dur"]) for x in doc["traceEvents"] if x["ph"] == "X"}
    assert xs[3][0] == 2.0 and xs[5][0] == 3.0  # at their events' times
    assert xs[4][0] == 2.002  # 2 ns after the release's anchor, which ends 1 ns before it
    assert xs[3][1] == 0.001
    # the wait's return is 2 ns after its call (the same microsecond), which is no anchor
    assert xs[8] == (4.002, 1.0)
    calls = [e["ts"] for e in doc["traceEvents"] if e["ph"] == "b" and e["args"]["seq"] == 7]
    assert calls == [4.0]


def test_condition_wait_releases_and_retakes_its_lock() -> None:
    p, c = "p", "c"
    events = [
        _ev(0, 0.001, c, "acquire", target="C", phase="call"),
        _ev(1, 0.002, c, "acquire", target="C", phase="return", result="ok"),
        _ev(2, 0.003, c, "wait", target="C", phase="call"),
        _ev(3, 0.004, p, "acquire", target="L", phase="call"),
        _ev(4, 0.005, p, "acquire", target="L", phase="return", result="ok"),
        _ev(5, 0.006, p, "notify", target="C"),
        _ev(6, 0.007, p, "release", target="L"),
        _ev(7, 0.008, c, "wait", target="C", phase="return", result="ok"),
        _ev(8, 0.009, c, "release", target="C"),
    ]
    trace = small_trace()
    trace.update(scenario={"name": "cv", "primitives": {"L": "lock",
                                                       "C": {"type": "condition",
                                                             "lock": "L"}}},
                 events=events,
                 actors=[{"name": p, "pid": 1, "tid": 1}, {"name": c, "pid": 1, "tid": 2}])
    data = data_of(trace)
    doc = to_chrome(data)
    assert flows(doc) == [("release → acquire", 2, 4), ("release → acquire", 6, 7)]
    check_structure(doc, data)


def test_deadlock_trace() -> None:
    data = run_scenario("deadlock")
    doc = to_chrome(data)
    check_structure(doc, data)
    events = doc["traceEvents"]
    end = round(data.events[-1]["ts"] * 1e6, 3)
    dl = [e for e in events if e["name"] == "deadlock"]
    assert len(dl) == 1
    assert dl[0]["ph"] == "i" and dl[0]["s"] == "g" and dl[0]["ts"] == end
    assert sorted(dl[0]["args"]["actors"]) == ["t1", "t2"]
    assert dl[0]["args"]["detail"] == data.outcome["detail"]
    never = [e for e in events if e["ph"] == "e" and "blocked (never returned)" in e["name"]]
    assert sorted(e["name"] for e in never) == ["t1: acquire B — blocked (never returned)",
                                                "t2: acquire A — blocked (never returned)"]
    assert all(e["ts"] == end for e in never)
    assert all(e["cat"] == "blocked" for e in never)
    json.loads(dumps_chrome(doc))


@pytest.mark.parametrize("name", ["dining_philosophers", "producer_consumer",
                                  "pool_starvation", "thread_join",
                                  "bounded_buffer_condition", "asyncio_gather"])
def test_real_traces(name: str) -> None:
    data = run_scenario(name)
    doc = to_chrome(data)
    check_structure(doc, data)
    assert dumps_chrome(to_chrome(data)) == dumps_chrome(doc)
    if name == "producer_consumer":  # ten buns, each one arrow from its put to its get
        arrows = [f for f in flows(doc) if f[0] == "put → get"]
        assert len(arrows) == 10
        items = {e["seq"]: e.get("item") for e in data.events}
        assert all(items[s] == items[d] for _, s, d in arrows)
    if name == "thread_join":
        names = {f[0] for f in flows(doc)}
        assert {"spawn → start", "end → join"} <= names
