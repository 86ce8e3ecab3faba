"""Permission requirements routes declare, scope matching, and the builtin default policy.

Routes say what they need with composable requirements: ``Scope("backend/create")``,
``all_of(...)``, ``any_of(...)``, or the operators ``&`` and ``|``.  A permission plugin (the
OAuth2 plugin) evaluates them against the caller's scopes; the core only carries them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from restplug import hookimpl

if TYPE_CHECKING:
    from restplug.auth import Identity


def scope_grants(granted: str, needed: str) -> bool:
    """Whether one granted scope covers a needed one.

    Scopes are ``/``-separated segments; a granted ``*`` segment stands for exactly one whole
    segment, so ``backend/*`` grants ``backend/create`` but not ``backendx/create``, and ``*/*``
    grants every two-segment scope.
    """
    have, want = granted.split("/"), needed.split("/")
    if len(have) != len(want):
        return False
    return all(h == "*" or h == w for h, w in zip(have, want, strict=True))


def has_scope(scopes: Iterable[str], needed: str) -> bool:
    return any(scope_grants(granted, needed) for granted in scopes)


class Requirement:
    """What a route needs.  ``unmet(identity)`` is None when satisfied, else the reason."""

    def unmet(self, identity: Identity | None) -> str | None:
        raise NotImplementedError

    def scopes(self) -> list[str]:
        """Every scope mentioned, for OpenAPI and ``WWW-Authenticate: scope=...``."""
        raise NotImplementedError

    def __and__(self, other: Requirement) -> Requirement:
        return AllOf((self, other))

    def __or__(self, other: Requirement) -> Requirement:
        return AnyOf((self, other))


@dataclass(frozen=True)
class Authenticated(Requirement):
    """Any valid identity."""

    def unmet(self, identity: Identity | None) -> str | None:
        return None if identity is not None else "authentication is required"

    def scopes(self) -> list[str]:
        return []

    def __str__(self) -> str:
        return "authenticated"


@dataclass(frozen=True)
class Scope(Requirement):
    """An OAuth2 scope, matched with wildcards by :func:`scope_grants`."""

    name: str

    def unmet(self, identity: Identity | None) -> str | None:
        if identity is None:
            return "authentication is required"
        if has_scope(identity.scopes, self.name):
            return None
        return f"scope {self.name} is required"

    def scopes(self) -> list[str]:
        return [self.name]

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True)
class AllOf(Requirement):
    parts: tuple[Requirement, ...] = field(default=())

    def unmet(self, identity: Identity | None) -> str | None:
        for part in self.parts:
            reason = part.unmet(identity)
            if reason:
                return reason
        return None

    def scopes(self) -> list[str]:
        return [scope for part in self.parts for scope in part.scopes()]

    def __and__(self, other: Requirement) -> Requirement:
        return AllOf((*self.parts, other))

    def __str__(self) -> str:
        return "(" + " and ".join(map(str, self.parts)) + ")"


@dataclass(frozen=True)
class AnyOf(Requirement):
    parts: tuple[Requirement, ...] = field(default=())

    def unmet(self, identity: Identity | None) -> str | None:
        if any(part.unmet(identity) is None for part in self.parts):
            return None
        if identity is None:
            return "authentication is required"
        return f"one of {self} is required"

    def scopes(self) -> list[str]:
        return [scope for part in self.parts for scope in part.scopes()]

    def __or__(self, other: Requirement) -> Requirement:
        return AnyOf((*self.parts, other))

    def __str__(self) -> str:
        return "(" + " or ".join(map(str, self.parts)) + ")"


def all_of(*parts: Requirement) -> Requirement:
    """Met when every part is (the same as ``a & b & ...``)."""
    return AllOf(parts)


def any_of(*parts: Requirement) -> Requirement:
    """Met when at least one part is (the same as ``a | b | ...``)."""
    return AnyOf(parts)


@dataclass(frozen=True)
class Denial:
    """A 'no' that says why: the status, the detail and headers the client gets."""

    status: int = 403
    detail: str = "permission denied"
    headers: dict[str, str] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return False


Vote = bool | Denial | None


@hookimpl
def permission(action: str, requirement: Requirement | None) -> Vote:
    """The builtin default policy: reads that declare no requirement are open.  Writes, and
    reads that need a scope, get no vote here, so they stay closed until a permission plugin
    (such as restplug-auth-oauth) allows them."""
    return True if action == "read" and requirement is None else None
