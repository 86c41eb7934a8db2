"""A type module alone extends the scenario format: the fake ``gate`` type (tests/_fake_prim.py)
adds two step verbs with their own models and a ``mode`` option to ``acquire`` and ``with``.

It is registered in a fresh interpreter (the registry is read when tracer.scenario is
imported, so the scenario modules are reloaded after the fake joins tracer.prims.REGISTRY);
nothing of tracer/scenario names it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

TESTS = Path(__file__).resolve().parent

RUNNER = r"""
import importlib, json, sys
sys.path.insert(0, sys.argv[1])
import tracer.prims as prims
import _fake_prim
prims.REGISTRY["gate"] = prims.PrimType.of(_fake_prim)
import tracer.scenario as S
for mod in ("tracer.scenario._registry", "tracer.scenario._model", "tracer.scenario._load",
            "tracer.scenario._check", "tracer.scenario"):
    importlib.reload(sys.modules[mod])
from tracer.scenario import ScenarioError, load_scenario, load_scenario_text, plan_from_mapping
from tracer.scenario._model import STEP_MODELS
cases = json.loads(sys.stdin.read())
out = {}
for name, text in cases["texts"].items():
    try:
        plan = load_scenario_text(text, "s.yaml")
    except ScenarioError as exc:
        out[name] = {"error": str(exc)}
        continue
    mapping = plan.scenario.as_mapping()
    again = plan_from_mapping(json.loads(json.dumps(mapping))).scenario.as_mapping()
    steps = [s for a in plan.actors for s in a.steps]
    import pickle
    steps_back = pickle.loads(pickle.dumps([s for a in plan.actors for s in a.steps]))
    out[name] = {"mapping": mapping, "again": again == mapping,
                 "pickled": [type(s).__qualname__ for s in steps_back],
                 "modes": [getattr(s, "mode", None) for s in steps],
                 "classes": [type(s).__name__ for s in steps]}
from _mapping_corpus import CORPUS
fixture = {}
for key in cases["fixture"]:
    kind, fname = key.split("/", 1)
    plan = (load_scenario(cases["root"] + "/scenarios/" + fname) if kind == "scenarios"
            else load_scenario_text(CORPUS[fname], fname))
    fixture[key] = json.dumps(plan.scenario.as_mapping())
out["__fixture__"] = fixture
out["__verbs__"] = sorted(STEP_MODELS)
print(json.dumps(out))
"""

HEAD = """
name: s
primitives:
  G: {type: gate, count: 2}
  L: lock
actors:
  - name: a
    kind: KIND
    steps:
"""


def _text(steps: str, kind: str = "thread") -> str:
    return HEAD.replace("KIND", kind) + "".join(f"      - {s}\n" for s in steps.split(";"))


TEXTS: dict[str, str] = {
    "good": _text("{knock_down: G}; {knock_up: G, n: 2}; {acquire: G, mode: read};"
                  "{release: G}; {acquire: G}; {release: G}; {with: G, mode: read, steps: []};"
                  "{wait: G}; {acquire: L}; {release: L}; {with: L, steps: []}"),
    "mode_on_lock": _text("{acquire: L, mode: read}"),
    "with_mode_on_lock": _text("{with: L, mode: write, steps: []}"),
    "verb_on_lock": _text("{knock_down: L}"),
    "misspelled_verb": _text("{knock_donw: G}"),
    "n_zero": _text("{knock_down: G, n: 0}"),
    "bad_mode": _text("{acquire: G, mode: reed}"),
    "unknown_key": _text("{acquire: L, bogus: 1}"),
    "coroutine": _text("{knock_down: G}", kind="coroutine"),
    "type_check": _text("{knock_down: G, n: 3}"),
    "misspelled_type": "name: s\nprimitives: {G: gaet}\nactors: [{name: a, kind: thread}]\n",
}


@pytest.fixture(scope="module")
def results() -> dict[str, Any]:
    root = TESTS.parent
    fixture = json.loads((TESTS / "fixtures" / "scenario_mappings.json").read_text())
    keys = sorted(fixture)
    proc = subprocess.run(
        [sys.executable, "-c", RUNNER, str(TESTS)],
        input=json.dumps({"texts": TEXTS, "fixture": keys, "root": str(root)}),
        capture_output=True, text=True, timeout=60, check=False, cwd=root)
    assert proc.returncode == 0, proc.stderr
    data: dict[str, Any] = json.loads(proc.stdout)
    data["__expected__"] = {k: fixture[k] for k in keys}
    return data


def test_type_verbs_and_options_load(results: dict[str, Any]) -> None:
    good = results["good"]
    assert "mapping" in good, good
    steps = good["mapping"]["actors"][0]["steps"]
    assert steps[0] == {"knock_down": "G", "n": 1}
    assert steps[1] == {"knock_up": "G", "n": 2}
    assert steps[2] == {"acquire": "G", "mode": "read", "blocking": True}
    # not given: the default applies, and the embedded scenario does not spell it out
    assert steps[4] == {"acquire": "G", "blocking": True}
    assert steps[6] == {"with": "G", "mode": "read", "steps": []}
    assert steps[8] == {"acquire": "L", "blocking": True}
    assert good["modes"][2] == "read" and good["modes"][4] == "write"
    assert good["classes"][:2] == ["KnockDown", "KnockUp"]
    assert good["pickled"][2] == "_AcquireWithTypeOptions"  # a process child gets the same
    assert good["again"], "the embedded scenario reads back the same"
    assert {"knock_down", "knock_up"} <= set(results["__verbs__"])


def test_registering_a_type_changes_no_existing_mapping(results: dict[str, Any]) -> None:
    assert results["__fixture__"] == results["__expected__"]


def test_type_option_on_another_type_is_refused(results: dict[str, Any]) -> None:
    assert results["mode_on_lock"]["error"] == (
        "s.yaml:10: actors[0].steps[0].mode: option 'mode' (read or write) of 'acquire' applies "
        "to a rwlock or a gate only, but 'L' is a lock: drop 'mode: read', or make 'L' a "
        "rwlock")
    assert results["with_mode_on_lock"]["error"] == (
        "s.yaml:10: actors[0].steps[0].mode: option 'mode' (read or write) of 'with' applies "
        "to a rwlock or a gate only, but 'L' is a lock: drop 'mode: write', or make 'L' a "
        "rwlock")


def test_type_verb_misuse_messages(results: dict[str, Any]) -> None:
    assert results["verb_on_lock"]["error"] == (
        "s.yaml:10: actors[0].steps[0]: 'knock_down' does not apply to 'L', a lock; it works "
        "on: gate")
    err = results["misspelled_verb"]["error"]
    assert "unknown step 'knock_donw' — did you mean 'knock_down'?" in err
    assert "knock_up" in err  # the list of verbs names the type's verbs
    assert results["n_zero"]["error"] == (
        "s.yaml:10: actors[0].steps[0].n: Input should be greater than or equal to 1, got 0")
    assert "did you mean 'read'?" in results["bad_mode"]["error"]
    assert "allowed here: acquire, timeout, blocking, mode (on a rwlock or a gate)" in \
        results["unknown_key"]["error"]
    assert "did you mean 'gate'?" in results["misspelled_type"]["error"]


def test_type_kinds_and_checks(results: dict[str, Any]) -> None:
    assert results["coroutine"]["error"] == (
        "s.yaml:4: primitives.G: 'G' is a gate used by coroutine actors, but a gate works "
        "for thread and process actors only")
    assert results["type_check"]["error"] == (
        "s.yaml:10: actors[0].steps[0].n: gate 'G' counts 2, so 'knock_down' by 3 would go "
        "below zero; use n <= 2")


def test_prims_import_nothing_above_them() -> None:
    """tracer/prims is read by the scenario checker, the state pass and the engine: at run time
    it imports none of them (TYPE_CHECKING imports for annotations are fine)."""
    import ast

    above = ("tracer.scenario", "tracer.engine", "tracer.analyze", "tracer.render",
             "tracer.trace", "tracer.cli", "tracer.api")
    found: list[str] = []
    for path in sorted((TESTS.parent / "tracer" / "prims").glob("*.py")):
        tree = ast.parse(path.read_text())
        guarded: set[int] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                guarded.update(id(n) for n in ast.walk(node))
        for node in ast.walk(tree):
            if id(node) in guarded:
                continue
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            found += [f"{path.name}: {n}" for n in names if n.startswith(above)]
    assert found == []
