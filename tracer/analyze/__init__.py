"""Analyses of a trace: each a pure function from a trace to findings (docs/formats.md §3).

- ``waitgraph``: deadlocks and stalls that did happen, and the wait-for graph of any moment;
- ``lockorder``: potential deadlocks, from the order in which locks are taken (lockdep);
- ``races``: data races, by happens-before with vector clocks (FastTrack epochs);
- ``misuse``: a lock released by an actor that does not hold it, and the like;
- ``invariants``: declared invariants that the final state breaks;
- ``outcome``: how the run ended: an actor's error, a timeout;
- ``profile``: where the run spent its time waiting (no findings, numbers).

:func:`analyze` runs them all. The graphs are data here too (:class:`WaitForGraph`,
:class:`LockOrderGraph`); drawing them is :mod:`tracer.render.graphs`' work, asked for by the
public API (:func:`tracer.api.analyze`) and the CLI.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from tracer._gc import gc_paused
from tracer.analyze._model import (
    KINDS,
    Finding,
    LockOrderGraph,
    TraceData,
    WaitForGraph,
    line_of,
    load_trace_data,
    parse_trace_data,
)
from tracer.analyze.invariants import find_invariant_violations
from tracer.analyze.lockorder import find_potential_deadlocks, lock_order_graph
from tracer.analyze.misuse import find_misuse
from tracer.analyze.outcome import find_outcome_findings
from tracer.analyze.profile import blocking_profile, render_profile
from tracer.analyze.races import find_races
from tracer.analyze.waitgraph import find_blocked_findings, wait_for_graph
from tracer.trace.state import state_of

__all__ = [
    "KINDS",
    "Finding",
    "LockOrderGraph",
    "Report",
    "TraceData",
    "WaitForGraph",
    "analyze",
    "expect_mismatch",
    "find_all",
    "load_trace_data",
    "lock_order_graph",
    "parse_trace_data",
    "render_profile",
    "wait_for_graph",
]


@dataclass
class Report:
    """Everything ``tracer analyze`` says about one trace."""

    source: str
    findings: list[Finding]
    profile: dict[str, Any]
    # the graphs drawn, kind -> file, and their hints: filled by tracer.render.graphs
    graphs: dict[str, str] = field(default_factory=dict)
    hints: list[str] = field(default_factory=list)

    @property
    def kinds(self) -> list[str]:
        return sorted({f.kind for f in self.findings})

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"trace": self.source,
                               "findings": [f.as_json() for f in self.findings],
                               "graphs": dict(self.graphs)}
        if self.hints:
            out["hints"] = list(self.hints)
        out["profile"] = self.profile
        return out


_ORDER = {k: i for i, k in enumerate(KINDS)}


def _finding_order(f: Finding) -> tuple[int, tuple[int, ...], str]:
    return _ORDER.get(f.kind, 99), f.events[:1], f.message


def find_all(data: TraceData) -> list[Finding]:
    """Every finding of every analysis, deadlocks first."""

    # the state pass, shared by the analyses: who holds what is derived once, and each
    # analysis skips at once what cannot occur
    state = state_of(data)
    findings = find_blocked_findings(data, state)
    findings += find_potential_deadlocks(data, state)
    findings += find_races(data, state)
    findings += find_invariant_violations(data)
    findings += find_misuse(data, state)
    findings += find_outcome_findings(data, state)
    if len(findings) > 1:
        findings.sort(key=_finding_order)
    return [_lined(data, f) for f in findings]


def _lined(data: TraceData, f: Finding) -> Finding:
    """``f`` with ``details["lines"]``: the YAML line of each of its events that has one
    (``[{"seq": 9, "actor": "t1", "line": 17}, ...]``) and the file they are in
    (``details["source"]``, the trace's ``meta.source``), for renderers that link them."""
    lines = []
    for seq in f.events:
        line = line_of(data, seq)
        if line is not None:
            lines.append({"seq": seq, "actor": data.events[seq].get("actor"), "line": line})
    if not lines:
        return f
    extra: dict[str, Any] = {"lines": lines}
    source = data.meta.get("source")
    if isinstance(source, str) and source:
        extra["source"] = source
    return replace(f, details={**f.details, **extra})


def analyze(data: TraceData) -> Report:
    """Run every analysis on ``data``: its findings and its blocking profile (no graphs:
    :func:`tracer.render.graphs.draw_graphs` adds them)."""

    with gc_paused():  # see tracer._gc: the analyses build many small acyclic objects
        findings = find_all(data)
        return Report(data.source, findings, blocking_profile(data))


def expect_mismatch(expect: Iterable[str], kinds: Iterable[str]) -> str | None:
    """How the finding kinds of a run (or of an exploration) differ from a scenario's
    ``expect``: None when they agree — the same set of kinds, each at least once — else what
    differs, as the end of a sentence ("did not show deadlock and showed race"). Both
    ``tracer run`` and the pytest plugin judge a scenario by it."""
    want, got = set(expect), set(kinds)
    if got == want:
        return None
    parts = []
    if want - got:
        parts.append(f"did not show {', '.join(sorted(want - got))}")
    if got - want:
        parts.append(f"showed {', '.join(sorted(got - want))}")
    return " and ".join(parts)
