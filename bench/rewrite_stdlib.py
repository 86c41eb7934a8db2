"""CPython's own language tests, run with the test modules rewritten: a wide check of the rewrite.

For each test module (test_scope, test_grammar, test_descr, ...) runs it once plainly and once
with the module (and, for some, the library module it tests) imported through the rewrite
with recording on, in a fresh interpreter each, and prints the tests run, failed and errored
and the accesses recorded. Then compiles every file of the standard library rewritten.
Known differences (with recording): test_descr's test_slots (a slotted object tracer named
is kept alive, so its count of live objects is off), test_vicious_descriptor_nonsense and
test_type_lookup_mro_reference (a key whose ``__eq__`` mutates the class, called by the
hooks' lookups in class dicts).

    .venv/bin/python bench/rewrite_stdlib.py [--no-compile] [test_scope:module ...]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

TESTS = [
    "test_scope:",
    "test_augassign:",
    "test_unpack:",
    "test_grammar:",
    "test_class:",
    "test_descr:",
    "test_named_expressions:",
    "test_coroutines:",
    "test_generators:",
    "test_with:",
    "test_fstring:",
    "test_super:",
    "test_property:",
    "test_patma:",
    "test_listcomps:",
    "test_exceptions:",
    "test_keywordonlyarg:",
    "test_dataclasses:",
    "test_enum:",
    "test_textwrap:textwrap",
    "test_fractions:fractions",
]

CHILD = r'''
import importlib, io, sys, unittest
from pathlib import Path
from tracer.program import _access, _rewrite

test, names, mode = sys.argv[1], set(filter(None, sys.argv[2].split(","))), sys.argv[3]
names.add(test)

class Finder(_rewrite._Finder):
    """Rewrites the named modules, wherever they are (the stdlib is never rewritten else)."""
    def find_spec(self, fullname, path, target=None):
        self.fullname = fullname
        return super().find_spec(fullname, path, target)
    def _user_file(self, origin):
        return Path(Path(origin).name) if self.fullname in names else None

count = 0
def record(op, target, value, site):
    global count
    count += 1

if mode == "rewritten":
    sys.meta_path.insert(0, Finder(Path("/")))
    _access.RECORD = record
mod = importlib.import_module(test)
assert hasattr(mod, "__tracer_g__") == (mode == "rewritten")
suite = unittest.defaultTestLoader.loadTestsFromModule(mod)
result = unittest.TextTestRunner(stream=io.StringIO(), verbosity=0).run(suite)
bad = sorted(str(t).split(" ")[0] for t, _ in result.failures + result.errors)
print(f"{mode:9} run {result.testsRun:4} failed {len(result.failures)} errors "
      f"{len(result.errors)} recorded {count}" + "".join(f"\n    {b}" for b in bad))
'''

COMPILE = r"""
import sys, sysconfig, warnings
from pathlib import Path
from tracer.program._rewrite import rewrite_source
warnings.simplefilter("ignore")
ok = bad = 0
for p in sorted(Path(sysconfig.get_path("stdlib")).rglob("*.py")):
    try:
        src = p.read_text(encoding="utf-8")
        compile(src, str(p), "exec", dont_inherit=True)
    except Exception:
        continue
    try:
        rewrite_source(src, str(p), p.name)
        ok += 1
    except Exception as e:
        bad += 1
        print(f"  {p}: {type(e).__name__}: {e}")
print(f"stdlib files rewritten and compiled: {ok}, failed: {bad}")
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tests", nargs="*", default=TESTS)
    parser.add_argument("--no-compile", action="store_true")
    args = parser.parse_args()
    print(f"Python {sys.version.split()[0]}")
    for spec in args.tests:
        test, _, modules = spec.partition(":")
        print(f"test.{test}")
        for mode in ("plain", "rewritten"):
            done = subprocess.run(
                [sys.executable, "-c", CHILD, f"test.{test}", modules, mode],
                capture_output=True,
                text=True,
                timeout=600,
                check=False,
                cwd=Path(__file__).parent,
            )
            print("  " + (done.stdout.strip() or done.stderr.strip().splitlines()[-1]))
    if not args.no_compile:
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", COMPILE], timeout=1200, check=False)
        print(f"  ({time.perf_counter() - t:.0f} s)")


if __name__ == "__main__":
    main()
