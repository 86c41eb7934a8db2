"""The hooks that rewritten user modules call for their shared-data accesses.

Design: :mod:`tracer.program._rewrite` turns ``E.name`` into ``ga(E, "name", SITE)``,
``E[K]`` into ``gi(E, K, SITE, LABEL)`` and a module variable ``x`` into
``gr(__tracer_g__, "x", SITE)`` (stores likewise, *value first*, because Python evaluates the
right-hand side before the target's parts). Every access of user code comes through here, so
the path of an access that is not recorded is one global load and a compare (``RECORD`` is
None), or a type lookup in a dict (the object is not a user object): about 0.1 µs over the bare
access. User modules are imported by the program, so this module imports nothing but the
interpreter's own ``atexit``, ``sys``, ``threading``, ``types`` and ``weakref``.

What is recorded, when ``RECORD`` is set:

- an attribute of an instance of a class defined in a user module (``type(obj).__module__``
  is a module that :func:`enter` registered) when it is a data attribute of the instance: in
  its ``__dict__`` (a read) or any attribute that no data descriptor of the class serves (a
  write), or a slot. Methods, class attributes, properties and other descriptors are not.
  Named ``Class#N.attr``, N counting that class's instances from 1 in the order they are
  first recorded. A class that overrides ``__getattribute__`` (a proxy) is not recorded;
- a data attribute of a user class itself, read or written on the class (``Counter.total``,
  ``cls.total`` in a classmethod): not its methods, descriptors, nested classes, or members
  of an enum; read through an instance (``self.total`` with no instance attribute) it is a
  class attribute and not recorded;
- a module variable of a user module, read or written by the module's own code (``gr``/``gw``)
  or as ``mod.x`` from another user module (``ga``/``sa`` on the module object): named ``x``
  for the main script (``__main__``, ``__mp_main__``), ``pkg.mod.x`` otherwise;
- an item of a ``list`` or ``dict`` (subclasses too) read or written by user code: named
  ``NAME[repr(key)]``, where NAME is the container's name when it already has one (it was
  the value of a recorded global or attribute, or was seen before under another expression:
  the first name wins), else the container's expression text in the source (``results``,
  ``self.items``); a negative list index is counted from the front (``results[-1]`` of a list
  of 3 is ``results[2]``). Slices are not recorded.

Order of a recorded access: ``BEFORE_ACCESS(op, target, site)`` (if set: a scheduler's turn),
then for a read the real access and ``RECORD("read", target, value, site)`` with the value
read; for a write ``RECORD("write", target, value, site)`` and then the real store. A read
that raises (a missing attribute, a missing key) is not recorded; a write is recorded before
it is tried (a frozen dataclass's write that raises is recorded). The lead's recorder may
revise the order with a scheduler; ``RECORD`` must not itself read user objects' attributes
through these hooks (a ``__repr__`` of a user class is rewritten code: it would record inside
a record).

Named objects are kept from reuse of their ``id``: by a weak reference whose callback forgets
the name when the object can be weakly referenced (so a user's ``__del__`` and finalizers run
as without tracer), else (``list``, ``dict``, ``__slots__`` classes without ``__weakref__``)
by a strong reference until the interpreter exits (so such an object a program drops lives
on, and its ``__del__`` runs at exit). Naming takes a (reentrant) lock; only first naming does.
"""

from __future__ import annotations

import atexit
import sys
import threading
import weakref
from types import MemberDescriptorType, ModuleType

TYPE_CHECKING = False  # typing costs a child process ~8 ms to import; only mypy reads these
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from typing import Any

__all__ = [
    "BEFORE_ACCESS",
    "RECORD",
    "enter",
    "ga",
    "gi",
    "gr",
    "gw",
    "reset",
    "sa",
    "si",
    "user_modules",
]

RECORD: Callable[[str, str, Any, str], None] | None = None
"""Called as ``RECORD(op, target, value, site)``, op ``"read"`` or ``"write"``; None: no record."""

BEFORE_ACCESS: Callable[[str, str, str], None] | None = None
"""Called as ``BEFORE_ACCESS(op, target, site)`` before each recorded access is made (a
scheduler's turn: it knows what the actor is about to do); None: nothing."""

_MAIN_NAMES = frozenset({"__main__", "__mp_main__"})
_CONTAINERS = (list, dict)
_OBJECT_GETATTRIBUTE: Any = object.__getattribute__

# kinds of an attribute name on a user class
_NOT = 0  # a method, class attribute, property, descriptor: not recorded
_DICT = 1  # lives in the instance's __dict__
_SLOT = 2  # a slot


class _Module:
    """What is known of a user module's globals dict: its name prefix and its variables."""

    __slots__ = ("prefix", "targets", "variables")

    def __init__(self, name: str, variables: Iterable[str]) -> None:
        self.prefix = "" if name in _MAIN_NAMES else name + "."
        self.variables = frozenset(variables)
        self.targets: dict[str, str] = {}

    def target(self, name: str) -> str:
        t = self.targets.get(name)
        if t is None:
            t = self.targets[name] = self.prefix + name
        return t


_user_modules: set[str] = set()
# a user module's globals hold its _Module under this name (no registry: a registry would keep
# the dicts alive past the interpreter's clearing of modules, and no __del__ would run at exit)
_INFO = "__tracer_m__"
# type -> None (not a user class) | _MODULE_KINDS (a module) | {attribute name: kind}
_kinds: dict[type, dict[str, int] | None] = {}
_MODULE_KINDS: dict[str, int] = {}
_CLASS_KINDS: dict[str, int] = {}  # the object is a class: see _class_target
_user_classes: dict[type, bool] = {}
_UNSEEN: dict[str, int] = {}

# id(object) -> its name; _strong keeps alive the objects that cannot be weakly referenced
_names: dict[int, str] = {}
# id(instance) -> {attribute: its target}: the targets of a named instance's attributes, made
# once (an f-string per access cost time, and a string of its own in every event)
_targets: dict[int, dict[str, str]] = {}
_taken: set[str] = set()
_counts: dict[str, int] = {}
_strong: list[object] = []
_weak: dict[int, weakref.ref[Any]] = {}
# reentrant: a collection inside naming can run a user __del__ that names an object too
_lock = threading.RLock()


def user_modules() -> frozenset[str]:
    """The names of the modules that ran rewritten (registered by :func:`enter`)."""
    return frozenset(_user_modules)


def enter(variables: Iterable[str]) -> dict[str, Any]:
    """Register the calling module (a rewritten one) and return its globals dict.

    The rewriter puts ``__tracer_g__ = __tracer_access__.enter((...))`` at the top of each
    user module; the tuple names the module's variables (what ``mod.x`` reads record).
    """
    g: dict[str, Any] = sys._getframe(1).f_globals
    name = str(g.get("__name__", "?"))
    g[_INFO] = _Module(name, variables)
    with _lock:
        if not _user_modules:
            atexit.register(_release)
        _user_modules.add(name)
        # a class seen before its module entered (a re-run) is looked at again
        for t in [
            t for t, k in _kinds.items() if k is None and getattr(t, "__module__", None) == name
        ]:
            del _kinds[t]
    return g


def _release() -> None:
    """At exit, let go of the objects only the names kept alive (lists, dicts, slotted ones).

    Else they die when this module's globals are cleared, after the user's modules': a
    ``__del__`` of the user's then finds its module's hooks gone ("'NoneType' object has no
    attribute 'ga'"). At exit, before any module is cleared, the user's globals are intact.
    """
    with _lock:
        for obj in _strong:
            _names.pop(id(obj), None)
        _strong.clear()


def reset() -> None:
    """Forget every name and count (between runs in one process; tests)."""
    with _lock:
        _names.clear()
        _targets.clear()
        _taken.clear()
        _counts.clear()
        _strong.clear()
        _weak.clear()


# ---- naming (slow path, under the lock) ----


def _forget(oid: int) -> Callable[[object], None]:
    weak, names, targets = _weak, _names, _targets  # (at exit the globals may be gone)

    def gone(_ref: object) -> None:
        weak.pop(oid, None)
        names.pop(oid, None)
        targets.pop(oid, None)

    return gone


def _keep(obj: object) -> None:
    oid = id(obj)
    try:
        _weak[oid] = weakref.ref(obj, _forget(oid))
    except TypeError:
        _strong.append(obj)


def _unique(base: str) -> str:
    if base not in _taken:
        _taken.add(base)
        return base
    n = 2
    while f"{base}#{n}" in _taken:
        n += 1
    name = f"{base}#{n}"
    _taken.add(name)
    return name


def _instance_name(obj: object) -> str:
    with _lock:
        name = _names.get(id(obj))
        if name is None:
            cls = type(obj).__name__
            n = _counts.get(cls, 0) + 1
            _counts[cls] = n
            name = _unique(f"{cls}#{n}")
            _names[id(obj)] = name
            _targets[id(obj)] = {}
            _keep(obj)
        return name


def _container_name(obj: object, base: str) -> str:
    with _lock:
        name = _names.get(id(obj))
        if name is None:
            name = _unique(base)
            _names[id(obj)] = name
            _keep(obj)
        return name


def _name_value(value: object, target: str) -> None:
    """Give a list or dict read from or written to ``target`` that name, if it has none."""
    if issubclass(type(value), _CONTAINERS) and id(value) not in _names:
        _container_name(value, target)


# ---- classification ----


def _classify(t: type) -> dict[str, int] | None:
    if t is ModuleType:
        kinds: dict[str, int] | None = _MODULE_KINDS
    elif issubclass(t, type):
        kinds = _CLASS_KINDS
    elif getattr(t, "__module__", None) in _user_modules and (
        # a proxy's own __getattribute__ would see the hooks look at its __dict__
        t.__getattribute__ is _OBJECT_GETATTRIBUTE
    ):
        kinds = {}
    else:
        kinds = None
    _kinds[t] = kinds
    return kinds


def _class_target(cls: Any, name: str, write: bool) -> str | None:
    """The target of a user class's own data attribute (``Counter.total``), else None.

    Not a method, descriptor, nested class or module, nor an instance of the class itself
    (an enum's members); a read names the class whose ``__dict__`` holds the value.
    """
    user = _user_classes.get(cls)
    if user is None:
        user = _user_classes[cls] = getattr(cls, "__module__", None) in _user_modules
    if not user or (name.startswith("__") and name.endswith("__")):
        return None
    owner = None
    for klass in cls.__mro__ or ():  # None while a metaclass's mro() runs
        d = klass.__dict__
        if name in d:
            owner, value = klass, d[name]
            break
    if owner is None:
        return f"{cls.__qualname__}.{name}" if write else None
    if isinstance(value, (type, ModuleType)) or hasattr(type(value), "__get__"):
        return None
    if isinstance(value, cls) or getattr(owner, "__module__", None) not in _user_modules:
        return None
    return f"{(cls if write else owner).__qualname__}.{name}"


def _attr_kind(t: type, name: str, kinds: dict[str, int]) -> int:
    found: Any = _NOT
    missing = found
    for klass in t.__mro__:
        d = klass.__dict__
        if name in d:
            found = d[name]
            break
    kind = _DICT
    if found is not missing:
        ft = type(found)
        if ft is MemberDescriptorType:
            kind = _SLOT
        elif hasattr(ft, "__set__") or hasattr(ft, "__delete__"):
            kind = _NOT
    if kind == _DICT and not t.__dictoffset__:
        kind = _NOT
    kinds[name] = kind
    return kind


# ---- attributes ----


def _module_info(module: Any) -> _Module | None:
    d = module.__dict__  # None for a module made by ModuleType.__new__ alone
    mod = d.get(_INFO) if isinstance(d, dict) else None
    return mod if isinstance(mod, _Module) else None


def _attr_target(targets: dict[str, str], obj: Any, name: str) -> str:
    target = targets[name] = f"{_names[id(obj)]}.{name}"
    return target


def ga(obj: Any, name: str, site: str) -> Any:
    """``obj.name`` as user code reads it: recorded when a user object's data attribute."""
    rec = RECORD
    if rec is not None:
        kinds = _kinds.get(type(obj), _UNSEEN)
        if kinds is not None:
            # (the common case inline, a call less: a named instance's attribute in its
            # __dict__, no scheduler; the sentinels' dicts are empty, so only instances match)
            if kinds.get(name) == _DICT and BEFORE_ACCESS is None:
                targets = _targets.get(id(obj))
                if targets is not None and name in obj.__dict__:
                    value = getattr(obj, name)
                    target = targets.get(name) or _attr_target(targets, obj, name)
                    rec("read", target, value, site)
                    if issubclass(type(value), _CONTAINERS) and id(value) not in _names:
                        _container_name(value, target)
                    return value
            return _ga(rec, kinds, obj, name, site)
    return getattr(obj, name)


def _ga(
    rec: Callable[[str, str, Any, str], None],
    kinds: dict[str, int] | None,
    obj: Any,
    name: str,
    site: str,
) -> Any:
    if kinds is _UNSEEN:
        kinds = _classify(type(obj))
        if kinds is None:
            return getattr(obj, name)
    if kinds is _MODULE_KINDS:
        mod = _module_info(obj)
        if mod is None or name not in mod.variables:
            return getattr(obj, name)
        target = mod.target(name)
    elif kinds is _CLASS_KINDS:
        found = _class_target(obj, name, False)
        if found is None:
            return getattr(obj, name)
        target = found
    else:
        assert kinds is not None
        kind = kinds.get(name)
        if kind is None:
            kind = _attr_kind(type(obj), name, kinds)
        if kind == _NOT or (kind == _DICT and name not in obj.__dict__):
            return getattr(obj, name)
        oname = _names.get(id(obj))
        if oname is None:
            oname = _instance_name(obj)
        target = f"{oname}.{name}"
    before = BEFORE_ACCESS
    if before is not None:
        before("read", target, site)
    value = getattr(obj, name)
    rec("read", target, value, site)
    _name_value(value, target)
    return value


def sa(value: Any, obj: Any, name: str, site: str) -> None:
    """``obj.name = value`` as user code writes it (value first: Python evaluates it first)."""
    rec = RECORD
    if rec is not None:
        kinds = _kinds.get(type(obj), _UNSEEN)
        if kinds is not None:
            if kinds.get(name) == _DICT and BEFORE_ACCESS is None:  # (as in ga)
                targets = _targets.get(id(obj))
                if targets is not None:
                    target = targets.get(name) or _attr_target(targets, obj, name)
                    rec("write", target, value, site)
                    if issubclass(type(value), _CONTAINERS) and id(value) not in _names:
                        _container_name(value, target)
                    setattr(obj, name, value)
                    return
            _sa(rec, kinds, value, obj, name, site)
            return
    setattr(obj, name, value)


def _sa(
    rec: Callable[[str, str, Any, str], None],
    kinds: dict[str, int] | None,
    value: Any,
    obj: Any,
    name: str,
    site: str,
) -> None:
    if kinds is _UNSEEN:
        kinds = _classify(type(obj))
        if kinds is None:
            setattr(obj, name, value)
            return
    if kinds is _MODULE_KINDS:
        mod = _module_info(obj)
        if mod is None or name not in mod.variables:
            setattr(obj, name, value)
            return
        target = mod.target(name)
    elif kinds is _CLASS_KINDS:
        found = _class_target(obj, name, True)
        if found is None:
            setattr(obj, name, value)
            return
        target = found
    else:
        assert kinds is not None
        kind = kinds.get(name)
        if kind is None:
            kind = _attr_kind(type(obj), name, kinds)
        if kind == _NOT:
            setattr(obj, name, value)
            return
        oname = _names.get(id(obj))
        if oname is None:
            oname = _instance_name(obj)
        target = f"{oname}.{name}"
    before = BEFORE_ACCESS
    if before is not None:
        before("write", target, site)
    rec("write", target, value, site)
    _name_value(value, target)
    setattr(obj, name, value)


# ---- items ----


def _item_target(obj: Any, key: Any, label: str) -> str:
    cname = _names.get(id(obj))
    if cname is None:
        cname = _container_name(obj, label)
    if type(key) is int and key < 0 and issubclass(type(obj), list):
        key += len(obj)
    return f"{cname}[{key!r}]"


def gi(obj: Any, key: Any, site: str, label: str) -> Any:
    """``obj[key]`` as user code reads it: recorded when obj is a list or a dict."""
    rec = RECORD
    if rec is not None and issubclass(type(obj), _CONTAINERS):
        target = _item_target(obj, key, label)
        before = BEFORE_ACCESS
        if before is not None:
            before("read", target, site)
        value = obj[key]
        rec("read", target, value, site)
        _name_value(value, target)
        return value
    return obj[key]


def si(value: Any, obj: Any, key: Any, site: str, label: str) -> None:
    """``obj[key] = value`` as user code writes it (value first)."""
    rec = RECORD
    if rec is not None and issubclass(type(obj), _CONTAINERS):
        target = _item_target(obj, key, label)
        before = BEFORE_ACCESS
        if before is not None:
            before("write", target, site)
        rec("write", target, value, site)
        _name_value(value, target)
    obj[key] = value


# ---- module variables ----


def _builtin(g: dict[str, Any], name: str) -> Any:
    b = g.get("__builtins__")
    if isinstance(b, ModuleType):
        b = b.__dict__
    if isinstance(b, dict) and name in b:
        return b[name]
    raise NameError(f"name {name!r} is not defined", name=name)


def gr(g: dict[str, Any], name: str, site: str) -> Any:
    """Read module variable ``name`` of the module whose globals are ``g``."""
    rec = RECORD
    if rec is None:
        try:
            return g[name]
        except KeyError:
            return _builtin(g, name)
    if name not in g:
        return _builtin(g, name)
    mod = g.get(_INFO)
    target = (mod.targets.get(name) or mod.target(name)) if mod.__class__ is _Module else name
    before = BEFORE_ACCESS
    if before is not None:
        before("read", target, site)
    try:
        value = g[name]
    except KeyError:  # deleted meanwhile by another thread
        return _builtin(g, name)
    rec("read", target, value, site)
    if issubclass(type(value), _CONTAINERS) and id(value) not in _names:
        _container_name(value, target)
    return value


def gw(value: Any, g: dict[str, Any], name: str, site: str) -> Any:
    """Write module variable ``name``; returns the value (a walrus is an expression)."""
    rec = RECORD
    if rec is not None:
        mod = g.get(_INFO)
        target = mod.target(name) if isinstance(mod, _Module) else name
        before = BEFORE_ACCESS
        if before is not None:
            before("write", target, site)
        rec("write", target, value, site)
        _name_value(value, target)
    g[name] = value
    return value
