"""Cross-checks over a whole validated scenario, and its expansion into a run plan.

pydantic has checked each part's shape; here we check what needs the whole file: every target
exists and its type supports the verb, `start` targets, `count` copies, each type's own checks
(declared by its module in tracer/prims), and which backing (thread / process / coroutine
flavour) each primitive gets.
"""

from __future__ import annotations

import datetime as dt
import keyword
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from tracer.prims._options import CheckContext, a_
from tracer.scenario import _registry
from tracer.scenario._expr import CONSTANTS, parse_expr
from tracer.scenario._load import (
    Loc,
    Problem,
    ScenarioError,
    _line,
    did_you_mean,
    format_loc,
)
from tracer.scenario._model import (
    ADDED_OPTIONS,
    MAX_ACTORS,
    Actor,
    Add,
    Append,
    Compare,
    If,
    Scenario,
    Start,
    Step,
    Write,
    child_blocks,
    step_assigns,
    step_exprs,
    step_target,
)

# Which primitive types each verb may act on (each type module lists its verbs).
VERB_TYPES: dict[str, tuple[str, ...]] = _registry.verb_types()
VAR_VERBS = ("read", "write", "add", "append", "if")
ACTOR_VERBS = ("start", "join")


@dataclass(frozen=True)
class ActorPlan:
    """One actor as it will run: `count` copies are separate plans named ``NAME[i]``."""

    name: str
    kind: str
    steps: tuple[Step, ...]
    daemon: bool
    autostart: bool
    pool: str | None
    base: str
    index: int


@dataclass(frozen=True)
class Plan:
    """A checked scenario, ready for the engine."""

    scenario: Scenario
    source: str
    actors: tuple[ActorPlan, ...]
    groups: dict[str, tuple[str, ...]]  # a name used in start/join -> the actors it means
    flavour: dict[str, str] = field(default_factory=dict)  # primitive -> thread|process|coroutine
    users: dict[str, tuple[str, ...]] = field(default_factory=dict)  # primitive -> actor names
    # the YAML line of each path (empty for a scenario read back from a trace): the engine
    # names the line of the step an actor failed at
    lines: dict[Loc, int] = field(default_factory=dict)

    def actor(self, name: str) -> ActorPlan:
        """The actor named ``name`` (StopIteration if none): by a table made at the first
        call, as the engine asks for each of 10,000 actors."""
        by_name: dict[str, ActorPlan] | None = self.__dict__.get("_by_name")
        if by_name is None or len(by_name) != len(self.actors):
            by_name = {a.name: a for a in self.actors}
            object.__setattr__(self, "_by_name", by_name)
        got = by_name.get(name)
        if got is None:
            raise StopIteration(name)
        return got


def walk_steps(steps: Sequence[Step], loc: Loc) -> Iterator[tuple[Step, Loc]]:
    """Every step, nested ones included, with its location."""
    for i, step in enumerate(steps):
        sloc = (*loc, i)
        yield step, sloc
        for key, block in child_blocks(step):
            yield from walk_steps(block, (*sloc, key))


def step_values(step: Step) -> list[tuple[Loc, Any]]:
    """The YAML values a step carries (an item, a value to write or compare), each with its
    location inside the step."""
    if "item" in type(step).model_fields:  # a put's or a send's item
        given = "item" in step.model_fields_set
        return [(("item",), getattr(step, "item", None))] if given else []
    if isinstance(step, Write):
        return [(("write", "value"), step.write.value)] if step.write.expr is None else []
    if isinstance(step, Add):
        return [(("add", "value"), step.add.value)]
    if isinstance(step, Append):
        return [(("append", "item"), step.append.item)]
    if isinstance(step, If) and isinstance(step.if_, Compare):
        return [(("if", "value"), step.if_.value)]
    return []


def actor_locals(actor: Actor) -> dict[str, tuple[str | int, ...]]:
    """The locals of an actor: those ``locals`` declares, then those a ``let`` or an ``as``
    assigns, each with where it first appears (a path inside the actor)."""
    out: dict[str, tuple[str | int, ...]] = {name: ("locals", name) for name in actor.locals}
    for step, loc in walk_steps(actor.steps, ("steps",)):
        for key, name in step_assigns(step):
            out.setdefault(name, (*loc, *key))
    return out


def check_language(scenario: Scenario, add: Callable[[Loc, str], None]) -> None:
    """The names of the language: locals against shared variables, every name an expression
    uses, the ``atomic`` list."""
    shared = scenario.shared
    prims = scenario.primitives
    for j, var in enumerate(scenario.atomic):
        if var not in shared:
            fix = did_you_mean(var, shared) or ": declare it in 'shared', or remove it"
            add(("atomic", j), f"'atomic' lists '{var}', which is not a shared variable{fix}")
    for i, actor in enumerate(scenario.actors):
        aloc: Loc = ("actors", i)
        mine = actor_locals(actor)
        for name, where in mine.items():
            if not name.isidentifier() or keyword.iskeyword(name):
                add((*aloc, *where), f"the local '{name}' of {actor.name} cannot be named in an "
                                     "expression: a local's name is letters, digits and '_', "
                                     "not starting with a digit, and not a word of Python "
                                     "such as 'and' or 'if'; rename it")
                continue
            clash = ("a shared variable" if name in shared else
                     "a primitive" if name in prims else
                     "a constant" if name in CONSTANTS else None)
            if clash:
                hint = (f"; to change the shared variable use write: {{var: {name}, expr: ...}}"
                        if name in shared else "")
                add((*aloc, *where), f"the local '{name}' of {actor.name} has the name of "
                                     f"{clash}: rename the local{hint}")
        for value_name, value in actor.locals.items():
            why = untraceable(value)
            if why:
                add((*aloc, "locals", value_name), why)
        known = {**dict.fromkeys(shared, "shared"), **dict.fromkeys(mine, "local")}
        for step, sloc in walk_steps(actor.steps, (*aloc, "steps")):
            for key, text in step_exprs(step):
                expr = parse_expr(text)  # (the model checked that it parses)
                for used in expr.names:
                    if used in known:
                        continue
                    hint_p = (" (it is a primitive: an expression reads shared variables and "
                             "locals)" if used in prims else "")
                    listed = ", ".join(sorted(known)) or "none"
                    guess = did_you_mean(used, known)
                    fix = guess or (f"; declare it in the actor's 'locals' (locals: {{{used}: 0}})"
                                    f" or in 'shared'" if not hint_p else "")
                    add((*sloc, *key), f"'{used}' in {text!r} is neither a local of "
                                       f"{actor.name} nor a shared variable{hint_p}"
                                       f"{fix} (names here: {listed})")


I64_MIN, U64_MAX = -(2**63), 2**64 - 1  # what a JSON trace holds exactly (orjson)


def untraceable(value: Any, seen: set[int] | None = None) -> str | None:
    """Why ``value`` would not come back the same from a trace (JSON), if it would not: the
    trace records it, embeds it in its scenario, and a replay runs with what it reads back.
    ``seen``: the lists and mappings already looked at (YAML aliases share them: each is
    looked at once, so an alias bomb costs no more than its file)."""
    if isinstance(value, (list, dict)):
        seen = set() if seen is None else seen
        if id(value) in seen:
            return None
        seen.add(id(value))
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return None
    if isinstance(value, int):
        if not I64_MIN <= value <= U64_MAX:
            return (f"the integer {value} is too large for a trace (64 bits at most); use a "
                    "smaller one, or a string")
        return None
    if isinstance(value, float):
        if not math.isfinite(value):
            return (f"{value} is not a finite number, which a JSON trace cannot hold; use a "
                    "large number, or null")
        return None
    if isinstance(value, (dt.date, dt.datetime)):
        return (f"{value} is a YAML date, which a trace would turn into a string; quote it "
                f"to make it one ('{value}')")
    if isinstance(value, list):
        for v in value:
            why = untraceable(v, seen)
            if why:
                return why
        return None
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, str):
                return (f"the mapping key {k!r} is not a string, and a trace would turn it "
                        f"into one; quote it ('{k}')")
            why = untraceable(v, seen)
            if why:
                return why
        return None
    return f"{value!r} is not plain YAML data"  # pragma: no cover - SafeLoader makes no other


ORDERING = ("<", "<=", ">", ">=")


def unordered(op: str, value: Any) -> str | None:
    """Why comparing by ``op`` with ``value`` can never hold, if it cannot: null and mappings
    have no order, so ``x < null`` would fail on every run, whatever ``x`` is."""
    if op not in ORDERING:
        return None
    if value is None:
        return (f"'{op}' compares by order, and null has no order, so this comparison fails "
                "whatever the variable holds; use '==' or '!=' to test for null, or compare "
                "with a number")
    if isinstance(value, dict):
        return (f"'{op}' compares by order, and a mapping has no order; use '==' or '!=', "
                "or compare with a number, a string or a list")
    return None


def added_options_fit(step: Step, target: str, ptype: str, loc: Loc,
                      add: Callable[[Loc, str], None]) -> bool:
    """Refuse an option a type added to this verb (``mode`` on ``acquire``) when the step's
    target is of another type; True when every given option fits."""
    fits = True
    for name, added in ADDED_OPTIONS.get(step.verb, {}).items():
        if name not in step.model_fields_set or ptype in added.types:
            continue
        fits = False
        value = getattr(step, name)
        shown = value if isinstance(value, str) else repr(value)
        owners = " or ".join(a_(t) for t in added.types)
        doc = f" ({added.option.doc})" if added.option.doc else ""
        add((*loc, name), f"option '{name}'{doc} of '{step.verb}' applies to {owners} only, but "
                          f"'{target}' is {a_(ptype)}: drop '{name}: {shown}', or make "
                          f"'{target}' {a_(added.types[0])}")
    return fits


def check(scenario: Scenario, lines: dict[Loc, int], source: str) -> Plan:
    """Cross-check a scenario and expand it into a :class:`Plan`, or raise ScenarioError."""
    problems: list[Problem] = []

    def add(loc: Loc, msg: str) -> None:
        problems.append(Problem(format_loc(loc), _line(lines, loc), msg))

    prims = scenario.primitives
    shared = scenario.shared

    # --- actors: names, copies, groups
    total = sum(a.count for a in scenario.actors)
    if total > MAX_ACTORS:
        add(("actors",), f"{total} actors after expanding 'count'; the limit is {MAX_ACTORS}")
        raise ScenarioError(source, problems)
    groups: dict[str, tuple[str, ...]] = {}
    plans: list[ActorPlan] = []
    seen: dict[str, Loc] = {}
    for i, actor in enumerate(scenario.actors):
        names = ([actor.name] if actor.count == 1
                 else [f"{actor.name}[{k}]" for k in range(actor.count)])
        for k, name in enumerate(names):
            if name in seen:
                add(("actors", i, "name"), f"actor name '{name}' is used twice "
                                           f"(also at {format_loc(seen[name])})")
            seen[name] = ("actors", i)
            plans.append(ActorPlan(name, actor.kind, tuple(actor.steps), actor.daemon,
                                   actor.autostart, actor.pool, actor.name, k))
        groups[actor.name] = tuple(names)
        for name in names:
            groups.setdefault(name, (name,))
    kinds = {p.name: p.kind for p in plans}
    autostart = {p.name: p.autostart for p in plans}

    # --- primitive options that name other things (each type checks its own)
    types = _registry.types()
    ctx = CheckContext(prims, kinds, groups, add, did_you_mean)
    for pname, spec in prims.items():
        types[spec.type].check(ctx, pname, spec)
    for name in shared:
        if name in prims:
            add(("shared", name), f"'{name}' is both a primitive and a shared variable; "
                                  "rename one")

    # --- actors' own fields
    for i, actor in enumerate(scenario.actors):
        aloc: Loc = ("actors", i)
        if actor.pool is not None:
            pspec = prims.get(actor.pool)
            hosts = [n for n, t in types.items() if t.hosts_actors]
            if pspec is None or pspec.type not in hosts:
                what = a_(pspec.type) if pspec else "not a primitive"
                add((*aloc, "pool"), f"'{actor.pool}' is {what}; 'pool' names a primitive of "
                                     f"type {' or '.join(hosts)}"
                                     f"{did_you_mean(actor.pool, prims)}")
            else:
                types[pspec.type].check_member(ctx, actor.pool, pspec, actor, aloc)
            if actor.daemon:
                add((*aloc, "daemon"), "a pool task cannot be a daemon; the pool owns it")

    # --- steps
    users: dict[str, set[str]] = {p: set() for p in prims}
    for i, actor in enumerate(scenario.actors):
        copies = groups[actor.name]
        for step, sloc in walk_steps(actor.steps, ("actors", i, "steps")):
            sloc_full: Loc = sloc
            verb = step.verb
            for vloc, value in step_values(step):
                why = untraceable(value)
                if why:
                    add((*sloc, *vloc), why)
            if isinstance(step, If) and isinstance(step.if_, Compare):
                why = unordered(step.if_.op, step.if_.value)
                if why:
                    add((*sloc, "if", "value"), why)
            target = step_target(step)
            if getattr(step, "timeout", None) is not None \
                    and getattr(step, "blocking", True) is False:
                add(sloc_full, f"'{verb}' with blocking: false cannot have a timeout; "
                               "drop one of them")
            if target is None:
                continue
            if verb in VERB_TYPES:
                allowed = VERB_TYPES[verb]
                if target not in prims:
                    where = ("a shared variable" if target in shared else
                             "an actor" if target in groups else None)
                    if where:
                        add(sloc_full, f"'{verb}' needs a primitive ({', '.join(allowed)}), "
                                       f"but '{target}' is {where}")
                    else:
                        add(sloc_full, f"'{verb}: {target}': no primitive named '{target}'"
                                       f"{did_you_mean(target, prims)}")
                    continue
                ptype = prims[target].type
                if ptype not in allowed:
                    hint = types[ptype].misuse_hint(target)
                    add(sloc_full, f"'{verb}' does not apply to {target!r}, {a_(ptype)}; it "
                                   f"works on: {', '.join(allowed)}{hint}")
                    continue
                if not added_options_fit(step, target, ptype, sloc_full, add):
                    continue
                users[target].update(copies)
                for other in types[ptype].also_uses(prims[target]):
                    if other in prims:
                        users[other].update(copies)
                types[ptype].check_use(ctx, target, prims[target], step, sloc_full, copies)
            elif verb in VAR_VERBS:
                if target not in shared:
                    where = " (it is a primitive)" if target in prims else ""
                    add(sloc_full, f"'{verb}': no shared variable named '{target}'{where}"
                                   f"{did_you_mean(target, shared)}")
                    continue
                initial = shared[target]
                if isinstance(step, Add) and (
                        isinstance(initial, bool) or not isinstance(initial, (int, float))):
                    add(sloc_full, f"'add' needs a number, but '{target}' starts as "
                                   f"{initial!r}")
                if isinstance(step, Append) and not isinstance(initial, list):
                    add(sloc_full, f"'append' needs a list, but '{target}' starts as "
                                   f"{initial!r}")
            elif verb in ACTOR_VERBS:
                if actor.kind == "process":
                    add(sloc_full, f"a process actor cannot {verb} other actors in this "
                                   f"version of tracer: let a thread actor (a 'main') {verb} "
                                   f"'{target}'")
                    continue
                if target not in groups:
                    add(sloc_full, f"'{verb}: {target}': no actor named '{target}'"
                                   f"{did_you_mean(target, groups)}")
                    continue
                if set(groups[target]) & set(copies):
                    whom = (f"actor '{target}'" if len(copies) == 1 else
                            f"each copy of '{actor.name}' (count: {actor.count}; "
                            f"'{verb}: {target}' means all copies, itself included)")
                    add(sloc_full, f"{whom} cannot {verb} itself")
                    continue
                if isinstance(step, Start):
                    for name in groups[target]:
                        if autostart[name]:
                            add(sloc_full, f"'start: {target}' needs actor '{name}' to have "
                                           "'autostart: false' (it starts by itself)")
                            break
            # unknown verbs were caught by the pre-checks

    # --- backing flavour of each primitive, and coroutine sharing
    flavour: dict[str, str] = {}
    for pname, who in users.items():
        pspec = prims[pname]
        ks = {kinds[n] for n in who}
        fixed = types[pspec.type].fixed_kinds(pspec)
        if fixed is not None:
            ks = set(fixed)
        mixed = "coroutine" in ks and len(ks) > 1
        if mixed:
            others = sorted(n for n in who if kinds[n] != "coroutine")
            add(("primitives", pname),
                f"'{pname}' is used by coroutine actors and by {', '.join(others[:3])} "
                f"({'/'.join(sorted(ks - {'coroutine'}))}): an asyncio primitive only works "
                "inside its event loop, and a blocking one would freeze the loop. Give the "
                "coroutines a primitive of their own")
        flavour[pname] = ("process" if "process" in ks else
                          "coroutine" if ks == {"coroutine"} else "thread")
        if not mixed:
            for kind in sorted(ks):
                refusal = types[pspec.type].kind_refusal(pname, kind)
                if refusal:
                    add(("primitives", pname), refusal)

    check_language(scenario, add)
    for name, value in shared.items():
        why = untraceable(value)
        if why:
            add(("shared", name), why)
    for i, inv in enumerate(scenario.invariants):
        why = untraceable(inv.value) or unordered(inv.op, inv.value)
        if why:
            add(("invariants", i, "value"), why)
        if inv.var not in shared:
            add(("invariants", i, "var"), f"invariant on '{inv.var}': no shared variable of "
                                          f"that name{did_you_mean(inv.var, shared)}")

    if problems:
        raise ScenarioError(source, problems)
    return Plan(scenario, source, tuple(plans), groups, flavour,
                {k: tuple(sorted(v)) for k, v in users.items()}, dict(lines))
