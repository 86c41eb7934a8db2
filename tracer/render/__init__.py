"""Renderers: turn a stored trace into something to read. They only read traces."""

from tracer.render.timeline import timeline

__all__ = ["timeline"]
