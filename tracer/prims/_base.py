"""What a primitive type's module declares, gathered into one :class:`PrimType`.

A type module defines ``NAME`` and, in its sections, the names listed below; ``PrimType.of``
collects them, so that the scenario checker, the trace's state pass and the engine each read
the part they need without knowing the type.

The "options and verbs" section (read by ``tracer.scenario``) may define:

``OPTIONS`` (required)
    the pydantic model of the type's ``primitives:`` entry, a :class:`PrimOptions` subclass
    whose ``type`` is ``Literal[NAME]``.
``VERBS``
    the step verbs that act on the type (``("acquire", "release", "with")``); the verbs of
    its own ``STEPS`` are added.
``STEPS``
    step models of verbs the type adds (:class:`Step` subclasses, ``verb`` set, the field
    named like the verb holds the target).
``VERB_OPTIONS``
    options the type adds to a shared verb, for its own primitives only:
    ``{"acquire": {"mode": VerbOption(Literal["read", "write"], "write")}}``.
``KINDS`` / ``KIND_REFUSALS``
    the actor kinds that may use it (default: all three), and for a kind it refuses, the
    message (``{name}`` is the primitive's name).
``MISUSE_HINT``
    appended when a verb that does not apply is used on it (``{name}``: the primitive).
``HOSTS_ACTORS`` / ``check_member(ctx, name, spec, actor, loc)``
    the type runs actors that name it in ``pool:`` (a pool), and checks each such actor.
``check(ctx, name, spec)``
    checks of its options against the whole scenario (a name that must be another primitive
    or an actor).
``check_use(ctx, name, spec, step, loc, actors)``
    checks of one step acting on it, by ``actors`` (the copies of the actor the step is in).
``also_uses(spec)``
    other primitives a step on it also uses (a condition's lock).
``fixed_kinds(spec)``
    the actor kind its backing serves when its options fix it (a pool's ``of``), or None.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Any

from tracer.prims._options import CheckContext, PrimOptions, Step, VerbOption, a_

if TYPE_CHECKING:
    from collections.abc import Sequence

ALL_KINDS: tuple[str, ...] = ("thread", "process", "coroutine")


@dataclass(frozen=True)
class PrimType:
    """One registered primitive type."""

    name: str
    module: ModuleType

    @classmethod
    def of(cls, module: ModuleType) -> PrimType:
        name = module.NAME
        assert isinstance(name, str)
        return cls(name, module)

    def part(self, attr: str, default: Any = None) -> Any:
        """A declaration of the type's module (a section's name), or ``default``."""
        return getattr(self.module, attr, default)

    # --- options and verbs ---------------------------------------------------------------

    @property
    def options(self) -> type[PrimOptions]:
        """The pydantic model of the type's ``primitives:`` entry."""
        model = self.part("OPTIONS")
        if not (isinstance(model, type) and issubclass(model, PrimOptions)):
            raise TypeError(f"tracer.prims.{self.name}: OPTIONS must be a PrimOptions model")
        return model

    @property
    def steps(self) -> tuple[type[Step], ...]:
        """The step models of the verbs this type adds."""
        return tuple(self.part("STEPS", ()))

    @property
    def verbs(self) -> tuple[str, ...]:
        """Every verb that acts on this type, its own verbs included."""
        out = list(self.part("VERBS", ()))
        out += [m.verb for m in self.steps if m.verb not in out]
        return tuple(out)

    @property
    def verb_options(self) -> Mapping[str, Mapping[str, VerbOption]]:
        """Options this type adds to shared verbs: verb -> option name -> its declaration."""
        return dict(self.part("VERB_OPTIONS", {}))

    @property
    def kinds(self) -> tuple[str, ...]:
        """The actor kinds that may use a primitive of this type."""
        return tuple(self.part("KINDS", ALL_KINDS))

    def kind_refusal(self, name: str, kind: str) -> str | None:
        """Why primitive ``name`` of this type cannot be used by ``kind`` actors, if not."""
        if kind in self.kinds:
            return None
        msg = self.part("KIND_REFUSALS", {}).get(kind)
        if msg is None:
            ok = self.kinds
            shown = " and ".join([", ".join(ok[:-1]), ok[-1]] if len(ok) > 1 else ok)
            msg = (f"'{{name}}' is {a_(self.name)} used by {kind} actors, but {a_(self.name)} "
                   f"works for {shown or 'no'} actors only")
        return str(msg).format(name=name)

    def misuse_hint(self, name: str) -> str:
        """Added to "verb does not apply" messages on this type ('' by default)."""
        return str(self.part("MISUSE_HINT", "")).format(name=name)

    @property
    def hosts_actors(self) -> bool:
        """Actors name a primitive of this type in their ``pool:`` field."""
        return bool(self.part("HOSTS_ACTORS", False))

    def check(self, ctx: CheckContext, name: str, spec: PrimOptions) -> None:
        """Check primitive ``name``'s options against the whole scenario."""
        fn = self.part("check")
        if fn is not None:
            fn(ctx, name, spec)

    def check_member(self, ctx: CheckContext, name: str, spec: PrimOptions, actor: Any,
                     loc: tuple[str | int, ...]) -> None:
        """Check an actor that names primitive ``name`` in ``pool:`` (a HOSTS_ACTORS type)."""
        fn = self.part("check_member")
        if fn is not None:
            fn(ctx, name, spec, actor, loc)

    def check_use(self, ctx: CheckContext, name: str, spec: PrimOptions, step: Step,
                  loc: tuple[str | int, ...], actors: Sequence[str]) -> None:
        """Check one step acting on primitive ``name``, run by each of ``actors``."""
        fn = self.part("check_use")
        if fn is not None:
            fn(ctx, name, spec, step, loc, tuple(actors))

    def also_uses(self, spec: PrimOptions) -> tuple[str, ...]:
        """Other primitives that a step on this one also uses (a condition's lock)."""
        fn = self.part("also_uses")
        return tuple(fn(spec)) if fn is not None else ()

    def fixed_kinds(self, spec: PrimOptions) -> frozenset[str] | None:
        """The actor kinds this primitive's backing serves, when its options fix them."""
        fn = self.part("fixed_kinds")
        return frozenset(fn(spec)) if fn is not None else None
