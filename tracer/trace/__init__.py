"""Trace files: the JSON format, reading and writing."""

from tracer.trace._io import (
    TraceError,
    default_trace_path,
    load_trace,
    parse_trace,
    safe_stem,
    write_atomic,
)
from tracer.trace._model import FORMAT, ActorInfo, Event, Meta, Outcome, Trace

__all__ = [
    "FORMAT",
    "ActorInfo",
    "Event",
    "Meta",
    "Outcome",
    "Trace",
    "TraceError",
    "default_trace_path",
    "load_trace",
    "parse_trace",
    "safe_stem",
    "write_atomic",
]
