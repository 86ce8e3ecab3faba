"""What every store can hold: the bounds the core puts on numbers and nesting from clients.

SQLite and MongoDB store integers as signed 64-bit; MongoDB nests documents at most 100 levels
and orjson writes at most 255.  A value past these would be accepted, then fail on its way to a
store or back out of it, so requests carrying one are refused up front.
"""

from __future__ import annotations

import math
import re
from typing import Any

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
#: The deepest a request body may nest (objects and arrays): far below every store's limit,
#: with room for the levels a resource wraps around a client's value (a task's payload).
MAX_DEPTH = 64

_INTEGER_TEXT = re.compile(r"-?[0-9]+")
_FLOAT_TEXT = re.compile(r"-?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


def integer_text(raw: str, *, negative: bool = True) -> int:
    """An integer written in ASCII digits (a leading ``-`` only when ``negative``), within
    signed 64 bits.  ``int()`` alone would take a fullwidth 8, ``+8``, `` 8`` and ``8_0``: one value
    under many spellings.  ValueError with a message for a client otherwise."""
    if not _INTEGER_TEXT.fullmatch(raw) or (raw.startswith("-") and not negative):
        digits = "digits 0-9" + (" with an optional leading -" if negative else "")
        raise ValueError(f"must be a whole number written in {digits}")
    value = int(raw)
    if not INT64_MIN <= value <= INT64_MAX:
        raise ValueError(f"must be between {INT64_MIN} and {INT64_MAX}")
    return value


def float_text(raw: str) -> float:
    """A finite number written in ASCII (``float()`` alone takes ``inf``, ``1_0`` and
    non-ASCII digits); ValueError with a message for a client otherwise."""
    if not _FLOAT_TEXT.fullmatch(raw):
        raise ValueError("must be a number written in digits 0-9, '.', '-' and an exponent")
    value = float(raw)
    if not math.isfinite(value):
        raise ValueError("must be a finite number")
    return value


_NOT_BRACKETS = bytes(c for c in range(256) if c not in b"[]{}")


def nests_deeper(body: bytes, value: Any) -> bool:
    """Whether the JSON ``body`` (decoded: ``value``) nests deeper than :data:`MAX_DEPTH`.

    Innermost pairs of brackets are removed a level per pass, at C speed: a 5 MB package is
    done in a few passes.  Brackets left after :data:`MAX_DEPTH` passes are deep nesting or
    brackets inside strings; only then is the decoded value walked to tell which."""
    brackets = body.translate(None, _NOT_BRACKETS)
    for _ in range(MAX_DEPTH):
        if not brackets:
            return False
        shorter = brackets.replace(b"[]", b"").replace(b"{}", b"")
        if len(shorter) == len(brackets):
            break
        brackets = shorter
    return bool(brackets) and too_deep(value)


def too_deep(value: Any) -> bool:
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        current, depth = stack.pop()
        if isinstance(current, dict | list):
            if depth >= MAX_DEPTH:
                return True
            children = current.values() if isinstance(current, dict) else current
            stack.extend((child, depth + 1) for child in children)
    return False


def out_of_bounds(value: Any) -> tuple[str, str] | None:
    """The first number in a decoded JSON value that no store can hold, as (path, reason):
    an integer outside signed 64 bits or a non-finite float.  None when every number fits."""
    stack: list[tuple[Any, str]] = [(value, "")]
    while stack:
        current, path = stack.pop()
        if isinstance(current, dict | list):
            items = current.items() if isinstance(current, dict) else enumerate(current)
            stack.extend((v, f"{path}.{k}" if path else str(k)) for k, v in items)
        elif isinstance(current, bool):
            continue
        elif isinstance(current, int) and not INT64_MIN <= current <= INT64_MAX:
            return path, f"integers must be between {INT64_MIN} and {INT64_MAX}"
        elif isinstance(current, float) and not math.isfinite(current):
            return path, "numbers must be finite"
    return None
