"""Method filters and sort methods: list-query behaviour that lives in a plugin's function."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from marshmallow import fields, validate

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
    and describes it in OpenAPI.  ``index_paths`` are the document paths its fragments filter
    on, which the store indexes at start-up as it does the resource's declared fields (a path
    left out is still filtered on, by reading every document).  ``examples`` are raw values as
    a client sends them (``"19.99"``, ``"US,DE"``): at start-up the core applies the filter
    to each and checks the fragments it answers (see :func:`restplug.check_fragment`); without
    examples it derives some from ``field`` where it can.
    """

    name: str
    field: fields.Field
    apply: Callable[[Context, Resource, Any], Awaitable[Fragment]]
    description: str = ""
    plugin: str = field(default="", compare=False)
    index_paths: tuple[str, ...] = ()
    examples: tuple[str, ...] = ()


@dataclass(frozen=True)
class SortMethod:
    """A name usable in ``order_by`` that sorts by ``keys(restplug, resource)``: a list of
    (document path, direction) pairs, each direction multiplied by the request's direction.

    ``missing_last`` puts documents without a value at the end in both directions (MongoDB's
    own order puts them first when ascending).  ``index_paths`` are the paths its keys sort
    by, which the store indexes at start-up; without an index a sort reads and sorts every
    match.
    """

    name: str
    keys: Callable[[Context, Resource], list[tuple[str, int]]]
    description: str = ""
    missing_last: bool = False
    plugin: str = field(default="", compare=False)
    index_paths: tuple[str, ...] = ()


def examples_of(method: FilterMethod) -> tuple[str, ...]:
    """The raw values the core tries a filter with at start-up: its own ``examples``, else
    some derived from its field (none for a field of a type it does not know)."""
    return method.examples or field_examples(method.field)


def field_examples(field: fields.Field) -> tuple[str, ...]:
    """Raw values of a common marshmallow field, as a client would send them: the first of
    its choices, a number within its range, a string of its minimum length, both booleans."""
    if isinstance(field, fields.List):
        return field_examples(field.inner)
    for validator in field.validators:
        if isinstance(validator, validate.OneOf) and validator.choices:
            return (str(next(iter(validator.choices))),)
    if isinstance(field, fields.Boolean):
        return ("true", "false")
    if isinstance(field, fields.Number):
        ranges = [v for v in field.validators if isinstance(v, validate.Range)]
        bounds = [b for v in ranges for b in (v.min, v.max) if b is not None]
        number = bounds[0] if bounds else 1
        return (str(int(number) if isinstance(field, fields.Integer) else float(number)),)
    if isinstance(field, fields.Date):  # before DateTime, its base class
        return ("2020-01-01",)
    if isinstance(field, fields.DateTime):
        return ("2020-01-01T00:00:00+00:00",)
    if isinstance(field, fields.String):
        shortest = max(
            (v.min or 1 for v in field.validators if isinstance(v, validate.Length)), default=1
        )
        return ("a" * shortest,)
    return ()
