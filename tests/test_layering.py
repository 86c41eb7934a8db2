"""The layers of tracer (docs/formats.md, "The Python API"; STYLE.md's target layout):
scenario -> engine -> trace <- analyze <- render, the public API and the CLI above them all.

Read from the source with ``ast``: every import of a tracer module, at module level or inside a
function (what runs, sooner or later), except under ``if TYPE_CHECKING:`` (annotations only).
Importing ``a.b.c`` also runs the ``__init__`` of ``a.b``: an import reaching into another
package counts as an import of that package too.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / "tracer"

# tracer.cli may use these top-level helper modules of the package itself (not another
# package's private modules): the garbage-collector pause and the version
CLI_HELPERS = {"tracer._gc", "tracer._version"}


def _modules() -> dict[str, tuple[Path, bool]]:
    out = {}
    for path in sorted(ROOT.rglob("*.py")):
        parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
        is_pkg = parts[-1] == "__init__"
        if is_pkg:
            parts.pop()
        out[".".join(parts)] = (path, is_pkg)
    return out


MODULES = _modules()


def _type_checking(node: ast.If) -> bool:
    t = node.test
    return (isinstance(t, ast.Name) and t.id == "TYPE_CHECKING") or \
        (isinstance(t, ast.Attribute) and t.attr == "TYPE_CHECKING")


def _imported(name: str, path: Path, is_pkg: bool) -> set[str]:
    """The tracer modules that module ``name`` imports (explicitly: see the module's
    docstring for the packages whose __init__ an import also runs)."""
    out: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _type_checking(child):
                for stmt in child.orelse:
                    visit_one(stmt)
                continue
            visit_one(child)

    def visit_one(node: ast.AST) -> None:
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.split(".")[0] == "tracer")
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                pkg = name if is_pkg else name.rpartition(".")[0]
                for _ in range(node.level - 1):
                    pkg = pkg.rpartition(".")[0]
                base = f"{pkg}.{base}" if base else pkg
            if base.split(".")[0] == "tracer":
                for a in node.names:
                    sub = f"{base}.{a.name}"
                    out.add(sub if sub in MODULES else base)
        visit(node)

    visit(ast.parse(path.read_text(encoding="utf-8"), str(path)))
    out.discard(name)
    return out


def _graph() -> dict[str, set[str]]:
    """Module -> the modules importing it runs: the ones it names, and the packages they are
    in, unless the importer is inside that package already (its __init__ is running)."""
    graph: dict[str, set[str]] = {}
    for name, (path, is_pkg) in MODULES.items():
        own = {".".join(name.split(".")[:i]) for i in range(1, name.count(".") + 2)}
        if is_pkg:
            own.add(name)
        edges = set()
        for target in _imported(name, path, is_pkg):
            parts = target.split(".")
            edges.add(target)
            edges.update(p for p in (".".join(parts[:i]) for i in range(2, len(parts)))
                         if p not in own)
        graph[name] = {e for e in edges if e in MODULES and e != name}
    return graph


GRAPH = _graph()


def _in(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def _imports_of(package: str) -> dict[str, set[str]]:
    return {m: deps for m, deps in GRAPH.items() if _in(m, package)}


def _offending(package: str, forbidden: tuple[str, ...]) -> list[str]:
    return sorted(f"{m} imports {d}" for m, deps in _imports_of(package).items()
                  for d in sorted(deps) if any(_in(d, f) for f in forbidden))


def _cycle() -> list[str] | None:
    """One import cycle among the modules (as a path a -> b -> ... -> a), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def walk(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(GRAPH.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt):], nxt]
            if nxt not in state:
                found = walk(nxt)
                if found:
                    return found
        path.pop()
        state[node] = 2
        return None

    for start in sorted(GRAPH):
        if start not in state:
            found = walk(start)
            if found:
                return found
    return None


def test_the_graph_is_read() -> None:
    """The parse sees the imports it must (a broken parse would pass every rule)."""
    assert "tracer.trace.waits" in GRAPH["tracer.engine._watch"]
    assert "tracer.analyze" in GRAPH["tracer.render.graphs"]
    assert "tracer.analyze" in GRAPH["tracer.api"]  # inside a function
    assert "tracer.trace" in GRAPH["tracer.scenario._load"]  # the package of trace._io


def test_no_import_cycle() -> None:
    cycle = _cycle()
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_the_engine_imports_neither_analyze_nor_render() -> None:
    assert _offending("tracer.engine", ("tracer.analyze", "tracer.render")) == []
    # (the exploration's search is the engine's too: tracer.engine.schedule.explore.search)


def test_analyze_imports_neither_the_engine_nor_render() -> None:
    assert _offending("tracer.analyze", ("tracer.engine",
                                         "tracer.render", "tracer.api", "tracer.cli")) == []


def test_render_only_reads() -> None:
    assert _offending("tracer.render", ("tracer.engine", "tracer.scenario",
                                        "tracer.api", "tracer.cli")) == []


def test_trace_imports_no_layer_above_it() -> None:
    assert _offending("tracer.trace", ("tracer.engine", "tracer.analyze",
                                       "tracer.render", "tracer.scenario", "tracer.api",
                                       "tracer.cli")) == []


def test_prims_import_nothing_of_the_layers() -> None:
    assert _offending("tracer.prims", ("tracer.engine", "tracer.analyze",
                                       "tracer.render", "tracer.scenario", "tracer.trace",
                                       "tracer.api", "tracer.cli")) == []


def test_the_cli_uses_public_names_only() -> None:
    """No private module (``_x``) of another package: what the CLI needs is re-exported by
    the packages (tracer.engine, tracer.scenario, tracer.trace) or is tracer.api."""
    private = sorted(d for d in _imported("tracer.cli", *MODULES["tracer.cli"])
                     if any(p.startswith("_") for p in d.split(".")[1:])
                     and d not in CLI_HELPERS)
    assert private == []


def test_a_process_child_loads_no_analysis_nor_renderer() -> None:
    """What the forkserver preloads (and every process actor, pool worker and Manager it
    forks runs on): the engine, not the analyses, the renderers or graphviz."""
    code = ("import sys, tracer.engine._fs_preload, tracer.engine._proc\n"
            "print(' '.join(sorted(m for m in sys.modules if m.split('.')[0] == 'graphviz'"
            " or m.startswith(('tracer.analyze', 'tracer.render')))))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == []


def test_the_api_names_are_functions_whatever_is_imported_first() -> None:
    """``tracer.analyze`` names the API's function and also a subpackage: importing that later
    leaves the function in place (``tracer.explore``, the API's, names no module)."""
    code = ("import tracer, tracer.engine.schedule.explore.search, tracer.analyze.lockorder\n"
            "from tracer.analyze import find_all\n"
            "from tracer import analyze, explore\n"
            "import tracer.api as api\n"
            "assert tracer.analyze is analyze is api.analyze, tracer.analyze\n"
            "assert tracer.explore is explore is api.explore, tracer.explore\n"
            "assert callable(find_all)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr


def test_a_traced_programs_host_loads_no_layer_above_the_trace() -> None:
    """The host a traced program runs in (and the children it starts) imports the recorder
    and the patches, not the engine, the scenario language, the analyses or pydantic: a
    program's start-up pays for what it uses."""
    code = ("import sys, tracer.program._host\n"
            "print(' '.join(sorted(m for m in sys.modules if m.split('.')[0] == 'pydantic'"
            " or m.startswith(('tracer.engine', 'tracer.scenario', 'tracer.analyze',"
            " 'tracer.render', 'tracer.api')))))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == []


def test_programs_import_neither_analyze_nor_render() -> None:
    assert _offending("tracer.program", ("tracer.analyze", "tracer.render", "tracer.api",
                                         "tracer.cli", "tracer.scenario")) == []
