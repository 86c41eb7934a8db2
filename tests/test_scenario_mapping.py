"""The scenario a trace embeds (``Scenario.as_mapping()``) stays byte-identical: the values in
tests/fixtures/scenario_mappings.json were computed before the primitive registry moved each
type's options into tracer/prims, over scenarios/*.yaml and tests/_mapping_corpus.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from _mapping_corpus import CORPUS

from tracer.scenario import load_scenario, load_scenario_text, plan_from_mapping

ROOT = Path(__file__).resolve().parent.parent
FIXTURE: dict[str, str] = json.loads(
    (ROOT / "tests" / "fixtures" / "scenario_mappings.json").read_text())


def _mapping(key: str) -> str:
    kind, name = key.split("/", 1)
    if kind == "scenarios":
        plan = load_scenario(ROOT / "scenarios" / name)
    else:
        plan = load_scenario_text(CORPUS[name], name)
    return json.dumps(plan.scenario.as_mapping())


def test_fixture_covers_every_scenario_file() -> None:
    files = {f"scenarios/{p.name}" for p in (ROOT / "scenarios").glob("*.yaml")}
    assert files <= set(FIXTURE)
    assert {f"corpus/{k}" for k in CORPUS} <= set(FIXTURE)


@pytest.mark.parametrize("key", sorted(FIXTURE))
def test_as_mapping_is_unchanged(key: str) -> None:
    got = _mapping(key)
    assert got == FIXTURE[key]
    # and the embedded mapping reads back to the same scenario (a replay's plan)
    again = plan_from_mapping(json.loads(got))
    assert json.dumps(again.scenario.as_mapping()) == got
