"""What a primitive type's module declares, gathered into one :class:`PrimType`.

A type module defines ``NAME`` and, in its sections, the names listed below; ``PrimType.of``
collects them, so that the scenario checker, the trace's state pass and the engine each read
the part they need without knowing the type.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType
from typing import Any


@dataclass(frozen=True)
class PrimType:
    """One registered primitive type."""

    name: str
    module: ModuleType

    @classmethod
    def of(cls, module: ModuleType) -> PrimType:
        name = module.NAME
        assert isinstance(name, str)
        return cls(name, module)

    def part(self, attr: str, default: Any = None) -> Any:
        """A declaration of the type's module (a section's name), or ``default``."""
        return getattr(self.module, attr, default)
