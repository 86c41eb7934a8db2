"""The version of tracer, apart: the engine and the trace reader write it into traces without
importing the package's public API (which imports them)."""

__version__ = "0.1.0"
