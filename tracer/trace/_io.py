"""Reading and writing trace files.

Writing is the hot end of a run (a trace may hold millions of events), so events are formatted
straight from the recorded tuples: each tag carries its JSON text, payloads go through orjson.
Files are written atomically: a temporary file in the same folder, then a rename.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Sequence
from itertools import accumulate
from operator import itemgetter
from pathlib import Path
from typing import Any

import orjson
from pydantic import ValidationError

from tracer.trace._model import FORMAT, Trace

_OPTS = orjson.OPT_NON_STR_KEYS


class TraceError(Exception):
    """A file that is not a usable trace; ``str()`` is the message for the user."""


def dumps(value: Any) -> str:
    return orjson.dumps(value, option=_OPTS).decode()


def format_events(records: Sequence[tuple[int, float, Any, dict[str, Any] | None]],
                  t0: float = 0.0) -> str:
    """Events as JSON objects, one per line, from ``(seq, ts, tag, payload)`` records sorted
    by seq. ``ts`` is written relative to ``t0`` and made non-decreasing along seq (two
    threads may read the seq counter and the clock in opposite orders, microseconds apart)."""
    dumps_ = orjson.dumps
    times = accumulate(map(itemgetter(1), records), max)
    return ",\n".join([
        f'{{"seq":{seq},"ts":{ts - t0:.6f},{tag.json}}}' if payload is None else
        f'{{"seq":{seq},"ts":{ts - t0:.6f},{tag.json},'
        f'{dumps_(payload, option=_OPTS).decode()[1:-1]}}}'
        for (seq, _, tag, payload), ts in zip(records, times, strict=True)
    ])


def render_trace(head: dict[str, Any], events_json: str, tail: dict[str, Any]) -> str:
    """The whole file: header fields, then the events, then outcome and the rest."""
    parts = ['{"format":"%s"' % FORMAT]
    for key, value in head.items():
        parts.append(f',\n"{key}":{dumps(value)}')
    parts.append(',\n"events":[\n' + events_json + "\n]")
    for key, value in tail.items():
        parts.append(f',\n"{key}":{dumps(value)}')
    parts.append("}\n")
    return "".join(parts)


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so that readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


_UNSAFE = re.compile(r'[\x00-\x1f\x7f/\\:*?"<>|]+')


def safe_stem(name: str) -> str:
    """A file name made from a scenario name that stays inside the output folder."""
    stem = _UNSAFE.sub("_", name).strip(" .")
    stem = stem.lstrip(".")
    # file names are limited to 255 bytes: keep room for suffixes such as ".wait-for.svg"
    while len(stem.encode("utf-8")) > 200:
        stem = stem[:-1]
    return stem or "trace"


def default_trace_path(scenario_name: str, folder: str | Path = "traces") -> Path:
    return Path(folder) / f"{safe_stem(scenario_name)}.json"


def load_trace(path: str | Path) -> Trace:
    """Read and validate a trace file, raising :class:`TraceError` with the first problem."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except FileNotFoundError:
        raise TraceError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise TraceError(f"{path}: is a folder, not a trace file") from None
    except OSError as exc:
        raise TraceError(f"{path}: cannot be read: {exc.strerror}") from None
    return parse_trace(raw, str(path))


def parse_trace(raw: bytes | str, source: str = "<trace>") -> Trace:
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise TraceError(f"{source}: not valid JSON ({exc}); a trace written by "
                         "'tracer run' is expected") from None
    if not isinstance(data, dict):
        raise TraceError(f"{source}: a trace is a JSON object, got {type(data).__name__}")
    fmt = data.get("format")
    if fmt != FORMAT:
        raise TraceError(f"{source}: format is {fmt!r}, but this tracer reads {FORMAT!r}")
    try:
        return Trace.model_validate(data)
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        loc = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err["loc"])
        raise TraceError(f"{source}: {loc.lstrip('.')}: {err['msg']} "
                         f"({len(exc.errors())} problem(s) in all)") from None
