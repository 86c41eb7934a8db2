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
