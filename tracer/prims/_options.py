"""What a type module's "options and verbs" section builds on: the strict pydantic base of
every scenario model, the shared constraint types and documented limits, the base of a
primitive's options model and of a step model, and the context a type's checks receive.

It lives here, not in ``tracer.scenario``, so that a type module can declare its models and
checks without importing the scenario package (which imports the registry).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializationInfo,
    SerializerFunctionWrapHandler,
    model_serializer,
)

# Documented limits (docs/formats.md, "Limits"): large enough for real scenarios and the
# scale benchmarks, small enough that a typo cannot ask for a billion threads.
MAX_ACTORS = 10_000
MAX_COUNT = 10_000
MAX_REPEAT = 10_000_000
MAX_DEPTH = 16
MAX_SLEEP = 3600.0
MAX_COMPUTE = 3_600_000.0  # units of compute (one unit is about a millisecond)
MAX_TIMEOUT = 86_400.0
MAX_FILE_BYTES = 5_000_000
MAX_WORKERS = 1024
DEFAULT_MAX_EVENTS = 1_000_000  # a run stops after this many events: its memory stays bounded
MAX_MAX_EVENTS = 100_000_000

Seconds = Annotated[float, Field(ge=0, le=MAX_TIMEOUT, allow_inf_nan=False)]
Name = Annotated[str, Field(min_length=1, max_length=200)]

# A field a primitive type adds to a shared verb (``mode`` on ``acquire``) carries this mark
# in its json_schema_extra: the embedded scenario leaves it out unless the step gave it, so
# registering a type never changes the trace of a scenario that does not use it.
TYPE_OPTION = "tracer_type_option"
# A field of the scenario language's version 2 (``as``, ``locals``, ``atomic``...) carries this
# mark: left out of the embedded scenario unless given, so a v1 scenario embeds as before.
NEW_OPTION = "tracer_new_option"


class _Model(BaseModel):
    # strict: YAML gives real types, so `count: true` or `timeout: "5"` are mistakes
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, strict=True)

    @model_serializer(mode="wrap")
    def _given_nulls_only(self, handler: SerializerFunctionWrapHandler,
                          info: SerializationInfo) -> Any:
        """Leave out a field that is None because it was not given (``timeout``, ``pool``, a
        bare put's ``item``), keep one the scenario gave as ``null``: ``item: null`` puts None,
        no ``item`` puts an automatic one, and the embedded scenario must say which. A
        type-added option (:data:`TYPE_OPTION`) that was not given is left out too."""
        data = handler(self)
        if not isinstance(data, dict):
            return data
        for name, field in type(self).model_fields.items():
            if name in self.model_fields_set:
                continue
            key = field.alias if info.by_alias and field.alias else name
            extra = field.json_schema_extra
            added = isinstance(extra, dict) and bool(extra.get(TYPE_OPTION)
                                                     or extra.get(NEW_OPTION))
            if key in data and (data[key] is None or added):
                del data[key]
        return data


class PrimOptions(_Model):
    """The base of a type's options model: the ``primitives:`` entry, ``type`` included."""

    type: str


class Step(_Model):
    """The base of a step model: the field named like the verb holds the target."""

    verb: ClassVar[str]


@dataclass(frozen=True)
class VerbOption:
    """An option a type adds to a verb that other types share (``mode`` on ``acquire``):
    ``annotation`` as for a pydantic field, ``default`` used when the step does not give it,
    ``doc`` a few words for messages ("read or write")."""

    annotation: Any
    default: Any
    doc: str = ""


Report = Callable[[tuple[str | int, ...], str], None]
"""How a check reports a problem: the path inside the scenario (``("primitives", "P",
"between")``) and the message, in the user's terms (what was expected, what was found, the
fix)."""


@dataclass(frozen=True)
class CheckContext:
    """What a type's checks may look at: the whole scenario's primitives (name -> options
    model), its actors by name once ``count`` is expanded (name -> kind), the names a
    ``start``/``join`` may use (a base name -> its copies), and where to report."""

    primitives: Mapping[str, PrimOptions]
    kinds: Mapping[str, str]
    groups: Mapping[str, tuple[str, ...]]
    report: Report
    did_you_mean: Callable[[object, Any], str]


def a_(word: str) -> str:
    """'a lock', 'an event'."""
    return f"an {word}" if word[:1] in "aeiou" else f"a {word}"


__all__ = [
    "DEFAULT_MAX_EVENTS", "MAX_ACTORS", "MAX_COMPUTE", "MAX_COUNT", "MAX_DEPTH", "MAX_FILE_BYTES",
    "MAX_MAX_EVENTS", "MAX_REPEAT", "MAX_SLEEP", "MAX_TIMEOUT", "MAX_WORKERS", "NEW_OPTION",
    "TYPE_OPTION",
    "CheckContext", "Name", "PrimOptions", "Report", "Seconds", "Step", "VerbOption", "_Model",
    "a_",
]
