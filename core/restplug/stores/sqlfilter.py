"""Compile a filter and a sort in restplug's MongoDB subset into SQLite SQL over a JSON column.

Every collection table has an ``_id`` column and a ``doc`` column holding the document as JSON
text.  A filter compiles to a boolean SQL expression with named parameters (``:p0``, ``:p1``...):
no value is ever written into the SQL text, and a path is accepted only when each of its dotted
segments is an identifier or an array index, so no path can change the statement.

**Sort key.**  MongoDB orders values by type first (null and missing < numbers < strings <
objects < arrays < booleans) and never lets values of different types compare equal.  SQLite
orders storage classes as NULL < INTEGER/REAL < TEXT < BLOB and, in expressions without
affinity, never converts one class into another.  So each path gets one *sort key* expression
(:func:`sort_key_sql`)::

    CASE json_type(doc, '$.a') WHEN 'true' THEN x'07' WHEN 'false' THEN x'06'
        WHEN 'array' THEN x'05' WHEN 'object' THEN x'04' ELSE json_extract(doc, '$.a') END

null and missing give NULL, numbers stay numbers, strings stay text, and objects, arrays and
booleans become one-byte blobs ordered as MongoDB orders them (``json_extract`` alone would
turn ``true`` into ``1`` and make it equal to the number 1).  Equality is ``key = :p``, a range
is ``key > :p AND likely(key < '')`` (below every string: numbers only; ``likely`` keeps the
planner from counting that type bound as a second narrowing of the range, which would make it
sort many rows rather than walk an index in order), and ``ORDER BY key, _id`` is MongoDB's
order.  The expression for a path is the same string every time, so an index on
``(sort key, _id)`` (what the store's ``prepare`` creates) serves filters and sorts alike.

**Narrow column.**  A table may also keep, in a column ``idx``, the document reduced to some
of its top-level keys (the store keeps those that index paths start with).  A path whose first
segment is in ``indexed`` reads ``idx`` instead of ``doc``: the same subtree, so the same
values, but SQLite parses the whole JSON text at every ``json_*`` call, and a small ``idx``
spares it the bulk of large documents that no filter reads.  For a given ``indexed`` the
choice depends on the path alone, so the expression for a path stays one string.

**Arrays.**  A condition on a path matches when any value MongoDB finds along it matches: an
array met along the way is searched element by element (elements that are objects), and an
array at the end of the path offers itself and each element.  That needs ``json_each``
subqueries, which are slow on large collections; the store therefore records which paths have
ever held an array (:func:`array_paths_of`) and passes them as ``array_paths`` so that paths
never seen holding an array compile to the plain, indexable form.  The same goes for an array
index: ``price_story.0.price`` is plain when no element of a ``price_story`` has been an array
(``price_story[]`` not recorded), although ``price_story`` holds arrays.  Without
``array_paths`` every path is assumed to possibly hold arrays: slower, but correct for any
document.  For
``$eq``/``$in`` on a path that does hold arrays, a store may also keep every document's
equality keys at that path in a side table (``multikey``, see :func:`compile_filter`), which
an index on ``(path, key, _id)`` serves as MongoDB's multikey indexes do.

Decided corners (MongoDB's behaviour, unless marked as a restriction):

- ``{x: null}`` / ``$eq: null`` / ``$in: [null]`` match a missing field, also when the path
  goes through a scalar or null, or through an object in an array lacking the field; they do
  not match when nothing at all is found (a field below an array of scalars, an array index
  past the end).  ``$gte``/``$lte`` with null behave as ``$eq: null``; ``$gt``/``$lt`` with null
  match nothing.
- ``$ne``, ``$nin`` and ``$not`` are the exact negations, so they match missing fields.
- A numeric segment indexes an array only (restriction: MongoDB would also look up an object
  key such as ``"0"``); a path cannot start with one.
- Restriction: equality with an embedded document (``{x: {"a": 1}}``) and comparing against an
  array or a document are refused with :class:`UnsupportedQuery`; use dotted paths.
- Restriction: sorting by a path that holds arrays does not follow MongoDB (which sorts by the
  smallest/largest element): all arrays sort together, after objects, ties by ``_id``.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from restplug.errors import UnsupportedQuery
from restplug.fragments import (
    FIELD_OPERATORS,
    LOGICAL_OPERATORS,
    SEGMENT,
    check_sort,
    parse_path,
)

#: Past this many values, $in/$nin pass their list as one JSON parameter.
_LONG_IN = 16
_INT64 = range(-(2**63), 2**63)

# Per comparable type: (SQL lower bound of that type's sort keys, SQL upper bound).  A range on
# one type is closed by the other bound so that other types never enter it (type bracketing).
_NUMBERS = ("IS NOT NULL", "< ''")
_STRINGS = (">= ''", "< x''")
_BOOLEANS = (">= x'06'", "<= x'07'")

_COMPARISONS = {"$gt": ">", "$gte": ">=", "$lt": "<", "$lte": "<="}

Predicate = Callable[["_Node"], str]


def sort_key_sql(path: str, *, indexed: Iterable[str] = ()) -> str:
    """The SQL sort key of ``path``: the expression filters, sorts and indexes share.

    ``indexed``: the top-level keys the table also keeps in its narrow ``idx`` column; a path
    starting with one of them is read from ``idx``.
    """
    segments = parse_path(path)
    if segments == ("_id",):
        return "_id"
    return _Node.at(_JsonPath.root(indexed).extend(segments)).key


def compile_sort(
    sort: Sequence[tuple[str, int]],
    *,
    constant: Iterable[str] = (),
    missing_last: Iterable[str] = (),
    indexed: Iterable[str] = (),
) -> str:
    """The ``ORDER BY`` list for ``sort``, ties broken by ``_id`` in the last key's direction.

    Following the last direction (rather than always ascending) keeps a descending sort the
    exact reverse of the ascending one, and lets SQLite walk an index on ``(key, _id)``
    backwards instead of sorting.  Paths in ``constant`` (:attr:`CompiledFilter.constant`) are
    left out: SQLite does not see that an expression pinned by ``=`` is constant, and would
    sort instead of reading ``_id`` order from the index.  Paths in ``missing_last`` put null
    and missing after the values when ascending too (``NULLS LAST``, which no index order
    gives: SQLite sorts the matches).  ``indexed`` as for :func:`sort_key_sql`.
    """
    constant, missing_last = frozenset(constant), frozenset(missing_last)
    indexed = frozenset(indexed)
    terms = []
    direction = 1
    check_sort(sort)
    for path, direction in sort:
        if path in constant:
            continue
        key = sort_key_sql(path, indexed=indexed)
        if direction == -1:
            terms.append(f"{key} DESC")
        else:
            terms.append(f"{key} ASC NULLS LAST" if path in missing_last else f"{key} ASC")
    if not any(path == "_id" for path, _ in sort):
        terms.append(f"_id {'ASC' if direction == 1 else 'DESC'}")
    return ", ".join(terms)


@dataclass(frozen=True)
class CompiledFilter:
    """A filter as SQL: ``where`` (a boolean expression over ``doc``, ``idx`` and ``_id``), its
    named ``params``, and the paths whose sort key it pins to one value (an equality in the
    top-level conjunction), which a sort can skip."""

    where: str
    params: dict[str, Any]
    constant: frozenset[str]


def compile_filter(
    filter: Mapping[str, Any],
    *,
    array_paths: Iterable[str] | None = None,
    indexed: Iterable[str] = (),
    multikey: Iterable[str] = (),
    keys_table: str = "",
    drive_keys: bool = True,
) -> CompiledFilter:
    """Compile ``filter``.

    ``array_paths`` lists the dotted paths (without array indexes) that may hold an array, and
    ``path[]`` for those whose arrays may hold arrays, as :func:`array_paths_of` reports them; a
    path outside it is compiled as never meeting an array.  ``None`` means "any path may hold an
    array".  ``indexed`` as for
    :func:`sort_key_sql`.

    ``multikey`` lists the paths whose equality keys (:func:`multikeys`) the table
    ``keys_table`` (an SQL name, quoted by the caller) holds as rows ``(path, key, _id)``.
    ``$eq`` and ``$in`` with scalar operands on such a path, when only its last segment may
    hold an array, compile to ``_id IN (SELECT _id FROM keys_table WHERE path = ... AND key IN
    (...))``: the same matches as searching the array with ``json_each``, but an index on
    ``(path, key, _id)`` can find them.  ``drive_keys=False`` writes ``+_id``, so SQLite does not
    start from the keys table: for a short page in sort order, walking the sort index and
    checking each row against the (materialized) keys is bounded by the table size, where
    starting from the keys sorts every match (100,000 apps: at most 7 ms against 45 ms for a
    common value).
    """
    compiler = _Compiler(
        None if array_paths is None else frozenset(array_paths),
        frozenset(indexed),
        frozenset(multikey) if keys_table else frozenset(),
        keys_table,
        drive_keys,
    )
    where = compiler.filter(filter, top=True)
    return CompiledFilter(where, compiler.params, frozenset(compiler.constant))


#: Types that hold no array: :func:`array_paths_of` need not look into them.
_SCALARS = frozenset({str, int, float, bool, type(None)})


def array_paths_of(document: Mapping[str, Any]) -> set[str]:
    """The dotted paths (array indexes left out) at which ``document`` holds an array, and
    ``path[]`` where an array at ``path`` holds an array (at any depth).

    ``{"a": [{"b": [1]}], "c": {"d": [[]]}}`` gives ``{"a", "a.b", "c.d", "c.d[]"}``.  Keys that
    are not identifiers are skipped: no filter path can name them, or anything below them.
    Knowing that no array holds an array lets ``a.0.b`` compile to a plain, indexable
    expression although ``a`` holds arrays.
    """
    found: set[str] = set()

    # Every write walks its whole document (a price history, say), so the containers holding
    # only scalars, most of it, are passed over without a call (the type test runs in C), and
    # a key is checked only when it holds a container.
    def walk(value: Any, path: str, in_array: bool) -> None:
        if type(value) is list or (type(value) is not dict and isinstance(value, list)):
            found.add(path)
            if in_array:
                found.add(path + ELEMENT)
            for item in value:
                if type(item) in _SCALARS or (
                    type(item) is dict and _SCALARS.issuperset(map(type, item.values()))
                ):
                    continue
                walk(item, path, True)
        elif type(value) is dict or isinstance(value, Mapping):
            if _SCALARS.issuperset(map(type, value.values())):
                return
            for key, item in value.items():
                if type(item) not in _SCALARS and _is_segment_name(key):
                    walk(item, f"{path}.{key}" if path else key, False)

    walk(document, "", False)
    return found


@functools.lru_cache(maxsize=4096)
def _is_segment_name(key: Any) -> bool:
    """Whether a key can be a segment of a filter path other than an array index (asked of
    the same few keys at every write)."""
    return isinstance(key, str) and SEGMENT.fullmatch(key) is not None and not key.isdigit()


@functools.lru_cache(maxsize=1024)
def _segments(path: str) -> tuple[str, ...]:
    """:func:`parse_path` of a prepared path, parsed once: every write asks for each of them."""
    return parse_path(path)


def multikeys(document: Mapping[str, Any], path: str) -> set[Any]:
    """The values ``document`` offers to an equality on ``path`` (a path of object keys only),
    encoded as the sort key encodes them: the value found there, or each element of the array
    found there.  Null, missing, arrays and objects give nothing: a scalar operand never equals
    them (an array's or object's sort key is a blob no scalar operand takes).

    The ``multikey`` paths of :func:`compile_filter` need these as rows, one per key.
    Intermediate segments are followed through objects only; the compiler uses the rows only
    while no document has held an array above the last segment.
    """
    value: Any = document
    for segment in _segments(path):
        # type() first: the ABC check is the slow part of a call every write makes per path.
        if not (type(value) is dict or isinstance(value, Mapping)) or segment not in value:
            return set()
        value = value[segment]
    if type(value) is str:
        return {value}
    keys = set()
    for item in value if isinstance(value, list) else [value]:
        if isinstance(item, bool):
            keys.add(b"\x07" if item else b"\x06")
        elif isinstance(item, int):
            # JSON text holds integers past 64 bits too; SQLite reads them as floats.
            keys.add(item if item in _INT64 else float(item))
        elif isinstance(item, float):
            if math.isfinite(item):  # a non-finite float is stored as null
                keys.add(item)
        elif isinstance(item, str):
            keys.add(item)
    return keys


@dataclass(frozen=True)
class _JsonPath:
    """A JSON path as SQL: literal pieces and SQL expressions (array keys of ``json_each``),
    and the column it applies to: ``idx`` below a top-level key in ``indexed`` (only the root
    carries that set), else ``doc``."""

    parts: tuple[str | _Sql, ...]
    column: str = "doc"
    indexed: frozenset[str] = frozenset()

    @staticmethod
    def root(indexed: Iterable[str] = ()) -> _JsonPath:
        return _JsonPath(("$",), indexed=frozenset(indexed))

    def extend(self, segments: Iterable[str]) -> _JsonPath:
        path = self
        for segment in segments:
            path = path.index(int(segment)) if segment.isdigit() else path.field(segment)
        return path

    def field(self, name: str) -> _JsonPath:
        if self.parts == ("$",) and name in self.indexed:
            return _JsonPath((f"$.{name}",), "idx")
        return self._append(f".{name}")

    def index(self, i: int) -> _JsonPath:
        return self._append(f"[{i}]")

    def each(self, alias: str) -> _JsonPath:
        """The path of the element ``json_each`` row ``alias`` is on."""
        return _JsonPath((*self._append("[").parts, _Sql(f"{alias}.key"), "]"), self.column)

    def _append(self, literal: str) -> _JsonPath:
        if self.parts and isinstance(self.parts[-1], str):
            return _JsonPath((*self.parts[:-1], self.parts[-1] + literal), self.column)
        return _JsonPath((*self.parts, literal), self.column)

    @property
    def sql(self) -> str:
        # Literal pieces hold only "$", ".", "[", "]", digits and identifiers: safe to quote.
        return " || ".join(p.text if isinstance(p, _Sql) else f"'{p}'" for p in self.parts)


@dataclass(frozen=True)
class _Sql:
    text: str


@dataclass(frozen=True)
class _Node:
    """A value a path may reach: its JSON path, SQL type (a ``json_type`` name, NULL when
    missing), scalar SQL value and sort key."""

    path: _JsonPath | None
    type: str
    value: str

    @staticmethod
    def at(path: _JsonPath) -> _Node:
        p = path.sql
        c = path.column
        return _Node(path, f"json_type({c}, {p})", f"json_extract({c}, {p})")

    @staticmethod
    def element(alias: str, array: _JsonPath) -> _Node:
        return _Node(array.each(alias), f"{alias}.type", f"{alias}.atom")

    @property
    def key(self) -> str:
        if self.path is None:
            return self.value
        return (
            f"CASE {self.type} WHEN 'true' THEN x'07' WHEN 'false' THEN x'06' "
            f"WHEN 'array' THEN x'05' WHEN 'object' THEN x'04' ELSE {self.value} END"
        )


_ID = _Node(None, "typeof(_id)", "_id")


def _and(terms: Sequence[str]) -> str:
    if "0" in terms:
        return "0"
    terms = [t for t in terms if t != "1"]
    if not terms:
        return "1"
    return terms[0] if len(terms) == 1 else "(" + " AND ".join(terms) + ")"


def _or(terms: Sequence[str]) -> str:
    if "1" in terms:
        return "1"
    terms = [t for t in terms if t != "0"]
    if not terms:
        return "0"
    return terms[0] if len(terms) == 1 else "(" + " OR ".join(terms) + ")"


def _not(term: str) -> str:
    # "IS NOT 1" rather than NOT: a NULL (an unknown comparison) counts as false on both sides.
    return f"({term}) IS NOT 1"


class _Compiler:
    def __init__(
        self,
        array_paths: frozenset[str] | None,
        indexed: frozenset[str],
        multikey: frozenset[str],
        keys_table: str,
        drive_keys: bool = True,
    ) -> None:
        self.array_paths = array_paths
        self.indexed = indexed
        self.multikey = multikey
        self.keys_table = keys_table
        self.id_term = "_id" if drive_keys else "+_id"
        self.params: dict[str, Any] = {}
        self.constant: set[str] = set()
        self._aliases = 0

    # -- parameters and names -------------------------------------------------------------

    def param(self, value: Any) -> str:
        name = f"p{len(self.params)}"
        self.params[name] = value
        return f":{name}"

    def scalar(self, value: Any) -> str:
        """The parameter for a scalar operand, as its sort key would hold it."""
        if isinstance(value, bool):
            return "x'07'" if value else "x'06'"
        if isinstance(value, int):
            if value not in _INT64:
                raise UnsupportedQuery(f"integer {value} is outside the 64-bit range")
            return self.param(value)
        if isinstance(value, float):
            if not math.isfinite(value):
                raise UnsupportedQuery(f"{value} cannot be stored as JSON")
            return self.param(value)
        if isinstance(value, str):
            return self.param(value)
        raise UnsupportedQuery(f"unsupported operand {value!r} ({type(value).__name__})")

    def alias(self) -> str:
        self._aliases += 1
        return f"e{self._aliases}"

    def may_be_array(self, keypath: tuple[str, ...]) -> bool:
        if not keypath:
            return False  # the document itself is an object
        return self.array_paths is None or _name(keypath) in self.array_paths

    # -- filter structure -----------------------------------------------------------------

    def filter(self, filter: Any, *, top: bool = False) -> str:
        """``top``: this filter is (a conjunct of) the whole filter, so an equality in it
        holds for every match."""
        if not isinstance(filter, Mapping):
            raise UnsupportedQuery(f"a filter is a mapping, not {type(filter).__name__}")
        terms = []
        for key, value in filter.items():
            if key in LOGICAL_OPERATORS:
                if not isinstance(value, list) or not value:
                    raise UnsupportedQuery(f"{key} takes a non-empty list of filters")
                parts = [self.filter(f, top=top and key == "$and") for f in value]
                terms.append(_and(parts) if key == "$and" else _or(parts))
            elif isinstance(key, str) and key.startswith("$"):
                raise UnsupportedQuery(f"unsupported top-level operator {key}")
            else:
                target = _Target(parse_path(key))
                terms.append(self.field(target, value))
                if top and self.pins(target, value):
                    self.constant.add(target.name)
        return _and(terms)

    def pins(self, target: _Target, spec: Any) -> bool:
        """Whether ``spec`` compiled to ``key = value`` (or ``key IS NULL``), one sort key."""
        if isinstance(spec, Mapping):
            if "$eq" not in spec:
                return False
            spec = spec["$eq"]
        if isinstance(spec, Mapping | list | tuple):
            return False
        # _id is unique: pinning it leaves at most one row, nothing to gain.
        return target.segments != ("_id",) and not any(
            self.may_be_array(kp) for kp in target.keypaths
        )

    def field(self, target: _Target, spec: Any) -> str:
        if isinstance(spec, Mapping):
            operators = [k for k in spec if isinstance(k, str) and k.startswith("$")]
            if not spec or len(operators) != len(spec):
                raise UnsupportedQuery(
                    f"{target.name}: equality with an embedded document is not supported; "
                    "use dotted paths, or only operators"
                )
            return _and([self.operator(target, op, arg) for op, arg in spec.items()])
        return self.keyed(target, [spec]) or self.eq(target, spec)

    def operator(self, target: _Target, op: str, arg: Any) -> str:
        if op not in FIELD_OPERATORS:
            raise UnsupportedQuery(f"{target.name}: unsupported operator {op}")
        if op == "$eq":
            return self.keyed(target, [arg]) or self.eq(target, arg)
        if op == "$ne":
            return _not(self.eq(target, arg))
        if op == "$in":
            return (isinstance(arg, list | tuple) and self.keyed(target, arg)) or self.in_(
                target, arg
            )
        if op == "$nin":
            return _not(self.in_(target, arg))
        if op == "$exists":
            exists = self.any(target, lambda c: f"{c.type} IS NOT NULL", elements=False)
            return exists if arg else _not(exists)
        if op == "$not":
            if not isinstance(arg, Mapping) or not arg:
                raise UnsupportedQuery(f"{target.name}: $not takes a document of operators")
            return _not(self.field(target, arg))
        return self.compare(target, op, arg)

    # -- operators ------------------------------------------------------------------------

    def eq(self, target: _Target, value: Any) -> str:
        if value is None:
            return self.null(target)
        return self.any(target, lambda c: self.equals(c, value))

    def keyed(self, target: _Target, values: Sequence[Any]) -> str:
        """``$in: values`` answered from the keys table, or "" when it cannot be: ``values``
        must be scalars (null, arrays and documents are not keys), the path a multikey one,
        and no segment but the last may have held an array (the rows follow objects only).
        A path that never held an array keeps its plain form, which its index serves."""
        if (
            not values
            or any(v is None or isinstance(v, list | tuple | Mapping) for v in values)
            or target.name not in self.multikey
            or not self.may_be_array(target.segments)
            or any(self.may_be_array(kp) for kp in target.keypaths[:-1])
        ):
            return ""
        # The path passed parse_path: only identifiers and dots, safe to write as a literal.
        return (
            f"{self.id_term} IN (SELECT _id FROM {self.keys_table} WHERE path = '{target.name}' "
            f"AND key IN {self.listed(values)})"
        )

    def listed(self, scalars: Sequence[Any]) -> str:
        """The SQL list (or subquery) of ``scalars`` as sort keys, for ``IN``."""
        if len(scalars) > _LONG_IN and not any(isinstance(v, bool) for v in scalars):
            # One JSON parameter instead of thousands: preparing a statement with a bound
            # parameter per value costs far more than the lookups (10,000 ids: 360 ms vs
            # 3 ms).  json_each gives numbers and strings the types json_extract gives them.
            for value in scalars:
                self.scalar(value)  # the same range and type checks
            return f"(SELECT value FROM json_each({self.param(json.dumps(scalars))}))"
        return f"({', '.join(self.scalar(v) for v in scalars)})"

    def in_(self, target: _Target, values: Any) -> str:
        if not isinstance(values, list | tuple):
            raise UnsupportedQuery(f"{target.name}: $in/$nin take a list")
        scalars = [v for v in values if v is not None and not isinstance(v, list | tuple)]
        arrays = [v for v in values if isinstance(v, list | tuple)]
        listed = self.listed(scalars)

        def member(c: _Node) -> list[str]:
            terms = [self.equals(c, a) for a in arrays]
            if scalars:
                terms.insert(0, f"{c.key} IN {listed}")
            return terms

        if any(v is None for v in values):
            return self.null(target, member)
        return self.any(target, lambda c: _or(member(c)))

    def null(self, target: _Target, others: Callable[[_Node], list[str]] | None = None) -> str:
        """Equal to null (or missing), or matching ``others(candidate)`` ($in's other values)."""

        def rest(c: _Node) -> list[str]:
            return others(c) if others else []

        if target.segments == ("_id",):
            return _or(rest(_ID))  # an id is never null
        if not any(self.may_be_array(kp) for kp in target.keypaths):
            node = _Node.at(_JsonPath.root(self.indexed).extend(target.segments))
            return _or([f"{node.key} IS NULL", *rest(node)])
        found = self.any(target, lambda c: _or([f"{c.type} IS 'null'", *rest(c)]))
        return _or(
            [found, self.missing(_Node.at(_JsonPath.root(self.indexed)), target.segments, ())]
        )

    def compare(self, target: _Target, op: str, value: Any) -> str:
        if value is None:
            # MongoDB: $gte/$lte null match what $eq null does; nothing is above/below null.
            return self.eq(target, None) if op in ("$gte", "$lte") else "0"
        if isinstance(value, bool):
            low, high = _BOOLEANS
        elif isinstance(value, int | float):
            low, high = _NUMBERS
        elif isinstance(value, str):
            low, high = _STRINGS
        else:
            raise UnsupportedQuery(f"{target.name}: {op} takes a number, string or boolean")
        sql_op = _COMPARISONS[op]

        def matches(c: _Node) -> str:
            bound = high if sql_op.startswith(">") else low
            return f"({c.key} {sql_op} {self.scalar(value)} AND likely({c.key} {bound}))"

        return self.any(target, matches)

    def equals(self, c: _Node, value: Any) -> str:
        """``c`` (a found value) equals ``value``, with MongoDB's exact array equality."""
        if value is None:
            return f"{c.type} IS 'null'"
        if isinstance(value, Mapping):
            raise UnsupportedQuery("equality with an embedded document is not supported")
        if isinstance(value, list | tuple):
            if c.path is None:
                return "0"  # an id is never an array
            terms = [
                f"{c.type} IS 'array'",
                f"json_array_length({c.path.column}, {c.path.sql}) = {len(value)}",
            ]
            for i, item in enumerate(value):
                terms.append(self.equals(_Node.at(c.path.index(i)), item))
            return _and(terms)
        return f"{c.key} = {self.scalar(value)}"

    # -- path traversal -------------------------------------------------------------------

    def any(self, target: _Target, predicate: Predicate, *, elements: bool = True) -> str:
        """Some value found along the target's path satisfies ``predicate``.

        ``elements``: whether the elements of an array at the end are candidates too (they are
        for comparisons, not for ``$exists``, which the array itself already satisfies).
        """
        if target.segments == ("_id",):
            return predicate(_ID)
        return self._any(
            _Node.at(_JsonPath.root(self.indexed)), target.segments, (), predicate, elements
        )

    def _any(
        self,
        node: _Node,
        segments: tuple[str, ...],
        keypath: tuple[str, ...],
        predicate: Predicate,
        elements: bool,
    ) -> str:
        assert node.path is not None
        if not segments:
            found = predicate(node)
            if not (elements and self.may_be_array(keypath)):
                return found
            e = self.alias()
            inner = predicate(_Node.element(e, node.path))
            return _or([found, self._each(node, e, inner)])
        segment, rest = segments[0], segments[1:]
        if segment.isdigit():
            return self._any(
                _Node.at(node.path.index(int(segment))),
                rest,
                _element(keypath),
                predicate,
                elements,
            )
        child_keypath = _child(keypath, segment)
        direct = self._any(
            _Node.at(node.path.field(segment)), rest, child_keypath, predicate, elements
        )
        if not self.may_be_array(keypath):
            return direct
        e = self.alias()
        item = _Node.at(node.path.each(e).field(segment))
        inner = self._any(item, rest, child_keypath, predicate, elements)
        return _or([direct, self._each(node, e, f"{e}.type = 'object' AND {inner}")])

    def missing(self, node: _Node, segments: tuple[str, ...], keypath: tuple[str, ...]) -> str:
        """Following ``segments`` from ``node`` (which exists) meets a missing field somewhere:
        a field absent from an object, or a field or index asked of a scalar or null.  An index
        past the end of an array and a field asked of an array's scalars find nothing, which
        is not "missing"."""
        assert node.path is not None
        if not segments:
            return "0"
        if not any(self.may_be_array(kp) for kp in _keypaths(keypath, segments[:-1], True)):
            end = node.path.extend(segments)
            return f"json_type({end.column}, {end.sql}) IS NULL"
        segment, rest = segments[0], segments[1:]
        if segment.isdigit():
            item = _Node.at(node.path.index(int(segment)))
            if not self.may_be_array(keypath):
                return "1"
            inside = _and([f"{item.type} IS NOT NULL", self.missing(item, rest, _element(keypath))])
            return f"CASE WHEN {node.type} IS 'array' THEN {inside} ELSE 1 END"
        child_keypath = _child(keypath, segment)
        child = _Node.at(node.path.field(segment))
        in_object = _or([f"{child.type} IS NULL", self.missing(child, rest, child_keypath)])
        if not keypath:
            return in_object  # the document is an object
        if not self.may_be_array(keypath):
            return f"CASE {node.type} WHEN 'object' THEN {in_object} ELSE 1 END"
        e = self.alias()
        item = _Node.at(node.path.each(e).field(segment))
        in_item = _or([f"{item.type} IS NULL", self.missing(item, rest, child_keypath)])
        in_array = (
            f"EXISTS (SELECT 1 FROM json_each({node.path.column}, {node.path.sql}) AS {e} "
            f"WHERE {e}.type = 'object' AND {in_item})"
        )
        return (
            f"CASE {node.type} WHEN 'object' THEN {in_object} "
            f"WHEN 'array' THEN {in_array} ELSE 1 END"
        )

    @staticmethod
    def _each(array: _Node, alias: str, condition: str) -> str:
        """Some element of ``array`` (when it is one) satisfies ``condition``.  The CASE keeps
        json_each from running on non-arrays (it would list an object's members)."""
        assert array.path is not None
        return (
            f"CASE WHEN {array.type} IS 'array' THEN EXISTS (SELECT 1 FROM "
            f"json_each({array.path.column}, {array.path.sql}) AS {alias} "
            f"WHERE {condition}) ELSE 0 END"
        )


@dataclass(frozen=True)
class _Target:
    """The path a field condition applies to."""

    segments: tuple[str, ...]

    @property
    def name(self) -> str:
        return ".".join(self.segments)

    @property
    def keypaths(self) -> list[tuple[str, ...]]:
        """The key paths of every value along the path, the last one included."""
        return _keypaths((), self.segments, False)


def _keypaths(
    start: tuple[str, ...], segments: Sequence[str], include_start: bool
) -> list[tuple[str, ...]]:
    """The key paths of the values reached by following ``segments`` from a value at key path
    ``start``: array indexes left out, but a value an index reaches is an element (see
    :func:`_element`)."""
    out = [start] if include_start else []
    keypath = start
    for segment in segments:
        keypath = _element(keypath) if segment.isdigit() else _child(keypath, segment)
        out.append(keypath)
    return out


#: The last segment of the key path of an array's elements: ``("a", ELEMENT)`` is where the
#: elements of the arrays at ``a`` are, named ``a[]`` in the array paths.
ELEMENT = "[]"


def _element(keypath: tuple[str, ...]) -> tuple[str, ...]:
    """The key path of the elements of an array at ``keypath``.  Elements of elements share it:
    ``a[]`` stands for an array at any depth inside an array at ``a``."""
    return keypath if keypath[-1:] == (ELEMENT,) else (*keypath, ELEMENT)


def _child(keypath: tuple[str, ...], segment: str) -> tuple[str, ...]:
    """The key path of a field of the value at ``keypath``: of an element, the field below the
    array (MongoDB searches the objects of an array for a field, as its own)."""
    return (*keypath[: -1 if keypath[-1:] == (ELEMENT,) else None], segment)


def _name(keypath: tuple[str, ...]) -> str:
    """A key path as the array paths name it: ``a.b`` or ``a.b[]``."""
    if keypath[-1:] == (ELEMENT,):
        return ".".join(keypath[:-1]) + ELEMENT
    return ".".join(keypath)
