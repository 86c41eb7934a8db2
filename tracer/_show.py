"""Values in messages, in the user's terms: the YAML/JSON spelling of a scenario value
(``null``, ``true``, ``"s"``, ``[1, 2]``), not Python's (``None``, ``True``, ``'s'``)."""

from __future__ import annotations

import json
from typing import Any


def show(value: Any) -> str:
    """``value`` as a scenario would write it, in JSON (which YAML reads back as the same
    value): a string quoted, so that ``"s"``, ``"null"`` and ``""`` read as strings."""
    try:
        return json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):  # not YAML data (a hand-made trace): say what it is
        return repr(value)
