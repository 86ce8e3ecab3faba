"""Backends chosen by URL scheme: document stores, cache backends, search indexes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

from restplug.errors import ConfigError

if TYPE_CHECKING:
    from restplug.config import Settings

Kind = Literal["store", "cache", "search"]
SETTING_FOR_KIND = {
    "store": "RESTPLUG_STORE_URL",
    "cache": "RESTPLUG_CACHE_URL",
    "search": "RESTPLUG_SEARCH_URL",
}


@dataclass(frozen=True)
class Backend:
    """What a plugin's ``register_backends`` hook returns: one kind of backend it can build.

    ``factory(url, settings)`` is called once, at start-up, with the configured URL; it returns
    the backend object (not yet opened: the core awaits its ``open()`` next).
    """

    kind: Kind
    schemes: tuple[str, ...]
    factory: Callable[[str, Settings], Any]
    plugin: str = ""


def scheme_of(url: str) -> str:
    return urlsplit(url).scheme.lower()


def choose(kind: Kind, url: str, backends: list[Backend]) -> Backend:
    """The one backend of ``kind`` answering ``url``'s scheme, or a ConfigError naming choices."""
    setting = SETTING_FOR_KIND[kind]
    scheme = scheme_of(url)
    candidates = [b for b in backends if b.kind == kind]
    answering = [b for b in candidates if scheme in b.schemes]
    choices = (
        ", ".join(sorted(f"{s}:// ({b.plugin})" for b in candidates for s in b.schemes))
        or "none installed"
    )
    if not answering:
        raise ConfigError(
            f"{setting}={url!r}: no installed, enabled plugin answers the scheme "
            f"{scheme or '(none)'!r}; choices: {choices}"
        )
    if len(answering) > 1:
        names = ", ".join(sorted(b.plugin for b in answering))
        raise ConfigError(
            f"{setting}: scheme {scheme!r} is answered by several plugins ({names}); "
            "disable all but one with RESTPLUG_DISABLE_PLUGINS"
        )
    return answering[0]
