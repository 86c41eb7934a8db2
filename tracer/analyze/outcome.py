"""How the run ended, as findings: an actor that ended with an error, a run that hit its
timeout, a deadlock or stall outcome the trace has no engine event for.

An actor's error (a ``fail`` step, a step the primitive refused, a process killed by a
signal) is the natural way for a scenario to say "this must never happen", so it is a finding
like any other (kind ``error``): the actor, the step (the event that carries the error when a
step was refused, else the actor's last event before it ended) and the error's text. A
``timeout`` engine event is a finding of kind ``timeout``. Deadlocks and stalls come from
:mod:`tracer.analyze.waitgraph`, which reads the engine's events; only an outcome that says
``deadlock`` or ``stall`` with no such event (a hand-made or cut trace) is reported here, so
no problem is reported twice.

A pure function of the trace: a run whose outcome is ``ok`` had no error (the engine says
``error`` whenever an actor failed and nothing worse happened), so it costs nothing there.
"""

from __future__ import annotations

from typing import Any

from tracer.analyze._model import Finding, TraceData
from tracer.analyze.misuse import reports_error
from tracer.trace.state import TraceState, state_of
from tracer.trace.waits import at_line, source_of

_BLOCKED = ("deadlock", "stall")


def find_outcome_findings(data: TraceData,
                          state: TraceState | None = None) -> list[Finding]:
    """``error`` findings (one per actor that ended with an error, in trace order), then a
    ``timeout`` finding, then a ``deadlock``/``stall`` finding from the outcome alone when the
    trace has no engine event of that kind."""
    status = str(data.outcome.get("status") or "")
    failed = [a for a in data.actors if isinstance(a, dict) and a.get("status") == "error"]
    if status == "ok" and not failed:
        return []
    if state is None:
        state = state_of(data)
    out = _errors(data) if "end" in state.ops else []
    for e in data.events:
        if e.actor is None and e.op == "timeout":
            out.append(Finding("timeout", _strs(e.get("actors")), _strs(e.get("objects")),
                               str(e.get("detail") or "the run hit its timeout"), (e.seq,)))
    if status == "timeout" and "timeout" not in state.ops:
        out.append(_from_outcome(data, "timeout", lambda a: a.get("status") in (
            "cancelled", "blocked")))
    if status in _BLOCKED and status not in state.ops:
        out.append(_from_outcome(data, status, lambda a: a.get("status") == "blocked"))
    return out


def _errors(data: TraceData) -> list[Finding]:
    """One finding per ``end`` event with result ``error``, naming the step that failed."""
    last: dict[str, Any] = {}  # actor -> its latest event before the end
    refused: dict[str, Any] = {}  # actor -> its latest event that carries an error
    out: list[Finding] = []
    source = source_of(data)
    for e in data.events:
        actor = e.actor
        if actor is None:
            continue
        if e.op != "end":
            last[actor] = e
            if "error" in e:
                refused[actor] = e
            continue
        if e.result != "error":
            continue
        error = str(e.get("error") or "an error")
        step = refused.get(actor)
        if step is not None and reports_error(step) and step.get("error") == e.get("error"):
            continue  # the misuse finding reports it, and says the actor ended with it
        at = "at"
        if step is None:
            step = last.get(actor)
            at = "after"
        seqs: tuple[int, ...] = (e.seq,)
        objects: tuple[str, ...] = ()
        where = ""
        details: dict[str, Any] = {"error": error}
        if step is not None:
            seqs = (step.seq, e.seq)
            target = step.target
            if isinstance(target, str) and at == "at":
                objects = (target,)
            what = step.op + (f" {target}" if isinstance(target, str) else "")
            line = step.get("line")
            where = (f" (at seq {step.seq}: {what}" if at == "at" else
                     f" (its last event: seq {step.seq}, {what}") + (
                f", {at_line(source, line)}" if line is not None else "") + ")"
            details["step"] = {"seq": step.seq, "op": step.op, "target": target,
                               "phase": step.phase, "where": at,
                               **({"line": line} if line is not None else {})}
        path, verb, own_line = e.get("step"), e.get("verb"), e.get("line")
        said = error if error.startswith(f"{actor} ") else f"{actor} failed: {error}"
        if isinstance(path, str):  # the engine said which step failed (version 1.1 traces)
            details["path"] = path
            details["verb"] = verb
            spot = ", ".join(str(x) for x in (
                at_line(source, own_line) if own_line is not None else None, verb) if x)
            spot = spot.replace(", ", ": ", 1) if own_line is not None else spot
            said = f"{actor} failed at {path}" + (f" ({spot})" if spot else "") + f": {error}"
            # the refused op's event is worth naming; "its last event" (a with releasing
            # after the failure, say) is not: the step is named
            where = where if at == "at" else ""
        if own_line is not None:
            details["line"] = own_line
            if not isinstance(path, str):
                where = f" ({at_line(source, own_line)}" + (f"; {where[2:]}" if where else ")")
        out.append(Finding("error", (actor,), objects, f"{said}{where}",
                           seqs, details))
    return out


def _from_outcome(data: TraceData, kind: str, involved: Any) -> Finding:
    actors = tuple(str(a["name"]) for a in data.actors
                   if isinstance(a, dict) and "name" in a and involved(a))
    detail = str(data.outcome.get("detail") or f"the run ended in a {kind}")
    return Finding(kind, actors, (), detail, ())


def _strs(xs: Any) -> tuple[str, ...]:
    return tuple(x for x in xs or () if isinstance(x, str))
