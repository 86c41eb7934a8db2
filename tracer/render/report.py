"""``tracer analyze --format text``: a report a person can act on."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from tracer.analyze import Report

_TITLE = {
    "deadlock": "DEADLOCK", "stall": "STALL", "potential_deadlock": "POTENTIAL DEADLOCK",
    "race": "DATA RACE", "invariant": "INVARIANT BROKEN", "misuse": "MISUSE",
    "error": "ACTOR ERROR", "timeout": "TIMEOUT",
}


def render_text(report: Report, profile_lines: list[str] | None = None) -> Iterator[str]:
    """Lines of the text report: a summary, each finding, the blocking profile, the graphs."""
    n = len(report.findings)
    if n == 0:
        yield f"{report.source}: no findings"
    else:
        counts: dict[str, int] = {}
        for f in report.findings:
            counts[f.kind] = counts.get(f.kind, 0) + 1
        parts = ", ".join(f"{c} {k}" for k, c in counts.items())
        yield f"{report.source}: {n} finding{'s' if n != 1 else ''} ({parts})"
    for i, f in enumerate(report.findings, 1):
        yield ""
        yield f"[{i}] {_TITLE.get(f.kind, f.kind.upper())} ({f.severity})"
        yield f"    {f.message}"
        yield f"    actors: {', '.join(f.actors) or '-'}   objects: {', '.join(f.objects) or '-'}"
        if f.events:
            shown = ", ".join(str(s) for s in f.events[:12])
            more = f" (+{len(f.events) - 12} more)" if len(f.events) > 12 else ""
            yield f"    events (seq): {shown}{more}   — see them with: tracer show TRACE"
    if profile_lines:
        yield ""
        yield from profile_lines
    if report.graphs:
        yield ""
        for kind, path in sorted(report.graphs.items()):
            yield f"graph ({kind.replace('_', '-')}): {path}"
    for hint in report.hints:
        yield f"note: {hint}"


def summary_counts(findings: list[Any]) -> str:
    counts: dict[str, int] = {}
    for f in findings:
        counts[f.kind] = counts.get(f.kind, 0) + 1
    return ", ".join(f"{c} {k}" for k, c in counts.items()) or "no findings"
