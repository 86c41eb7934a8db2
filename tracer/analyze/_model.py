"""What the analyses read and what they return.

Analyses read a :class:`TraceData`: the trace's parts as plain data (events are the JSON
objects as dicts, in seq order), checked once by :func:`load_trace_data` in one pass — a
million events are read at close to ``json.load`` speed, with no model object per event.
A run still in memory gives the same TraceData without any JSON: :func:`trace_data_from_run`.
Each analysis is a pure function ``TraceData -> list[Finding]``.
"""

from __future__ import annotations

import io
import platform
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import orjson

from tracer import __version__ as _VERSION
from tracer._gc import gc_paused
from tracer.trace._io import TraceError
from tracer.trace._model import FORMAT

if TYPE_CHECKING:
    from tracer.engine._run import RunResult

KINDS = ("deadlock", "stall", "potential_deadlock", "race", "invariant", "misuse", "error",
         "timeout")
SEVERITY = {"deadlock": "error", "stall": "error", "race": "error", "invariant": "error",
            "misuse": "error", "potential_deadlock": "warning", "error": "error",
            "timeout": "error"}

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
    events: Sequence[Any]  # Ev objects (or dicts, in hand-made TraceData)
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


_MISSING: Any = object()


class Ev:
    """One event, compact: a trace of a million events must fit in about twice its file.

    It answers ``e.get(key)``, ``e[key]`` and ``key in e`` like the JSON object it was
    read from; the common fields are slots, and names are interned (shared by all events)."""

    __slots__ = ("actor", "item", "op", "phase", "rest", "result", "seq", "target", "ts",
                 "value")
    seq: int
    ts: float
    actor: str | None
    op: str
    target: Any
    phase: str | None
    result: Any
    value: Any
    item: Any
    rest: dict[str, Any] | None

    def get(self, key: str, default: Any = None) -> Any:
        if key in _CORE:
            v = getattr(self, key)
            return default if v is None else v
        rest = self.rest  # no exception for the other keys: ``"error" in e`` is asked a lot
        return rest.get(key, default) if rest is not None else default

    def __getitem__(self, key: str) -> Any:
        v = self.get(key, _MISSING)
        if v is _MISSING:
            raise KeyError(key)
        return v

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, str):
            return False
        if key in _CORE:
            return getattr(self, key) is not None
        rest = self.rest
        return rest is not None and key in rest

    def as_dict(self) -> dict[str, Any]:
        out = {k: getattr(self, k) for k in ("seq", "ts", "actor", "op", "target", "phase",
                                                "result", "value", "item")}
        out = {k: v for k, v in out.items() if v is not None or k == "actor"}
        out.update(self.rest or {})
        return out


class _Reader:
    """Checks each event as it comes and turns it into an :class:`Ev`."""

    def __init__(self, source: str, names: set[str]) -> None:
        self.source = source
        self.names = names
        self.events: list[Ev] = []
        self.open_calls: dict[tuple[Any, Any, Any], int] = {}
        self.strings: dict[str, str] = {}

    def add(self, e: Any) -> None:
        i = len(self.events)
        source = self.source
        if not isinstance(e, dict):
            raise _fail(source, f"events[{i}] is not an object")
        get = e.get
        if get("seq") != i:
            raise _fail(source, f"events[{i}] has seq {get('seq')!r}; seq must run 0, 1, 2, "
                                "... in order")
        actor = get("actor")
        op = get("op")
        ts = get("ts")
        target = get("target")
        phase = get("phase")
        result = get("result")
        if op.__class__ is not str:
            raise _fail(source, f"event seq {i} has no op")
        if actor is not None and actor not in self.names:
            raise _fail(source, f"event seq {i} names actor {actor!r}, which is not in "
                                "'actors'")
        if ts.__class__ is not float and ts.__class__ is not int:
            raise _fail(source, f"event seq {i} has no time (ts)")
        if phase is not None:
            if op not in _PHASED:
                raise _fail(source, f"event seq {i}: op {op!r} has no phases")
            call_key = (actor, op, target)
            if phase == "call":
                self.open_calls[call_key] = i
            elif phase == "return":
                if self.open_calls.pop(call_key, None) is None:
                    raise _fail(source, f"event seq {i} is the return of {actor} {op} "
                                        f"{target or ''} with no call before it")
            else:
                raise _fail(source, f"event seq {i} has phase {phase!r} (call or return)")
        intern = self.strings.setdefault
        ev = Ev.__new__(Ev)
        ev.seq = i
        ev.ts = ts
        ev.actor = intern(actor, actor) if actor is not None else None
        ev.op = intern(op, op)
        ev.target = intern(target, target) if target.__class__ is str else target
        ev.phase = intern(phase, phase) if phase is not None else None
        ev.result = intern(result, result) if result.__class__ is str else result
        ev.value = get("value")
        ev.item = get("item")
        known = 4 + (target is not None) + (phase is not None) + (result is not None) \
            + ("value" in e) + ("item" in e)
        ev.rest = {k: v for k, v in e.items() if k not in _CORE} if len(e) > known else None
        self.events.append(ev)


_CORE = frozenset(("seq", "ts", "actor", "op", "target", "phase", "result", "value", "item"))


def _check_head(data: Any, source: str, with_events: bool) -> set[str]:
    if not isinstance(data, dict):
        raise _fail(source, f"a trace is a JSON object, got {type(data).__name__}")
    fmt = data.get("format")
    if fmt != FORMAT:
        raise _fail(source, f"format is {fmt!r}, but this tracer reads {FORMAT!r}")
    parts: tuple[tuple[str, type], ...] = (("scenario", dict), ("meta", dict), ("actors", list),
                                           ("outcome", dict))
    if with_events:
        parts += (("events", list),)
    for part, typ in parts:
        if not isinstance(data.get(part), typ):
            raise _fail(source, f"'{part}' is missing or not a JSON {typ.__name__}")
    names = set()
    for i, a in enumerate(data["actors"]):
        if not isinstance(a, dict) or not isinstance(a.get("name"), str):
            raise _fail(source, f"actors[{i}] has no name")
        names.add(a["name"])
    return names


def _finish(data: dict[str, Any], source: str, events: list[Ev]) -> TraceData:
    final = data.get("final")
    return TraceData(source, data["scenario"], data["meta"], data["actors"], events,
                     data["outcome"], final if isinstance(final, dict) else None)


def _bad_json(source: str, exc: Exception) -> TraceError:
    return _fail(source, f"not valid JSON ({exc}); a trace written by 'tracer run' is expected")


def parse_trace_data(raw: bytes | str, source: str = "<trace>") -> TraceData:
    """Check a trace's structure in one pass and return it as :class:`TraceData`.

    The checks: JSON object, the format version, the parts' types, and for events: seq runs
    0..N-1 in order, each event names a known actor (or null for engine events) and an op,
    and every ``return`` follows a ``call`` of the same actor, op and target."""
    raw_bytes = raw.encode("utf-8") if isinstance(raw, str) else raw
    with gc_paused():
        return _read_lines(io.BytesIO(raw_bytes), source, raw_bytes)


def _read_lines(f: BinaryIO, source: str, whole: bytes | None = None) -> TraceData:
    """Read a trace as tracer writes it (one event per line) without ever holding all the
    events as JSON objects; any other layout of valid JSON is read whole instead."""
    head: list[bytes] = []
    tail: list[bytes] = []
    reader: _Reader | None = None
    loads = orjson.loads
    for line in f:
        if reader is None:
            if line.rstrip().endswith(b'"events":['):
                head.append(line.rstrip()[: -len(b'"events":[')])
                try:
                    skeleton = loads(b"".join(head).rstrip().rstrip(b",") + b"}")
                except orjson.JSONDecodeError:
                    break
                reader = _Reader(source, _check_head_partial(skeleton, source))
                continue
            head.append(line)
        elif tail or line.startswith(b"]"):
            tail.append(line)
        else:
            try:
                reader.add(loads(line.rstrip().rstrip(b",")))
            except orjson.JSONDecodeError:
                reader = None  # not our layout after all
                break
    if reader is not None and tail:
        try:
            rest = loads(b"{" + b"".join(tail).lstrip().lstrip(b"]").lstrip().lstrip(b",")) \
                if b"".join(tail).strip() != b"]}" else {}
            skeleton.update(rest)
        except orjson.JSONDecodeError as exc:
            raise _bad_json(source, exc) from None
        _check_head(skeleton, source, with_events=False)
        return _finish(skeleton, source, reader.events)
    # the general case: the whole document at once
    if whole is None:
        f.seek(0)
        whole = f.read()
    try:
        data = loads(whole)
    except orjson.JSONDecodeError as exc:
        raise _bad_json(source, exc) from None
    names = _check_head(data, source, with_events=True)
    general = _Reader(source, names)
    for e in data["events"]:
        general.add(e)
    return _finish(data, source, general.events)


def _check_head_partial(data: Any, source: str) -> set[str]:
    """The actors' names from the part of the trace before its events."""
    if not isinstance(data, dict):
        raise _fail(source, f"a trace is a JSON object, got {type(data).__name__}")
    fmt = data.get("format")
    if fmt != FORMAT:
        raise _fail(source, f"format is {fmt!r}, but this tracer reads {FORMAT!r}")
    actors = data.get("actors")
    if not isinstance(actors, list):
        raise _fail(source, "'actors' is missing or not a JSON list")
    return {a["name"] for a in actors if isinstance(a, dict) and isinstance(a.get("name"), str)}


# --- straight from a run, without its trace file ---------------------------------------------

_OPTS = orjson.OPT_NON_STR_KEYS
_SCALARS = frozenset((str, int, bool, type(None)))
_INF = float("inf")
_VALUE_ITEM = frozenset(("value", "item"))
_TAG_KEYS = frozenset(("seq", "ts", "actor", "op", "target", "phase", "result"))
_PYTHON = platform.python_version()
# the scenario embedded last by trace_data_from_run, and its JSON: (scenario object, bytes)
_scenario_json: tuple[Any, bytes] | None = None


def _as_json(value: Any) -> Any:
    """``value`` as writing it to JSON and reading it back gives it (tuples become lists,
    keys become strings, NaN and infinities become null); scalars come back as they are."""
    cls = value.__class__
    if cls in _SCALARS or (cls is float and -_INF < value < _INF):
        return value
    return orjson.loads(orjson.dumps(value, option=_OPTS))


def _as_json_dict(d: dict[str, Any]) -> dict[str, Any]:
    """:func:`_as_json` for a dict of its own (``d`` itself when it is plain already)."""
    for k, v in d.items():
        cls = v.__class__
        if not (cls in _SCALARS or (cls is float and -_INF < v < _INF)) or \
                k.__class__ is not str:
            loaded: dict[str, Any] = orjson.loads(orjson.dumps(d, option=_OPTS))
            return loaded
    return d


def _scenario_of(result: RunResult) -> dict[str, Any]:
    """The embedded scenario, as its JSON reads back: a new dict each time, from a text made
    once per plan (an exploration analyzes thousands of runs of one plan)."""
    global _scenario_json
    scenario = result.plan.scenario
    cached = _scenario_json
    if cached is None or cached[0] is not scenario:
        cached = _scenario_json = (scenario, orjson.dumps(scenario.as_mapping(),
                                                         option=_OPTS))
    loaded: dict[str, Any] = orjson.loads(cached[1])
    return loaded


def trace_data_from_run(result: RunResult, source: str = "<run>") -> TraceData:
    """The :class:`TraceData` of a finished run, built from its records in memory: equal to
    ``parse_trace_data(result.to_json(), source)`` (the same parts, events, times rounded to
    the microsecond, payloads as JSON gives them back), at a fraction of the cost. For
    ``tracer explore``, which analyzes every schedule it runs.

    The structural checks of :func:`parse_trace_data` are left out: the engine numbers the
    events 0..N-1, names only its actors and records a blocking call before its return. What
    would not come from the engine (another numbering, an empty payload or one naming a field
    of the event itself) goes through the trace text instead, so the answer (or the error) is
    the same."""
    records = result.records
    n = len(records)
    if n and (records[0][0] != 0 or records[-1][0] != n - 1):
        return parse_trace_data(result.to_json(), source)
    t0 = result.t0
    events: list[Ev] = []
    append = events.append
    new = Ev.__new__
    last = -_INF
    for seq, ts, tag, payload in records:
        # times are made non-decreasing along seq, as the trace writer does (max() is a call)
        if ts > last:  # noqa: PLR1730
            last = ts
        ev = new(Ev)
        ev.seq = seq
        # the time as written (6 decimals) and read back: float(f"{x:.6f}") is the double
        # nearest to N / 10**6, N being x * 10**6 rounded; under 1000 s the product's error
        # cannot change N unless it is within 0.001 of a tie (those go to round(), as slow
        # as the text but the same)
        y = (last - t0) * 1e6
        if 0.0 <= y < 1e9:
            n_ = round(y)
            ev.ts = n_ / 1e6 if -0.499 < y - n_ < 0.499 else round(last - t0, 6)
        else:
            ev.ts = round(last - t0, 6)
        ev.actor = tag.actor
        ev.op = tag.op
        ev.target = tag.target
        ev.phase = tag.phase
        ev.result = tag.result
        if payload is None:
            ev.value = ev.item = ev.rest = None
            append(ev)
            continue
        if not payload or not _TAG_KEYS.isdisjoint(payload):
            return parse_trace_data(result.to_json(), source)  # not the engine's payload
        value = payload.get("value")
        item = payload.get("item")
        ev.value = None if value is None else _as_json(value)
        ev.item = None if item is None else _as_json(item)
        if len(payload) > ("value" in payload) + ("item" in payload):
            ev.rest = _as_json_dict({k: v for k, v in payload.items() if k not in _VALUE_ITEM})
        else:
            ev.rest = None
        append(ev)
    meta = {"tracer_version": _VERSION, "python": _PYTHON, "started_at": result.started_at,
            "mode": result.mode, "seed": result.seed, "duration": round(result.duration, 6),
            "source": result.plan.source}
    final = result.final
    return TraceData(source, _scenario_of(result), meta, _as_json(result.actors), events,
                     {"status": result.status, "detail": result.detail},
                     (_as_json(final) if final else {}) if isinstance(final, dict) else None)


def load_trace_data(path: str | Path) -> TraceData:
    """Read a trace file for analysis (raises TraceError with the first problem)."""
    p = Path(path)
    try:
        with p.open("rb") as f, gc_paused():
            return _read_lines(f, str(path))
    except FileNotFoundError:
        raise _fail(str(path), "no such file") from None
    except IsADirectoryError:
        raise _fail(str(path), "is a folder, not a trace file") from None
    except OSError as exc:
        raise _fail(str(path), f"cannot be read: {exc.strerror}") from None


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
