"""Trace files: the JSON format, reading and writing."""

from tracer.trace._io import (
    TraceError,
    default_trace_path,
    not_a_regular_file,
    os_reason,
    safe_stem,
    same_file,
    write_atomic,
)
from tracer.trace._model import FORMAT, ActorInfo, Event, Meta, Outcome, Trace
from tracer.trace._read import (
    Ev,
    TraceData,
    load_trace,
    load_trace_data,
    parse_trace,
    parse_trace_data,
    trace_model,
)

__all__ = [
    "FORMAT",
    "ActorInfo",
    "Ev",
    "Event",
    "Meta",
    "Outcome",
    "Trace",
    "TraceData",
    "TraceError",
    "default_trace_path",
    "load_trace",
    "load_trace_data",
    "not_a_regular_file",
    "os_reason",
    "parse_trace",
    "parse_trace_data",
    "safe_stem",
    "same_file",
    "trace_model",
    "write_atomic",
]
