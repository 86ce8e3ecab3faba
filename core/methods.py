"""Method filters and sort methods: list-query behaviour that lives in a plugin's function."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from marshmallow import fields

if TYPE_CHECKING:
    from restplug.app import Restplug
    from restplug.resources import Resource
    from restplug.store import Filter


@dataclass(frozen=True)
class Fragment:
    """What a method filter answers: a MongoDB-syntax filter fragment, ANDed with the rest.

    ``ranking`` (document id -> score, higher first) asks for that order when the request has
    no ``order_by``, as full-text search does with relevance.
    """

    filter: Filter
    ranking: dict[Any, float] | None = None


@dataclass(frozen=True)
class FilterMethod:
    """A query parameter whose filter is computed by ``apply(restplug, resource, value)``.

    ``field`` parses and validates the raw value (a bad value is a 400 naming the parameter)
    and describes it in OpenAPI.
    """

    name: str
    field: fields.Field
    apply: Callable[[Restplug, Resource, Any], Awaitable[Fragment]]
    description: str = ""
    plugin: str = field(default="", compare=False)


@dataclass(frozen=True)
class SortMethod:
    """A name usable in ``order_by`` that sorts by ``keys(restplug, resource)``: a list of
    (document path, direction) pairs, each direction multiplied by the request's direction.
    """

    name: str
    keys: Callable[[Restplug, Resource], list[tuple[str, int]]]
    description: str = ""
    plugin: str = field(default="", compare=False)
