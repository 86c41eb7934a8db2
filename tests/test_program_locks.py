"""``with lock:`` (a fast path of the traced lock) records what ``acquire()``/``release()``
record, with the line of the ``with`` statement, and lets the lock go when its block raises."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

PROGRAMS = Path(__file__).resolve().parent / "programs"


def test_with_lock_records_as_acquire_and_release_do(tmp_path: Path) -> None:
    out = tmp_path / "withlock.json"
    proc = subprocess.run([sys.executable, "-m", "tracer", "run", str(PROGRAMS / "withlock.py"),
                           "-o", str(out)], cwd=tmp_path, text=True, capture_output=True,
                          timeout=60, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "locked after: False" in proc.stdout
    ev = [e for e in json.loads(out.read_text())["events"] if e.get("target") == "lock"
          and e["op"] in ("acquire", "release")]  # (not the reads of the global)
    shape = [(e["op"], e.get("phase"), e.get("result")) for e in ev]
    pair = [("acquire", "call", None), ("acquire", "return", "ok"), ("release", None, None)]
    assert shape == pair * 3
    assert [e["line"] for e in ev] == ["withlock.py:5"] * 3 + ["withlock.py:7"] * 2 + \
        ["withlock.py:8"] + ["withlock.py:10"] * 3
    assert all(e["actor"] == "MainThread" and "error" not in e for e in ev)


def test_a_contended_lock_is_held_by_one_thread_at_a_time_in_the_trace(tmp_path: Path) -> None:
    """Two threads on one lock (a contended acquire naps and tries again, a release's seq
    is taken before the real release): in ``seq`` order, no gap, every ``ok`` acquire is
    followed by its own thread's release before any other's ``ok``, and no race is found on
    the count the lock protects."""
    out = tmp_path / "contended.json"
    proc = subprocess.run([sys.executable, "-m", "tracer", "run",
                           str(PROGRAMS / "contended.py"), "-o", str(out)],
                          cwd=tmp_path, text=True, capture_output=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "count 6000" in proc.stderr + proc.stdout
    events = json.loads(out.read_text())["events"]
    assert [e["seq"] for e in events] == list(range(len(events)))
    holder = None
    pairs = 0
    for e in events:
        if e.get("target") != "Counter.lock":
            continue
        if e["op"] == "acquire" and e.get("result") == "ok":
            assert holder is None, e
            holder = e["actor"]
        elif e["op"] == "release":
            assert holder == e["actor"], e
            holder = None
            pairs += 1
    assert holder is None and pairs == 6000
    analyzed = subprocess.run([sys.executable, "-m", "tracer", "analyze", str(out), "--format",
                               "json", "--no-graphs"], cwd=tmp_path, text=True,
                              capture_output=True, timeout=60, check=False)
    findings = json.loads(analyzed.stdout)["findings"]
    assert not [f for f in findings if f["kind"] == "race"], findings
