"""A program's recorded shared accesses keep their values: each read of a variable in the
trace shows the value of the last write to it before it, falsy values (``0``, ``""``,
``False``, ``None``) and containers included."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

PROGRAMS = Path(__file__).resolve().parent / "programs"


def test_every_read_shows_the_value_of_the_last_write(tmp_path: Path) -> None:
    out = tmp_path / "values.json"
    proc = subprocess.run([sys.executable, "-m", "tracer", "run", str(PROGRAMS / "values.py"),
                           "-o", str(out)], cwd=tmp_path, text=True, capture_output=True,
                          timeout=60, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    events = json.loads(out.read_text())["events"]
    last: dict[str, object] = {}
    reads = {"Box#1.v": 0, "g": 0}
    written: dict[str, list[object]] = {"Box#1.v": [], "g": []}
    for e in events:
        target = e.get("target")
        if target not in reads:
            continue
        assert "value" in e, e
        if e["op"] == "write":
            last[target] = e["value"]
            written[target].append(e["value"])
        elif e["op"] == "read" and target in last:
            assert e["value"] == last[target], (e, last[target])
            reads[target] += 1
    # (a tuple is a JSON list; an integer beyond 64 bits, which JSON writers refuse, its repr;
    # a lone surrogate, which UTF-8 cannot hold, escaped)
    expected = [0, 0.0, "", False, None, True, 7, -2.5, "text", [1, 2], {"k": 1}, [3],
                repr(10**30), "\\udc80"]
    for target, n in reads.items():
        assert n >= len(expected), (target, reads)
        kinds = [(type(v).__name__, v) for v in written[target][-len(expected):]]
        assert kinds == [(type(v).__name__, v) for v in expected], kinds
