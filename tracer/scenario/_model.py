"""Pydantic models of the scenario format (docs/formats.md, section 1).

Field names follow the YAML keys exactly: a step mapping such as ``{acquire: A, timeout: 0.5}``
validates straight into :class:`Acquire`. Keys that are Python keywords (``with``, ``if``,
``else``, ``return``) use aliases. Cross-references (does the target exist, does its type
support the verb) are checked afterwards in ``_check.py``, where the whole scenario is known.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, ClassVar, Literal, Union

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    SerializationInfo,
    SerializerFunctionWrapHandler,
    Tag,
    model_serializer,
)

# Documented limits (docs/formats.md, "Limits"): large enough for real scenarios and the
# scale benchmarks, small enough that a typo cannot ask for a billion threads.
MAX_ACTORS = 10_000
MAX_COUNT = 10_000
MAX_REPEAT = 10_000_000
MAX_DEPTH = 16
MAX_SLEEP = 3600.0
MAX_TIMEOUT = 86_400.0
MAX_FILE_BYTES = 5_000_000
MAX_WORKERS = 1024

Seconds = Annotated[float, Field(ge=0, le=MAX_TIMEOUT, allow_inf_nan=False)]
Name = Annotated[str, Field(min_length=1, max_length=200)]


class _Model(BaseModel):
    # strict: YAML gives real types, so `count: true` or `timeout: "5"` are mistakes
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, strict=True)

    @model_serializer(mode="wrap")
    def _given_nulls_only(self, handler: SerializerFunctionWrapHandler,
                          info: SerializationInfo) -> Any:
        """Leave out a field that is None because it was not given (``timeout``, ``pool``, a
        bare put's ``item``), keep one the scenario gave as ``null``: ``item: null`` puts None,
        no ``item`` puts an automatic one, and the embedded scenario must say which."""
        data = handler(self)
        if not isinstance(data, dict):
            return data
        for name, field in type(self).model_fields.items():
            if name in self.model_fields_set:
                continue
            key = field.alias if info.by_alias and field.alias else name
            if key in data and data[key] is None:
                del data[key]
        return data


# ---------------------------------------------------------------------------------------------
# Primitives


class _Prim(_Model):
    type: str


class LockSpec(_Prim):
    type: Literal["lock"]


class RLockSpec(_Prim):
    type: Literal["rlock"]


class SemaphoreSpec(_Prim):
    type: Literal["semaphore"]
    value: Annotated[int, Field(ge=0, le=1_000_000)] = 1


class BoundedSemaphoreSpec(_Prim):
    type: Literal["bounded_semaphore"]
    value: Annotated[int, Field(ge=0, le=1_000_000)] = 1


class EventSpec(_Prim):
    type: Literal["event"]


class ConditionSpec(_Prim):
    type: Literal["condition"]
    lock: Name | None = None


class BarrierSpec(_Prim):
    type: Literal["barrier"]
    parties: Annotated[int, Field(ge=1, le=MAX_ACTORS)]


class QueueSpec(_Prim):
    type: Literal["queue"]
    maxsize: Annotated[int, Field(ge=0, le=10_000_000)] = 0


class PipeSpec(_Prim):
    type: Literal["pipe"]
    between: Annotated[list[Name], Field(min_length=2, max_length=2)]
    duplex: bool = True


class PoolSpec(_Prim):
    type: Literal["pool"]
    workers: Annotated[int, Field(ge=1, le=MAX_WORKERS)]
    of: Literal["thread", "process"] = "thread"


PrimitiveSpec = Annotated[
    Union[  # noqa: UP007 - a discriminated union reads better spelled out
        LockSpec,
        RLockSpec,
        SemaphoreSpec,
        BoundedSemaphoreSpec,
        EventSpec,
        ConditionSpec,
        BarrierSpec,
        QueueSpec,
        PipeSpec,
        PoolSpec,
    ],
    Field(discriminator="type"),
]

PRIMITIVE_MODELS: dict[str, type[_Prim]] = {
    "lock": LockSpec,
    "rlock": RLockSpec,
    "semaphore": SemaphoreSpec,
    "bounded_semaphore": BoundedSemaphoreSpec,
    "event": EventSpec,
    "condition": ConditionSpec,
    "barrier": BarrierSpec,
    "queue": QueueSpec,
    "pipe": PipeSpec,
    "pool": PoolSpec,
}
PRIMITIVE_TYPES: tuple[str, ...] = tuple(PRIMITIVE_MODELS)

# ---------------------------------------------------------------------------------------------
# Steps: one model per verb; the field named like the verb holds the target.


class Step(_Model):
    verb: ClassVar[str]


class Acquire(Step):
    verb: ClassVar[str] = "acquire"
    acquire: Name
    timeout: Seconds | None = None
    blocking: bool = True


class Release(Step):
    verb: ClassVar[str] = "release"
    release: Name


class Wait(Step):
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


class Put(Step):
    verb: ClassVar[str] = "put"
    put: Name
    item: Any = None
    timeout: Seconds | None = None
    blocking: bool = True


class Get(Step):
    verb: ClassVar[str] = "get"
    get: Name
    timeout: Seconds | None = None
    blocking: bool = True


class Send(Step):
    verb: ClassVar[str] = "send"
    send: Name
    item: Any = None


class Recv(Step):
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


class Write(Step):
    verb: ClassVar[str] = "write"
    write: VarValue


class Add(Step):
    verb: ClassVar[str] = "add"
    add: VarValue


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


class Join(Step):
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


class If(Step):
    verb: ClassVar[str] = "if"
    if_: Compare = Field(alias="if")
    then: list[AnyStep]
    else_: list[AnyStep] = Field(default_factory=list, alias="else")


class Return(Step):
    verb: ClassVar[str] = "return"
    return_: Any = Field(default=True, alias="return")


class Fail(Step):
    verb: ClassVar[str] = "fail"
    fail: Annotated[str, Field(max_length=10_000)]


STEP_MODELS: dict[str, type[Step]] = {
    m.verb: m
    for m in (
        Acquire, Release, Wait, Set, Clear, Notify, NotifyAll, Put, Get, Send, Recv, Read,
        Write, Add, Append, Sleep, Log, Start, Join, With, Repeat, If, Return, Fail,
    )
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


AnyStep = Annotated[
    Union[  # noqa: UP007 - one tagged member per verb
        Annotated[Acquire, Tag("acquire")],
        Annotated[Release, Tag("release")],
        Annotated[Wait, Tag("wait")],
        Annotated[Set, Tag("set")],
        Annotated[Clear, Tag("clear")],
        Annotated[Notify, Tag("notify")],
        Annotated[NotifyAll, Tag("notify_all")],
        Annotated[Put, Tag("put")],
        Annotated[Get, Tag("get")],
        Annotated[Send, Tag("send")],
        Annotated[Recv, Tag("recv")],
        Annotated[Read, Tag("read")],
        Annotated[Write, Tag("write")],
        Annotated[Add, Tag("add")],
        Annotated[Append, Tag("append")],
        Annotated[Sleep, Tag("sleep")],
        Annotated[Log, Tag("log")],
        Annotated[Start, Tag("start")],
        Annotated[Join, Tag("join")],
        Annotated[With, Tag("with")],
        Annotated[Repeat, Tag("repeat")],
        Annotated[If, Tag("if")],
        Annotated[Return, Tag("return")],
        Annotated[Fail, Tag("fail")],
    ],
    Discriminator(step_verb),
]

With.model_rebuild()
Repeat.model_rebuild()
If.model_rebuild()


def step_target(step: Step) -> str | None:
    """The name a step acts on (primitive, variable or actor), if any."""
    if isinstance(step, With):
        return step.with_
    if isinstance(step, (Write, Add)):
        return step.write.var if isinstance(step, Write) else step.add.var
    if isinstance(step, Append):
        return step.append.var
    if isinstance(step, If):
        return step.if_.var
    value = getattr(step, step.verb, None)
    if isinstance(value, str) and step.verb not in ("log", "fail"):
        return value
    return None


def child_blocks(step: Step) -> list[tuple[str, Sequence[Step]]]:
    """Nested step lists of a step, with the key that holds each."""
    if isinstance(step, (With, Repeat)):
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


class Scenario(_Model):
    name: Name
    description: str = ""
    timeout: Annotated[float, Field(gt=0, le=MAX_TIMEOUT, allow_inf_nan=False)] = 10.0
    primitives: dict[Name, PrimitiveSpec] = Field(default_factory=dict)
    shared: dict[Name, Any] = Field(default_factory=dict)
    invariants: list[Invariant] = Field(default_factory=list)
    expect: list[FindingKind] | None = None
    actors: Annotated[list[Actor], Field(min_length=1)]

    def as_mapping(self) -> dict[str, Any]:
        """The validated scenario as plain data, as embedded in traces."""
        return self.model_dump(mode="json", by_alias=True)
