"""Values in messages, in the user's terms: the YAML/JSON spelling of a scenario value
(``null``, ``true``, ``[1, 2]``), not Python's (``None``, ``True``)."""

from __future__ import annotations

import json
from typing import Any


def show(value: Any) -> str:
    """``value`` as a scenario would write it: a plain string bare (``done``), one that would
    read as something else quoted (``"null"``, ``" x"``, ``""``), everything else as JSON,
    which YAML reads back as the same value."""
    if isinstance(value, str):
        if value and value.strip() == value and not _reads_as_other(value):
            return value
        return json.dumps(value, ensure_ascii=False)
    try:
        return json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):  # not YAML data (a hand-made trace): say what it is
        return repr(value)


def _reads_as_other(text: str) -> bool:
    """Whether a bare ``text`` would be read as a number, a boolean or null."""
    if text.lower() in ("null", "~", "true", "false", "yes", "no", "on", "off"):
        return True
    try:
        float(text)
    except ValueError:
        return False
    return True
