"""A JSON Schema of the scenario format, generated from the models, for editors.

Editors' YAML language servers read draft-07, while pydantic writes draft 2020-12; the two
differ, for what the models use, only in where definitions live (``definitions`` rather than
``$defs``). So the schema is pydantic's with its definitions moved and its references
rewritten, and a ``$schema`` that says draft-07. Where the loader accepts more than a type
says (a YAML number, boolean or null where an expression goes: it is that value's expression),
the schema says so too, so that every scenario the loader accepts validates. It checks the
shape only: the cross-checks of the whole file (does a target exist, does its type take the
verb) are the loader's, as ``tracer validate`` runs them.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError

from tracer.scenario._model import PRIMITIVE_MODELS, Scenario

DRAFT_07 = "http://json-schema.org/draft-07/schema#"
SCHEMA_ID = "https://tracer.invalid/scenario.schema.json"


def _draft7(node: Any) -> Any:
    """``node`` with 2020-12's ``$defs`` references turned into draft-07's ``definitions``."""
    if isinstance(node, dict):
        out: dict[str, Any] = {}
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                out[key] = value.replace("#/$defs/", "#/definitions/")
            elif key == "$defs":
                out["definitions"] = _draft7(value)
            elif key == "discriminator":
                continue  # (OpenAPI's, not JSON Schema's: the oneOf members exclude each other)
            else:
                out[key] = _draft7(value)
        return out
    if isinstance(node, list):
        return [_draft7(v) for v in node]
    return node


def _short_forms() -> list[str]:
    """The types a primitive may name alone (``A: lock`` for ``A: {type: lock}``): those whose
    options all have defaults."""
    out = []
    for name, model in PRIMITIVE_MODELS.items():
        try:
            model.model_validate({"type": name})
        except ValidationError:
            continue
        out.append(name)
    return out


def scenario_schema() -> dict[str, Any]:
    """The draft-07 JSON Schema of a scenario file."""
    body = _draft7(Scenario.model_json_schema(by_alias=True, mode="validation"))
    prims = body["properties"]["primitives"]
    prims["additionalProperties"] = {
        "anyOf": [{"enum": _short_forms(), "description": "a type, alone: its options' "
                                                          "defaults"},
                  prims["additionalProperties"]]}
    return {"$schema": DRAFT_07, "$id": SCHEMA_ID,
            "title": "tracer scenario",
            "description": "A tracer scenario: actors, the primitives they share and their "
                           "steps (docs/formats.md, section 1).",
            **{k: v for k, v in body.items() if k not in ("title", "description")}}


def schema_text() -> str:
    """The schema as the file ``docs/scenario.schema.json`` holds it."""
    return json.dumps(scenario_schema(), indent=2, ensure_ascii=False, sort_keys=True) + "\n"


__all__ = ["DRAFT_07", "scenario_schema", "schema_text"]
