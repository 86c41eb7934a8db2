"""Wait-for and lock-order graphs as Graphviz DOT, and SVG when Graphviz's ``dot`` is there.

Design: node identifiers are short synthetic ids (``a0``, ``r3``, ``l1``) given in sorted
name order, and names only ever appear in labels. So a name may contain anything — quotes,
backslashes, newlines, ``:`` (which DOT reads as a port in an edge), ``<…>`` (which the
``graphviz`` package reads as an HTML label), Unicode — and an actor and a primitive may share
a name. Labels are escaped once, by :func:`_label`, for DOT's escString: backslashes doubled
(so ``\\N`` or ``\\n`` inside a name stays literal), line breaks as ``\\n``, and the
``graphviz`` package then escapes the double quotes. Everything is emitted in sorted order, so
the same graph always gives the same bytes.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from pathlib import Path

import graphviz

from tracer.analyze import (
    LockOrderGraph,
    Report,
    TraceData,
    WaitForGraph,
    lock_order_graph,
    wait_for_graph,
)
from tracer.trace import safe_stem, write_atomic

HINT = ("Graphviz's dot is not installed: apt-get install graphviz (or brew install graphviz), "
        "then: dot -Tsvg FILE.dot -o FILE.svg")

_RED = {"color": "red", "fontcolor": "red", "penwidth": "2.0", "style": "bold"}
_ORANGE = {"color": "orange", "fontcolor": "darkorange", "penwidth": "2.0"}
_SEQS_SHOWN = 8  # an edge label lists at most this many example seqs


def _text(text: str) -> str:
    """``text`` escaped for a DOT escString (before the quoting the graphviz package does)."""
    out = []
    for ch in text.replace("\r\n", "\n").replace("\r", "\n"):
        if ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif ch != "\t" and (ord(ch) < 0x20 or ord(ch) == 0x7F):
            out.append(f"\\\\x{ord(ch):02x}")  # control characters: visible, not raw in XML
        else:
            out.append(ch)
    return "".join(out)


def _label(*lines: str) -> str:
    """A label of one or more lines; never read as an HTML label."""
    label: str = graphviz.nohtml("\\n".join(_text(line) for line in lines))
    return label  # a str subclass: str() would turn it back into a possible HTML label


def _ids(names: Iterable[str], prefix: str) -> dict[str, str]:
    return {name: f"{prefix}{i}" for i, name in enumerate(sorted(set(names)))}


def _digraph(name: str, label: str) -> graphviz.Digraph:
    g = graphviz.Digraph(name)
    g.attr("graph", label=label, labelloc="t", rankdir="LR", fontsize="12")
    g.attr("node", fontsize="11")
    g.attr("edge", fontsize="9")
    return g


def wait_for_dot(g: WaitForGraph, title: str) -> str:
    """DOT source of a wait-for graph: actors as boxes, resources as ellipses (name and type),
    ``resource -> actor`` "held by" and ``actor -> resource`` "waits for OP" edges; the cycle
    of a deadlock red and bold, stalled actors orange."""
    moment = f"after seq {g.seq}" if g.seq is not None else "end of trace"
    lines = [title] if moment in title else [title, moment]
    dot = _digraph("wait_for", _label(*lines))

    actors = set(g.actors) | {a for _, a, _ in g.holds} | {a for a, _, _ in g.waits}
    types = dict(g.resources)
    for r, _, _ in g.holds:
        types.setdefault(r, "?")
    for _, _, t in g.waits:
        types.setdefault(t, "?")
    aid = _ids(actors, "a")
    rid = _ids(types, "r")

    for name, node in aid.items():
        style = _RED if name in g.cycle else _ORANGE if name in g.stalled else {}
        dot.node(node, _label(name), shape="box", **style)
    for name, node in rid.items():
        style = _RED if name in g.cycle else {}
        dot.node(node, _label(name, f"({types[name]})"), shape="ellipse", **style)

    def red(*names: str) -> dict[str, str]:
        return _RED if all(n in g.cycle for n in names) else {}

    held = set()
    for r, a, times in sorted(g.holds):
        held.add((r, a))
        text = "held by" if times <= 1 else f"held by (×{times})"
        dot.edge(rid[r], aid[a], _label(text), **red(r, a))
    # an actor awaited by join is drawn as a resource; link it to the actor's own box so a
    # cycle through joins stays connected (unless the analysis already gave that edge)
    for r in sorted(rid):
        if types[r] == "actor" and r in aid and (r, r) not in held:
            dot.edge(rid[r], aid[r], _label("ends with"), **{"style": "dashed", **red(r)})
    for a, op, t in sorted(g.waits):
        dot.edge(aid[a], rid[t], _label(f"waits for {op}"), **red(a, t))
    return str(dot.source)


def _cycle_edges(cycles: list[list[str]]) -> set[tuple[str, str]]:
    out: set[tuple[str, str]] = set()
    for cycle in cycles:
        nodes = list(cycle)
        if len(nodes) > 1 and nodes[0] == nodes[-1]:
            nodes.pop()  # given closed (A, B, A)
        out.update(zip(nodes, nodes[1:] + nodes[:1], strict=True))
    return out


def _seqs_text(seqs: list[int]) -> str:
    if len(seqs) % 2 == 0 and seqs:  # pairs: (held lock's acquire, acquired lock's acquire)
        pairs = [f"{seqs[i]}→{seqs[i + 1]}" for i in range(0, len(seqs), 2)]
        shown = pairs[:_SEQS_SHOWN // 2]
        more = len(pairs) > len(shown)
    else:
        shown = [str(s) for s in seqs[:_SEQS_SHOWN]]
        more = len(seqs) > len(shown)
    return "seq " + ", ".join(shown) + (", …" if more else "")


def lock_order_dot(g: LockOrderGraph, title: str) -> str:
    """DOT source of a lock-order graph: ``held -> acquired`` edges labelled with the seqs of
    an example; the edges and locks of ``g.cycles`` red."""
    dot = _digraph("lock_order", _label(title))
    locks = set(g.locks) | {h for h, _, _ in g.edges} | {a for _, a, _ in g.edges}
    on_cycle = _cycle_edges(g.cycles)
    cycle_locks = {n for c in g.cycles for n in c}
    lid = _ids(locks, "l")
    for name, node in lid.items():
        dot.node(node, _label(name), shape="ellipse", **(_RED if name in cycle_locks else {}))
    for held, acquired, seqs in sorted(g.edges, key=lambda e: (e[0], e[1], list(e[2]))):
        style = _RED if (held, acquired) in on_cycle else {}
        dot.edge(lid[held], lid[acquired], _label(_seqs_text(list(seqs))), **style)
    return str(dot.source)


def _with_suffix(base: Path, suffix: str) -> Path:
    # not base.with_suffix: "x.wait-for" and "x.lock-order" must not both become "x.dot"
    return base.with_name(base.name + suffix)


def write_graph(source: str, base: Path) -> dict[str, str]:
    """Write ``source`` to BASE.dot, and BASE.svg when Graphviz's ``dot`` is installed.

    Returns ``{"dot": path, "svg": path}``; without ``dot`` (or when it fails) only
    ``{"dot": path, "hint": what to do}``. Never raises for a missing or failing ``dot``;
    OSError from writing the files is the caller's. Each file is written atomically, so a
    failed write leaves no partial file."""
    dot_path = _with_suffix(base, ".dot")
    write_atomic(dot_path, source.encode("utf-8"))  # no half-written file on a full disk
    out = {"dot": str(dot_path)}
    if shutil.which("dot") is None:
        out["hint"] = HINT
        return out
    svg_path = _with_suffix(base, ".svg")
    try:
        svg = graphviz.Source(source).pipe(format="svg", engine="dot", quiet=True)
    except graphviz.ExecutableNotFound:
        out["hint"] = HINT
        return out
    except graphviz.CalledProcessError as exc:
        err = exc.stderr.decode("utf-8", "replace").strip() if exc.stderr else ""
        out["hint"] = (f"Graphviz's dot failed on {dot_path} (exit {exc.returncode})"
                       + (f": {err}" if err else "")
                       + f"; try: dot -Tsvg {dot_path} -o {svg_path}")
        return out
    except OSError as exc:
        out["hint"] = (f"Graphviz's dot could not be run ({exc.strerror or exc}); "
                       f"try: dot -Tsvg {dot_path} -o {svg_path}")
        return out
    write_atomic(svg_path, svg)
    out["svg"] = str(svg_path)
    return out


def svg_of(source: str) -> str | None:
    """The SVG text Graphviz's ``dot`` draws for ``source``; None when ``dot`` is not
    installed or fails (the caller shows the DOT text instead)."""
    if shutil.which("dot") is None:
        return None
    try:
        svg: bytes = graphviz.Source(source).pipe(format="svg", engine="dot", quiet=True)
    except (graphviz.ExecutableNotFound, graphviz.CalledProcessError, OSError):
        return None
    return svg.decode("utf-8", "replace")


def draw_graphs(report: Report, data: TraceData, graphs_dir: Path, at_seq: int | None = None,
                stem: str | None = None, always_graph: bool = True) -> None:
    """Draw the graphs of ``data`` into ``graphs_dir``, adding their paths (and any hint)
    to ``report``, the analysis of ``data``.

    The wait-for graph is drawn for ``at_seq`` (default: the end of the trace), always when
    ``always_graph``, else only when the run deadlocked or stalled; the lock-order graph when
    locks were taken while holding others."""
    findings = report.findings
    name = stem or safe_stem(str(data.scenario.get("name", "trace")))
    graphs_dir.mkdir(parents=True, exist_ok=True)
    blocked = any(f.kind in ("deadlock", "stall") for f in findings)
    if always_graph or blocked or at_seq is not None:
        wg = wait_for_graph(data, at_seq)
        suffix = f".at-{at_seq}" if at_seq is not None else ""
        out = write_graph(wait_for_dot(wg, _title(data, at_seq)),
                          graphs_dir / f"{name}.wait-for{suffix}")
        report.graphs["wait_for"] = out.get("svg", out["dot"])
        if "hint" in out:
            report.hints.append(out["hint"])
    lo: LockOrderGraph = lock_order_graph(data)
    risky = any(f.kind == "potential_deadlock" for f in findings)
    if lo.edges and (always_graph or risky):
        out = write_graph(lock_order_dot(lo, f"lock order — {data.scenario.get('name', '')}"),
                          graphs_dir / f"{name}.lock-order")
        report.graphs["lock_order"] = out.get("svg", out["dot"])
        if "hint" in out and out["hint"] not in report.hints:
            report.hints.append(out["hint"])


def _title(data: TraceData, at_seq: int | None) -> str:
    name = data.scenario.get("name", "")
    status = data.outcome.get("status", "")
    when = f"after seq {at_seq}" if at_seq is not None else f"end of trace ({status})"
    return f"wait-for graph — {name} — {when}"
