"""Pydantic models of the trace format (docs/formats.md, section 2): ``tracer-trace/1``."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool

FORMAT = "tracer-trace/1"

Phase = Literal["call", "return"]
Status = Literal["ok", "deadlock", "stall", "timeout", "error", "interrupted", "capped"]


class Event(BaseModel):
    """One recorded operation. Unknown extra fields are kept (the format may be extended)."""

    model_config = ConfigDict(extra="allow", frozen=True)

    seq: int = Field(ge=0)
    ts: float = Field(ge=0)
    actor: str | None
    op: str
    target: str | None = None
    phase: Phase | None = None
    result: str | None = None
    line: int | None = Field(default=None, ge=1)  # the YAML line of the step that made it
    value: Any = None
    item: Any = None
    error: str | None = None
    detail: str | None = None
    actors: list[str] | None = None
    # an atomic access of a shared variable (an atomic add's write also carries ``old``, the
    # value it replaced, kept as an extra field: it may be any JSON, null too)
    atomic: StrictBool | None = None


class ActorInfo(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)

    name: str
    kind: str
    pid: int | None = None
    tid: int | None = None
    daemon: bool = False
    status: str | None = None  # extension: ok, error, blocked, cancelled, abandoned, not_started


class Meta(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)

    tracer_version: str
    python: str
    started_at: str
    mode: Literal["run", "replay", "explore"]
    seed: int | None = None


class Outcome(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)

    status: Status
    detail: str = ""


class Trace(BaseModel):
    """A whole trace file."""

    model_config = ConfigDict(extra="allow", frozen=True)

    format: Literal["tracer-trace/1"]
    scenario: dict[str, Any]
    meta: Meta
    actors: list[ActorInfo]
    events: list[Event]
    outcome: Outcome
    final: dict[str, Any] | None = None  # extension: shared variables at the end of the run
