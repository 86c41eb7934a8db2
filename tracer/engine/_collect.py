"""The end of a run: how it ended (its outcome, from what the watchdog saw and how each actor
ended), every actor's events merged into one sequence, each actor's status, and the
:class:`RunResult` that is the trace."""

from __future__ import annotations

import operator
import platform
from collections.abc import Callable
from dataclasses import dataclass, field
from operator import itemgetter
from pathlib import Path
from typing import Any

from tracer._gc import gc_paused
from tracer._version import __version__
from tracer.engine._compile import copy_value
from tracer.engine._seam import ActorCtx, Record
from tracer.engine._state import RunState
from tracer.engine._tracedata import trace_data_from_run
from tracer.scenario import Plan
from tracer.trace import TraceData
from tracer.trace._io import format_events, render_trace, write_atomic
from tracer.trace.waits import Blocked

_CMP: dict[str, Callable[[Any, Any], Any]] = {
    "<": operator.lt, "<=": operator.le, "==": operator.eq,
    "!=": operator.ne, ">=": operator.ge, ">": operator.gt,
}

EngineEvents = list[tuple[str, dict[str, Any]]]  # (op, payload) the engine records at the end


@dataclass
class RunResult:
    """What a run produced: the events and how it ended. ``to_json()`` is the trace file."""

    plan: Plan
    status: str
    detail: str
    records: list[Record]  # sorted by seq; ts on the engine's clock, see ``t0``
    actors: list[dict[str, Any]]
    final: dict[str, Any]
    blocked: list[Blocked]
    duration: float
    started_at: str
    t0: float = 0.0
    mode: str = "run"
    seed: int | None = None
    invariant_failures: list[str] = field(default_factory=list)

    @property
    def event_count(self) -> int:
        return len(self.records)

    def to_json(self) -> str:
        head = {
            "scenario": self.plan.scenario.as_mapping(),
            "meta": {
                "tracer_version": __version__,
                "python": platform.python_version(),
                "started_at": self.started_at,
                "mode": self.mode,
                "seed": self.seed,
                "duration": round(self.duration, 6),
                "source": self.plan.source,
            },
            "actors": self.actors,
        }
        tail = {"outcome": {"status": self.status, "detail": self.detail},
                "final": self.final}
        return render_trace(head, format_events(self.records, self.t0), tail)

    def trace_data(self, source: str = "<run>") -> TraceData:
        """The run as the analyses read it: ``parse_trace_data(self.to_json(), source)``,
        built from the records in memory (see :mod:`tracer.engine._tracedata`)."""
        return trace_data_from_run(self, source)

    def write(self, path: str | Path) -> str:
        """Write the trace file (atomically); returns its text."""
        p = Path(path)
        with gc_paused():
            text = self.to_json()
        write_atomic(p, text)
        return text


def check_invariants(plan: Plan, final: dict[str, Any]) -> list[str]:
    """Messages for the declared invariants that the final state breaks."""
    out = []
    for inv in plan.scenario.invariants:
        value = final.get(inv.var)
        try:
            holds = bool(_CMP[inv.op](value, inv.value))
        except TypeError:
            holds = False
        if not holds:
            out.append(f"invariant {inv.var} {inv.op} {inv.value!r} failed: "
                       f"{inv.var} = {value!r} at the end of the run")
    return out


def judge_blocked(status: str, detail: str, blocked: list[Blocked],
                  engine: EngineEvents) -> tuple[str, str]:
    """A run found blocked ended in a deadlock or a stall: its status, its detail, and the
    engine's events that say so."""
    if not blocked:
        return status, detail
    for b in blocked:
        engine.append((b.kind, {"actors": list(b.actors), "detail": b.message,
                                "objects": list(b.objects), "waits": list(b.waits)}))
    return ("deadlock" if any(b.kind == "deadlock" for b in blocked) else "stall",
            "; ".join(b.message for b in blocked))


def still_running_daemons(run: RunState, status: str) -> list[str]:
    """The daemon actors a finished run abandons (if they do not end meanwhile)."""
    return [c.name for c in run.ctx.values()
            if status == "ok" and c.daemon and c.state in ("running", "queued")]


def outcome(run: RunState, status: str, detail: str, abandoned: list[str], stuck: list[str],
            engine: EngineEvents, detected_at: float | None) -> tuple[str, str, list[str]]:
    """Once every actor has stopped: record the engine's account of the end, and fold how
    the actors ended (failed, killed, could not be stopped) into the run's status and
    detail; returns them and the daemons that were abandoned."""
    rt = run.rt
    # a daemon's `end` is recorded once it has stopped, so it is its last event; one that
    # ended by itself meanwhile has its own
    abandoned = [n for n in abandoned if n not in run.results]
    for name in abandoned:
        rt.engine_event("end", actor=name, result="abandoned")
    for op, payload in engine:
        rt.engine_event(op, ts=detected_at, **payload)
    if status == "ok" and run.lost:  # a killed actor, the others ended
        status, detail = "error", "; ".join(run.lost)
    elif status == "timeout" and run.lost:
        detail = f"{'; '.join(run.lost)} (then: {detail})"
    if status == "ok" and run.errors:
        status = "error"
        detail = "; ".join(f"{n} failed: {e}" for n, e in run.errors.items())
    ours = [f"{n} failed: {e}" for n, e in run.errors.items()
            if e.startswith("internal error in tracer")]
    if ours and status in ("deadlock", "stall"):
        # what the others then waited for is tracer's failure, not the scenario's
        status, detail = "error", f"{'; '.join(ours)} (then: {detail})"
    if status == "ok":
        detail = "every actor finished"
        if abandoned:
            detail += f"; daemon actors abandoned: {', '.join(abandoned)}"
    if stuck:
        detail += f"; {len(stuck)} actor thread(s) could not be stopped: {', '.join(stuck)}"
    return status, detail, abandoned


def result(run: RunState, status: str, detail: str, blocked: list[Blocked],
           abandoned: list[str], started_at: str) -> RunResult:
    """The trace of the run (every actor has stopped)."""
    rt = run.rt
    duration = rt.clock() - rt.t0
    records = collect(run)
    if run.capped is not None:  # an actor whose end came after the cap did not end
        ended = {r[2].actor for r in records if r[2].op == "end"}
        for name in list(run.results):
            if name not in ended:
                del run.results[name]
    blocked_names = {a for b in blocked for a in b.actors}
    actors = []
    for ap in run.plan.actors:
        c = run.ctx[ap.name]
        actors.append({
            "name": c.name, "kind": c.kind, "pid": c.pid or None, "tid": c.tid or None,
            "daemon": c.daemon,
            "status": actor_status(run, c, blocked_names, abandoned),
            **({"pool": ap.pool} if ap.pool else {}),
        })
    final = copy_value(run.shared)
    return RunResult(run.plan, status, detail, records, actors, final, blocked, duration,
                     started_at, rt.t0, invariant_failures=check_invariants(run.plan, final))


def actor_status(run: RunState, c: ActorCtx, blocked: set[str], abandoned: list[str]) -> str:
    if c.name in abandoned:
        return "abandoned"
    if c.name in run.results:
        return run.results[c.name]
    if c.name in blocked:
        return "blocked"
    if c.state in ("pending", "starting") or (c.state == "queued" and c.pid == 0):
        return "not_started"
    return "cancelled"


def collect(run: RunState) -> list[Record]:
    """All events in seq order (times are made relative when the trace is written)."""
    merged: list[Record] = []
    for c in run.ctx.values():
        merged.extend(c.buf)
        if run.capped is not None:
            c.buf.clear()  # (the memory of a capped run: one copy of its events at most)
    merged.sort(key=itemgetter(0))  # each buffer is a sorted run: timsort merges them
    engine = run.rt.engine_buf
    if run.capped is not None and len(merged) > run.capped:
        # the first `cap` events of the actors, the engine's events among them, and the
        # engine's account of the end (recorded once the cap was seen, so after them)
        del merged[run.capped:]
        last = merged[-1][0]
        engine = [r for r in engine if r[0] <= last or r[2].op == "capped"]
    merged.extend(engine)
    merged.sort(key=itemgetter(0))
    if merged and merged[-1][0] != len(merged) - 1:
        merged = renumber(merged)
    return merged


def renumber(records: list[Record]) -> list[Record]:
    """Close the gaps in seq that a killed child leaves (its unshipped events took numbers
    from the shared counter): the order stays, seq runs 0..N-1 again, and engine events'
    references to seqs follow."""
    new = {r[0]: i for i, r in enumerate(records)}
    out: list[Record] = []
    for i, (_, ts, tag, payload) in enumerate(records):
        fixed = payload
        if payload and "waits" in payload:
            waits = [{**w, "call_seq": new.get(w.get("call_seq"), w.get("call_seq"))}
                     for w in payload["waits"]]
            fixed = {**payload, "waits": waits}
        out.append((i, ts, tag, fixed))
    return out
