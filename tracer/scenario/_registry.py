"""What the scenario format takes from the primitive registry (``tracer.prims``).

The scenario package names no primitive type: the types, their options models, the verbs that
act on each, the verbs and verb options a type adds, and each type's checks all come from the
registered type modules. This module gathers them once, when ``tracer.scenario`` is imported.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from tracer.prims import REGISTRY, PrimType
from tracer.prims._options import PrimOptions, Step, VerbOption


@dataclass(frozen=True)
class AddedOption:
    """An option some types add to a shared verb, and which types add it."""

    verb: str
    name: str
    option: VerbOption
    types: tuple[str, ...]


def types() -> Mapping[str, PrimType]:
    """The registered types, in registry order."""
    return REGISTRY


def primitive_models() -> dict[str, type[PrimOptions]]:
    """Type name -> its options model."""
    return {name: t.options for name, t in REGISTRY.items()}


def verb_types() -> dict[str, tuple[str, ...]]:
    """Verb -> the types it acts on (in registry order), for every verb a type lists."""
    out: dict[str, list[str]] = {}
    for name, t in REGISTRY.items():
        for verb in t.verbs:
            out.setdefault(verb, []).append(name)
    return {verb: tuple(names) for verb, names in out.items()}


def type_steps(core: Mapping[str, type[Step]]) -> dict[str, type[Step]]:
    """The step models types add, by verb; a verb added twice or shadowing a core verb is a
    contributor's mistake, refused at import."""
    out: dict[str, type[Step]] = {}
    for name, t in REGISTRY.items():
        for model in t.steps:
            verb = model.verb
            if verb in core or verb in out:
                raise TypeError(f"tracer.prims.{name}: step verb '{verb}' is already defined")
            out[verb] = model
    return out


def added_options(verbs: Mapping[str, type[Step]]) -> dict[str, dict[str, AddedOption]]:
    """Verb -> option name -> the option types add to that verb (same declaration for every
    type that adds it, else refused at import)."""
    out: dict[str, dict[str, AddedOption]] = {}
    for name, t in REGISTRY.items():
        for verb, options in t.verb_options.items():
            if verb not in verbs:
                raise TypeError(f"tracer.prims.{name}: VERB_OPTIONS names unknown verb '{verb}'")
            for oname, opt in options.items():
                if oname in verbs[verb].model_fields:
                    raise TypeError(f"tracer.prims.{name}: '{verb}' already has '{oname}'")
                have = out.setdefault(verb, {}).get(oname)
                if have is not None and have.option != opt:
                    raise TypeError(f"tracer.prims.{name}: option '{oname}' of '{verb}' is "
                                    f"declared differently by {', '.join(have.types)}")
                types_ = (*have.types, name) if have is not None else (name,)
                out[verb][oname] = AddedOption(verb, oname, opt, types_)
    return out
