"""What the analyses read and what they return.

Analyses read a :class:`TraceData`: the trace's parts as plain data (events in seq order),
checked once by the one trace reader, :mod:`tracer.trace._read` (``load_trace_data`` and
``parse_trace_data``, re-exported here).
A run still in memory gives the same TraceData without any JSON: ``RunResult.trace_data()``
(the engine builds it; analyses never see a run).
Each analysis is a pure function ``TraceData -> list[Finding]``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tracer.trace._read import Ev, TraceData, load_trace_data, parse_trace_data
from tracer.trace.waits import at_line, source_of

__all__ = ["KINDS", "SEVERITY", "Ev", "Finding", "LockOrderGraph", "TraceData", "WaitForGraph",
           "line_of", "load_trace_data", "parse_trace_data", "where"]

KINDS = ("deadlock", "stall", "potential_deadlock", "race", "invariant", "misuse", "error",
         "timeout")
SEVERITY = {"deadlock": "error", "stall": "error", "race": "error", "invariant": "error",
            "misuse": "error", "potential_deadlock": "warning", "error": "error",
            "timeout": "error"}


def line_of(data: TraceData, seq: int) -> int | str | None:
    """The YAML line of event ``seq`` of ``data`` (None: an older trace, or an engine's
    event); in a program's trace, the place in its code (``bank.py:12``)."""
    events = data.events
    if not 0 <= seq < len(events):
        return None
    line = events[seq].get("line")
    if isinstance(line, str):
        return line
    return line if isinstance(line, int) and not isinstance(line, bool) else None


def where(data: TraceData, seq: int) -> str:
    """Where event ``seq``'s step is, as messages say it: ``scenarios/x.yaml:12`` (the file
    is the trace's ``meta.source``); empty when the event has no line."""
    return at_line(source_of(data), line_of(data, seq))


@dataclass(frozen=True)
class Finding:
    """One problem found in a trace (docs/formats.md section 3)."""

    kind: str
    actors: tuple[str, ...]
    objects: tuple[str, ...]
    message: str
    events: tuple[int, ...]
    details: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def severity(self) -> str:
        return SEVERITY.get(self.kind, "error")

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "kind": self.kind, "severity": self.severity, "actors": list(self.actors),
            "objects": list(self.objects), "message": self.message, "events": list(self.events),
        }
        if self.details:
            out["details"] = self.details
        return out


@dataclass
class WaitForGraph:
    """Who holds what and who waits for what at one moment of a trace (for drawing)."""

    seq: int | None  # the moment: after this event (None: the end of the trace)
    actors: list[str]  # every actor, in trace order
    resources: dict[str, str]  # primitive or actor name -> its type ("lock", ..., "actor")
    holds: list[tuple[str, str, int]]  # (resource, holder actor, times held)
    waits: list[tuple[str, str, str]]  # (waiting actor, op, target)
    cycle: set[str] = field(default_factory=set)  # actor and resource names on a deadlock
    stalled: set[str] = field(default_factory=set)  # actors blocked on what nobody provides


@dataclass
class LockOrderGraph:
    """Lock-order edges: ``held -> acquired`` when an actor acquires while holding."""

    locks: list[str]
    edges: list[tuple[str, str, list[int]]]  # (held, acquired, seqs: the held lock's acquire
    #                                           return and the acquired lock's acquire return)
    cycles: list[list[str]] = field(default_factory=list)  # potential deadlock cycles
