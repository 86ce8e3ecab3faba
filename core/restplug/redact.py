"""Credentials masked out of text: every message and log line restplug writes goes through
:func:`redact`, so a backend URL with a password can be named in an error without leaking it."""

from __future__ import annotations

import re

MASK = "***"
# scheme://userinfo@ : where a URL carries credentials (up to the last @: a password may hold one).
_USERINFO = re.compile(r"(?P<scheme>\b[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<userinfo>[^/?#\s'\"]*)@")
# A query parameter whose name says it holds a secret: password=, api_key=, access_token= ...
_SECRET_PARAMETER = re.compile(
    r"(?P<name>[?&;][\w.-]*(?:pass(?:word|wd)?|pwd|secret|token|api[_-]?key|credential)[\w.-]*=)"
    r"(?P<value>[^&;#\s'\"]*)",
    re.IGNORECASE,
)


def _mask_userinfo(match: re.Match[str]) -> str:
    user, colon, _ = match["userinfo"].partition(":")
    # Without a colon the lone part may well be a token (https://TOKEN@host): mask it whole.
    shown = f"{user}:{MASK}" if colon else MASK
    return f"{match['scheme']}{shown}@"


def redact(text: str) -> str:
    """``text`` with every URL's password (``redis://:***@host``, ``mongodb://user:***@...``)
    and every secret-looking query parameter (``?password=***``, ``&api_key=***``) masked."""
    text = _USERINFO.sub(_mask_userinfo, text)
    return _SECRET_PARAMETER.sub(lambda m: m["name"] + MASK, text)
