"""Who sent a request: the identity an ``authenticate`` hook returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Identity:
    """An authenticated caller: the subject, the scopes granted, and the raw claims."""

    subject: str
    scopes: frozenset[str] = frozenset()
    claims: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)
