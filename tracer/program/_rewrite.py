"""Rewrite the user's modules at import so their shared-data accesses go through tracer's hooks.

Design: two passes over the module's syntax tree. :class:`_Scopes` resolves every name the
way the compiler will (module, function, class and comprehension scopes; ``global``,
``nonlocal``, parameters, local bindings, walrus targets binding in the enclosing function, class
bodies invisible to nested scopes) and marks the ``Name`` nodes that are module variables: names
a module-level ``=``, ``+=``, annotated assignment, ``for``, ``with`` or walrus binds, or that
some function declares ``global`` -- never names bound only by ``def``, ``class`` or ``import``,
never locals, free variables or builtins. :class:`_Transform` then replaces

- ``E.name`` (a load) by ``ga(E, "name", SITE)`` and ``E[K]`` by ``gi(E, K, SITE, LABEL)``;
- a module variable's load by ``gr(__tracer_g__, "x", SITE)``;
- stores, in every target position (plain, chained, unpacking, ``for``, ``with``, walrus,
  annotated), by ``sa(V, E, "name", SITE)``, ``si(V, E, K, SITE, LABEL)``, ``gw(V, g, "x",
  SITE)`` -- value first, since Python evaluates the value before the target's parts; a
  chained or unpacking assignment goes through temporaries ``__tracer_tN`` so that each target
  is still evaluated at its turn, left to right;
- ``E.name += V`` by ``t = E; v = ga(t, "name"); v += V; sa(v, t, "name")``: E once, one read,
  one write (a lost update stays possible, which is what a race detector wants to see);
  subscripts and module variables likewise.

Left as they are: ``del`` targets, slices, annotations (``from __future__ import annotations``
turns them into strings), ``match`` patterns, the function of a call ``obj.method(...)`` (a
method lookup, not shared data; its ``obj`` is rewritten), names starting with ``__``. Private
names ``self.__x`` are mangled here (``_Class__x``) since ``getattr`` does not mangle. SITE is
``"display:lineno"``; every new node takes the location of the node it replaces, so tracebacks
show the user's file and lines. On 3.13 a class's ``__static_attributes__`` no longer lists the
attributes its methods assign (the compiler sees calls).
"""

from __future__ import annotations

import ast
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import sysconfig
import types
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

__all__ = ["install", "rewrite_source"]

_ACCESS = "__tracer_access__"
_G = "__tracer_g__"
_TEMP = "__tracer_t"

_FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)
_COMPREHENSIONS = (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)


def _skipped(name: str) -> bool:
    return name.startswith("__")


# ---- pass 1: scopes ----


class _Scope:
    __slots__ = ("bound", "declared_global", "kind", "loads", "nonlocal_", "parent", "stores")

    def __init__(self, kind: str, parent: _Scope | None) -> None:
        self.kind = kind  # "module" | "function" | "class" | "comprehension"
        self.parent = parent
        self.bound: set[str] = set()
        self.declared_global: set[str] = set()
        self.nonlocal_: set[str] = set()
        self.loads: list[ast.Name] = []
        self.stores: list[ast.Name] = []

    def resolves_global(self, name: str) -> bool:
        """Whether a load of ``name`` in this scope reads the module's globals."""
        if self.kind == "module" or name in self.declared_global:
            return True
        if name in self.nonlocal_ or name in self.bound:
            return False
        scope = self.parent
        while scope is not None and scope.kind != "module":
            if scope.kind != "class":
                if name in scope.declared_global:
                    return True
                if name in scope.bound or name in scope.nonlocal_:
                    return False
            scope = scope.parent
        return True

    def stores_global(self, name: str) -> bool:
        return self.kind == "module" or name in self.declared_global


class _Scopes(ast.NodeVisitor):
    """Collect scopes, then mark the module-variable loads and stores."""

    def __init__(self) -> None:
        self.module = _Scope("module", None)
        self.scope = self.module
        self.scopes: list[_Scope] = [self.module]
        self.variables: set[str] = set()

    def _push(self, kind: str) -> _Scope:
        scope = _Scope(kind, self.scope)
        self.scopes.append(scope)
        self.scope = scope
        return scope

    def _pop(self, scope: _Scope) -> None:
        assert scope.parent is not None
        self.scope = scope.parent

    def _args(self, args: ast.arguments) -> None:
        for a in (*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg):
            if a is not None:
                self.scope.bound.add(a.arg)

    def _defaults(self, args: ast.arguments) -> None:
        for d in (*args.defaults, *args.kw_defaults):
            if d is not None:
                self.visit(d)

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        for d in node.decorator_list:
            self.visit(d)
        self._defaults(node.args)
        self.scope.bound.add(node.name)
        params = self._type_params(node)
        scope = self._push("function")
        self._args(node.args)
        for stmt in node.body:
            self.visit(stmt)
        self._pop(scope)
        if params is not None:
            self._pop(params)

    visit_AsyncFunctionDef = visit_FunctionDef

    def _type_params(self, node: Any) -> _Scope | None:
        """3.12's ``def f[T]``/``class C[T]``: T lives in a scope around the def's own."""
        names = [p.name for p in getattr(node, "type_params", None) or ()]
        if not names:
            return None
        scope = self._push("function")
        scope.bound.update(names)
        return scope

    def visit_Lambda(self, node: ast.Lambda) -> None:
        self._defaults(node.args)
        scope = self._push("function")
        self._args(node.args)
        self.visit(node.body)
        self._pop(scope)

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        for d in node.decorator_list:
            self.visit(d)
        self.scope.bound.add(node.name)
        params = self._type_params(node)
        for b in node.bases:
            self.visit(b)
        for k in node.keywords:
            self.visit(k)
        scope = self._push("class")
        for stmt in node.body:
            self.visit(stmt)
        self._pop(scope)
        if params is not None:
            self._pop(params)

    def _comprehension(self, node: Any, elts: Sequence[ast.expr]) -> None:
        generators: list[ast.comprehension] = node.generators
        self.visit(generators[0].iter)
        scope = self._push("comprehension")
        for i, gen in enumerate(generators):
            if i:
                self.visit(gen.iter)
            self.visit(gen.target)
            for cond in gen.ifs:
                self.visit(cond)
        for e in elts:
            self.visit(e)
        self._pop(scope)

    def visit_ListComp(self, node: ast.ListComp | ast.SetComp | ast.GeneratorExp) -> None:
        self._comprehension(node, [node.elt])

    visit_SetComp = visit_GeneratorExp = visit_ListComp

    def visit_DictComp(self, node: ast.DictComp) -> None:
        self._comprehension(node, [node.key, node.value])

    def visit_NamedExpr(self, node: ast.NamedExpr) -> None:
        self.visit(node.value)
        scope = self.scope
        while scope.kind == "comprehension" and scope.parent is not None:
            scope = scope.parent
        assert isinstance(node.target, ast.Name)
        scope.bound.add(node.target.id)
        scope.stores.append(node.target)

    def visit_Global(self, node: ast.Global) -> None:
        self.scope.declared_global.update(node.names)
        self.variables.update(node.names)

    def visit_Nonlocal(self, node: ast.Nonlocal) -> None:
        self.scope.nonlocal_.update(node.names)

    def visit_Import(self, node: ast.Import | ast.ImportFrom) -> None:
        for alias in node.names:
            if alias.name != "*":
                self.scope.bound.add(alias.asname or alias.name.split(".")[0])

    visit_ImportFrom = visit_Import

    def visit_ExceptHandler(self, node: ast.ExceptHandler) -> None:
        if node.name:
            self.scope.bound.add(node.name)
        self.generic_visit(node)

    def visit_MatchAs(self, node: Any) -> None:
        if node.name:
            self.scope.bound.add(node.name)
        self.generic_visit(node)

    visit_MatchStar = visit_MatchAs

    def visit_MatchMapping(self, node: Any) -> None:
        if node.rest:
            self.scope.bound.add(node.rest)
        self.generic_visit(node)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        # the annotation is left alone by the rewrite: do not collect its names
        self.visit(node.target)
        if node.value is not None:
            self.visit(node.value)

    def visit_arg(self, node: ast.arg) -> None:  # annotations of parameters: left alone
        return

    def visit_Name(self, node: ast.Name) -> None:
        if isinstance(node.ctx, ast.Load):
            self.scope.loads.append(node)
        else:
            self.scope.bound.add(node.id)
            if isinstance(node.ctx, ast.Store):
                self.scope.stores.append(node)

    def resolve(self, tree: ast.Module) -> tuple[set[int], set[int], set[str]]:
        """Visit ``tree``; return the ids of module-variable loads and stores, and the names."""
        self.visit(tree)
        self.variables.update(n.id for n in self.module.stores)
        for scope in self.scopes:
            if scope.kind == "class":
                self.variables.update(n.id for n in scope.stores if n.id in scope.declared_global)
        self.variables = {v for v in self.variables if not _skipped(v)}
        loads: set[int] = set()
        stores: set[int] = set()
        for scope in self.scopes:
            for n in scope.loads:
                if n.id in self.variables and scope.resolves_global(n.id):
                    loads.add(id(n))
            for n in scope.stores:
                if n.id in self.variables and scope.stores_global(n.id):
                    stores.add(id(n))
        return loads, stores, self.variables


# ---- pass 2: transform ----


def _mangle(name: str, klass: str | None) -> str:
    if klass is None or not name.startswith("__") or name.endswith("__") or "." in name:
        return name
    stripped = klass.lstrip("_")
    return f"_{stripped}{name}" if stripped else name


def _at(new: ast.AST, old: ast.AST) -> Any:
    return ast.copy_location(new, old)


class _Transform(ast.NodeTransformer):
    def __init__(self, display: str, loads: set[int], stores: set[int]) -> None:
        self.display = display
        self.loads = loads
        self.stores = stores
        self.classes: list[str | None] = [None]
        self.kinds: list[str] = ["module"]  # the kind of the scope being visited
        self.count = 0

    # -- helpers --

    def _site(self, node: ast.AST) -> ast.Constant:
        return ast.Constant(f"{self.display}:{getattr(node, 'lineno', 0)}")

    def _hook(self, fn: str, args: list[ast.expr], node: ast.AST) -> ast.Call:
        func = ast.Attribute(ast.Name(_ACCESS, ast.Load()), fn, ast.Load())
        call = ast.Call(func, args, [])
        ast.copy_location(func, node)
        ast.copy_location(func.value, node)
        return _at(call, node)  # type: ignore[no-any-return]

    def _temp(self, node: ast.AST) -> tuple[ast.Name, ast.Name]:
        name = f"{_TEMP}{self.count}"
        self.count += 1
        return _at(ast.Name(name, ast.Store()), node), _at(ast.Name(name, ast.Load()), node)

    def _attr(self, node: ast.Attribute) -> str:
        return _mangle(node.attr, self.classes[-1])

    def _expr(self, node: ast.expr) -> ast.expr:
        new = self.visit(node)
        assert isinstance(new, ast.expr)
        return new

    def _stmts(self, body: list[ast.stmt]) -> list[ast.stmt]:
        out: list[ast.stmt] = []
        for stmt in body:
            new = self.visit(stmt)
            if isinstance(new, list):
                out.extend(new)
            elif new is not None:
                out.append(new)
        return out

    def _cleanup(self, temps: list[ast.Name], node: ast.AST) -> list[ast.stmt]:
        """At module and class level, temporaries would become globals or class attributes."""
        if not temps or self.kinds[-1] == "function":
            return []
        targets: list[ast.expr] = [_at(ast.Name(t.id, ast.Del()), node) for t in temps]
        return [_at(ast.Delete(targets), node)]

    def _needs(self, target: ast.expr) -> bool:
        if isinstance(target, ast.Attribute):
            return True
        if isinstance(target, ast.Subscript):
            return not isinstance(target.slice, ast.Slice)
        if isinstance(target, ast.Name):
            return id(target) in self.stores
        if isinstance(target, ast.Starred):
            return self._needs(target.value)
        if isinstance(target, (ast.Tuple, ast.List)):
            return any(self._needs(e) for e in target.elts)
        return False

    def _store(self, target: ast.expr, value: ast.expr, node: ast.AST) -> ast.expr | None:
        """The hook call storing ``value`` into a simple ``target``, or None when not one."""
        if isinstance(target, ast.Attribute):
            obj = self._expr(target.value)
            return self._hook(
                "sa", [value, obj, ast.Constant(self._attr(target)), self._site(target)], target
            )
        if isinstance(target, ast.Subscript) and not isinstance(target.slice, ast.Slice):
            label = ast.Constant(ast.unparse(target.value))
            obj = self._expr(target.value)
            key = self._expr(target.slice)
            return self._hook("si", [value, obj, key, self._site(target), label], target)
        if isinstance(target, ast.Name) and id(target) in self.stores:
            g = _at(ast.Name(_G, ast.Load()), target)
            return self._hook("gw", [value, g, ast.Constant(target.id), self._site(target)], target)
        return None

    def _assign_to(self, target: ast.expr, value: ast.expr, node: ast.AST) -> list[ast.stmt]:
        """Statements assigning ``value`` (a temporary's load) to ``target``, as Python would."""
        call = self._store(target, value, node)
        if call is not None:
            return [_at(ast.Expr(call), node)]
        if isinstance(target, (ast.Tuple, ast.List)) and self._needs(target):
            temps: list[ast.Name] = []
            pairs: list[tuple[ast.expr, ast.Name]] = []
            elts: list[ast.expr] = []
            for e in target.elts:
                inner = e.value if isinstance(e, ast.Starred) else e
                store, load = self._temp(e)
                temps.append(store)
                pairs.append((inner, load))
                elts.append(_at(ast.Starred(store, ast.Store()), e) if inner is not e else store)
            unpack = _at(ast.Tuple(elts, ast.Store()), target)
            out: list[ast.stmt] = [_at(ast.Assign([unpack], value), node)]
            for inner, load in pairs:
                out.extend(self._assign_to(inner, load, node))
            return out + self._cleanup(temps, node)
        return [_at(ast.Assign([self._expr(target)], value), node)]

    # -- scopes --

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> ast.AST:
        node.decorator_list = [self._expr(d) for d in node.decorator_list]
        self._visit_defaults(node.args)
        self.kinds.append("function")
        node.body = self._stmts(node.body)
        self.kinds.pop()
        return node

    visit_AsyncFunctionDef = visit_FunctionDef

    def _visit_defaults(self, args: ast.arguments) -> None:
        args.defaults = [self._expr(d) for d in args.defaults]
        args.kw_defaults = [None if d is None else self._expr(d) for d in args.kw_defaults]

    def visit_Lambda(self, node: ast.Lambda) -> ast.AST:
        self._visit_defaults(node.args)
        self.kinds.append("function")
        node.body = self._expr(node.body)
        self.kinds.pop()
        return node

    def visit_ClassDef(self, node: ast.ClassDef) -> ast.AST:
        node.decorator_list = [self._expr(d) for d in node.decorator_list]
        node.bases = [self._expr(b) for b in node.bases]
        for k in node.keywords:
            k.value = self._expr(k.value)
        self.classes.append(node.name)
        self.kinds.append("class")
        node.body = self._stmts(node.body)
        self.kinds.pop()
        self.classes.pop()
        return node

    def visit_TypeAlias(self, node: ast.AST) -> ast.AST:  # 3.12: evaluated lazily; leave it
        return node

    def visit_match_case(self, node: ast.match_case) -> ast.AST:
        if node.guard is not None:
            node.guard = self._expr(node.guard)
        node.body = self._stmts(node.body)
        return node

    # -- loads --

    def visit_Attribute(self, node: ast.Attribute) -> ast.AST:
        if not isinstance(node.ctx, ast.Load):
            self.generic_visit(node)
            return node
        obj = self._expr(node.value)
        return self._hook("ga", [obj, ast.Constant(self._attr(node)), self._site(node)], node)

    def visit_Subscript(self, node: ast.Subscript) -> ast.AST:
        if not isinstance(node.ctx, ast.Load) or isinstance(node.slice, ast.Slice):
            self.generic_visit(node)
            return node
        label = ast.Constant(ast.unparse(node.value))
        obj = self._expr(node.value)
        key = self._expr(node.slice)
        return self._hook("gi", [obj, key, self._site(node), label], node)

    def visit_Name(self, node: ast.Name) -> ast.AST:
        if isinstance(node.ctx, ast.Load) and id(node) in self.loads:
            g = _at(ast.Name(_G, ast.Load()), node)
            return self._hook("gr", [g, ast.Constant(node.id), self._site(node)], node)
        return node

    def visit_Call(self, node: ast.Call) -> ast.AST:
        func = node.func
        if isinstance(func, ast.Attribute):  # a method call: only its object is rewritten
            func.value = self._expr(func.value)
        else:
            node.func = self._expr(func)
        node.args = [self._expr(a) for a in node.args]
        for k in node.keywords:
            k.value = self._expr(k.value)
        return node

    def visit_NamedExpr(self, node: ast.NamedExpr) -> ast.AST:
        value = self._expr(node.value)
        if id(node.target) in self.stores:
            call = self._store(node.target, value, node)
            assert call is not None
            return call
        node.value = value
        return node

    # -- stores --

    def visit_Assign(self, node: ast.Assign) -> ast.AST | list[ast.stmt]:
        value = self._expr(node.value)
        if not any(self._needs(t) for t in node.targets):
            node.targets = [self._expr(t) for t in node.targets]
            node.value = value
            return node
        if len(node.targets) == 1:
            call = self._store(node.targets[0], value, node)
            if call is not None:
                return _at(ast.Expr(call), node)  # type: ignore[no-any-return]
            return self._assign_to(node.targets[0], value, node)
        store, load = self._temp(node)
        out: list[ast.stmt] = [_at(ast.Assign([store], value), node)]
        for t in node.targets:
            out.extend(self._assign_to(t, _at(ast.Name(load.id, ast.Load()), node), node))
        return out + self._cleanup([store], node)

    def visit_AugAssign(self, node: ast.AugAssign) -> ast.AST | list[ast.stmt]:
        target = node.target
        if not self._needs(target):
            self.generic_visit(node)
            return node
        out: list[ast.stmt] = []
        temps: list[ast.Name] = []

        def temp(value: ast.expr) -> ast.Name:
            store, load = self._temp(node)
            temps.append(store)
            out.append(_at(ast.Assign([store], value), node))
            return load

        site = self._site(target)
        if isinstance(target, ast.Attribute):
            attr = ast.Constant(self._attr(target))
            obj = temp(self._expr(target.value))
            read = self._hook("ga", [obj, attr, site], target)
            cur = temp(read)
            write_args: list[ast.expr] = [obj, attr, site]
            fn = "sa"
        elif isinstance(target, ast.Subscript):
            label = ast.Constant(ast.unparse(target.value))
            obj = temp(self._expr(target.value))
            key = temp(self._expr(target.slice))
            cur = temp(self._hook("gi", [obj, key, site, label], target))
            write_args = [obj, key, site, label]
            fn = "si"
        else:
            assert isinstance(target, ast.Name)
            g = _at(ast.Name(_G, ast.Load()), target)
            name = ast.Constant(target.id)
            cur = temp(self._hook("gr", [g, name, site], target))
            write_args = [g, name, site]
            fn = "gw"
        cur_store = _at(ast.Name(cur.id, ast.Store()), node)
        out.append(_at(ast.AugAssign(cur_store, node.op, self._expr(node.value)), node))
        out.append(_at(ast.Expr(self._hook(fn, [cur, *write_args], node)), node))
        return out + self._cleanup(temps, node)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> ast.AST | list[ast.stmt]:
        if node.value is None or not self._needs(node.target):
            if node.value is not None:
                node.value = self._expr(node.value)
            if not isinstance(node.target, ast.Name):
                self._visit_target_parts(node.target)
            return node
        value = self._expr(node.value)
        call = self._store(node.target, value, node)
        assert call is not None
        out: list[ast.stmt] = [_at(ast.Expr(call), node)]
        if isinstance(node.target, ast.Name):  # keep the name's annotation
            out.append(_at(ast.AnnAssign(node.target, node.annotation, None, 1), node))
        return out

    def _visit_target_parts(self, target: ast.expr) -> None:
        if isinstance(target, ast.Attribute):
            target.value = self._expr(target.value)
        elif isinstance(target, ast.Subscript):
            target.value = self._expr(target.value)
            target.slice = self._expr(target.slice)

    def visit_For(self, node: ast.For | ast.AsyncFor) -> ast.AST:
        node.iter = self._expr(node.iter)
        prologue: list[ast.stmt] = []
        if self._needs(node.target):
            store, load = self._temp(node.target)
            prologue = self._assign_to(node.target, load, node.target)
            node.target = store
        else:
            node.target = self._expr(node.target)
        node.body = prologue + self._stmts(node.body)
        node.orelse = self._stmts(node.orelse)
        return node

    visit_AsyncFor = visit_For

    def visit_With(self, node: ast.With | ast.AsyncWith) -> ast.AST:
        if not any(
            i.optional_vars is not None and self._needs(i.optional_vars) for i in node.items
        ):
            self.generic_visit(node)
            return node
        # `with a as x, b as y:` is `with a as x: with b as y:`; split to store each in turn
        body = node.body
        outer: ast.With | ast.AsyncWith | None = None
        inner: ast.With | ast.AsyncWith | None = None
        for item in node.items:
            item.context_expr = self._expr(item.context_expr)
            prologue: list[ast.stmt] = []
            target = item.optional_vars
            if target is not None and self._needs(target):
                store, load = self._temp(target)
                prologue = self._assign_to(target, load, target)
                item.optional_vars = store
            elif target is not None:
                item.optional_vars = self._expr(target)
            one = _at(type(node)([item], prologue), node)
            if inner is None:
                outer = one
            else:
                inner.body.append(one)
            inner = one
        assert outer is not None and inner is not None
        inner.body.extend(self._stmts(body))
        return outer

    visit_AsyncWith = visit_With


# ---- the module ----


def _prelude_at(tree: ast.Module) -> int:
    """Where the prelude goes: after the docstring and the ``from __future__`` imports."""
    i = 0
    body = tree.body
    if (
        body
        and isinstance(body[0], ast.Expr)
        and isinstance(body[0].value, ast.Constant)
        and isinstance(body[0].value.value, str)
    ):
        i = 1
    while i < len(body):
        stmt = body[i]
        if not (isinstance(stmt, ast.ImportFrom) and stmt.module == "__future__"):
            break
        i += 1
    return i


def rewrite_tree(tree: ast.Module, display: str) -> ast.Module:
    """Transform a parsed module in place (see the module's docstring) and return it."""
    keep = list(ast.walk(tree))  # the ids the passes compare must stay those of live nodes
    loads, stores, variables = _Scopes().resolve(tree)
    _Transform(display, loads, stores).visit(tree)
    at = _prelude_at(tree)
    lineno = tree.body[at].lineno if at < len(tree.body) else 1
    names = ", ".join(repr(v) for v in sorted(variables))
    prelude = ast.parse(
        f"import tracer.program._access as {_ACCESS}\n"
        f"{_G} = {_ACCESS}.enter(({names}{',' if variables else ''}))\n"
    ).body
    for stmt in prelude:
        for n in ast.walk(stmt):
            if "lineno" in n._attributes:
                n.lineno = n.end_lineno = lineno  # type: ignore[attr-defined]
                n.col_offset = n.end_col_offset = 0  # type: ignore[attr-defined]
    tree.body[at:at] = prelude
    ast.fix_missing_locations(tree)
    del keep
    return tree


def rewrite_source(source: str, filename: str, display: str) -> types.CodeType:
    """Parse, rewrite and compile a user module; tracebacks show ``filename`` and its lines.

    ``display`` is the file's name as messages show it (``bank.py``, ``pkg/mod.py``); each
    access's site is ``"display:lineno"``. A syntax error raises :class:`SyntaxError` as
    ``compile`` would.
    """
    tree = ast.parse(source, filename)
    return compile(rewrite_tree(tree, display), filename, "exec", dont_inherit=True)


# ---- the import hook ----


def _excluded_dirs() -> list[Path]:
    dirs: set[Path] = set()
    for key in ("stdlib", "platstdlib", "purelib", "platlib"):
        try:
            dirs.add(Path(sysconfig.get_path(key)).resolve())
        except (KeyError, OSError):
            pass
    dirs.add(Path(__file__).resolve().parent.parent)  # tracer's own package
    return sorted(dirs)


def _under(path: Path, dirs: Sequence[Path]) -> bool:
    return any(path == d or d in path.parents for d in dirs)


# called with a user module's name once its body has run (the host records the hand-over)
ON_IMPORTED: Callable[[str], None] | None = None


class _Loader(importlib.machinery.SourceFileLoader):
    """Loads a user module from its source, rewritten; never reads or writes bytecode caches."""

    display: str = ""

    def exec_module(self, module: types.ModuleType) -> None:
        super().exec_module(module)
        hook = ON_IMPORTED
        if hook is not None:
            hook(module.__name__)

    def get_code(self, fullname: str) -> types.CodeType:
        path = self.get_filename(fullname)
        return self.source_to_code(self.get_data(path), path)

    def source_to_code(  # type: ignore[override]
        self, data: bytes, path: str, *, _optimize: int = -1
    ) -> types.CodeType:
        return rewrite_source(importlib.util.decode_source(data), path, self.display)


class _Finder(importlib.abc.MetaPathFinder):
    """First on ``sys.meta_path``: asks the finders after it, and swaps in the rewriting
    loader when the module found is a ``.py`` file of the user's (under the root)."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.excluded = _excluded_dirs()

    def _user_file(self, origin: str) -> Path | None:
        if not origin.endswith(".py"):
            return None
        path = Path(origin).resolve()
        if self.root not in path.parents:
            return None
        rel = path.relative_to(self.root)
        if any(p in ("site-packages", "dist-packages") for p in rel.parts):
            return None
        if _under(path, self.excluded):
            return None
        return rel

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: types.ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname == "tracer" or fullname.startswith("tracer."):
            return None
        for finder in self._others():
            find = getattr(finder, "find_spec", None)
            if find is None:
                continue
            spec: importlib.machinery.ModuleSpec | None = find(fullname, path, target)
            if spec is None:
                continue
            if (
                type(spec.loader) is importlib.machinery.SourceFileLoader
                and spec.origin is not None
            ):
                rel = self._user_file(spec.origin)
                if rel is not None:
                    loader = _Loader(fullname, spec.origin)
                    loader.display = rel.as_posix()
                    spec.loader = loader
            return spec
        return None

    def _others(self) -> Iterator[Any]:
        # another install()'s finder is skipped too: each would ask the other, forever
        for finder in list(sys.meta_path):
            if not isinstance(finder, _Finder):
                yield finder


def install(root: Path) -> Callable[[], None]:
    """Rewrite, from now on, the modules imported from ``.py`` files under ``root``.

    Not the standard library, site-packages or tracer itself. Returns the function that
    removes the hook (modules already imported stay rewritten).
    """
    finder = _Finder(root)
    sys.meta_path.insert(0, finder)

    def uninstall() -> None:
        try:
            sys.meta_path.remove(finder)
        except ValueError:
            pass

    return uninstall
