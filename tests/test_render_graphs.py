"""Wait-for and lock-order graphs: golden DOT files, determinism, odd names, no Graphviz.

Golden files live in tests/golden/; TRACER_UPDATE_GOLDEN=1 rewrites them. Tests that run
Graphviz's ``dot`` are marked ``needs_dot`` and skipped when it is not installed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

from tracer.analyze._model import LockOrderGraph, WaitForGraph
from tracer.render.graphs import HINT, lock_order_dot, wait_for_dot, write_graph

GOLDEN = Path(__file__).parent / "golden"
NO_DOT = "Graphviz's dot is not installed (apt-get install graphviz)"
SVG = "{http://www.w3.org/2000/svg}"

F = TypeVar("F", bound=Callable[..., Any])


def needs_dot(test: F) -> F:
    """Mark a test ``needs_dot`` and skip it when Graphviz's dot is not installed."""
    skip = pytest.mark.skipif(shutil.which("dot") is None, reason=NO_DOT)
    marked: F = pytest.mark.needs_dot(skip(test))
    return marked


def check_golden(name: str, actual: str) -> None:
    """Compare ``actual`` with tests/golden/NAME (TRACER_UPDATE_GOLDEN=1 rewrites it)."""
    path = GOLDEN / name
    data = actual.encode("utf-8")
    if os.environ.get("TRACER_UPDATE_GOLDEN") == "1":
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(data)
    assert path.exists(), f"{path} is missing: run with TRACER_UPDATE_GOLDEN=1 to create it"
    assert data == path.read_bytes(), \
        f"{name} differs from the golden file; if the change is intended, run the tests " \
        "with TRACER_UPDATE_GOLDEN=1 and review the diff"


def deadlock_graph() -> WaitForGraph:
    """ABBA between t1 and t2, plus t3 stalled on an event while holding an rlock twice."""
    return WaitForGraph(
        seq=None,
        actors=["t2", "t1", "t3"],  # trace order; the DOT sorts
        resources={"B": "lock", "A": "lock", "E": "event", "R": "rlock"},
        holds=[("B", "t2", 1), ("A", "t1", 1), ("R", "t3", 2)],
        waits=[("t2", "acquire", "A"), ("t1", "acquire", "B"), ("t3", "wait", "E")],
        cycle={"t1", "t2", "A", "B"},
        stalled={"t3"},
    )


def cycle_graph() -> LockOrderGraph:
    return LockOrderGraph(
        locks=["C", "B", "A"],
        edges=[("B", "A", [14, 20]), ("A", "B", [3, 9]), ("B", "C", [3, 25, 31, 40])],
        cycles=[["A", "B"]],
    )


ODD = ['say "hi"', "back\\slash \\n \\N", "two\nlines", "馒头框", "账户", "<b>html</b>",
       "port:colon", "trailing\\", "<i>html</i>"]


def odd_graph() -> WaitForGraph:
    return WaitForGraph(
        seq=7,
        actors=[ODD[0], ODD[2], ODD[6], ODD[8]],
        resources={ODD[1]: "lock", ODD[3]: "queue", ODD[4]: "lock", ODD[5]: "event",
                   ODD[6]: "actor", ODD[7]: "lock"},
        holds=[(ODD[1], ODD[0], 1), (ODD[4], ODD[2], 3), (ODD[7], ODD[6], 1)],
        waits=[(ODD[0], "acquire", ODD[4]), (ODD[2], "get", ODD[3]),
               (ODD[6], "join", ODD[6]), (ODD[2], "wait", ODD[5])],
        cycle={ODD[0], ODD[4], ODD[2]},
        stalled={ODD[6]},
    )


def svg_nodes(svg: bytes) -> dict[str, str]:
    """SVG node (and edge) title -> its text lines joined with newlines."""
    root = ET.fromstring(svg)
    out: dict[str, str] = {}
    for g in root.iter(f"{SVG}g"):
        if g.get("class") not in ("node", "edge"):
            continue
        title = g.find(f"{SVG}title")
        assert title is not None
        out[title.text or ""] = "\n".join(t.text or "" for t in g.iter(f"{SVG}text"))
    return out


def test_golden_wait_for() -> None:
    check_golden("deadlock.wait-for.dot", wait_for_dot(deadlock_graph(), "deadlock"))


def test_wait_for_content() -> None:
    src = wait_for_dot(deadlock_graph(), "deadlock")
    assert 'label="deadlock\\nend of trace"' in src
    # actors boxes, resources ellipses with their type; held-by and waits-for edges
    assert 'a0 [label=t1 color=red' in src and "shape=box" in src
    assert 'a2 [label=t3 color=orange' in src
    assert 'r0 [label="A\\n(lock)" color=red' in src
    assert 'r3 [label="R\\n(rlock)" shape=ellipse]' in src
    assert 'r3 -> a2 [label="held by (×2)"]' in src
    assert 'a0 -> r1 [label="waits for acquire" color=red' in src
    assert 'a2 -> r2 [label="waits for wait"]' in src
    # the moment is said once, whether or not the title says it
    at = WaitForGraph(seq=12, actors=["t1"], resources={}, holds=[], waits=[])
    assert 'label="wf\\nafter seq 12"' in wait_for_dot(at, "wf")
    assert 'label="wf — after seq 12"' in wait_for_dot(at, "wf — after seq 12")


def test_golden_lock_order() -> None:
    src = lock_order_dot(cycle_graph(), "lock order — dining")
    check_golden("cycle.lock-order.dot", src)
    assert 'l0 -> l1 [label="seq 3→9" color=red' in src
    assert 'l1 -> l0 [label="seq 14→20" color=red' in src
    assert 'l1 -> l2 [label="seq 3→25, 31→40"]' in src
    assert 'l2 [label=C shape=ellipse]' in src


def test_lock_order_cycle_given_closed_and_long_examples() -> None:
    g = LockOrderGraph(locks=["A", "B"], edges=[("A", "B", list(range(20))),
                                                ("B", "A", [5])],
                       cycles=[["A", "B", "A"]])
    src = lock_order_dot(g, "t")
    assert 'label="seq 0→1, 2→3, 4→5, 6→7, …" color=red' in src
    assert 'l1 -> l0 [label="seq 5" color=red' in src


def test_twice_identical_dot() -> None:
    assert wait_for_dot(deadlock_graph(), "x") == wait_for_dot(deadlock_graph(), "x")
    assert lock_order_dot(cycle_graph(), "x") == lock_order_dot(cycle_graph(), "x")
    # the order of the input does not matter
    g = deadlock_graph()
    g.holds.reverse()
    g.waits.reverse()
    g.actors.reverse()
    assert wait_for_dot(g, "deadlock") == wait_for_dot(deadlock_graph(), "deadlock")


@needs_dot
def test_twice_identical_svg(tmp_path: Path) -> None:
    src = wait_for_dot(odd_graph(), "账户 \"odd\"")
    a = write_graph(src, tmp_path / "a")
    b = write_graph(src, tmp_path / "b")
    assert Path(a["svg"]).read_bytes() == Path(b["svg"]).read_bytes()
    assert Path(a["dot"]).read_bytes() == Path(b["dot"]).read_bytes()


@needs_dot
def test_odd_names_survive_in_svg(tmp_path: Path) -> None:
    g = odd_graph()
    out = write_graph(wait_for_dot(g, 'title "q" \\ 馒头框'), tmp_path / "odd.wait-for")
    assert out == {"dot": str(tmp_path / "odd.wait-for.dot"),
                   "svg": str(tmp_path / "odd.wait-for.svg")}
    svg = Path(out["svg"]).read_bytes()
    texts = svg_nodes(svg)
    actors = sorted(set(g.actors))
    resources = sorted(g.resources)
    for i, name in enumerate(actors):
        assert texts[f"a{i}"] == name
    for i, name in enumerate(resources):
        assert texts[f"r{i}"] == f"{name}\n({g.resources[name]})"
    root = ET.fromstring(svg)
    graph_texts = [t.text for t in root.find(f"{SVG}g").findall(f"{SVG}text")]  # type: ignore[union-attr]
    assert graph_texts == ['title "q" \\ 馒头框', "after seq 7"]
    # and dot reads the DOT back to the same labels
    canon = subprocess.run(["dot", "-Tcanon", out["dot"]], capture_output=True, check=True)
    assert canon.stdout.decode("utf-8").count("label=") >= len(actors) + len(resources)


@needs_dot
def test_lock_order_svg(tmp_path: Path) -> None:
    names = ["账户", 'q"uote', "b\\s"]
    g = LockOrderGraph(locks=names, edges=[(names[0], names[1], [1, 2]),
                                           (names[1], names[0], [3, 4])],
                       cycles=[[names[0], names[1]]])
    out = write_graph(lock_order_dot(g, "locks"), tmp_path / "x.lock-order")
    texts = svg_nodes(Path(out["svg"]).read_bytes())
    assert [texts[f"l{i}"] for i in range(3)] == sorted(names)
    assert texts["l2->l1"] == "seq 1→2"  # 账户 sorts last
    assert texts["l1->l2"] == "seq 3→4"


def test_control_characters_are_shown_not_raw() -> None:
    g = WaitForGraph(seq=None, actors=["a\x01b\tc"], resources={"x\r\ny": "lock"},
                     holds=[], waits=[])
    src = wait_for_dot(g, "t")
    assert 'label="a\\\\x01b\tc"' in src
    assert 'label="x\\ny\\n(lock)"' in src
    assert "\x01" not in src and "\r" not in src


def test_no_dot_writes_dot_only_with_hint(tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("tracer.render.graphs.shutil.which", lambda name: None)
    src = wait_for_dot(deadlock_graph(), "deadlock")
    out = write_graph(src, tmp_path / "deadlock.wait-for")
    assert out == {"dot": str(tmp_path / "deadlock.wait-for.dot"), "hint": HINT}
    assert HINT == ("Graphviz's dot is not installed: apt-get install graphviz (or brew "
                    "install graphviz), then: dot -Tsvg FILE.dot -o FILE.svg")
    assert (tmp_path / "deadlock.wait-for.dot").read_text(encoding="utf-8") == src
    assert sorted(p.name for p in tmp_path.iterdir()) == ["deadlock.wait-for.dot"]


def test_dot_vanishing_midway_is_a_hint(tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    import graphviz

    def gone(*args: Any, **kwargs: Any) -> bytes:
        raise graphviz.ExecutableNotFound(("dot",))

    monkeypatch.setattr("tracer.render.graphs.shutil.which", lambda name: "/usr/bin/dot")
    monkeypatch.setattr(graphviz.Source, "pipe", gone)
    out = write_graph("digraph x {}", tmp_path / "g")
    assert out == {"dot": str(tmp_path / "g.dot"), "hint": HINT}


@needs_dot
def test_failing_dot_is_a_hint(tmp_path: Path) -> None:
    out = write_graph("digraph {{{ broken", tmp_path / "broken")
    assert out["dot"] == str(tmp_path / "broken.dot")
    assert "svg" not in out
    assert out["hint"].startswith(f"Graphviz's dot failed on {tmp_path / 'broken.dot'}")
    assert "dot -Tsvg" in out["hint"]
    assert not (tmp_path / "broken.svg").exists()


@needs_dot
def test_golden_dot_files_parse(tmp_path: Path) -> None:
    for name in ("deadlock.wait-for.dot", "cycle.lock-order.dot"):
        r = subprocess.run(["dot", "-Tcanon", str(GOLDEN / name)], capture_output=True,
                           check=False)
        assert r.returncode == 0, r.stderr
        assert not r.stderr
