"""Pydantic models of the scenario format (docs/formats.md, section 1).

Field names follow the YAML keys exactly: a step mapping such as ``{acquire: A, timeout: 0.5}``
validates straight into :class:`Acquire`. Keys that are Python keywords (``with``, ``if``,
``else``, ``return``) use aliases. Cross-references (does the target exist, does its type
support the verb) are checked afterwards in ``_check.py``, where the whole scenario is known.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal, Union

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Discriminator,
    Field,
    Tag,
    WithJsonSchema,
    create_model,
    model_validator,
)

from tracer.prims._options import (
    DEFAULT_MAX_EVENTS,
    MAX_ACTORS,
    MAX_COMPUTE,
    MAX_COUNT,
    MAX_DEPTH,
    MAX_FILE_BYTES,
    MAX_MAX_EVENTS,
    MAX_REPEAT,
    MAX_SLEEP,
    MAX_TIMEOUT,
    MAX_WORKERS,
    NEW_OPTION,
    TYPE_OPTION,
    Name,
    Seconds,
    Step,
    _Model,
)
from tracer.prims._options import PrimOptions as _Prim
from tracer.scenario import _registry
from tracer.scenario._expr import parse_expr

# The options models live with their types (tracer/prims/<type>.py); their names stay
# importable from here. PrimitiveSpec is the discriminated union of every registered type.
if TYPE_CHECKING:
    from tracer.prims.barrier import BarrierSpec
    from tracer.prims.bounded_semaphore import BoundedSemaphoreSpec
    from tracer.prims.condition import ConditionSpec
    from tracer.prims.event import EventSpec
    from tracer.prims.lock import LockSpec
    from tracer.prims.pipe import PipeSpec
    from tracer.prims.pool import PoolSpec
    from tracer.prims.queue import QueueSpec
    from tracer.prims.rlock import RLockSpec
    from tracer.prims.semaphore import SemaphoreSpec

    PrimitiveSpec = _Prim
else:
    PrimitiveSpec = Annotated[
        Union[tuple(_registry.primitive_models().values())],  # noqa: UP007
        Field(discriminator="type"),
    ]

PRIMITIVE_MODELS: dict[str, type[_Prim]] = _registry.primitive_models()
PRIMITIVE_TYPES: tuple[str, ...] = tuple(PRIMITIVE_MODELS)


def __getattr__(name: str) -> Any:
    """``LockSpec`` ... ``PoolSpec`` (and any registered type's model): the class of the type
    module that declares it, for code that imported it from here."""
    for model in PRIMITIVE_MODELS.values():
        if model.__name__ == name:
            return model
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# ---------------------------------------------------------------------------------------------
# Steps: one model per verb; the field named like the verb holds the target.


def _expression(text: str) -> str:
    parse_expr(text)  # an ExprError (a ValueError) says where it is wrong
    return text


def _as_text(value: Any) -> Any:
    """A YAML scalar where an expression goes (``let: {i: 0}``, ``while: true``) is the
    expression of that value; a list or a mapping is refused with what to write instead."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"numbers must be finite, got {value} (.inf and .nan are not numbers "
                         "a trace holds)")
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, dict)):
        kind = "a list" if isinstance(value, list) else "a mapping"
        raise ValueError(f"an expression is a string such as \"i + 1\" (quote it in YAML), "
                         f"not {kind}; a list or mapping value goes in the actor's 'locals'")
    return value


# An expression of the language (tracer/scenario/_expr.py), kept as its text: the embedded
# scenario holds the string, the engine parses it again (cached).
Expression = Annotated[str, BeforeValidator(_as_text), Field(max_length=2_000),
                      AfterValidator(_expression),
                      # (for editors: a YAML number, boolean or null is that value's expression)
                      WithJsonSchema({"type": ["string", "number", "boolean", "null"],
                                      "maxLength": 2_000,
                                      "description": "an expression (docs/formats.md, "
                                                     "the language)"})]
MAX_WHILE = MAX_REPEAT
# a field of the language's version 2 that the embedded scenario leaves out unless given, so
# that a v1 scenario embeds exactly as before
_V2: Any = {NEW_OPTION: True}


class Yields(Step):
    """A step whose result an ``as: NAME`` stores in a local: ``"ok"``, ``"timeout"``,
    ``"fail"`` or ``"broken"``; for ``get`` and ``recv``, the item received."""

    as_: Name | None = Field(default=None, alias="as", json_schema_extra=_V2)


class Acquire(Yields):
    verb: ClassVar[str] = "acquire"
    acquire: Name
    timeout: Seconds | None = None
    blocking: bool = True


class Release(Step):
    verb: ClassVar[str] = "release"
    release: Name


class Wait(Yields):
    verb: ClassVar[str] = "wait"
    wait: Name
    timeout: Seconds | None = None


class Set(Step):
    verb: ClassVar[str] = "set"
    set: Name


class Clear(Step):
    verb: ClassVar[str] = "clear"
    clear: Name


class Notify(Step):
    verb: ClassVar[str] = "notify"
    notify: Name
    n: Annotated[int, Field(ge=1, le=MAX_ACTORS)] = 1


class NotifyAll(Step):
    verb: ClassVar[str] = "notify_all"
    notify_all: Name


class Put(Yields):
    verb: ClassVar[str] = "put"
    put: Name
    item: Any = None
    timeout: Seconds | None = None
    blocking: bool = True


class Get(Yields):
    verb: ClassVar[str] = "get"
    get: Name
    timeout: Seconds | None = None
    blocking: bool = True


class Send(Yields):
    verb: ClassVar[str] = "send"
    send: Name
    item: Any = None


class Recv(Yields):
    verb: ClassVar[str] = "recv"
    recv: Name
    timeout: Seconds | None = None


class Read(Step):
    verb: ClassVar[str] = "read"
    read: Name


class VarValue(_Model):
    var: Name
    value: Any


class VarItem(_Model):
    var: Name
    item: Any


class Compare(_Model):
    var: Name
    op: Literal["<", "<=", "==", "!=", ">=", ">"]
    value: Any


class WriteSpec(_Model):
    """What a ``write`` stores: a ``value``, or the value of an ``expr`` (one of the two)."""

    var: Name
    value: Any = None
    expr: Expression | None = Field(default=None, json_schema_extra=_V2)

    @model_validator(mode="after")
    def _one_of(self) -> WriteSpec:
        given = {"value", "expr"} & self.model_fields_set
        if len(given) != 1:
            raise ValueError("a write needs 'value' or 'expr' (one of the two), got "
                             + ("both: keep one" if given else
                                "neither: add 'value: V' or 'expr: \"...\"'"))
        return self


class AddSpec(VarValue):
    """An ``add``: ``atomic: true`` makes it one indivisible read-modify-write."""

    atomic: bool = Field(default=False, json_schema_extra=_V2)


class Write(Step):
    verb: ClassVar[str] = "write"
    write: WriteSpec


class Add(Step):
    verb: ClassVar[str] = "add"
    add: AddSpec


class Append(Step):
    verb: ClassVar[str] = "append"
    append: VarItem


class Sleep(Step):
    verb: ClassVar[str] = "sleep"
    sleep: Annotated[float, Field(ge=0, le=MAX_SLEEP, allow_inf_nan=False)]


class Log(Step):
    verb: ClassVar[str] = "log"
    log: Annotated[str, Field(max_length=10_000)]


class Start(Step):
    verb: ClassVar[str] = "start"
    start: Name


class Join(Yields):
    verb: ClassVar[str] = "join"
    join: Name
    timeout: Seconds | None = None


class With(Step):
    verb: ClassVar[str] = "with"
    with_: Name = Field(alias="with")
    steps: list[AnyStep]


class Repeat(Step):
    verb: ClassVar[str] = "repeat"
    repeat: Annotated[int, Field(ge=0, le=MAX_REPEAT)]
    steps: list[AnyStep]


def _test_kind(raw: Any) -> str:
    return "compare" if isinstance(raw, (dict, Compare)) else "expr"


if TYPE_CHECKING:
    Test = Compare | str
else:
    Test = Annotated[Union[Annotated[Compare, Tag("compare")],  # noqa: UP007
                           Annotated[Expression, Tag("expr")]], Discriminator(_test_kind)]


class If(Step):
    verb: ClassVar[str] = "if"
    if_: Test = Field(alias="if")
    then: list[AnyStep]
    else_: list[AnyStep] = Field(default_factory=list, alias="else")


class While(Step):
    """``while: EXPR`` + ``steps``: run the steps while the expression is true, at most
    ``max`` times (a loop still true then ends the actor with an error)."""

    verb: ClassVar[str] = "while"
    while_: Expression = Field(alias="while")
    steps: list[AnyStep]
    max: Annotated[int, Field(ge=1, le=MAX_WHILE)] = 100


class Let(Step):
    """``let: {name: EXPR, ...}``: assign the actor's locals, in the mapping's order."""

    verb: ClassVar[str] = "let"
    let: Annotated[dict[Name, Expression], Field(min_length=1)]


class Assert(Step):
    """``assert: EXPR``: a false expression ends the actor with an error here."""

    verb: ClassVar[str] = "assert"
    assert_: Expression = Field(alias="assert")
    message: Annotated[str, Field(max_length=10_000)] | None = None


class Compute(Step):
    """``compute: N``: N units of pure-Python CPU work under ``run`` (see
    tracer/engine/_compute.py); no time under replay and explore."""

    verb: ClassVar[str] = "compute"
    compute: Annotated[int | float, Field(ge=0, le=MAX_COMPUTE, allow_inf_nan=False)]

    @model_validator(mode="before")
    @classmethod
    def _units(cls, data: Any) -> Any:
        """The number of units: a number (an integer stays one) from 0 to MAX_COMPUTE, else
        one message that says what a unit is (pydantic's own would be two, one per member of
        ``int | float``)."""
        value = data.get("compute") if isinstance(data, dict) else None
        if value is None and not (isinstance(data, dict) and "compute" in data):
            return data  # (missing: pydantic says so)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"compute takes a number of units of CPU work (one unit is about "
                             f"a millisecond), got {value!r}")
        if not 0 <= value <= MAX_COMPUTE:  # (nan too; inf is above MAX_COMPUTE)
            raise ValueError(f"compute takes 0 to {MAX_COMPUTE:,.0f} units (one unit is about "
                             f"a millisecond of CPU work: {MAX_COMPUTE:,.0f} is an hour), "
                             f"got {value!r}")
        return data


class Return(Step):
    verb: ClassVar[str] = "return"
    return_: Any = Field(default=True, alias="return")


class Fail(Step):
    verb: ClassVar[str] = "fail"
    fail: Annotated[str, Field(max_length=10_000)]


CORE_STEPS: dict[str, type[Step]] = {
    m.verb: m
    for m in (
        Acquire, Release, Wait, Set, Clear, Notify, NotifyAll, Put, Get, Send, Recv, Read,
        Write, Add, Append, Sleep, Log, Start, Join, With, Repeat, If, Return, Fail,
        While, Let, Assert, Compute,
    )
}


def _with_added_options(model: type[Step]) -> type[Step]:
    """``model`` with the options registered types add to its verb (``mode`` on ``acquire``),
    or ``model`` itself when no type adds any. The subclass keeps isinstance checks working."""
    added = ADDED_OPTIONS.get(model.verb)
    if not added:
        return model
    fields: dict[str, Any] = {
        name: (a.option.annotation, Field(default=a.option.default,
                                          json_schema_extra={TYPE_OPTION: True}))
        for name, a in added.items()
    }
    sub: type[Step] = create_model(
        model.__name__, __base__=model, __module__=__name__, **fields)
    # findable by its qualified name, so that pickle finds this class and not the base
    sub.__qualname__ = f"_{model.__name__}WithTypeOptions"
    globals()[sub.__qualname__] = sub
    return sub


# Verbs of the registered types' own steps (a latch's count_down), then every verb's model
# with the options types add to it: the step union and the pre-checks read STEP_MODELS.
TYPE_STEPS: dict[str, type[Step]] = _registry.type_steps(CORE_STEPS)
ADDED_OPTIONS: dict[str, dict[str, _registry.AddedOption]] = _registry.added_options(
    {**CORE_STEPS, **TYPE_STEPS})
STEP_MODELS: dict[str, type[Step]] = {
    verb: _with_added_options(m) for verb, m in {**CORE_STEPS, **TYPE_STEPS}.items()
}
VERBS: tuple[str, ...] = tuple(STEP_MODELS)


def step_verb(raw: Any) -> str | None:
    """The verb of a raw step mapping (the one key that names a verb), for the discriminator."""
    if isinstance(raw, Step):
        return str(raw.verb)
    if isinstance(raw, dict):
        found = [k for k in raw if k in STEP_MODELS]
        if len(found) == 1:
            return str(found[0])
    return None


if TYPE_CHECKING:
    AnyStep = Step
else:
    AnyStep = Annotated[
        Union[tuple(Annotated[m, Tag(v)] for v, m in STEP_MODELS.items())],  # noqa: UP007
        Discriminator(step_verb),
    ]

# the blocks that hold steps (and their subclasses with added options) know the union now
_BLOCKS: list[type[Step]] = [With, Repeat, If, While]
for _m in [*_BLOCKS, *(m for m in STEP_MODELS.values() if m not in _BLOCKS)]:
    if issubclass(_m, (With, Repeat, If, While)):
        _m.model_rebuild(force=True)


def step_target(step: Step) -> str | None:
    """The name a step acts on (primitive, variable or actor), if any."""
    if isinstance(step, With):
        return step.with_
    if isinstance(step, (Write, Add)):
        return step.write.var if isinstance(step, Write) else step.add.var
    if isinstance(step, Append):
        return step.append.var
    if isinstance(step, If):
        return step.if_.var if isinstance(step.if_, Compare) else None
    value = getattr(step, step.verb, None)
    if isinstance(value, str) and step.verb not in ("log", "fail", "while", "assert"):
        return value
    return None


def step_exprs(step: Step) -> list[tuple[tuple[str, ...], str]]:
    """The expressions a step evaluates, each with its key path inside the step."""
    if isinstance(step, While):
        return [(("while",), step.while_)]
    if isinstance(step, If):
        return [] if isinstance(step.if_, Compare) else [(("if",), step.if_)]
    if isinstance(step, Assert):
        return [(("assert",), step.assert_)]
    if isinstance(step, Let):
        return [(("let", name), text) for name, text in step.let.items()]
    if isinstance(step, Write) and step.write.expr is not None:
        return [(("write", "expr"), step.write.expr)]
    return []


def step_assigns(step: Step) -> list[tuple[tuple[str, ...], str]]:
    """The locals a step assigns (``let`` keys, an ``as``), each with its key path."""
    if isinstance(step, Let):
        return [(("let", name), name) for name in step.let]
    if isinstance(step, Yields) and step.as_ is not None:
        return [(("as",), step.as_)]
    return []


def child_blocks(step: Step) -> list[tuple[str, Sequence[Step]]]:
    """Nested step lists of a step, with the key that holds each."""
    if isinstance(step, (With, Repeat, While)):
        return [("steps", step.steps)]
    if isinstance(step, If):
        return [("then", step.then), ("else", step.else_)]
    return []


# ---------------------------------------------------------------------------------------------
# Scenario


class Invariant(_Model):
    var: Name
    op: Literal["<", "<=", "==", "!=", ">=", ">"]
    value: Any


FindingKind = Literal["deadlock", "stall", "potential_deadlock", "race", "invariant", "misuse",
                      "error", "timeout"]
ActorKind = Literal["thread", "process", "coroutine"]


class Actor(_Model):
    name: Name
    kind: ActorKind
    steps: list[AnyStep] = Field(default_factory=list)
    daemon: bool = False
    autostart: bool = True
    pool: Name | None = None
    count: Annotated[int, Field(ge=1, le=MAX_COUNT)] = 1
    # private, untraced values (each copy of a `count` has its own)
    locals: dict[Name, Any] = Field(default_factory=dict, json_schema_extra=_V2)


ExploreStrategy = Literal["random", "pct", "dfs"]


class Explore(_Model):
    """How the pytest plugin judges this scenario: it explores it, as `tracer explore` does,
    with these runs, seed and strategy (the defaults are the command's), instead of one real
    run; `expect` is then the kinds of the problems the exploration finds."""

    runs: Annotated[int, Field(ge=1, le=1_000_000)] = 100
    seed: int = 0
    strategy: ExploreStrategy = "random"


class Scenario(_Model):
    name: Name
    description: str = ""
    timeout: Annotated[float, Field(gt=0, le=MAX_TIMEOUT, allow_inf_nan=False)] = 10.0
    primitives: dict[Name, PrimitiveSpec] = Field(default_factory=dict)
    shared: dict[Name, Any] = Field(default_factory=dict)
    invariants: list[Invariant] = Field(default_factory=list)
    # shared variables whose every access is atomic (Go's atomic types, C++'s std::atomic)
    atomic: list[Name] = Field(default_factory=list, json_schema_extra=_V2)
    expect: list[FindingKind] | None = None
    # the run stops (outcome `capped`) after this many events; None: DEFAULT_MAX_EVENTS
    max_events: Annotated[int, Field(ge=1, le=MAX_MAX_EVENTS)] | None = None
    # explore instead of one run when the scenario is a pytest item (tracer.pytest_plugin)
    explore: Explore | None = Field(default=None, json_schema_extra=_V2)
    actors: Annotated[list[Actor], Field(min_length=1)]

    def event_cap(self) -> int:
        """How many events a run of this scenario may record before it is stopped."""
        return self.max_events if self.max_events is not None else DEFAULT_MAX_EVENTS

    def as_mapping(self) -> dict[str, Any]:
        """The validated scenario as plain data, as embedded in traces."""
        return self.model_dump(mode="json", by_alias=True)


__all__ = [
    "ADDED_OPTIONS",
    "CORE_STEPS",
    "DEFAULT_MAX_EVENTS",
    "MAX_ACTORS",
    "MAX_COUNT",
    "MAX_DEPTH",
    "MAX_FILE_BYTES",
    "MAX_MAX_EVENTS",
    "MAX_REPEAT",
    "MAX_SLEEP",
    "MAX_TIMEOUT",
    "MAX_WORKERS",
    "PRIMITIVE_MODELS",
    "PRIMITIVE_TYPES",
    "STEP_MODELS",
    "TYPE_STEPS",
    "VERBS",
    "Acquire",
    "Actor",
    "ActorKind",
    "Add",
    "AddSpec",
    "Append",
    "Assert",
    "BarrierSpec",
    "BoundedSemaphoreSpec",
    "Clear",
    "Compare",
    "Compute",
    "ConditionSpec",
    "EventSpec",
    "Explore",
    "ExploreStrategy",
    "Expression",
    "Fail",
    "FindingKind",
    "Get",
    "If",
    "Invariant",
    "Join",
    "Let",
    "LockSpec",
    "Log",
    "Name",
    "Notify",
    "NotifyAll",
    "PipeSpec",
    "PoolSpec",
    "PrimitiveSpec",
    "Put",
    "QueueSpec",
    "RLockSpec",
    "Read",
    "Recv",
    "Release",
    "Repeat",
    "Return",
    "Scenario",
    "Seconds",
    "SemaphoreSpec",
    "Send",
    "Set",
    "Sleep",
    "Start",
    "Step",
    "VarItem",
    "VarValue",
    "Wait",
    "While",
    "With",
    "Write",
    "WriteSpec",
    "Yields",
    "child_blocks",
    "step_assigns",
    "step_exprs",
    "step_target",
    "step_verb",
]
