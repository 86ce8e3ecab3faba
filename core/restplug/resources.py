"""Resources: a document type declared once, served with CRUD, lists and OpenAPI by the core."""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate

from restplug.bounds import float_text, integer_text
from restplug.permissions import Requirement

#: Field-filter operators: query-string suffix -> MongoDB operator (``isnull`` is special).
OPERATORS: dict[str, str] = {
    "in": "$in",
    "not_in": "$nin",
    "neq": "$ne",
    "gt": "$gt",
    "gte": "$gte",
    "lt": "$lt",
    "lte": "$lte",
    "isnull": "$exists",
}
ALL_OPERATORS: tuple[str, ...] = tuple(OPERATORS)
EQUALITY_OPERATORS: tuple[str, ...] = ("in", "not_in", "neq", "isnull")


@dataclass(frozen=True)
class Resource:
    """A REST resource.

    ``filters`` maps each filterable document path to the operators allowed on it besides
    equality; ``sorts`` lists the paths ``order_by`` accepts; ``default_order`` is used when a
    request has none; ``search_fields`` maps the paths full-text search covers to their weights;
    ``requirements`` maps ``create``/``update``/``delete`` to what a caller needs;
    ``present``, when given, turns a stored document into what reads return (it may add
    ``_links``, which writes ignore); ``read_schema`` then describes what it returns (the
    OpenAPI document declares reads with it; ``schema`` when None).  ``indexes`` lists
    further paths worth a store index (a plugin's own queries), besides filters and sorts.
    ``default_routes`` False: the core serves none of its routes, the plugin adds its own
    (``register_routes``); its documents are still written through ``restplug.collection``,
    with their cache, search and ``documents_changed`` side effects.
    """

    name: str
    schema: type[Schema]
    filters: Mapping[str, Sequence[str]] = field(default_factory=dict)
    sorts: Sequence[str] = ()
    default_order: Sequence[str] = ()
    search_fields: Mapping[str, float] = field(default_factory=dict)
    requirements: Mapping[str, Requirement] = field(default_factory=dict)
    id_field: str = "id"
    prefix: str = "/api/v1"
    title: str = ""
    description: str = ""
    present: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    read_schema: type[Schema] | None = None
    indexes: Sequence[str] = ()
    default_routes: bool = True

    @property
    def path(self) -> str:
        return f"{self.prefix}/{self.name}"

    def presented(self, document: dict[str, Any]) -> dict[str, Any]:
        return self.present(document) if self.present else document

    @property
    def index_paths(self) -> list[str]:
        """The paths worth an index in the store: every filter and sort path, and ``indexes``."""
        return list(dict.fromkeys([*self.filters, *self.sorts, *self.indexes]))

    @functools.cached_property
    def _declared(self) -> Schema:
        # One schema instance for reading field declarations (never for load or dump):
        # building one deep-copies every field, which costs more than the rest of a cached read.
        return self.schema()

    def field_at(self, path: str) -> fields.Field | None:
        """The schema field describing a dotted document path, or None when the schema has
        no such path.  Keys of a ``Dict`` field and indexes of a ``List`` are any segment."""
        return field_at(self._declared, path)

    def id_from(self, raw: str) -> object:
        """Parse an id from a URL segment with the id field's type; ValueError when invalid."""
        return _id_from(self._declared.fields[self.id_field], raw)


@functools.lru_cache(maxsize=4096)
def _id_from(field: fields.Field, raw: str) -> object:
    # The ids of hot documents come back request after request: parsing one through the
    # field's deserialization costs more than a cached read's lookup.  Ids are immutable and
    # a field parses a text the same way each time; a refusal is not kept (it raises).
    try:
        return from_text(field, raw)
    except ValidationError as exc:
        raise ValueError("; ".join(flatten_messages(exc.messages))) from None


def from_text(field: fields.Field, raw: str, *, validate: bool = True) -> Any:
    """A value of ``field``'s type from URL or query-string text.  Numbers must be written in
    ASCII (``8``, not a fullwidth 8, ``+8`` or ``8_0``: one value, one spelling) and fit what every
    store holds (signed 64-bit integers, finite floats).  ``validate=False`` skips the
    field's validators (a filter may ask for values no document could hold).  A ``List``
    takes a comma list, each item parsed by the inner field.  Raises ValidationError."""
    if isinstance(field, fields.List):
        parts = [part.strip() for part in raw.split(",") if part.strip()]
        items = [from_text(field.inner, part, validate=validate) for part in parts]
        if validate:
            field._validate(items)
        return items
    try:
        if isinstance(field, fields.Integer):
            integer_text(raw)
        elif isinstance(field, fields.Float | fields.Decimal):
            float_text(raw)
    except ValueError as exc:
        raise ValidationError(str(exc)) from None
    field = lenient(field)
    return field.deserialize(raw) if validate else field._deserialize(raw, None, None)


def choices(field: fields.Field) -> tuple[Any, ...] | None:
    """The values a field takes when it is one of a closed set (a ``OneOf`` validator)."""
    for validator in field.validators:
        if isinstance(validator, validate.OneOf):
            return tuple(validator.choices)
    return None


@functools.lru_cache(maxsize=1024)
def lenient(field: fields.Field) -> fields.Field:
    """The field, accepting strings for numbers: a URL or query string only holds strings,
    so a ``strict`` Integer must still parse "10" there.  Fields are declarations, never
    changed once bound: the copy is made once per field, not once per request."""
    if getattr(field, "strict", False):
        field = copy.copy(field)
        field.strict = False  # type: ignore[attr-defined]
    return field


def field_at(schema: Schema, path: str) -> fields.Field | None:
    current: fields.Field | Schema = schema
    for segment in path.split("."):
        if isinstance(current, Schema):
            found = current.fields.get(segment)
            if found is None:
                return None
            current = found
        elif isinstance(current, fields.Nested):
            current = current.schema
            found = current.fields.get(segment)
            if found is None:
                return None
            current = found
        elif isinstance(current, fields.Dict):
            if current.value_field is None:
                return fields.Raw()
            current = current.value_field
        elif isinstance(current, fields.List):
            if not segment.isdigit():
                return field_at_list_item(current, segment)
            current = current.inner
        else:
            return None
    if isinstance(current, Schema):
        return fields.Nested(type(current))
    return current


def field_at_list_item(list_field: fields.List, segment: str) -> fields.Field | None:
    """MongoDB lets ``tags.name`` reach into every element of a list of objects."""
    inner = list_field.inner
    if isinstance(inner, fields.Nested):
        return inner.schema.fields.get(segment)
    return None


def flatten_messages(messages: object) -> list[str]:
    """marshmallow's nested error messages as one flat list of strings."""
    if isinstance(messages, str):
        return [messages]
    if isinstance(messages, dict):
        return [m for value in messages.values() for m in flatten_messages(value)]
    if isinstance(messages, list):
        return [m for value in messages for m in flatten_messages(value)]
    return [str(messages)]
