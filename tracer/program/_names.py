"""Where the user's code is, and what it calls its objects.

A *user file* is the program's own file or a ``.py`` file under the program's directory, never
one of the standard library, of ``site-packages`` or of tracer. :func:`user_site` walks up from
a patched primitive's frame to the first frame in a user file and says ``bank.py:12`` (the
path relative to the program's directory); :func:`name_at` reads the statement there and
names the object after its target (``lock_a = threading.Lock()`` -> ``lock_a``,
``self.lock = Lock()`` -> ``Account.lock``, ``forks = [Lock() for _ in range(5)]`` ->
``forks[0]``...).
"""

from __future__ import annotations

import ast
import linecache
import os
import sys
import sysconfig
import threading
from types import FrameType

# the program's directory (resolved), set once by the host before the program runs
ROOT: str = ""
_PREFIXES: tuple[str, ...] = ()
# filename (as in code objects) -> its display name (``bank.py``), or None: not a user file
_display: dict[str, str | None] = {}
_tracer_dir = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def set_root(root: str) -> None:
    """Make ``root`` the program's directory."""
    global ROOT, _PREFIXES
    ROOT = os.path.realpath(root)
    paths = sysconfig.get_paths()
    prefixes = {os.path.realpath(p) for p in (paths.get("stdlib"), paths.get("platstdlib"),
                                               paths.get("purelib"), paths.get("platlib"))
                if p}
    prefixes |= {os.path.realpath(p) for p in sys.path if "site-packages" in p
                 or "dist-packages" in p}
    prefixes.add(_tracer_dir)
    # (a prefix that contains the program's directory would exclude the program itself)
    _PREFIXES = tuple(sorted(p + os.sep for p in prefixes
                             if not (ROOT + os.sep).startswith(p + os.sep)))
    _display.clear()


def display(filename: str) -> str | None:
    """The display name of a code object's file when it is a user file, else None."""
    try:
        return _display[filename]
    except KeyError:
        pass
    shown: str | None = None
    if ROOT and not filename.startswith("<"):
        path = os.path.realpath(filename)
        if (path.startswith(ROOT + os.sep) and not path.startswith(_PREFIXES)
                and "site-packages" not in path and "dist-packages" not in path):
            shown = os.path.relpath(path, ROOT)
    _display[filename] = shown
    return shown


def user_frame(depth: int = 2) -> FrameType | None:
    """The innermost frame, from ``depth`` frames above the caller, that is in a user file."""
    try:
        f: FrameType | None = sys._getframe(depth)
    except ValueError:
        return None
    while f is not None:
        code = f.f_code
        filename = code.co_filename
        shown = _display.get(filename, 0)
        if shown == 0:
            shown = display(filename)
        if shown is not None:
            return f
        f = f.f_back
    return None


def user_site(depth: int = 2) -> str | None:
    """``bank.py:12``: where the user's code made the current call (None: none of it)."""
    f = user_frame(depth)
    if f is None:
        return None
    return f"{_display[f.f_code.co_filename]}:{f.f_lineno}"


def created_by_user(depth: int = 2) -> FrameType | None:
    """The frame that creates an object when it is the user's code itself (``depth`` frames
    above the caller): an object the standard library makes for itself is None."""
    try:
        f = sys._getframe(depth)
    except ValueError:
        return None
    filename = f.f_code.co_filename
    shown = _display.get(filename, 0)
    if shown == 0:
        shown = display(filename)
    return f if shown is not None else None


# --- names -----------------------------------------------------------------------------------

_lock = threading.Lock()  # (a real lock: tracer's own, made before any patch)
_taken: dict[str, int] = {}  # base name -> how many objects were given it
_per_site: dict[tuple[str, int], int] = {}  # (file, line) -> objects made there


def _target_of(statement: str) -> tuple[ast.expr, ast.expr] | None:
    """(target, value) of the one assignment ``statement`` is, else None."""
    try:
        tree = ast.parse(statement.strip())
    except SyntaxError:
        return None
    if len(tree.body) != 1:
        return None
    node = tree.body[0]
    if isinstance(node, ast.Assign) and len(node.targets) == 1:
        return node.targets[0], node.value
    if isinstance(node, ast.AnnAssign) and node.value is not None:
        return node.target, node.value
    return None


def _statement(filename: str, lineno: int) -> str:
    """The text of the statement starting at ``lineno`` (up to a few continuation lines)."""
    text = ""
    for n in range(lineno, lineno + 8):
        line = linecache.getline(filename, n)
        if not line:
            break
        text += line
        try:
            ast.parse(text.strip())
            return text
        except SyntaxError:
            continue
    return linecache.getline(filename, lineno)


def _base_name(frame: FrameType, kind: str) -> tuple[str, bool]:
    """The name the statement at ``frame`` gives what it creates, and whether the statement
    makes several of them (a list)."""
    statement = _statement(frame.f_code.co_filename, frame.f_lineno)
    found = _target_of(statement)
    if found is None:
        return kind.capitalize(), False
    target, value = found
    if isinstance(value, ast.Call) and _inside(frame, value, statement):
        return kind.capitalize(), False  # (an argument: `cond = Condition(Lock())`'s lock)
    many = isinstance(value, (ast.ListComp, ast.List, ast.Tuple, ast.DictComp, ast.GeneratorExp))
    if isinstance(target, ast.Name):
        return target.id, many
    if isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name):
        owner = frame.f_locals.get(target.value.id)
        if target.value.id in ("self", "cls") and owner is not None:
            cls = owner if isinstance(owner, type) else type(owner)
            return f"{cls.__name__}.{target.attr}", many
        return ast.unparse(target), many
    if isinstance(target, (ast.Attribute, ast.Subscript)):
        return ast.unparse(target), many
    return kind.capitalize(), False


def _inside(frame: FrameType, value: ast.Call, statement: str) -> bool:
    """Whether the call ``frame`` is making is another than ``value`` (the statement's
    assigned call, starting at ``frame.f_lineno``): one of its arguments. Where the
    interpreter gives no columns (3.10), it is the assigned call."""
    positions = getattr(frame.f_code, "co_positions", None)
    if positions is None:
        return False
    try:
        line, end_line, col, end_col = list(positions())[frame.f_lasti // 2]
    except (IndexError, ValueError):
        return False
    if None in (line, end_line, col, end_col):
        return False
    first = statement.lstrip("\n").split("\n", 1)[0]
    indent = len(first) - len(first.lstrip())
    at = frame.f_lineno - 1
    span = (value.lineno + at, (value.end_lineno or value.lineno) + at,
            value.col_offset + (indent if value.lineno == 1 else 0),
            (value.end_col_offset or 0) + (indent if value.end_lineno == 1 else 0))
    return (line, end_line, col, end_col) != span


def name_at(frame: FrameType | None, kind: str) -> str:
    """A fresh name for an object of type ``kind`` (``lock``) made at ``frame``: the
    variable it goes in; ``[k]`` for the k-th made by a statement that makes a list of them;
    ``#2``, ``#3``... for a name already taken."""
    if frame is None:
        base, many = kind.capitalize(), False
        key = ("", 0)
    else:
        base, many = _base_name(frame, kind)
        key = (frame.f_code.co_filename, frame.f_lineno)
    with _lock:
        if many:
            k = _per_site.get(key, 0)
            _per_site[key] = k + 1
            base = f"{base}[{k}]"
        n = _taken.get(base, 0) + 1
        _taken[base] = n
        return base if n == 1 else f"{base}#{n}"


def reset_names() -> None:
    """Forget the names given (a schedule of an exploration starts afresh)."""
    with _lock:
        _taken.clear()
        _per_site.clear()
