"""The one trace reader: every command (show, analyze, replay, export) reads traces here.

It reads a trace in one streaming pass, as tracer writes it (one event per line), checking
each event as it comes and keeping it as a compact :class:`Ev` (slots, interned names): a
million events are read at close to ``json.load`` speed, in about twice the file's size, with
no model object per event. Any other layout of valid JSON is read whole, with the same checks
(docs/formats.md section 2, "What a reader checks").
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import orjson
from pydantic import ValidationError

from tracer._gc import gc_paused
from tracer.trace._io import NotRegularFile, TraceError, open_regular
from tracer.trace._model import FORMAT, Trace

_PHASED = {"acquire", "wait", "put", "get", "send", "recv", "join", "sleep", "compute"}
# what an actor does: never with actor null (an op not listed here may be the engine's)
_ACTOR_OPS = _PHASED | {"release", "set", "clear", "notify", "notify_all", "read", "write",
                        "append", "log", "spawn", "start", "end", "callback"}


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
    # the file's other top-level fields (the format may be extended), for the Trace model
    extra: dict[str, Any] = field(default_factory=dict)

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

    __slots__ = ("actor", "item", "line", "op", "phase", "rest", "result", "seq", "target",
                 "ts", "value")
    seq: int
    ts: float
    actor: str | None
    op: str
    target: Any
    phase: str | None
    result: Any
    value: Any
    item: Any
    line: int | str | None  # the YAML line of the step (a program's: "bank.py:12")
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
                                                "result", "line", "value", "item")}
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
        self.program = False  # a program's trace: its lines are places (``bank.py:12``)

    def add(self, e: Any) -> None:
        i = len(self.events)
        source = self.source
        if not isinstance(e, dict):
            raise _fail(source, f"events[{i}] is not an object")
        get = e.get
        seq = get("seq")
        if seq.__class__ is not int or seq != i:
            raise _fail(source, f"events[{i}] has seq {_show(seq)}; seq must run 0, 1, 2, "
                                "... in order")
        actor = get("actor")
        op = get("op")
        ts = get("ts")
        target = get("target")
        phase = get("phase")
        result = get("result")
        line = get("line")
        if line is not None and (line.__class__ is not int or line < 1) and not (
                line.__class__ is str and self.program and _SITE.fullmatch(line)):
            raise _bad_field(source, i, "line", line, "a line number of the scenario file "
                                                      "(an integer from 1) or null" if not
                             self.program else "a place in the program ('bank.py:12') or null")
        if op.__class__ is not str:
            if op is None:
                raise _fail(source, f"event seq {i} has no op")
            raise _bad_field(source, i, "op", op, "a string")
        if actor is None:
            if op in _ACTOR_OPS:
                raise _fail(source, f"events[{i}] ({op}) has no actor; only the engine's "
                                    "events (deadlock, stall, timeout) have actor null")
        else:
            if actor.__class__ is not str:
                raise _bad_field(source, i, "actor", actor, "an actor's name or null")
            if actor not in self.names:
                raise _fail(source, f"event seq {i} names actor {actor!r}, which is not in "
                                    "'actors'")
        if ts.__class__ is not float and ts.__class__ is not int:
            if ts is None:
                raise _fail(source, f"event seq {i} has no time (ts)")
            raise _bad_field(source, i, "ts", ts, "a number of seconds")
        if ts < 0:
            raise _fail(source, f"event seq {i} has ts {ts!r}; times are seconds since the "
                                "start of the run, never negative")
        if target is not None and target.__class__ is not str:
            raise _bad_field(source, i, "target", target, "a name (a string) or null")
        if result is not None and result.__class__ is not str:
            raise _bad_field(source, i, "result", result, "a string (ok, timeout, ...) or null")
        if phase is not None:
            if phase.__class__ is not str:
                raise _bad_field(source, i, "phase", phase, "call or return")
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
        ev.line = line
        known = 4 + (target is not None) + (phase is not None) + (result is not None) \
            + ("value" in e) + ("item" in e) + ("line" in e)
        if len(e) > known:
            rest = ev.rest = {k: v for k, v in e.items() if k not in _CORE}
            for key in _EXTRA.intersection(rest):
                _check_extra(source, i, key, rest[key])
        else:
            ev.rest = None
        self.events.append(ev)


_CORE = frozenset(("seq", "ts", "actor", "op", "target", "phase", "result", "line", "value",
                   "item"))


def _show(value: Any) -> str:
    """A value as it is written in the trace (JSON), cut short."""
    try:
        text = orjson.dumps(value).decode()
    except TypeError:
        text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _bad_field(source: str, i: int, field: str, value: Any, expected: str) -> TraceError:
    return _fail(source, f"events[{i}] has {field} {_show(value)}; expected {expected} "
                         "(docs/formats.md section 2)")


_WAIT_FIELDS: tuple[tuple[str, str], ...] = (("actor", "str"), ("op", "str"),
                                             ("target", "str?"), ("kind", "str?"),
                                             ("holds", "strs"), ("providers", "strs"),
                                             ("call_seq", "int?"), ("line", "line?"))


def _is_strs(value: Any) -> bool:
    return value.__class__ is list and all(v.__class__ is str for v in value)


def _check_extra(source: str, i: int, key: str, value: Any) -> None:
    """The fields beyond the core ones that the analyses and renderers rely on: engine events'
    ``actors`` and ``objects`` (arrays of names), ``waits`` (what each blocked actor waits
    for), and ``blocking``, ``atomic`` (an access of a shared variable), ``detail``,
    ``error``."""
    if key in ("actors", "objects"):
        if not _is_strs(value):
            raise _bad_field(source, i, key, value, "an array of names (strings)")
    elif key == "waits":
        if value.__class__ is not list:
            raise _bad_field(source, i, key, value, "an array of objects")
        for j, w in enumerate(value):
            if w.__class__ is not dict:
                raise _bad_field(source, i, f"waits[{j}]", w, "an object")
            for field, kind in _WAIT_FIELDS:
                v = w.get(field)
                ok = (v.__class__ is str if kind == "str" else
                      v is None or v.__class__ is str if kind == "str?" else
                      v is None or _is_strs(v) if kind == "strs" else
                      v is None or v.__class__ is int or (
                          kind == "line?" and v.__class__ is str and bool(_SITE.fullmatch(v))))
                if not ok:
                    expected = {"str": "a string", "str?": "a string or null",
                                "strs": "an array of names (strings)",
                                "int?": "an event's seq (an integer) or null",
                                "line?": "a line (an integer, or a program's 'file.py:12') "
                                         "or null"}[kind]
                    raise _bad_field(source, i, f"waits[{j}].{field}", v, expected)
    elif key in ("blocking", "atomic"):
        if value.__class__ is not bool:
            raise _bad_field(source, i, key, value, "true or false")
    elif value is not None and value.__class__ is not str:  # detail, error
        raise _bad_field(source, i, key, value, "a string or null")


_EXTRA = frozenset(("actors", "objects", "waits", "blocking", "atomic", "detail", "error"))


def _check_head(data: Any, source: str, with_events: bool) -> set[str]:
    if not isinstance(data, dict):
        raise _fail(source, f"a trace is a JSON object, got {type(data).__name__}")
    fmt = data.get("format")
    if fmt != FORMAT:
        raise _fail(source, f"format is {fmt!r}, but this tracer reads {FORMAT!r}")
    # a program's trace records the program where a scenario's embeds the scenario
    first = ("program", dict) if "program" in data and "scenario" not in data else \
        ("scenario", dict)
    parts: tuple[tuple[str, type], ...] = (first, ("meta", dict), ("actors", list),
                                           ("outcome", dict))
    if with_events:
        parts += (("events", list),)
    for part, typ in parts:
        if not isinstance(data.get(part), typ):
            kind = "an object" if typ is dict else "an array"
            raise _fail(source, f"'{part}' is missing or not {kind}")
    names = set()
    for i, a in enumerate(data["actors"]):
        if not isinstance(a, dict) or not isinstance(a.get("name"), str):
            raise _fail(source, f"actors[{i}] has no name")
        names.add(a["name"])
    return names


def _check_scenario(scenario: dict[str, Any], source: str) -> None:
    """The parts of the embedded scenario that show, analyze and export read (replay
    validates it whole): ``primitives`` maps names to a type name or an object with a
    ``type``; ``invariants`` is an array."""
    prims = scenario.get("primitives")
    if prims is not None:
        if prims.__class__ is not dict:
            raise _fail(source, f"scenario.primitives is {_show(prims)}; expected an object "
                                "(name -> type)")
        for name, spec in prims.items():
            kind = spec.get("type") if spec.__class__ is dict else spec
            if kind.__class__ is not str:
                raise _fail(source, f"scenario.primitives.{name} is {_show(spec)}; expected a "
                                    "type name (lock, queue, ...) or an object with a 'type'")
    invariants = scenario.get("invariants")
    if invariants is not None and invariants.__class__ is not list:
        raise _fail(source, f"scenario.invariants is {_show(invariants)}; expected an array")


_PARTS = frozenset(("format", "scenario", "meta", "actors", "events", "outcome", "final"))
# a program's ``line``: ``file.py:12``
_SITE = re.compile(r".+:[1-9][0-9]*")


def program_scenario(program: dict[str, Any]) -> dict[str, Any]:
    """What the analyses read of a scenario, for a program's trace: the primitives the
    program made (name -> type and options, as a scenario declares them)."""
    prims = program.get("primitives")
    path = program.get("path") or program.get("module") or "program"
    name = str(path).replace("\\", "/").rsplit("/", 1)[-1].removesuffix(".py")
    return {"name": name, "primitives": prims if isinstance(prims, dict) else {}}


def _finish(data: dict[str, Any], source: str, events: list[Ev]) -> TraceData:
    if "scenario" not in data and isinstance(data.get("program"), dict):
        data = {**data, "scenario": program_scenario(data["program"])}
    _check_scenario(data["scenario"], source)
    final = data.get("final")
    extra = {k: v for k, v in data.items() if k not in _PARTS}
    if final is not None and not isinstance(final, dict):
        extra["final"] = final  # not what the format says: the Trace model refuses it
    return TraceData(source, data["scenario"], data["meta"], data["actors"], events,
                     data["outcome"], final if isinstance(final, dict) else None, extra)


def _bad_json(source: str, exc: Exception) -> TraceError:
    return _fail(source, f"not valid JSON ({exc}); a trace written by 'tracer run' is expected")


def parse_trace_data(raw: bytes | str, source: str = "<trace>") -> TraceData:
    """Check a trace's structure in one pass and return it as :class:`TraceData`.

    The checks: JSON object, the format version, the parts' types, and for events: seq runs
    0..N-1 in order, each event names a known actor (or null for engine events) and an op,
    has a time ``ts`` >= 0, and every ``return`` follows a ``call`` of the same actor, op
    and target."""
    raw_bytes = raw.encode("utf-8") if isinstance(raw, str) else raw
    with gc_paused():
        return _read_lines(io.BytesIO(raw_bytes), source, raw_bytes)


def _read_lines(f: BinaryIO, source: str, whole: bytes | None = None) -> TraceData:
    """Read a trace as tracer writes it (one event per line) without ever holding all the
    events as JSON objects; any other layout of valid JSON is read whole instead."""
    head: list[bytes] = []
    tail: list[bytes] = []
    reader: _Reader | None = None
    comma = False  # whether the last event line ended with a comma
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
                reader.program = "program" in skeleton and "scenario" not in skeleton
                continue
            head.append(line)
        elif tail:
            tail.append(line)
        elif line.startswith(b"]"):
            if comma:  # a trailing comma after the last event: not JSON
                reader = None
                break
            tail.append(line)
        else:
            if reader.events and not comma:  # two events with no comma between: not JSON
                reader = None
                break
            body = line.rstrip()
            comma = body.endswith(b",")
            try:
                reader.add(loads(body[:-1] if comma else body))
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
    general.program = "program" in data and "scenario" not in data
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
        raise _fail(source, "'actors' is missing or not an array")
    return {a["name"] for a in actors if isinstance(a, dict) and isinstance(a.get("name"), str)}


def load_trace_data(path: str | Path) -> TraceData:
    """Read a trace file (raises TraceError with the first problem). Only a regular file is
    read: a folder, FIFO or device is refused at once, without waiting on it."""
    try:
        with open_regular(path) as f, gc_paused():
            return _read_lines(f, str(path))
    except FileNotFoundError:
        raise _fail(str(path), "no such file") from None
    except IsADirectoryError:
        raise _fail(str(path), "is a folder, not a trace file") from None
    except NotRegularFile as exc:
        raise _fail(str(path), f"is {exc.what}, not a trace file") from None
    except OSError as exc:
        raise _fail(str(path), f"cannot be read: {exc.strerror}") from None


def trace_model(data: TraceData) -> Trace:
    """The :class:`Trace` model of a trace read by this reader (the public API's view: every
    field checked by pydantic); raises :class:`TraceError` with the first problem."""
    doc: dict[str, Any] = {"format": FORMAT, "scenario": data.scenario, "meta": data.meta,
                           "actors": data.actors,
                           "events": [e.as_dict() if isinstance(e, Ev) else e
                                      for e in data.events],
                           "outcome": data.outcome}
    if data.final is not None:
        doc["final"] = data.final
    doc.update(data.extra)
    try:
        return Trace.model_validate(doc)
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        loc = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err["loc"])
        raise TraceError(f"{data.source}: {loc.lstrip('.')}: {err['msg']} "
                         f"({len(exc.errors())} problem(s) in all)") from None


def load_trace(path: str | Path) -> Trace:
    """Read a trace file as the :class:`Trace` model (the public API; the commands read the
    same file as :class:`TraceData`): one read, by this reader, with its checks first."""
    return trace_model(load_trace_data(path))


def parse_trace(raw: bytes | str, source: str = "<trace>") -> Trace:
    """:func:`load_trace` for a trace's text."""
    return trace_model(parse_trace_data(raw, source))
