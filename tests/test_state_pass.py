"""The shared state pass (tracer.trace.state) knows no primitive type by name: a type it has
never heard of, registered with its FACTS only, gets holders, happens-before and count misuse
from the same pass. The two types here are declared in the test (a readers-writer lock and a
countdown latch, the shapes of the next two real types); traces are written by hand."""

from __future__ import annotations

import json
from types import ModuleType
from typing import Any

import pytest

from tracer.analyze.misuse import find_misuse
from tracer.analyze.races import find_races
from tracer.prims import REGISTRY, PrimType
from tracer.prims._facts import Channel, Counter, Facts, HoldMode, Op
from tracer.trace import TraceData, parse_trace_data
from tracer.trace.state import Clocks, TraceState, state_of

# readers share, a writer is exclusive; a writer's release orders the next readers and
# writers, a reader's release only the next writer
RW_FACTS = Facts(
    ops={"acquire": Op(hold="take"), "release": Op(hold="give")},
    channels={"w": Channel("last", mutex=True), "r": Channel("all", mutex=True)},
    modes={"read": HoldMode("shared", gives=("r",), takes=("w",)),
           "write": HoldMode("exclusive", gives=("w",), takes=("w", "r"))},
    mode_field="mode",
    default_mode="write",
)

# Go's WaitGroup: every count_down -> the wait that returns; the count may not go below 0
LATCH_FACTS = Facts(
    ops={"count_down": Op(publish=("down",)), "wait": Op(take=("down",))},
    channels={"down": Channel("all")},
    counter=Counter({"count_down": -1, "count_up": 1}, option="count", amount="n",
                    misuse="{actor} counts {name} down below zero (seq {seq}: {count}) — "
                           "count down once per count"),
)


def _module(name: str, facts: Facts) -> ModuleType:
    m = ModuleType(f"fake_{name}")
    m.NAME = name  # type: ignore[attr-defined]
    m.FACTS = facts  # type: ignore[attr-defined]
    return m


@pytest.fixture
def fake_types(monkeypatch: pytest.MonkeyPatch) -> None:
    """Register the two fake types for the test only."""
    monkeypatch.setitem(REGISTRY, "fake_rw", PrimType.of(_module("fake_rw", RW_FACTS)))
    monkeypatch.setitem(REGISTRY, "fake_latch",
                        PrimType.of(_module("fake_latch", LATCH_FACTS)))


def trace(prims: dict[str, Any], actors: list[str], steps: list[dict[str, Any]]) -> TraceData:
    """A trace from its events (seq and ts filled in), read by the one reader."""
    events = [{"seq": i, "ts": i * 1e-3, **s} for i, s in enumerate(steps)]
    doc = {"format": "tracer-trace/1",
           "scenario": {"name": "hand", "primitives": prims},
           "meta": {"tracer_version": "0", "python": "3", "started_at": "now", "mode": "run"},
           "actors": [{"name": a, "kind": "thread"} for a in actors],
           "events": events, "outcome": {"status": "ok"}}
    return parse_trace_data(json.dumps(doc), "hand")


def call(actor: str, op: str, target: str, **kw: Any) -> dict[str, Any]:
    return {"actor": actor, "op": op, "target": target, "phase": "call", **kw}


def ret(actor: str, op: str, target: str, result: str = "ok") -> dict[str, Any]:
    return {"actor": actor, "op": op, "target": target, "phase": "return", "result": result}


def acquire(actor: str, target: str, mode: str | None = None) -> list[dict[str, Any]]:
    extra = {"mode": mode} if mode else {}
    return [call(actor, "acquire", target, **extra), ret(actor, "acquire", target)]


def ev(actor: str, op: str, target: str, **kw: Any) -> dict[str, Any]:
    return {"actor": actor, "op": op, "target": target, **kw}


def race_pairs(data: TraceData) -> set[tuple[str, str, str]]:
    return {(f.objects[0], *sorted(f.actors)) for f in find_races(data)}  # type: ignore[misc]


def test_the_pass_holds_a_type_it_never_heard_of_in_its_modes(fake_types: None) -> None:
    data = trace({"RW": "fake_rw"}, ["r1", "r2", "w"],
                 [*acquire("r1", "RW", "read"), *acquire("r2", "RW", "read"),
                  ev("r1", "release", "RW"), ev("r2", "release", "RW"),
                  *acquire("w", "RW")])
    log = state_of(data).holds
    takes = [(c.kind, c.actor, c.resource, c.mode) for cs in log.changes if cs for c in cs]
    assert takes == [("take", 0, "RW", "read"), ("take", 1, "RW", "read"),
                     ("give", 0, "RW", "read"), ("give", 1, "RW", "read"),
                     ("take", 2, "RW", "write")]  # no mode given: the default, write


def test_readers_do_not_order_each_other_but_a_writer_orders_them(fake_types: None) -> None:
    steps = [
        # w writes x under the write lock; r1 then reads it under a read lock: ordered
        *acquire("w", "RW", "write"), ev("w", "write", "x", value=1), ev("w", "release", "RW"),
        *acquire("r1", "RW", "read"), ev("r1", "read", "x", value=1),
        # r1 writes y under its read lock; r2, another reader, reads y: a race
        ev("r1", "write", "y", value=2),
        *acquire("r2", "RW", "read"), ev("r2", "read", "y", value=2),
        ev("r1", "release", "RW"), ev("r2", "release", "RW"),
        # a writer after both readers: ordered after r1's write and r2's read
        *acquire("w", "RW", "write"), ev("w", "write", "y", value=3),
        ev("w", "release", "RW"),
    ]
    data = trace({"RW": "fake_rw"}, ["w", "r1", "r2"], steps)
    assert race_pairs(data) == {("y", "r1", "r2")}


def test_a_latch_orders_every_count_down_before_the_wait(fake_types: None) -> None:
    steps = [
        ev("a", "write", "x", value=1), ev("a", "count_down", "WG"),
        ev("b", "write", "z", value=1), ev("b", "count_down", "WG"),
        call("c", "wait", "WG"), ret("c", "wait", "WG"),
        ev("c", "read", "x", value=1), ev("c", "read", "z", value=1),
        ev("b", "write", "z", value=2),  # after its count down: not ordered before c's read
    ]
    data = trace({"WG": {"type": "fake_latch", "count": 2}}, ["a", "b", "c"], steps)
    assert race_pairs(data) == {("z", "b", "c")}
    clocks = Clocks(TraceState(data))
    index = {"a": 0, "b": 1, "c": 2}
    for e in data.events:
        clocks.step(e, index[e.actor])
    assert clocks.clocks[2][0] >= 1 and clocks.clocks[2][1] >= 1  # c saw both count downs


def test_a_count_below_its_floor_is_misuse(fake_types: None) -> None:
    steps = [ev("a", "count_down", "WG"), ev("a", "count_up", "WG", n=2),
             ev("a", "count_down", "WG", n=2), ev("b", "count_down", "WG")]
    data = trace({"WG": {"type": "fake_latch", "count": 1}}, ["a", "b"], steps)
    (f,) = find_misuse(data)
    assert f.actors == ("b",) and f.events == (3,)
    assert f.message == "b counts WG down below zero (seq 3: -1) — count down once per count"


def test_without_mutual_exclusion_the_lock_channels_go(fake_types: None) -> None:
    # the lock-order analysis's view: a release -> the next acquire is this run's accident
    data = trace({"RW": "fake_rw"}, ["w", "r"],
                 [*acquire("w", "RW"), ev("w", "release", "RW"), *acquire("r", "RW", "read")])
    index = {"w": 0, "r": 1}
    with_mutex, without = Clocks(TraceState(data)), Clocks(TraceState(data), mutex=False)
    for e in data.events:
        with_mutex.step(e, index[e.actor])
        without.step(e, index[e.actor])
    assert with_mutex.clocks[1][0] >= 1  # r took up w's release
    assert without.clocks[1][0] == 0


def test_a_publication_after_anothers_still_takes_that_one_up(fake_types: None) -> None:
    # r2 reads x and lets go of its read; r1 lets go of its read after it (r1 publishes last,
    # so the readers' sum holds r2's clock, which r1's does not); r1 then writes x under the
    # write lock, which takes the readers' releases up: ordered after r2's read, no race
    steps = [*acquire("r1", "RW", "read"), *acquire("r2", "RW", "read"),
             ev("r2", "read", "x", value=0), ev("r2", "release", "RW"),
             ev("r1", "release", "RW"),
             *acquire("r1", "RW", "write"), ev("r1", "write", "x", value=1),
             ev("r1", "release", "RW")]
    data = trace({"RW": "fake_rw"}, ["r1", "r2"], steps)
    assert race_pairs(data) == set()
