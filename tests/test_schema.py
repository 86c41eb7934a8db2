"""`tracer schema`: a draft-07 JSON Schema of the scenario format, generated from the models,
that the copy in docs/ equals, and that every bundled scenario (and the mapping corpus)
validates against; a scenario the loader refuses for its shape the schema refuses too."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from _mapping_corpus import CORPUS
from conftest import tracer_cli

jsonschema = pytest.importorskip("jsonschema")

ROOT = Path(__file__).resolve().parent.parent


def validator() -> object:
    schema = json.loads((ROOT / "docs" / "scenario.schema.json").read_text(encoding="utf-8"))
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


def test_the_shipped_schema_is_what_the_command_prints(tmp_path: Path) -> None:
    r = tracer_cli("schema", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout == (ROOT / "docs" / "scenario.schema.json").read_text(encoding="utf-8"), \
        "docs/scenario.schema.json is stale: run `tracer schema -o docs/scenario.schema.json`"
    assert json.loads(r.stdout)["$schema"] == "http://json-schema.org/draft-07/schema#"


@pytest.mark.parametrize("path", sorted((ROOT / "scenarios").glob("*.yaml")), ids=lambda p: p.name)
def test_every_bundled_scenario_validates(path: Path) -> None:
    v = validator()
    errors = list(v.iter_errors(yaml.safe_load(path.read_text(encoding="utf-8"))))  # type: ignore[attr-defined]
    assert errors == [], [e.message for e in errors][:3]


def test_the_corpus_validates() -> None:
    v = validator()
    for name, text in CORPUS.items():
        errors = list(v.iter_errors(yaml.safe_load(text)))  # type: ignore[attr-defined]
        assert errors == [], (name, [e.message for e in errors][:3])


@pytest.mark.parametrize("text", [
    "name: t\nactors: [{name: a, kind: thred}]",
    "name: t\nactors: [{name: a, kind: thread, steps: [{aquire: L}]}]",
    "name: t\nprimitives: {B: barrier}\nactors: [{name: a, kind: thread}]",
    "name: t\nactors: [{name: a, kind: thread, steps: [{while: 'x'}]}]",
    "name: t\nactors: []",
])
def test_what_the_loader_refuses_for_its_shape_the_schema_refuses(text: str,
                                                                   tmp_path: Path) -> None:
    v = validator()
    assert list(v.iter_errors(yaml.safe_load(text)))  # type: ignore[attr-defined]
    path = tmp_path / "s.yaml"
    path.write_text(text, encoding="utf-8")
    assert tracer_cli("validate", str(path), cwd=tmp_path).returncode == 2
