"""Scenario files: the YAML format, its validation, and the run plan it expands into."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from tracer.scenario._check import VERB_TYPES, ActorPlan, Plan, check, walk_steps
from tracer.scenario._load import (
    Problem,
    ScenarioError,
    _normalise,
    _precheck,
    _translate,
    parse_scenario,
    read_scenario_text,
)
from tracer.scenario._model import MAX_MAX_EVENTS, Explore, Scenario, Step

__all__ = [
    "MAX_MAX_EVENTS",
    "VERB_TYPES",
    "ActorPlan",
    "Explore",
    "Plan",
    "Scenario",
    "ScenarioError",
    "Step",
    "load_scenario",
    "load_scenario_mapping",
    "load_scenario_text",
    "schema_text",
    "walk_steps",
    "with_lines_of",
]


def load_scenario_text(text: str, source: str = "<scenario>") -> Plan:
    """Validate scenario YAML text and expand it into a run plan (raises ScenarioError)."""
    scenario, lines = parse_scenario(text, source)
    return check(scenario, lines, source)


def load_scenario(path: str | Path) -> Plan:
    """Read, validate and expand a scenario file (raises ScenarioError)."""
    return load_scenario_text(read_scenario_text(path), str(path))


def plan_from_mapping(data: dict[str, object], source: str = "<trace>") -> Plan:
    """A plan from an already-parsed scenario mapping (the one embedded in a trace)."""
    scenario = Scenario.model_validate(data)
    return check(scenario, {}, source)


def load_scenario_mapping(data: Mapping[str, Any], source: str = "<mapping>") -> Plan:
    """Validate a scenario given as Python data (what its YAML would load as: dicts, lists,
    str, int...) with the checks and messages of a file (raises ScenarioError; no lines),
    and expand it into a run plan. ``A: lock`` is short for ``A: {type: lock}`` here too."""
    plain = dict(data) if isinstance(data, Mapping) else data
    problems = _precheck(plain, {})
    if problems:
        raise ScenarioError(source, problems)
    try:
        scenario = Scenario.model_validate(_normalise(plain))
    except ValidationError as exc:
        raise ScenarioError(source, _translate(exc, plain, {}) or [
            Problem("", None, str(exc))]) from None
    return check(scenario, {}, source)


def with_lines_of(plan: Plan, path: object) -> Plan:
    """``plan`` (made from the scenario embedded in a trace) with the YAML lines of the
    scenario file ``path`` (the trace's ``meta.source``), when that file still holds the
    same scenario: a replay's events then carry the recording's lines, and its messages name
    the same file. Else (no such file, or it was edited since) ``plan`` as it is: a trace
    embeds its scenario, not its YAML text, so its lines cannot be known otherwise."""
    if not isinstance(path, str) or not path or path.startswith("<"):
        return plan
    try:
        other = load_scenario(path)
    except ScenarioError:
        return plan
    if other.scenario.as_mapping() != plan.scenario.as_mapping():
        return plan
    return replace(plan, lines=other.lines, source=path)


def schema_text() -> str:
    """The draft-07 JSON Schema of scenarios, as ``docs/scenario.schema.json`` holds it (its
    module is imported only here: building it costs what only ``tracer schema`` needs)."""
    from tracer.scenario._schema import schema_text as text  # noqa: PLC0415

    return text()
