"""Load a scenario file: YAML (safe) -> structural pre-checks -> pydantic -> cross-checks.

Every problem becomes a :class:`ScenarioError` naming the file, the path inside it
(``actors[1].steps[2]``), the YAML line, and a did-you-mean where a name looks misspelled.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from tracer.prims._options import a_
from tracer.scenario._model import (
    ADDED_OPTIONS,
    MAX_DEPTH,
    MAX_FILE_BYTES,
    PRIMITIVE_MODELS,
    PRIMITIVE_TYPES,
    STEP_MODELS,
    VERBS,
    Actor,
    AddSpec,
    Compare,
    Explore,
    Invariant,
    Scenario,
    VarItem,
    WriteSpec,
    step_verb,
)
from tracer.trace._io import NotRegularFile, not_a_regular_file, open_regular

Loc = tuple[str | int, ...]


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a scenario file."""

    path: str
    line: int | None
    message: str

    def render(self, source: str) -> str:
        where = f"{source}:{self.line}" if self.line else source
        inside = f" {self.path}:" if self.path else ""
        return f"{where}:{inside} {self.message}"


class ScenarioError(Exception):
    """A scenario file that cannot be used; ``str()`` is the message for the user."""

    def __init__(self, source: str, problems: list[Problem]) -> None:
        self.source = source
        self.problems = problems
        shown = problems[:10]
        lines = [p.render(source) for p in shown]
        if len(problems) > len(shown):
            lines.append(f"... and {len(problems) - len(shown)} more problems")
        super().__init__("\n".join(lines))


def did_you_mean(word: object, choices: Iterable[str]) -> str:
    """A ``" — did you mean 'x'?"`` suffix, or nothing when no choice is close."""
    if not isinstance(word, str):
        return ""
    close = difflib.get_close_matches(word, [c for c in choices if c != word], n=1, cutoff=0.6)
    return f" — did you mean '{close[0]}'?" if close else ""


def format_loc(loc: Loc) -> str:
    """('actors', 1, 'steps', 2) -> 'actors[1].steps[2]'."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


# ---------------------------------------------------------------------------------------------
# YAML with line numbers


class _NoDuplicatesLoader(yaml.SafeLoader):
    """SafeLoader (no Python object tags) that remembers where every key and item is."""


MAX_NODES = 200_000  # YAML nodes after expanding aliases: stops "billion laughs" documents


def _yaml_problem(exc: yaml.YAMLError) -> Problem:
    if isinstance(exc, yaml.MarkedYAMLError):
        line = exc.problem_mark.line + 1 if exc.problem_mark else None
        context = f" ({exc.context})" if exc.context else ""
        return Problem("", line, f"not valid YAML: {exc.problem or exc}{context}")
    return Problem("", None, f"not valid YAML: {exc}")


def _compose(text: str, source: str) -> tuple[Any, dict[Loc, int]]:
    try:
        node = yaml.compose(text, Loader=_NoDuplicatesLoader)
    except yaml.YAMLError as exc:
        raise ScenarioError(source, [_yaml_problem(exc)]) from None
    except RecursionError:
        raise ScenarioError(source, [Problem("", None, "the YAML is nested too deeply")]) \
            from None
    if node is None:
        raise ScenarioError(source, [Problem("", None, "the file is empty; a scenario mapping "
                                                       "with 'name' and 'actors' is expected")])
    lines: dict[Loc, int] = {}
    problems: list[Problem] = []
    # an explicit stack, not recursion: deep documents must not crash the walk; a node met
    # again on its own path is an alias that contains itself
    stack: list[tuple[yaml.Node, Loc, tuple[int, ...]]] = [(node, (), ())]
    visited = 0
    while stack:
        n, loc, path = stack.pop()
        visited += 1
        if visited > MAX_NODES:
            raise ScenarioError(source, [Problem("", None, f"the document has more than "
                                                 f"{MAX_NODES} values once its aliases (*name) "
                                                 "are expanded")])
        if id(n) in path:
            raise ScenarioError(source, [Problem(format_loc(loc), n.start_mark.line + 1,
                                                 "a YAML alias refers to a value that contains "
                                                 "it (a loop)")])
        lines.setdefault(loc, n.start_mark.line + 1)
        if isinstance(n, yaml.ScalarNode) and len(n.value) > 100 and \
                n.tag.endswith((":int", ":float")):
            raise ScenarioError(source, [Problem(format_loc(loc), n.start_mark.line + 1,
                                                 f"a number of {len(n.value)} digits is too "
                                                 "long to be a sensible value")])
        inner = (*path, id(n))
        if isinstance(n, yaml.MappingNode):
            seen: set[str] = set()
            for k, v in n.value:
                key = k.value if isinstance(k, yaml.ScalarNode) else "?"
                if key in seen:
                    problems.append(Problem(format_loc(loc), k.start_mark.line + 1,
                                            f"duplicate key '{key}': names must be unique"))
                seen.add(key)
                kloc = (*loc, key)
                lines[kloc] = k.start_mark.line + 1
                stack.append((v, kloc, inner))
        elif isinstance(n, yaml.SequenceNode):
            for i, item in enumerate(n.value):
                stack.append((item, (*loc, i), inner))
    if problems:
        raise ScenarioError(source, sorted(problems, key=lambda p: p.line or 0))
    loader = _NoDuplicatesLoader(text)
    try:
        data = loader.construct_document(node)
    except yaml.constructor.ConstructorError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else None
        problem = str(exc.problem)
        if "unhashable" in problem:
            msg = "a mapping key must be a plain name, not a list or mapping"
        elif "constructor for the tag" in problem:
            msg = (f"{problem}: only plain YAML data is allowed (no tags that build Python "
                   "objects)")
        else:
            msg = f"not valid YAML: {problem}"
        raise ScenarioError(source, [Problem("", line, msg)]) from None
    except yaml.YAMLError as exc:
        raise ScenarioError(source, [_yaml_problem(exc)]) from None
    except ValueError as exc:  # e.g. an integer of thousands of digits
        raise ScenarioError(source, [Problem("", None, f"a value cannot be read: {exc}")]) \
            from None
    except RecursionError:
        raise ScenarioError(source, [Problem("", None, "the YAML is nested too deeply")]) \
            from None
    finally:
        loader.dispose()
    return data, lines


def _line(lines: dict[Loc, int], loc: Loc) -> int | None:
    for end in range(len(loc), -1, -1):
        if loc[:end] in lines:
            return lines[loc[:end]]
    return None


# ---------------------------------------------------------------------------------------------
# Structural pre-checks that give better messages than pydantic would


def _precheck(data: Any, lines: dict[Loc, int]) -> list[Problem]:
    out: list[Problem] = []

    def add(loc: Loc, msg: str) -> None:
        out.append(Problem(format_loc(loc), _line(lines, loc), msg))

    if not isinstance(data, dict):
        add((), f"the document is {_kind(data)}, but a scenario is a mapping with "
                 "'name', 'actors' and optionally 'primitives', 'shared', 'invariants', 'expect'")
        return out
    for section in ("primitives", "shared"):
        sec = data.get(section)
        if isinstance(sec, dict):
            for key in sec:
                if not isinstance(key, str):
                    kloc = next((k for k in lines if len(k) == 2 and k[0] == section
                                 and _scalar(k[1]) == key), (section,))
                    add(kloc, f"the name {key!r} is not a string (YAML reads unquoted "
                              "yes/no/on/off/numbers as other types): quote it")
    prims = data.get("primitives")
    if isinstance(prims, dict):
        for name, spec in prims.items():
            loc: Loc = ("primitives", str(name))
            ptype = spec if isinstance(spec, str) else (
                spec.get("type") if isinstance(spec, dict) else None)
            if isinstance(spec, dict) and "type" not in spec:
                add(loc, "a primitive given as a mapping needs 'type' (one of "
                         f"{', '.join(PRIMITIVE_TYPES)})")
            elif not isinstance(ptype, str) or ptype not in PRIMITIVE_TYPES:
                shown = ptype if isinstance(spec, dict) else spec
                add(loc, f"unknown primitive type {shown!r}{did_you_mean(shown, PRIMITIVE_TYPES)}"
                         f" (types: {', '.join(PRIMITIVE_TYPES)})")
    actors = data.get("actors")
    if isinstance(actors, list):
        for i, actor in enumerate(actors):
            if isinstance(actor, dict) and isinstance(actor.get("steps"), list):
                _precheck_steps(actor["steps"], ("actors", i, "steps"), add, 1)
    return out


def _scalar(text: Any) -> Any:
    try:
        return yaml.safe_load(str(text))
    except yaml.YAMLError:
        return text


def _kind(value: Any) -> str:
    if value is None:
        return "empty"
    names = {list: "a list", str: "a string", int: "an integer", float: "a number",
             bool: "a boolean", dict: "a mapping"}
    return names.get(type(value), f"a {type(value).__name__}")


_YIELDING = ("acquire", "wait", "put", "get", "send", "recv", "join")


def _precheck_steps(steps: list[Any], loc: Loc, add: Any, depth: int) -> None:
    if depth > MAX_DEPTH + 1:  # the top-level list is depth 1: 16 nested blocks are allowed
        add(loc, f"steps are nested more than {MAX_DEPTH} deep (the documented limit)")
        return
    for i, step in enumerate(steps):
        sloc = (*loc, i)
        if isinstance(step, str):
            verb = step.split()[0] if step.split() else step
            hint = f" — write it as '{verb}: TARGET'" if verb in STEP_MODELS else ""
            add(sloc, f"a step is a mapping with one verb, got the string {step!r}{hint}")
            continue
        if not isinstance(step, dict):
            add(sloc, f"a step is a mapping with one verb, got {_kind(step)}")
            continue
        verbs = [k for k in step if k in STEP_MODELS]
        if not verbs:
            keys = [k for k in step if isinstance(k, str)]
            guess = next((did_you_mean(k, VERBS) for k in keys if did_you_mean(k, VERBS)), "")
            shown = ", ".join(repr(k) for k in step)
            add(sloc, f"unknown step {shown}{guess} (verbs: {', '.join(VERBS)})")
            continue
        if len(verbs) > 1:
            add(sloc, f"one verb per step, found {' and '.join(verbs)}: split it into "
                      "separate steps")
            continue
        verb = verbs[0]
        for key in ("steps", "then", "else"):
            if isinstance(step.get(key), list):
                _precheck_steps(step[key], (*sloc, key), add, depth + 1)
        if verb in ("with", "repeat", "while") and "steps" not in step:
            add(sloc, f"'{verb}' needs 'steps': the list of steps to run "
                      f"{'while holding it' if verb == 'with' else 'each time'}")
        if "as" in step and verb not in _YIELDING and verb in STEP_MODELS:
            add(sloc, f"'as' stores the result of a step, and '{verb}' has none: remove 'as' "
                      f"(the steps with a result: {', '.join(_YIELDING)})")
        if verb == "if" and "then" not in step:
            add(sloc, "'if' needs 'then': the steps to run when the comparison holds")


# ---------------------------------------------------------------------------------------------
# Pydantic errors in the user's terms


def _translate(exc: ValidationError, data: Any, lines: dict[Loc, int]) -> list[Problem]:
    out: list[Problem] = []
    seen: set[tuple[str, str]] = set()
    for err in exc.errors(include_url=False):
        loc = _clean_loc(tuple(err["loc"]), data)
        etype = err["type"]
        value = err.get("input")
        if etype == "extra_forbidden":
            key = loc[-1] if loc else "?"
            line_loc = loc  # the line of the key itself
            loc = loc[:-1]
            owner = _value_at(data, loc)
            if isinstance(owner, dict) and owner.get("type") in PRIMITIVE_TYPES:
                options = [k for k in model_keys(PRIMITIVE_MODELS[owner["type"]]) if k != "type"]
                msg = (f"option '{key}' does not apply to {a_(owner['type'])} (its options: "
                       f"{', '.join(options) or 'none'}){did_you_mean(key, options)}")
            else:
                allowed = _allowed_keys(loc, owner)
                msg = f"unknown key '{key}'{did_you_mean(key, allowed)}"
                if allowed:
                    msg += f" (allowed here: {', '.join(allowed)})"
            key2 = (format_loc(loc), msg)
            if key2 not in seen:
                seen.add(key2)
                out.append(Problem(format_loc(loc), _line(lines, line_loc), msg))
            continue
        if etype == "value_error":
            # our own validators (an expression, a write's value or expr): their message
            error = err.get("ctx", {}).get("error")
            msg = str(error) if error is not None else err["msg"]
            key2 = (format_loc(loc), msg)
            if key2 not in seen:
                seen.add(key2)
                out.append(Problem(format_loc(loc), _line(lines, loc), msg))
            continue
        if etype == "missing":
            msg = f"'{loc[-1]}' is required" if loc else "a required key is missing"
            loc = loc[:-1]
        elif etype == "too_short" and loc == ("actors",):
            msg = "a scenario needs at least one actor"
        elif etype in ("union_tag_invalid", "union_tag_not_found"):
            continue  # reported by the pre-checks already
        else:
            msg = f"{err['msg'].rstrip('.')}, got {_short(value)}"
            if etype == "literal_error" and isinstance(value, str) and loc:
                expected = err.get("ctx", {}).get("expected", "")
                choices = [c.strip(" '") for c in str(expected).replace(" or ", ",").split(",")]
                msg += did_you_mean(value, [c for c in choices if c])
        key2 = (format_loc(loc), msg)
        if key2 in seen:
            continue
        seen.add(key2)
        out.append(Problem(format_loc(loc), _line(lines, loc), msg))
    return out


def _allowed_keys(loc: Loc, owner: Any) -> list[str]:
    """The keys the mapping at ``loc`` may have."""
    if loc == ():
        return model_keys(Scenario)
    if len(loc) == 2 and loc[0] == "actors":
        return model_keys(Actor)
    if len(loc) == 2 and loc[0] == "invariants":
        return model_keys(Invariant)
    if loc == ("explore",):
        return model_keys(Explore)
    verb = step_verb(owner)
    if verb is not None:
        added = ADDED_OPTIONS.get(verb, {})
        keys = model_keys(STEP_MODELS[verb])
        keys = [k for k in keys if k != "as"] + (["as"] if "as" in keys else [])  # (last)
        return [k if k not in added else f"{k} (on {' or '.join(a_(t) for t in added[k].types)})"
                for k in keys]
    parent = loc[-1] if loc else None
    if parent == "write":
        return model_keys(WriteSpec)
    if parent == "add":
        return model_keys(AddSpec)
    if parent == "append":
        return model_keys(VarItem)
    if parent == "if":
        return model_keys(Compare)
    return []


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _value_at(data: Any, loc: Loc) -> Any:
    cur = data
    for part in loc:
        try:
            cur = cur[part]
        except (KeyError, IndexError, TypeError):
            return None
    return cur


def _clean_loc(loc: Loc, data: Any) -> Loc:
    """Drop the union tags pydantic inserts (step verbs, primitive types) from a location."""
    out: list[str | int] = []
    cur = data
    tag_next = False
    for part in loc:
        if tag_next:
            tag_next = False
            kind = cur if isinstance(cur, str) else (
                step_verb(cur) or cur.get("type") if isinstance(cur, dict) else None)
            if part == kind:
                continue
        if out and out[-1] == "if" and part in ("compare", "expr"):
            continue  # the member of an `if`'s test (a comparison or an expression)
        out.append(part)
        try:
            cur = cur[part] if cur is not None else None
        except (KeyError, IndexError, TypeError):
            cur = None
        # pydantic names the union member right after a step's index or a primitive's name
        tag_next = (isinstance(part, int) and isinstance(cur, dict)) or (
            len(out) == 2 and out[0] == "primitives")
    return tuple(out)


def _normalise(data: dict[str, Any]) -> dict[str, Any]:
    """`A: lock` is short for `A: {type: lock}`."""
    prims = data.get("primitives")
    if isinstance(prims, dict):
        data = dict(data)
        data["primitives"] = {
            k: ({"type": v} if isinstance(v, str) else v) for k, v in prims.items()
        }
    return data


# ---------------------------------------------------------------------------------------------
# Entry points


def parse_scenario(text: str, source: str = "<scenario>") -> tuple[Scenario, dict[Loc, int]]:
    """Validate scenario text; returns the model and the YAML line of each path."""
    data, lines = _compose(text, source)
    problems = _precheck(data, lines)
    if problems:
        raise ScenarioError(source, problems)
    try:
        scenario = Scenario.model_validate(_normalise(data))
    except ValidationError as exc:
        raise ScenarioError(source, _translate(exc, data, lines) or [
            Problem("", None, str(exc))]) from None
    return scenario, lines


def read_scenario_text(path: str | Path) -> str:
    """Read a scenario file as UTF-8 text, refusing binary and oversized files."""
    source = str(path)
    p = Path(path)
    try:
        size = p.stat().st_size
        what = not_a_regular_file(p)  # a FIFO would hang the read, a device never end
        if what is not None:
            raise ScenarioError(source, [Problem("", None, f"is {what}, not a scenario file")])
        if size > MAX_FILE_BYTES:
            raise ScenarioError(source, [Problem(
                "", None, f"is {size} bytes; scenario files are limited to {MAX_FILE_BYTES}")])
        with open_regular(p) as f:
            raw = f.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        raise ScenarioError(source, [Problem("", None, "no such file")]) from None
    except NotRegularFile as exc:
        raise ScenarioError(source, [Problem("", None, f"is {exc.what}, not a scenario file")]) \
            from None
    except OSError as exc:
        raise ScenarioError(source, [Problem("", None, f"cannot be read: {exc.strerror}")]) \
            from None
    if b"\x00" in raw:
        raise ScenarioError(source, [Problem("", None, "is a binary file, not YAML text")])
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ScenarioError(source, [Problem(
            "", None, f"is not UTF-8 text (bad byte at offset {exc.start})")]) from None


def problems_to_error(source: str, problems: list[Problem]) -> ScenarioError:
    return ScenarioError(source, problems)


def model_keys(model: type[BaseModel]) -> list[str]:
    """The keys of a model, as a user writes them; a step's ``as`` last (it comes from the
    base class of the steps that have a result, so pydantic lists it first)."""
    keys = [f.alias or n for n, f in model.model_fields.items()]
    if "as" in keys:
        keys.remove("as")
        keys.append("as")
    return keys
