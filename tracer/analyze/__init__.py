"""Analyses of a trace: each a pure function from a trace to findings (docs/formats.md §3).

- ``waitgraph``: deadlocks and stalls that did happen, and the wait-for graph of any moment;
- ``lockorder``: potential deadlocks, from the order in which locks are taken (lockdep);
- ``races``: data races, by happens-before with vector clocks (FastTrack epochs);
- ``misuse``: a lock released by an actor that does not hold it, and the like;
- ``invariants``: declared invariants that the final state breaks;
- ``outcome``: how the run ended: an actor's error, a timeout;
- ``profile``: where the run spent its time waiting (no findings, numbers).

:func:`analyze` runs them all and, on request, draws the graphs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tracer._gc import gc_paused
from tracer.analyze._model import (
    KINDS,
    Finding,
    LockOrderGraph,
    TraceData,
    WaitForGraph,
    load_trace_data,
    parse_trace_data,
    trace_data_from_run,
)
from tracer.analyze.invariants import find_invariant_violations
from tracer.analyze.lockorder import find_potential_deadlocks, lock_order_graph
from tracer.analyze.misuse import find_misuse
from tracer.analyze.outcome import find_outcome_findings
from tracer.analyze.profile import blocking_profile, render_profile
from tracer.analyze.races import find_races
from tracer.analyze.waitgraph import find_blocked_findings, wait_for_graph
from tracer.render.graphs import lock_order_dot, wait_for_dot, write_graph
from tracer.trace import safe_stem
from tracer.trace.state import state_of

__all__ = [
    "KINDS",
    "Finding",
    "LockOrderGraph",
    "Report",
    "TraceData",
    "WaitForGraph",
    "analyze",
    "find_all",
    "load_trace_data",
    "parse_trace_data",
    "render_profile",
    "trace_data_from_run",
]


@dataclass
class Report:
    """Everything ``tracer analyze`` says about one trace."""

    source: str
    findings: list[Finding]
    profile: dict[str, Any]
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
    return findings


def analyze(data: TraceData, graphs_dir: Path | None = None, at_seq: int | None = None,
            stem: str | None = None, always_graph: bool = True) -> Report:
    """Run every analysis on ``data``; draw graphs into ``graphs_dir`` when given.

    The wait-for graph is drawn for ``at_seq`` (default: the end of the trace), always when
    ``always_graph``, else only when the run deadlocked or stalled; the lock-order graph when
    locks were taken while holding others."""

    with gc_paused():  # see tracer._gc: the analyses build many small acyclic objects
        findings = find_all(data)
        report = Report(data.source, findings, blocking_profile(data))
    if graphs_dir is None:
        return report

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
    return report


def _title(data: TraceData, at_seq: int | None) -> str:
    name = data.scenario.get("name", "")
    status = data.outcome.get("status", "")
    when = f"after seq {at_seq}" if at_seq is not None else f"end of trace ({status})"
    return f"wait-for graph — {name} — {when}"
