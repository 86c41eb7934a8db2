"""The import-time rewrite of user modules: same behaviour, and the shared accesses recorded.

Each program of tests/programs/rewrite/ runs plainly and rewritten (recording and not) in this
process and must print the same; small sources check the exact (op, target, value) records.
"""

from __future__ import annotations

import contextlib
import io
import runpy
import sys
import textwrap
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tracer.program import _access
from tracer.program._rewrite import install, rewrite_source

PROGRAMS = Path(__file__).parent / "programs" / "rewrite"
Record = tuple[str, str, Any]


@pytest.fixture(autouse=True)
def _fresh_names() -> Iterator[None]:
    _access.reset()
    yield
    _access.RECORD = None
    _access.BEFORE_ACCESS = None
    _access.reset()


def _exec(code: Any, path: str) -> tuple[str, dict[str, Any]]:
    g: dict[str, Any] = {"__name__": "__main__", "__file__": path}
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(code, g)
    return out.getvalue(), g


def run_plain(path: Path) -> str:
    code = compile(path.read_text(), str(path), "exec", dont_inherit=True)
    return _exec(code, str(path))[0]


def run_rewritten(path: Path, records: list[tuple[str, str, Any, str]] | None) -> str:
    code = rewrite_source(path.read_text(), str(path), path.name)
    if records is not None:
        _access.RECORD = lambda op, target, value, site: records.append((op, target, value, site))
    try:
        return _exec(code, str(path))[0]
    finally:
        _access.RECORD = None


def record(source: str, display: str = "prog.py") -> tuple[list[Record], dict[str, Any]]:
    """Run ``source`` rewritten with recording on; the (op, target, value) records, globals."""
    code = rewrite_source(textwrap.dedent(source), display, display)
    records: list[Record] = []
    _access.RECORD = lambda op, target, value, site: records.append((op, target, value))
    try:
        g: dict[str, Any] = {"__name__": "__main__"}
        exec(code, g)
    finally:
        _access.RECORD = None
    return records, g


def shared(records: list[Record], prefix: str) -> list[Record]:
    return [r for r in records if r[1].startswith(prefix)]


# ---- the corpus: identical behaviour ----

CORPUS = sorted(p.name for p in PROGRAMS.glob("*.py") if p.name != "bank.py")


@pytest.mark.parametrize("name", CORPUS)
def test_corpus_prints_the_same_rewritten(name: str) -> None:
    path = PROGRAMS / name
    plain = run_plain(path)
    _access.reset()
    assert run_rewritten(path, None) == plain
    _access.reset()
    records: list[tuple[str, str, Any, str]] = []
    assert run_rewritten(path, records) == plain
    assert records, "a program with shared accesses recorded nothing"
    assert all(site.startswith(f"{name}:") for *_, site in records)


def test_bank_records_the_race_on_the_account() -> None:
    records: list[tuple[str, str, Any, str]] = []
    out = run_rewritten(PROGRAMS / "bank.py", records)
    money = [(op, v) for op, target, v, _ in records if target == "Account#1.money"]
    assert money[0] == ("write", 100)
    reads = [v for op, v in money if op == "read"]
    writes = [v for op, v in money[1:] if op == "write"]
    # each ATM reads the balance to check it, the winner reads it again to subtract, and the
    # print reads it; what was written last is what the print shows
    assert 3 <= len(reads) <= 5 and 1 <= len(writes) <= 2
    assert out == f"left {reads[-1]}\n" and writes[-1] == reads[-1]
    accounts = {t for _, t, v, _ in records if t.endswith(".account")}
    assert accounts == {"ATM#1.account", "ATM#2.account"}
    sites = {site for _, t, _, site in records if t == "Account#1.money"}
    assert {"bank.py:8", "bank.py:16", "bank.py:17", "bank.py:27"} <= sites


# ---- exact records ----


def test_augmented_attribute_is_one_read_then_one_write() -> None:
    records, _ = record(
        """
        class Account:
            def __init__(self):
                self.money = 100
        a = Account()
        a.money -= 80
        """
    )
    assert shared(records, "Account") == [
        ("write", "Account#1.money", 100),
        ("read", "Account#1.money", 100),
        ("write", "Account#1.money", 20),
    ]


def test_instances_are_numbered_in_order_of_first_access() -> None:
    records, _ = record(
        """
        class C:
            pass
        x, y = C(), C()
        y.v = 1
        x.v = 2
        x.v
        """
    )
    assert shared(records, "C#") == [
        ("write", "C#1.v", 1),
        ("write", "C#2.v", 2),
        ("read", "C#2.v", 2),
    ]


def test_globals_with_global_statement_and_nested_scopes() -> None:
    records, g = record(
        """
        count = 0
        def bump():
            global count
            count += 1
        def reader():
            count2 = count
            def inner():
                nonlocal count2
                count2 += 1
                return count2
            return inner()
        bump()
        r = reader()
        """
    )
    assert g["count"] == 1 and g["r"] == 2
    assert shared(records, "count") == [
        ("write", "count", 0),
        ("read", "count", 0),
        ("write", "count", 1),
        ("read", "count", 1),
    ]


def test_locals_builtins_defs_and_imports_are_not_recorded() -> None:
    records, _ = record(
        """
        import math
        def f(n):
            total = 0
            for i in range(n):
                total += i
            return len([total]) + math.floor(1.5)
        class K:
            attr = 1
        f(3)
        K().attr  # a class attribute read through an instance
        """
    )
    assert records == []


def test_comprehension_and_class_body_scoping() -> None:
    records, g = record(
        """
        base = 1
        class Body:
            base = 2
            own = base
            comp = [base for _ in range(1)]
        squares = [base + i for i in range(2)]
        """
    )
    assert g["Body"].own == 2 and g["Body"].comp == [1] and g["squares"] == [1, 2]
    # the class's own `base = 2` and `own = base` are class attributes, not the global
    assert shared(records, "base") == [("write", "base", 1)] + [("read", "base", 1)] * 3


def test_name_mangling_properties_slots_and_super() -> None:
    records, g = record(
        """
        class Base:
            def __init__(self):
                self.__secret = 1
        class Child(Base):
            __slots__ = ("slot",)
            def __init__(self):
                super().__init__()
                self.slot = 5
                self.__secret = 2
            @property
            def prop(self):
                return self.slot
        c = Child()
        got = (c.prop, c._Base__secret, c._Child__secret)
        """
    )
    assert g["got"] == (5, 1, 2)
    assert shared(records, "Child#") == [
        ("write", "Child#1._Base__secret", 1),
        ("write", "Child#1.slot", 5),
        ("write", "Child#1._Child__secret", 2),
        ("read", "Child#1.slot", 5),  # inside the property: the property itself is not data
        ("read", "Child#1._Base__secret", 1),
        ("read", "Child#1._Child__secret", 2),
    ]


def test_chained_and_unpacking_assignments_keep_left_to_right_order() -> None:
    records, g = record(
        """
        class P:
            pass
        a, b = P(), P()
        a.x = b.y = 3
        (a.x, b.y), c = (1, 2), 3
        """
    )
    assert (g["a"].x, g["b"].y, g["c"]) == (1, 2, 3)
    assert shared(records, "P#") == [
        ("write", "P#1.x", 3),
        ("write", "P#2.y", 3),
        ("write", "P#1.x", 1),
        ("write", "P#2.y", 2),
    ]


def test_augmented_item_reads_and_writes_once_with_the_key_evaluated_once() -> None:
    records, g = record(
        """
        calls = []
        def key():
            calls.append(1)
            return "a"
        counts = {"a": 1}
        counts[key()] += 1
        results = [0, 0]
        results[-1] = 5
        """
    )
    assert g["counts"] == {"a": 2} and len(g["calls"]) == 1
    items = [r for r in records if "[" in r[1] and not r[1].startswith("calls")]
    assert items == [
        ("read", "counts['a']", 1),
        ("write", "counts['a']", 2),
        ("write", "results[1]", 5),
    ]


def test_a_container_keeps_its_first_name_across_expressions() -> None:
    records, _ = record(
        """
        class Holder:
            def __init__(self):
                self.items = [0]
        h = Holder()
        alias = h.items
        alias[0] = 1
        h.items[0] += 1
        local = {}
        other = local
        local["k"] = 1
        other["k"] = 2
        """
    )
    items = [r[1] for r in records if r[1].endswith("]")]
    assert items == [
        "Holder#1.items[0]",
        "Holder#1.items[0]",
        "Holder#1.items[0]",
        "local['k']",
        "local['k']",
    ]


def test_walrus_fstrings_decorators_lambdas() -> None:
    records, g = record(
        """
        class C:
            def __init__(self):
                self.v = 4
        c = C()
        def deco(fn):
            return fn
        @deco
        def f():
            return f"{c.v:>3}"
        if (n := c.v) > 3:
            got = (f(), (lambda: c.v + n)())
        """
    )
    assert g["got"] == ("  4", 8) and g["n"] == 4
    assert [r for r in records if r[1] == "n"] == [("write", "n", 4), ("read", "n", 4)]
    assert [r[0] for r in records if r[1] == "C#1.v"] == ["write", "read", "read", "read"]


def test_async_functions_and_generators() -> None:
    records, g = record(
        """
        import asyncio
        class S:
            def __init__(self):
                self.v = 0
        s = S()
        async def one():
            await asyncio.sleep(0)
            return 1
        async def main():
            s.v += await one()
            s.v = await one() + s.v
        def gen():
            s.v = yield s.v
            yield s.v
        asyncio.run(main())
        it = gen()
        first = next(it)
        second = it.send(10)
        """
    )
    assert (g["first"], g["second"], g["s"].v) == (2, 10, 10)
    assert shared(records, "S#") == [
        ("write", "S#1.v", 0),
        ("read", "S#1.v", 0),
        ("write", "S#1.v", 1),
        ("read", "S#1.v", 1),
        ("write", "S#1.v", 2),
        ("read", "S#1.v", 2),
        ("write", "S#1.v", 10),
        ("read", "S#1.v", 10),
    ]


def test_order_write_recorded_before_store_read_after_load() -> None:
    seen: list[str] = []
    records, _ = record("class C:\n    pass\nc = C()\n")
    code = rewrite_source("c.x = 1\nc.x\n", "prog.py", "prog.py")
    obj = records[0][2]

    def rec(op: str, target: str, value: Any, site: str) -> None:
        seen.append(f"{op} {target} {value} has={'x' in vars(obj)} at {site}")

    _access.BEFORE_ACCESS = lambda op, target, site: seen.append(f"turn {op} {target}")
    _access.RECORD = rec
    exec(code, {"__name__": "__main__", "c": obj})
    assert seen == [
        "turn write C#1.x",
        "write C#1.x 1 has=False at prog.py:1",
        "turn read C#1.x",
        "read C#1.x 1 has=True at prog.py:2",
    ]


def test_module_attributes_of_a_user_module_are_its_globals(tmp_path: Path) -> None:
    (tmp_path / "config.py").write_text("limit = 1\nname = 'cfg'\n")
    uninstall = install(tmp_path)
    sys.path.insert(0, str(tmp_path))
    try:
        records, _ = record("import config\nconfig.limit += 1\nimport math\nmath.pi\n")
    finally:
        uninstall()
        sys.path.remove(str(tmp_path))
        sys.modules.pop("config", None)
    assert records == [
        ("write", "config.limit", 1),  # the import runs config's own code, rewritten
        ("write", "config.name", "cfg"),
        ("read", "config.limit", 1),
        ("write", "config.limit", 2),
    ]


def test_tracebacks_show_the_users_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "boom.py"
    path.write_text("class C:\n    pass\n\n\ndef f(c):\n    return c.missing\n\n\nf(C())\n")
    code = rewrite_source(path.read_text(), str(path), "boom.py")
    with pytest.raises(AttributeError) as info:
        exec(code, {"__name__": "__main__"})
    frames = [(f.filename, f.lineno) for f in traceback.extract_tb(info.tb)]
    assert frames[-3:-1] == [(str(path), 9), (str(path), 6)]  # the last is ga's getattr


def test_future_imports_and_docstring_stay_first() -> None:
    src = (
        '"""Doc."""\nfrom __future__ import annotations\nx: list[int] = []\n'
        "def f(a: Undefined) -> None:\n    pass\n"
    )
    g: dict[str, Any] = {"__name__": "__main__"}
    exec(rewrite_source(src, "m.py", "m.py"), g)
    assert g["__doc__"] == "Doc."
    assert g["__annotations__"] == {"x": "list[int]"}
    assert g["f"].__annotations__ == {"a": "Undefined", "return": "None"}


def test_naming_is_race_free_under_threads() -> None:
    """Four threads name 200 fresh objects at once: each gets one name, no name is shared."""
    records, g = record(
        """
        import threading
        class Item:
            pass
        items = [Item() for _ in range(200)]
        def touch(chunk):
            for it in chunk:
                it.v = 1
        threads = [threading.Thread(target=touch, args=(items[::-1],)) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        """
    )
    names = [_access._names[id(it)] for it in g["items"]]
    assert sorted(names) == sorted(f"Item#{i}" for i in range(1, 201))
    writes = [t for op, t, _ in records if t.startswith("Item#")]
    assert len(writes) == 800 and set(writes) == {f"{n}.v" for n in names}


# ---- generated programs: identical results ----

OPS = st.lists(
    st.tuples(
        st.sampled_from(["o.a", "o.b", "d['x']", "lst[0]", "lst[-1]", "g", "o.lst[1]"]),
        st.sampled_from(["+=", "-=", "*=", "="]),
        st.sampled_from(["o.a", "o.b", "d['x']", "lst[1]", "g", "3", "-2", "o.lst[0]"]),
    ),
    min_size=1,
    max_size=12,
)


@settings(max_examples=60, deadline=None)
@given(OPS)
def test_generated_arithmetic_gives_identical_results(ops: list[tuple[str, str, str]]) -> None:
    body = "\n".join(f"    {t} {op} {v} % 7" for t, op, v in ops)
    src = (
        "class O:\n    def __init__(self):\n        self.a, self.b, self.lst = 1, 2, [3, 4]\n"
        "o = O()\nd = {'x': 5}\nlst = [6, 7, 8]\ng = 9\n"
        f"def run():\n    global g\n{body}\n    return o.a, o.b, o.lst, d, lst, g\n"
        "result = run()\n"
    )
    plain: dict[str, Any] = {"__name__": "__main__"}
    exec(compile(src, "gen.py", "exec"), plain)
    _, rewritten = record(src, "gen.py")
    assert rewritten["result"] == plain["result"]


# ---- the import hook ----


@pytest.fixture
def user_tree(tmp_path: Path) -> Iterator[Path]:
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("state = {'inits': 1}\n")
    (pkg / "helper.py").write_text("def twice(x):\n    return 2 * x\n")
    (pkg / "mod.py").write_text(
        "from . import helper\nvalue = 1\ndef bump():\n    global value\n    value += 1\n"
        "    return value\n"
        "if __name__ == '__main__':\n    bump()\n"
    )
    site = tmp_path / "venv" / "lib" / "site-packages"
    site.mkdir(parents=True)
    (site / "thirdparty.py").write_text("x = 1\n")
    before = set(sys.modules)
    sys.path[:0] = [str(tmp_path), str(site)]
    uninstall = install(tmp_path)
    try:
        yield tmp_path
    finally:
        uninstall()
        sys.path.remove(str(tmp_path))
        sys.path.remove(str(site))
        for name in set(sys.modules) - before:
            del sys.modules[name]


def test_user_modules_are_rewritten_others_not(user_tree: Path) -> None:
    import importlib

    sys.modules.pop("colorsys", None)
    mod = importlib.import_module("pkg.mod")
    pkg = importlib.import_module("pkg")
    third = importlib.import_module("thirdparty")
    colorsys = importlib.import_module("colorsys")
    assert hasattr(mod, "__tracer_g__") and hasattr(pkg, "__tracer_g__")
    assert not hasattr(third, "__tracer_g__") and not hasattr(colorsys, "__tracer_g__")
    assert not list(user_tree.rglob("*.pyc")), "rewritten code was cached next to user code"
    records: list[tuple[str, str, Any, str]] = []
    _access.RECORD = lambda op, t, v, site: records.append((op, t, v, site))
    assert mod.bump() == 2
    assert records == [
        ("read", "pkg.mod.value", 1, "pkg/mod.py:5"),
        ("write", "pkg.mod.value", 2, "pkg/mod.py:5"),
        ("read", "pkg.mod.value", 2, "pkg/mod.py:6"),
    ]
    assert {"pkg", "pkg.mod", "pkg.helper"} <= _access.user_modules()
    assert hasattr(mod.helper, "__tracer_g__")


def test_the_stdlib_site_packages_and_tracer_are_never_user_files(tmp_path: Path) -> None:
    import json
    import sysconfig

    import tracer
    from tracer.program._rewrite import _Finder

    finder = _Finder(Path("/"))  # everything is under the root
    purelib = Path(sysconfig.get_path("purelib"))
    assert finder._user_file(json.__file__) is None
    assert finder._user_file(str(purelib / "anything.py")) is None
    assert finder._user_file(str(tmp_path / "site-packages" / "x.py")) is None
    assert finder._user_file(str(Path(tracer.__file__).parent / "cli.py")) is None
    assert finder._user_file(str(tmp_path / "x.so")) is None
    user = tmp_path / "prog" / "x.py"
    assert finder._user_file(str(user)) == user.resolve().relative_to("/")


def test_two_installs_do_not_ask_each_other_forever(user_tree: Path) -> None:
    import importlib

    uninstall = install(user_tree)
    try:
        mod = importlib.import_module("pkg.mod")
    finally:
        uninstall()
    assert hasattr(mod, "__tracer_g__")


def test_a_stale_plain_bytecode_cache_is_not_used(user_tree: Path) -> None:
    import importlib
    import py_compile
    from importlib.util import cache_from_source

    source = user_tree / "pkg" / "mod.py"
    py_compile.compile(str(source), cfile=cache_from_source(str(source)))
    mod = importlib.import_module("pkg.mod")
    assert hasattr(mod, "__tracer_g__")


def test_run_module_as_main_is_rewritten(user_tree: Path) -> None:
    records: list[tuple[str, str, Any, str]] = []
    _access.RECORD = lambda op, t, v, site: records.append((op, t, v, site))
    g = runpy.run_module("pkg.mod", run_name="__main__", alter_sys=False)
    _access.RECORD = None
    assert g["value"] == 2 and "__tracer_g__" in g
    assert ("write", "value", 2, "pkg/mod.py:5") in records


def test_uninstall_stops_rewriting(tmp_path: Path) -> None:
    (tmp_path / "later.py").write_text("x = 1\n")
    uninstall = install(tmp_path)
    uninstall()
    sys.path.insert(0, str(tmp_path))
    try:
        import later  # type: ignore[import-not-found]

        assert not hasattr(later, "__tracer_g__")
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("later", None)


def test_threads_of_the_passthrough_path_do_not_interfere() -> None:
    """With RECORD None the hooks are plain accesses: many threads, exact final counts."""
    code = rewrite_source(
        "import threading\nlock = threading.Lock()\nclass C:\n    n = 0\nc = C()\n"
        "def work():\n    for _ in range(2000):\n        with lock:\n            c.n += 1\n"
        "ts = [threading.Thread(target=work) for _ in range(4)]\n"
        "for t in ts:\n    t.start()\nfor t in ts:\n    t.join()\n",
        "p.py",
        "p.py",
    )
    g: dict[str, Any] = {"__name__": "__main__"}
    exec(code, g)
    assert g["c"].n == 8000


def test_a_del_at_exit_still_finds_the_hooks(tmp_path: Path) -> None:
    """An object only tracer's names kept alive (slotted: no weak reference) dies at exit
    while the user's module still has its hooks, and its ``__del__`` reads its attribute."""
    import subprocess

    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "mod.py").write_text(
        "class Res:\n    def __init__(self):\n        self.name = 'res'\n"
        "    def __del__(self):\n        print('closed', self.name)\n"
        "class Slotted:\n    __slots__ = ('res',)\n"
        "s = Slotted()\ns.res = Res()\ndel s\nprint('deleted')\n"
    )
    driver = (
        "import sys\nfrom pathlib import Path\nfrom tracer.program import _access\n"
        "from tracer.program._rewrite import install\n"
        "_access.RECORD = lambda *a: None\n"
        f"install(Path({str(tmp_path)!r}))\nsys.path.insert(0, {str(tmp_path)!r})\n"
        "import pkg.mod\nsys.keep = pkg.mod  # alive until its globals are cleared\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", driver], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0 and done.stderr == ""
    assert done.stdout == "deleted\nclosed res\n"


@pytest.mark.skipif(sys.version_info < (3, 12), reason="type parameters are 3.12 syntax")
def test_type_parameters_shadow_a_module_variable() -> None:
    records, g = record(
        """
        T = "module"
        class Box[T]:
            kind = T
            def get(self):
                return T
        def f[T](x: T) -> T:
            return T
        got = (Box.kind.__name__, Box().get().__name__, f(1).__name__, T)
        """
    )
    assert g["got"] == ("T", "T", "T", "module")
    module_t = [r for r in records if r[1] == "T"]
    assert module_t == [("write", "T", "module"), ("read", "T", "module")]


def test_odd_objects_read_as_without_tracer() -> None:
    """A module made by ModuleType.__new__ alone (no __dict__), a proxy with its own
    __getattribute__: the hooks read them as Python does, and do not record them."""
    import types

    records, g = record(
        """
        import types
        class Proxy:
            def __init__(self, target):
                object.__setattr__(self, "seen", [])
                object.__setattr__(self, "target", target)
            def __getattribute__(self, name):
                object.__getattribute__(self, "seen").append(name)
                return getattr(object.__getattribute__(self, "target"), name)
        class T:
            def __init__(self):
                self.v = 1
        p = Proxy(T())
        got = p.v
        bare = types.ModuleType.__new__(types.ModuleType)
        try:
            bare.x
        except AttributeError as e:
            error = str(e)
        """
    )
    assert g["got"] == 1 and object.__getattribute__(g["p"], "seen") == ["v"]
    assert g["error"] == str(_error(lambda: types.ModuleType.__new__(types.ModuleType).x))
    assert not [r for r in records if r[1].startswith("Proxy")]


def _error(fn: Any) -> BaseException:
    try:
        fn()
    except Exception as e:
        return e
    raise AssertionError("no error")


def test_class_level_counters_are_recorded_methods_and_enum_members_not() -> None:
    records, g = record(
        """
        import enum
        class Counter:
            total = 0
            def bump(self):
                Counter.total += 1
            @classmethod
            def cbump(cls):
                cls.total += 1
        class Sub(Counter):
            pass
        class Color(enum.Enum):
            RED = 1
        Counter().bump()
        Sub.cbump()
        got = (Color.RED.value, Counter.bump.__name__, Counter.total, Sub.total, Counter().total)
        """
    )
    assert g["got"] == (1, "bump", 1, 2, 1)
    assert [r for r in records if r[1].startswith(("Counter", "Sub", "Color"))] == [
        ("read", "Counter.total", 0),
        ("write", "Counter.total", 1),
        ("read", "Counter.total", 1),  # Sub.total is still Counter's
        ("write", "Sub.total", 2),  # now Sub has its own
        ("read", "Counter.total", 1),
        ("read", "Sub.total", 2),
    ]
