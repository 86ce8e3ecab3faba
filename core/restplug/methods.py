"""Method filters and sort methods: list-query behaviour that lives in a plugin's function."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from marshmallow import fields

if TYPE_CHECKING:
    from restplug.context import Context
    from restplug.resources import Resource
    from restplug.stores.protocol import Filter


@dataclass(frozen=True)
class Fragment:
    """What a method filter answers: a MongoDB-syntax filter fragment, ANDed with the rest.

    ``ranking`` (document ids, best first) asks for that order when the request has no
    ``order_by``, as full-text search does with relevance.
    """

    filter: Filter
    ranking: list[Any] | None = None


@dataclass(frozen=True)
class FilterMethod:
    """A query parameter whose filter is computed by ``apply(restplug, resource, value)``.

    ``field`` parses and validates the raw value (a bad value is a 400 naming the parameter)
    and describes it in OpenAPI.
    """

    name: str
    field: fields.Field
    apply: Callable[[Context, Resource, Any], Awaitable[Fragment]]
    description: str = ""
    plugin: str = field(default="", compare=False)


@dataclass(frozen=True)
class SortMethod:
    """A name usable in ``order_by`` that sorts by ``keys(restplug, resource)``: a list of
    (document path, direction) pairs, each direction multiplied by the request's direction.

    ``missing_last`` puts documents without a value at the end in both directions (MongoDB's
    own order puts them first when ascending).
    """

    name: str
    keys: Callable[[Context, Resource], list[tuple[str, int]]]
    description: str = ""
    missing_last: bool = False
    plugin: str = field(default="", compare=False)
