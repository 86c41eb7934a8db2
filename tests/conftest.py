"""Shared test helpers.

Every test has a timeout (pyproject: pytest-timeout), and `no_leftover_threads` (autouse)
fails a test that leaves an actor or pool thread of tracer alive after it returns.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tracer import load_scenario_text, run_plan
from tracer.engine import RunResult

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = ROOT / "scenarios"


def _tracer_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate()
            if t.is_alive() and t.name.startswith(("tracer-actor:", "tracer-pool:"))]


@pytest.fixture(autouse=True)
def no_leftover_threads() -> Iterator[None]:
    yield
    left = _tracer_threads()
    assert not left, f"threads outlived the run: {[t.name for t in left]}"


def run_yaml(text: str) -> tuple[RunResult, dict[str, Any]]:
    """Run scenario YAML in-process; returns the result and its trace as parsed JSON."""
    result = run_plan(load_scenario_text(text, "<test>"))
    return result, json.loads(result.to_json())


def events(trace: dict[str, Any], **match: Any) -> list[dict[str, Any]]:
    """The trace's events whose fields equal ``match``."""
    return [e for e in trace["events"] if all(e.get(k) == v for k, v in match.items())]


def tracer_cli(*args: str, cwd: Path | None = None, timeout: float = 30,
               input_: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``python -m tracer ARGS`` in a subprocess."""
    env = {**os.environ, "PYTHONUTF8": "1"}
    return subprocess.run([sys.executable, "-m", "tracer", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout, input=input_,
                          check=False)
