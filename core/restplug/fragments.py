"""The filter language every store answers: a subset of MongoDB's query syntax, and its check.

A method filter's fragment (and every filter the core builds) is written in this subset; the
MongoDB store passes it through, the SQLite store compiles it (:mod:`restplug.stores.sqlfilter`).
:func:`check_fragment` accepts exactly what both take, so a fragment it passes never fails in
a store for being outside the subset.  ``docs/plugins.md`` lists the subset in one table,
which a test keeps in step with :data:`SUPPORTED_OPERATORS`.
"""

from __future__ import annotations

import math
import re
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any

from restplug.bounds import INT64_MAX, INT64_MIN
from restplug.errors import UnsupportedQuery

#: Operators that combine filters: ``{"$and": [filter, ...]}``, at any level a filter is.
LOGICAL_OPERATORS: tuple[str, ...] = ("$and", "$or")
#: Operators comparing with one value: ``{"path": {"$gt": value}}``.
COMPARISON_OPERATORS: tuple[str, ...] = ("$gt", "$gte", "$lt", "$lte")
#: Operators applied to a path: ``{"path": {"$op": argument, ...}}``.
FIELD_OPERATORS: tuple[str, ...] = (
    "$eq",
    "$ne",
    *COMPARISON_OPERATORS,
    "$in",
    "$nin",
    "$exists",
    "$not",
)
#: Every operator a filter fragment may use; anything else (``$regex``, ``$all``, ``$size``,
#: ``$elemMatch``, ``$nor``, ``$where``...) is refused by :func:`check_fragment`.
SUPPORTED_OPERATORS: tuple[str, ...] = (*FIELD_OPERATORS, *LOGICAL_OPERATORS)

#: A path segment: a field name (an identifier) or an array index.
SEGMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}|[0-9]{1,9}")
MAX_SEGMENTS = 16


def parse_path(path: str) -> tuple[str, ...]:
    """The segments of a dotted path, refusing anything that is not ``name(.name|.index)*``.

    The strict shape is what makes it safe for a store to write a path into a query's text:
    only identifiers and digits can appear.  ``_id`` is the id and takes no sub-path.
    """
    if not isinstance(path, str):
        raise UnsupportedQuery(f"a path must be a string, not {type(path).__name__}")
    segments = tuple(path.split("."))
    if len(segments) > MAX_SEGMENTS or not all(SEGMENT.fullmatch(s) for s in segments):
        raise UnsupportedQuery(f"invalid path {path!r}: expected dotted names and array indexes")
    if segments[0].isdigit():
        raise UnsupportedQuery(f"invalid path {path!r}: it cannot start with an array index")
    if segments[0] == "_id" and len(segments) > 1:
        raise UnsupportedQuery(f"invalid path {path!r}: _id is a scalar")
    return segments


def check_fragment(fragment: Any) -> None:
    """Raise :class:`~restplug.errors.UnsupportedQuery` unless ``fragment`` is a filter in the
    supported subset: operators among :data:`SUPPORTED_OPERATORS` where they apply, paths of
    names and array indexes, operands that every store holds (null, booleans, strings,
    finite numbers, 64-bit integers, and arrays of them for equality and ``$in``).

    The message names the unsupported operator or value and the path it is at.  A plugin's
    tests can call it on the fragments its filter returns; the core calls it on each one at
    start-up (with the filter's examples) and on every request.
    """
    _filter(fragment, "the filter")


def check_sort(sort: Any) -> None:
    """Raise :class:`~restplug.errors.UnsupportedQuery` unless ``sort`` is a list of
    ``(path, direction)`` pairs, each direction 1 (ascending) or -1 (descending)."""
    if not isinstance(sort, Sequence) or isinstance(sort, str):
        raise UnsupportedQuery(f"a sort is a list of (path, 1 | -1) pairs, not {sort!r}")
    for item in sort:
        if not (isinstance(item, Sequence) and not isinstance(item, str) and len(item) == 2):
            raise UnsupportedQuery(f"a sort key is (path, 1 | -1), not {item!r}")
        path, direction = item
        parse_path(path)
        if direction not in (1, -1) or isinstance(direction, bool):
            raise UnsupportedQuery(f"sort direction of {path!r} must be 1 or -1")


def _filter(filter: Any, where: str) -> None:
    if not isinstance(filter, Mapping):
        raise UnsupportedQuery(f"{where} must be a mapping, not {type(filter).__name__}")
    for key, value in filter.items():
        if key in LOGICAL_OPERATORS:
            if not isinstance(value, list | tuple) or not value:
                raise UnsupportedQuery(f"{key} takes a non-empty list of filters")
            for item in value:
                _filter(item, f"an item of {key}")
        elif isinstance(key, str) and key.startswith("$"):
            raise _unsupported(key, "at the top of a filter", LOGICAL_OPERATORS)
        else:
            parse_path(key)
            _condition(key, value)


def _condition(path: str, spec: Any) -> None:
    """The condition on a path: a value (equality) or a mapping of operators."""
    if not isinstance(spec, Mapping):
        _equality(path, spec)
        return
    if not spec:
        raise UnsupportedQuery(f"{path}: an empty condition; use operators")
    for op, argument in spec.items():
        if not (isinstance(op, str) and op.startswith("$")):
            raise UnsupportedQuery(
                f"{path}: equality with an embedded document is not supported; use dotted "
                "paths, or only operators"
            )
        if op not in FIELD_OPERATORS:
            raise _unsupported(op, f"at {path}", FIELD_OPERATORS)
        _argument(path, op, argument)


def _argument(path: str, op: str, argument: Any) -> None:
    if op in ("$eq", "$ne"):
        _equality(path, argument)
    elif op in ("$in", "$nin"):
        if not isinstance(argument, list | tuple):
            raise UnsupportedQuery(f"{path}: {op} takes a list")
        if _plain_keys(argument):
            return
        for member in argument:
            _equality(path, member)
    elif op == "$exists":
        if not isinstance(argument, bool):
            raise UnsupportedQuery(f"{path}: $exists takes true or false")
    elif op == "$not":
        if not isinstance(argument, Mapping) or not argument:
            raise UnsupportedQuery(f"{path}: $not takes a mapping of operators")
        _condition(path, argument)
    elif argument is not None:  # a comparison: null compares as MongoDB says
        if isinstance(argument, list | tuple | Mapping):
            raise UnsupportedQuery(f"{path}: {op} takes a number, string or boolean")
        _scalar(path, argument)


def _plain_keys(values: list[Any] | tuple[Any, ...]) -> bool:
    """Whether every value is a string, or every one a 64-bit integer: the ids of a search's
    ranking, thousands on every search request, checked without a call per id."""
    if _PLAIN.get(id(values)) is values:
        return True
    kinds = set(map(type, values))
    plain = kinds == {str} or (
        kinds == {int} and min(values) >= INT64_MIN and max(values) <= INT64_MAX
    )
    if plain and len(values) >= _PLAIN_REMEMBERED_FROM:
        _PLAIN[id(values)] = values
        if len(_PLAIN) > _PLAIN_REMEMBERED:
            _PLAIN.popitem(last=False)
    return plain


#: Long lists found plain, by identity (each one kept, so its id is not reused): a search's
#: ranking is one cached object that the requests for it share (see CacheManager.cached), so it
#: is checked once, not on each request.
_PLAIN: OrderedDict[int, list[Any] | tuple[Any, ...]] = OrderedDict()
_PLAIN_REMEMBERED = 64
_PLAIN_REMEMBERED_FROM = 256


def _equality(path: str, value: Any) -> None:
    """An operand of equality: null, a scalar, or an array of them (exact array equality)."""
    if value is None:
        return
    if isinstance(value, Mapping):
        raise UnsupportedQuery(
            f"{path}: equality with an embedded document is not supported; use dotted paths"
        )
    if isinstance(value, list | tuple):
        for item in value:
            _equality(path, item)
        return
    _scalar(path, value)


def _scalar(path: str, value: Any) -> None:
    if isinstance(value, bool | str):
        return
    if isinstance(value, int):
        if not INT64_MIN <= value <= INT64_MAX:
            raise UnsupportedQuery(f"{path}: the integer {value} is outside the 64-bit range")
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise UnsupportedQuery(f"{path}: {value} is not a finite number")
        return
    raise UnsupportedQuery(f"{path}: unsupported operand {value!r} ({type(value).__name__})")


def _unsupported(op: str, where: str, allowed: tuple[str, ...]) -> UnsupportedQuery:
    return UnsupportedQuery(
        f"unsupported operator {op} {where}; supported there: {', '.join(allowed)}"
    )
