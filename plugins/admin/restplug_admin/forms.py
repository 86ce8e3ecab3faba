"""Forms built from a resource's marshmallow schema, and documents read back from them.

One input per schema field: text, numbers, a checkbox, a choice of a ``OneOf``, a date, a
textarea of lines for a list of plain values, a folded group for a nested object, and JSON
in a textarea for whatever has no simpler shape (maps, lists of objects, raw values).  What a
user types is sent as typed when it does not parse: the API validates, and its messages are
shown next to the fields they name.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from marshmallow import Schema, fields, validate

#: A textarea instead of a one-line input for strings allowed to be longer than this.
LONG_TEXT = 300


@dataclass
class FormField:
    """One input (or a group of them, ``children``) of a form; ``name`` is its dotted path."""

    name: str
    label: str
    kind: str
    value: Any = ""
    choices: tuple[str, ...] = ()
    required: bool = False
    children: list[FormField] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def kind_of(declared: fields.Field) -> str:
    if isinstance(declared, fields.Nested) and not declared.many:
        return "group"
    if isinstance(declared, fields.Boolean):
        return "checkbox"
    if isinstance(declared, fields.Integer | fields.Float | fields.Decimal):
        return "number"
    if isinstance(declared, fields.Date) and not isinstance(declared, fields.DateTime):
        return "date"
    if isinstance(declared, fields.String):
        if choices_of(declared):
            return "select"
        return "textarea" if longest(declared) > LONG_TEXT else "text"
    if isinstance(declared, fields.DateTime):
        return "text"
    if isinstance(declared, fields.List) and kind_of(declared.inner) in {"text", "number", "date"}:
        return "lines"
    return "json"


def choices_of(declared: fields.Field) -> tuple[str, ...]:
    for validator in declared.validators:
        if isinstance(validator, validate.OneOf):
            return tuple(str(choice) for choice in validator.choices)
    return ()


def longest(declared: fields.Field) -> float:
    for validator in declared.validators:
        if isinstance(validator, validate.Length) and validator.max is not None:
            return validator.max
    return 0


def editable(schema: Schema, only: Iterable[str] | None = None) -> dict[str, fields.Field]:
    """The fields a form shows, by document key: what a client may send (not ``dump_only``),
    optionally only the keys named in ``only``."""
    keep = set(only) if only is not None else None
    return {
        declared.data_key or name: declared
        for name, declared in schema.fields.items()
        if not declared.dump_only and (keep is None or (declared.data_key or name) in keep)
    }


def build(
    shown: Mapping[str, fields.Field],
    document: Mapping[str, Any] | None,
    errors: Mapping[str, list[str]] | None = None,
    prefix: str = "",
) -> list[FormField]:
    """The inputs of ``shown`` fields, filled from ``document`` (the values as the API gives
    them, or as the user typed them), with ``errors`` by dotted path next to each."""
    document = document or {}
    errors = errors or {}
    built = []
    for key, declared in shown.items():
        name = f"{prefix}{key}"
        kind = kind_of(declared)
        value = document.get(key)
        item = FormField(name, key.replace("_", " "), kind, required=declared.required)
        if kind == "group":
            nested = declared.schema  # type: ignore[attr-defined]
            item.children = build(editable(nested), value or {}, errors, f"{name}.")
            item.errors = errors.get(name, [])
        else:
            item.value = shown_value(kind, value)
            item.choices = choices_of(declared)
            item.errors = [
                message if path == name else f"{path[len(name) + 1 :]}: {message}"
                for path, messages in errors.items()
                if path == name or path.startswith(f"{name}.")
                for message in messages
            ]
        built.append(item)
    return built


def unplaced(inputs: list[FormField], errors: Mapping[str, list[str]]) -> list[str]:
    """The messages no input of the form shows (about a field it leaves out, or the whole
    document), as ``path: message``."""

    def places(items: list[FormField]) -> list[str]:
        return [name for item in items for name in (item.name, *places(item.children))]

    names = places(inputs)
    return [
        f"{path}: {message}"
        for path, messages in errors.items()
        if not any(path == name or path.startswith(f"{name}.") for name in names)
        for message in messages
    ]


def shown_value(kind: str, value: Any) -> Any:
    if kind == "checkbox":
        return bool(value)
    if value is None:
        return ""
    if kind == "lines":
        return "\n".join(str(line) for line in value)
    if kind == "json":
        return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True)
    return str(value)


def read(
    shown: Mapping[str, fields.Field], form: Mapping[str, str], prefix: str = ""
) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """The document a submitted form describes, and the messages of values that cannot even
    be sent (JSON that does not parse).  A field the form does not send is left out (a
    script may send only what it changes); a checkbox is sent as ``false`` by a hidden input
    before it, then ``true`` by the box when it is ticked, the last value winning."""
    document: dict[str, Any] = {}
    problems: dict[str, list[str]] = {}
    for key, declared in shown.items():
        name = f"{prefix}{key}"
        kind = kind_of(declared)
        if kind == "group":
            nested = declared.schema  # type: ignore[attr-defined]
            inner_document, inner = read(editable(nested), form, f"{name}.")
            if inner_document or inner:
                document[key] = inner_document
            problems.update(inner)
            continue
        if name not in form:
            continue
        raw = form[name]
        if kind == "checkbox":
            document[key] = raw == "true"
        elif kind == "json":
            try:
                document[key] = json.loads(raw) if raw.strip() else None
            except ValueError as exc:
                problems[name] = [f"not valid JSON: {exc}"]
        elif kind == "lines":
            inner_kind = kind_of(declared.inner)  # type: ignore[attr-defined]
            lines = [line.strip() for line in raw.splitlines() if line.strip()]
            document[key] = [typed(inner_kind, declared.inner, line) for line in lines]  # type: ignore[attr-defined]
        else:
            document[key] = typed(kind, declared, raw)
    return document, problems


def typed(kind: str, declared: fields.Field, raw: str) -> Any:
    """A typed-in value as the API expects it; unchanged when it does not parse, so that the
    API's own message says what is wrong."""
    raw = raw.strip() if kind != "textarea" else raw
    # An empty choice, number or date means no value: the field is removed, or left unset.
    if raw == "" and (kind in {"number", "date", "select"} or declared.allow_none):
        return None
    if kind == "number":
        try:
            return int(raw) if isinstance(declared, fields.Integer) else float(raw)
        except ValueError:
            return raw
    return raw


def changes(before: Any, after: Any) -> Any:
    """The JSON merge patch (RFC 7396) from ``before`` to ``after`` over the keys ``after``
    has: what the form changed, and nothing it does not show."""
    if not isinstance(before, dict) or not isinstance(after, dict):
        return after
    patch = {}
    for key, value in after.items():
        if key not in before:
            if value is not None:
                patch[key] = value
        elif before[key] != value:
            patch[key] = changes(before[key], value) if isinstance(value, dict) else value
    return patch


def flat_errors(messages: Any, prefix: str = "") -> dict[str, list[str]]:
    """The API's nested field messages by dotted path (``prices.US.value.currency``)."""
    if isinstance(messages, dict):
        found: dict[str, list[str]] = {}
        for key, value in messages.items():
            found.update(flat_errors(value, f"{prefix}{key}."))
        return found
    path = prefix.rstrip(".") or "_schema"
    if isinstance(messages, list) and all(isinstance(m, str) for m in messages):
        return {path: list(messages)}
    return {path: [str(messages)]}
