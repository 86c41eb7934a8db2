"""Reading and writing trace files.

Writing is the hot end of a run (a trace may hold millions of events), so events are formatted
straight from the recorded tuples: each tag carries its JSON text, payloads go through orjson.
Files are written atomically: a temporary file in the same folder, then a rename; devices and
FIFOs are written in place (never replaced), and inputs must be regular files.
"""

from __future__ import annotations

import errno
import os
import re
import stat
import tempfile
from collections.abc import Iterable, Sequence
from itertools import accumulate
from operator import itemgetter
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from tracer.trace._model import FORMAT

_OPTS = orjson.OPT_NON_STR_KEYS


class TraceError(Exception):
    """A file that is not a usable trace; ``str()`` is the message for the user."""


def dumps(value: Any) -> str:
    return orjson.dumps(value, option=_OPTS).decode()


def format_events(records: Sequence[tuple[int, float, Any, dict[str, Any] | None]],
                  t0: float = 0.0) -> str:
    """Events as JSON objects, one per line, from ``(seq, ts, tag, payload)`` records sorted
    by seq. ``ts`` is written relative to ``t0`` and made non-decreasing along seq (two
    threads may read the seq counter and the clock in opposite orders, microseconds apart)."""
    dumps_ = orjson.dumps
    times = accumulate(map(itemgetter(1), records), max)
    return ",\n".join([
        f'{{"seq":{seq},"ts":{ts - t0:.6f},{tag.json}}}' if payload is None else
        f'{{"seq":{seq},"ts":{ts - t0:.6f},{tag.json},'
        f'{dumps_(payload, option=_OPTS).decode()[1:-1]}}}'
        for (seq, _, tag, payload), ts in zip(records, times, strict=True)
    ])


def render_trace(head: dict[str, Any], events_json: str, tail: dict[str, Any]) -> str:
    """The whole file: header fields, then the events, then outcome and the rest."""
    parts = ['{"format":"%s"' % FORMAT]
    for key, value in head.items():
        parts.append(f',\n"{key}":{dumps(value)}')
    parts.append(',\n"events":[\n' + events_json + "\n]")
    for key, value in tail.items():
        parts.append(f',\n"{key}":{dumps(value)}')
    parts.append("}\n")
    return "".join(parts)


def write_atomic(path: Path, data: str | bytes | Iterable[bytes]) -> None:
    """Write ``data`` (text, bytes, or chunks of bytes written as they come) to ``path`` so
    that readers never see half a file, and replace nothing but a regular file.

    A regular file (or a new one) is written to a temporary file in the same folder, then
    renamed over it: on any error (a full disk, say) the temporary file is removed and the
    old file is left as it was. A symbolic link is followed, so the link stays a link. A
    character device or a FIFO (``-o /dev/null``, ``-o /dev/stdout``, a named pipe read by
    another program) is written in place, never replaced. A FIFO that no program reads is
    refused at once (ENXIO) rather than waited for. Raises OSError; :func:`os_reason` says
    it in words."""
    try:
        st = path.stat()  # through links: /dev/stdout on a pipe is a link to no name
    except FileNotFoundError:
        st = None
    if st is not None and stat.S_ISDIR(st.st_mode):
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(path))
    if st is not None and not stat.S_ISREG(st.st_mode):
        _write_in_place(path, data)
        return
    path = Path(os.path.realpath(path)) if path.is_symlink() else path
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, stat.S_IMODE(st.st_mode) if st is not None else 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as f:
            _write_all(f, data)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _write_in_place(path: Path, data: str | bytes | Iterable[bytes]) -> None:
    """Write to a device or FIFO through an ordinary open (no temporary file, no rename)."""
    # O_NONBLOCK: opening a FIFO that nobody reads fails with ENXIO instead of hanging
    fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0))
    try:
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    with os.fdopen(fd, "wb") as f:
        _write_all(f, data)


def _write_all(f: BinaryIO, data: str | bytes | Iterable[bytes]) -> None:
    if isinstance(data, str):
        f.write(data.encode("utf-8"))
    elif isinstance(data, bytes):
        f.write(data)
    else:
        for chunk in data:
            f.write(chunk)


_UMASK: int | None = None


def _umask() -> int:
    """The process's umask (read once: os.umask can only be read by setting it)."""
    global _UMASK
    if _UMASK is None:
        _UMASK = os.umask(0o022)
        os.umask(_UMASK)
    return _UMASK


_KINDS = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
          (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
          (stat.S_ISSOCK, "a socket"))


def not_a_regular_file(path: str | Path) -> str | None:
    """What ``path`` is when it exists and is not a regular file ("a FIFO (named pipe)", ...);
    None for a regular file or a missing one. Only stats: a FIFO is never opened."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return None
    if stat.S_ISREG(mode):
        return None
    return next((what for test, what in _KINDS if test(mode)), "not a regular file")


def open_regular(path: str | Path) -> BinaryIO:
    """Open an input file for reading, refusing anything but a regular file at once.

    Raises IsADirectoryError for a folder and :class:`NotRegularFile` for a FIFO, device or
    socket: these would block (a FIFO nobody writes), never end (``/dev/zero``) or be
    consumed by reading. Checked before opening and again on the open file (O_NONBLOCK, so
    a FIFO swapped in between cannot hang the open)."""
    what = not_a_regular_file(path)
    if what == "a folder":
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(path))
    if what is not None:
        raise NotRegularFile(what)
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0))
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise NotRegularFile(next((w for t, w in _KINDS if t(mode)), "not a regular file"))
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return os.fdopen(fd, "rb")


class NotRegularFile(OSError):
    """An input that is a FIFO, device or socket; ``str()`` says which."""

    def __init__(self, what: str) -> None:
        super().__init__(errno.EINVAL, f"is {what}, not a regular file")
        self.what = what

    def __str__(self) -> str:
        return f"is {self.what}, not a regular file"


def os_reason(exc: OSError) -> str:
    """An OSError in words: "no space left on device", "permission denied", ..."""
    if isinstance(exc, NotRegularFile):
        return str(exc)
    if exc.errno == errno.ENXIO:
        return "no program is reading this FIFO (named pipe)"
    text = exc.strerror or str(exc)
    return text[:1].lower() + text[1:]


def same_file(a: str | Path, b: str | Path) -> bool:
    """Whether two paths name one existing file (through links, ``..``, hard links)."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.realpath(a) == os.path.realpath(b)


_UNSAFE = re.compile(r'[\x00-\x1f\x7f/\\:*?"<>|]+')


def safe_stem(name: str) -> str:
    """A file name made from a scenario name that stays inside the output folder."""
    stem = _UNSAFE.sub("_", name).strip(" .")
    stem = stem.lstrip(".")
    # file names are limited to 255 bytes: keep room for suffixes such as ".wait-for.svg"
    while len(stem.encode("utf-8")) > 200:
        stem = stem[:-1]
    return stem or "trace"


def default_trace_path(scenario_name: str, folder: str | Path = "traces") -> Path:
    return Path(folder) / f"{safe_stem(scenario_name)}.json"
