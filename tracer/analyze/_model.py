"""What the analyses read and what they return.

Analyses read a :class:`TraceData`: the trace's parts as plain data (events are the JSON
objects as dicts, in seq order), checked once by :func:`load_trace_data` in one pass — a
million events are read at close to ``json.load`` speed, with no model object per event.
Each analysis is a pure function ``TraceData -> list[Finding]``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from tracer.trace._io import TraceError
from tracer.trace._model import FORMAT

KINDS = ("deadlock", "stall", "potential_deadlock", "race", "invariant", "misuse")
SEVERITY = {"deadlock": "error", "stall": "error", "race": "error", "invariant": "error",
            "misuse": "error", "potential_deadlock": "warning"}

_PHASED = {"acquire", "wait", "put", "get", "send", "recv", "join", "sleep"}


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
class TraceData:
    """A trace as plain data, ready for the analyses."""

    source: str
    scenario: dict[str, Any]
    meta: dict[str, Any]
    actors: list[dict[str, Any]]
    events: Sequence[dict[str, Any]]
    outcome: dict[str, Any]
    final: dict[str, Any] | None

    @property
    def primitive_types(self) -> dict[str, str]:
        """primitive name -> type, from the embedded scenario."""
        out = {}
        for name, spec in (self.scenario.get("primitives") or {}).items():
            out[name] = spec if isinstance(spec, str) else spec.get("type", "?")
        return out


def _fail(source: str, msg: str) -> TraceError:
    return TraceError(f"{source}: {msg}")


def parse_trace_data(raw: bytes | str, source: str = "<trace>") -> TraceData:
    """Check a trace's structure in one pass and return it as :class:`TraceData`.

    The checks: JSON object, the format version, the parts' types, and for events: seq runs
    0..N-1 in order, each event names a known actor (or null for engine events) and an op,
    and every ``return`` follows a ``call`` of the same actor, op and target."""
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise _fail(source, f"not valid JSON ({exc}); a trace written by 'tracer run' is "
                            "expected") from None
    if not isinstance(data, dict):
        raise _fail(source, f"a trace is a JSON object, got {type(data).__name__}")
    fmt = data.get("format")
    if fmt != FORMAT:
        raise _fail(source, f"format is {fmt!r}, but this tracer reads {FORMAT!r}")
    for part, typ in (("scenario", dict), ("meta", dict), ("actors", list), ("events", list),
                      ("outcome", dict)):
        if not isinstance(data.get(part), typ):
            raise _fail(source, f"'{part}' is missing or not a JSON {typ.__name__}")
    names = set()
    for i, a in enumerate(data["actors"]):
        if not isinstance(a, dict) or not isinstance(a.get("name"), str):
            raise _fail(source, f"actors[{i}] has no name")
        names.add(a["name"])
    events = data["events"]
    open_calls: dict[tuple[Any, Any, Any], int] = {}
    for i, e in enumerate(events):
        if not isinstance(e, dict):
            raise _fail(source, f"events[{i}] is not an object")
        if e.get("seq") != i:
            raise _fail(source, f"events[{i}] has seq {e.get('seq')!r}; seq must run 0, 1, 2, "
                                "... in order")
        actor = e.get("actor")
        op = e.get("op")
        if not isinstance(op, str):
            raise _fail(source, f"event seq {i} has no op")
        if actor is not None and actor not in names:
            raise _fail(source, f"event seq {i} names actor {actor!r}, which is not in "
                                "'actors'")
        phase = e.get("phase")
        if phase is not None:
            if op not in _PHASED:
                raise _fail(source, f"event seq {i}: op {op!r} has no phases")
            call_key = (actor, op, e.get("target"))
            if phase == "call":
                open_calls[call_key] = i
            elif phase == "return":
                if open_calls.pop(call_key, None) is None:
                    raise _fail(source, f"event seq {i} is the return of {actor} {op} "
                                        f"{e.get('target') or ''} with no call before it")
            else:
                raise _fail(source, f"event seq {i} has phase {phase!r} (call or return)")
    final = data.get("final")
    return TraceData(source, data["scenario"], data["meta"], data["actors"], events,
                     data["outcome"], final if isinstance(final, dict) else None)


def load_trace_data(path: str | Path) -> TraceData:
    """Read a trace file for analysis (raises TraceError with the first problem)."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except FileNotFoundError:
        raise _fail(str(path), "no such file") from None
    except IsADirectoryError:
        raise _fail(str(path), "is a folder, not a trace file") from None
    except OSError as exc:
        raise _fail(str(path), f"cannot be read: {exc.strerror}") from None
    return parse_trace_data(raw, str(path))


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
