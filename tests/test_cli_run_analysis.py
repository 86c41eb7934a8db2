"""`tracer run` analyzes the run's events in memory (not the trace it just wrote): what it
reports is what `tracer analyze` of the written trace finds, finding for finding."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("scenario", ["bank_account_race.yaml", "deadlock.yaml",
                                      "latch_below_zero.yaml", "bank_account_lock.yaml"])
def test_run_reports_what_analyze_of_its_trace_finds(scenario: str, tmp_path: Path) -> None:
    trace = tmp_path / "t.json"
    run = subprocess.run([sys.executable, "-m", "tracer", "run",
                          str(ROOT / "scenarios" / scenario), "-o", str(trace)],
                         capture_output=True, text=True, timeout=60, check=False)
    assert run.returncode in (0, 1), run.stderr
    analyzed = subprocess.run([sys.executable, "-m", "tracer", "analyze", str(trace),
                               "--no-graphs", "--format", "json"],
                              capture_output=True, text=True, timeout=60, check=False)
    assert analyzed.returncode in (0, 1), analyzed.stderr
    findings = json.loads(analyzed.stdout)["findings"]
    assert bool(findings) == (scenario != "bank_account_lock.yaml"), findings
    for f in findings[:8]:  # the run prints the first 8 (a deadlock as the run's outcome)
        if f["kind"] not in ("deadlock", "stall"):
            assert f"{f['kind']}: {f['message']}" in run.stdout, (f, run.stdout)
    assert "the run and its analysis agree" in run.stdout, run.stdout  # its `expect:`
    assert run.returncode == (1 if findings else 0)  # as analyze says
