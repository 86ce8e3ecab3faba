"""List requests: the query string turned into one backend-neutral query, and its execution.

Query-string values are only ever values: they are parsed by the field's marshmallow type and
placed under an operator the core chose, so no input can become ``$where`` or any operator.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson
from marshmallow import ValidationError, fields

from restplug.bounds import INT64_MAX, INT64_MIN, integer_text
from restplug.errors import (
    BackendUnavailable,
    ConfigError,
    Problem,
    QueryTimeout,
    UnsupportedQuery,
)
from restplug.fragments import check_fragment, check_sort
from restplug.methods import examples_of
from restplug.resources import OPERATORS, choices, flatten_messages, from_text
from restplug.stores.protocol import Filter, FindQuery, SortKey, Stored

if TYPE_CHECKING:
    from restplug.app import Restplug
    from restplug.caches.manager import CacheManager
    from restplug.methods import FilterMethod, SortMethod
    from restplug.resources import Resource
    from restplug.stores.protocol import DocumentStore

log = logging.getLogger("restplug")
RESERVED = ("page", "size", "cursor", "order_by", "fields", "count")
RELEVANCE = "relevance"
#: The fewest ids of a relevance ranking a list page reads at once.
RANK_WINDOW = 64
#: The sort of a relevance-ranked list: its cursors hold the position in the ranking.
RANK_SORT: tuple[SortKey, ...] = (("_rank", 1),)
MAX_SIZE = 100
DEFAULT_SIZE = 20
#: What ``count`` takes: the exact total, or none (no counting).
COUNT_MODES = ("exact", "none")
#: The last page whose offset every store can take (a signed 64-bit skip).
MAX_PAGE = INT64_MAX // MAX_SIZE
#: Offset pages at least this deep start from a remembered position (an *anchor*) at the
#: multiple of it below their offset, rather than skip every document before them.
ANCHOR_STEP = 1000


@dataclass(frozen=True)
class ListRequest:
    """A validated list request, before anything is asked of a backend.  ``params`` is its
    canonical form (defaults filled in, parameters sorted), for cache keys and links."""

    clauses: tuple[Filter, ...]
    methods: tuple[tuple[str, Any], ...]
    sort: tuple[SortKey, ...]
    missing_last: frozenset[str]
    order_given: bool
    page: int | None
    size: int
    cursor: str | None
    count: bool
    fields: tuple[str, ...] | None
    params: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class StoreQuery:
    """A list request resolved by its method filters: what the store is asked."""

    filter: Filter
    sort: tuple[SortKey, ...]
    missing_last: frozenset[str]
    rank: tuple[Any, ...] | None
    after: tuple[Any, ...] | None
    cursor_key: bytes
    cursor_scope: bytes


@dataclass(frozen=True)
class ListResult:
    items: list[Stored]
    total: int | None
    next_cursor: str | None


def bad_parameter(name: str, message: str, allowed: Sequence[str] | None = None) -> Problem:
    """The 400 problem for query parameter ``name``, listing the ``allowed`` ones if given."""
    detail = f"{name}: {message}"
    if allowed is not None:
        detail += f"; allowed: {', '.join(allowed)}"
    return Problem(400, detail, title="Invalid query parameter", errors={name: [message]})


def is_comma_list(field: fields.Field) -> bool:
    """Whether a method filter's field takes a comma list (``US,DE``): a list field, or one
    whose OpenAPI description says it is an array."""
    return isinstance(field, fields.List) or field.metadata.get("type") == "array"


class ListParser:
    """Parses the list parameters of one resource; built once at start-up."""

    def __init__(
        self,
        restplug: Restplug,
        resource: Resource,
        filter_methods: Sequence[FilterMethod],
        sort_methods: Sequence[SortMethod],
    ) -> None:
        self.restplug = restplug
        self.resource = resource
        self.methods = {m.name: m for m in filter_methods}
        self.sort_methods = {m.name: m for m in sort_methods}
        self.field_params: dict[str, tuple[str, str | None]] = {}
        for path, operators in resource.filters.items():
            self.field_params[path] = (path, None)
            for op in operators:
                self.field_params[f"{path}__{op}"] = (path, op)
        self.allowed = [*RESERVED, *self.field_params, *self.methods]
        self.sort_names = [*resource.sorts, *self.sort_methods]
        # Parameters taking a comma list, which the OpenAPI document describes as arrays:
        # clients generated from it may send one value per repetition instead.
        self.comma_lists = {
            "order_by",
            "fields",
            *(name for name, (_, op) in self.field_params.items() if op in ("in", "not_in")),
            *(m.name for m in filter_methods if is_comma_list(m.field)),
        }

    @property
    def index_paths(self) -> list[str]:
        """The paths the store indexes for this list: the resource's declared filters and
        sorts, and what its methods declare."""
        methods = [*self.methods.values(), *self.sort_methods.values()]
        declared = [path for method in methods for path in method.index_paths]
        return list(dict.fromkeys([*self.resource.index_paths, *declared]))

    def check_index_paths(self) -> None:
        """ConfigError for a method's index path that the resource's schema does not have: a
        typo would leave the method without its index, unnoticed."""
        for kind, methods in (("filter", self.methods), ("sort", self.sort_methods)):
            for method in methods.values():
                for path in method.index_paths:
                    if path != "_id" and self.resource.field_at(path) is None:
                        raise ConfigError(
                            f"{self._named(kind, method)} declares the index path {path!r}, "
                            f"which is not a path of {self.resource.name}"
                        )

    async def check_methods(self) -> None:
        """Try every method filter with its examples (:func:`restplug.methods.examples_of`) and
        check what it answers, and every sort method's keys: ConfigError naming the method and
        its plugin for a fragment or key outside the query language, so that it stops
        start-up instead of failing requests.  Run once the backends are open: a filter may
        ask one (search does).  A filter refusing its example for a reason of the moment (a
        Problem, such as 503 while the search index is down, or a backend error) is not
        checked now: the check on every request still guards it."""
        for method in self.methods.values():
            for raw in examples_of(method):
                await self._check_example(method, raw)
        for sort in self.sort_methods.values():
            keys = sort.keys(self.restplug, self.resource)
            try:
                check_sort(keys)
            except UnsupportedQuery as exc:
                raise ConfigError(f"{self._named('sort', sort)} sorts by {keys!r}: {exc}") from None

    async def _check_example(self, method: FilterMethod, raw: str) -> None:
        named = self._named("filter", method)
        try:
            value = from_text(method.field, raw)
        except ValidationError as exc:
            if not method.examples:
                return  # derived from the field, which its validators refuse: not an example
            message = "; ".join(flatten_messages(exc.messages))
            raise ConfigError(
                f"{named}: its example {raw!r} is not a valid value: {message}"
            ) from None
        try:
            async with asyncio.timeout(self.restplug.query_timeout):
                fragment = await method.apply(self.restplug, self.resource, value)
        except (Problem, BackendUnavailable, QueryTimeout, OSError, TimeoutError) as exc:
            log.warning("%s: not checked with %r now (%s)", named, raw, exc)
            return
        try:
            check_fragment(fragment.filter)
        except UnsupportedQuery as exc:
            raise ConfigError(
                f"{named}, given {raw!r}, answers an unsupported filter: {exc}"
            ) from None

    def _named(self, kind: str, method: FilterMethod | SortMethod) -> str:
        return f"{self.resource.name}: {kind} {method.name!r} of plugin {method.plugin or '?'}"

    def parse(self, query: Mapping[str, Sequence[str]]) -> ListRequest:
        """Validate every parameter; any problem is a 400 naming it."""
        for name, values in query.items():
            if name not in self.allowed:
                raise bad_parameter(name, "unknown parameter", self.allowed)
            if len(values) > 1 and name not in self.comma_lists:
                raise bad_parameter(name, "given more than once; it takes one value")
        raw = {name: ",".join(values) for name, values in query.items()}

        size = int_param(raw, "size", DEFAULT_SIZE, 1, MAX_SIZE)
        page: int | None = int_param(raw, "page", 1, 1, MAX_PAGE)
        if "cursor" in raw:
            if "page" in raw:
                raise bad_parameter("cursor", "cannot be combined with page")
            page = None
        count = raw.get("count", "exact")
        if count not in COUNT_MODES:
            raise bad_parameter("count", "must be exact or none", COUNT_MODES)
        projection = self.fields_param(raw["fields"]) if "fields" in raw else None
        clauses = tuple(
            self._field_clause(name, *self.field_params[name], value)
            for name, value in raw.items()
            if name in self.field_params
        )
        methods = tuple(
            (name, self._parse_method_value(name, self.methods[name].field, value))
            for name, value in raw.items()
            if name in self.methods
        )
        order_by = raw.get("order_by") or ",".join(self.resource.default_order)
        sort, missing_last = self._sort(order_by)
        params = {**raw, "size": str(size), "order_by": order_by, "count": count}
        if page is not None:
            params["page"] = str(page)
        return ListRequest(
            clauses=clauses,
            methods=methods,
            sort=sort,
            missing_last=missing_last,
            order_given="order_by" in raw,
            page=page,
            size=size,
            cursor=raw.get("cursor"),
            count=count == "exact",
            fields=projection,
            params=tuple(sorted(params.items())),
        )

    async def resolve(self, request: ListRequest) -> StoreQuery:
        """Run the method filters; a ranking (search relevance) becomes the order when the
        request gave none."""
        clauses = list(request.clauses)
        rank = None
        for name, value in request.methods:
            method = self.methods[name]
            fragment = await method.apply(self.restplug, self.resource, value)
            try:
                check_fragment(fragment.filter)
            except UnsupportedQuery as exc:
                log.error(
                    "%s answered a fragment outside the supported subset: %s",
                    self._named("filter", method),
                    exc,
                )
                raise Problem(
                    501,
                    f"{name}: this filter cannot be answered; its plugin built a query the "
                    "store does not support (the error is logged)",
                    title="Filter not supported",
                ) from None
            if fragment.ranking is not None and rank is None and not request.order_given:
                rank = tuple(fragment.ranking)
                if fragment.filter == {"_id": {"$in": fragment.ranking}}:
                    # The order keeps only the ranked ids already: the same thousands of
                    # ids again as a filter would only cost the store a second lookup of each.
                    continue
            clauses.append(fragment.filter)
        sort, missing_last = request.sort, request.missing_last
        if rank is not None:
            sort, missing_last = RANK_SORT, frozenset()
        key = self.restplug.cursor_key
        scope = cursor_scope(self.resource.name, request)
        after = None if request.cursor is None else decode_cursor(key, scope, request.cursor, sort)
        return StoreQuery(and_filters(clauses), sort, missing_last, rank, after, key, scope)

    def _parse_value(self, name: str, field: fields.Field, raw: str) -> Any:
        """Convert with the field's type and serialize back to the stored JSON form, without
        the field's validators: a filter may ask for values a document could never hold."""
        try:
            value = field._serialize(from_text(field, raw, validate=False), None, None)
        except ValidationError as exc:
            message = "; ".join(flatten_messages(exc.messages))
            raise bad_parameter(name, message) from None
        # A value outside a closed set is a typo, not a question with no answer.
        allowed = choices(field)
        if allowed is not None and value not in allowed:
            raise bad_parameter(name, f"{raw!r} is not one of them", [str(c) for c in allowed])
        return value

    def _parse_method_value(self, name: str, field: fields.Field, raw: str) -> Any:
        """A method's own field parses and validates its value, bounds included."""
        try:
            return from_text(field, raw)
        except ValidationError as exc:
            raise bad_parameter(name, "; ".join(flatten_messages(exc.messages))) from None

    def _field_clause(self, name: str, path: str, op: str | None, raw: str) -> Filter:
        field = self.resource.field_at(path)
        if isinstance(field, fields.List):
            field = field.inner
        assert field is not None, f"{self.resource.name}: filter on undeclared path {path}"
        if op == "isnull":
            is_null = self._parse_value(name, fields.Boolean(), raw)
            return {path: {"$eq": None}} if is_null else {path: {"$ne": None}}
        if op in ("in", "not_in"):
            values = [self._parse_value(name, field, part) for part in raw.split(",") if part]
            if not values:
                raise bad_parameter(name, "needs at least one value")
            return {path: {OPERATORS[op]: values}}
        value = self._parse_value(name, field, raw)
        return {path: {OPERATORS[op] if op else "$eq": value}}

    def _sort(self, order_by: str) -> tuple[tuple[SortKey, ...], frozenset[str]]:
        keys: list[SortKey] = []
        missing_last: set[str] = set()
        seen: set[str] = set()
        # No order_by and no default order: the id order alone.
        for item in order_by.split(",") if order_by else ():
            name = item.strip().removeprefix("-")
            direction = -1 if item.strip().startswith("-") else 1
            if name in seen:
                raise bad_parameter("order_by", f"{name} is given twice")
            seen.add(name)
            if name in self.resource.sorts:
                keys.append((name, direction))
            elif name in self.sort_methods:
                method = self.sort_methods[name]
                method_keys = method.keys(self.restplug, self.resource)
                keys.extend((path, d * direction) for path, d in method_keys)
                if method.missing_last:
                    missing_last.update(path for path, _ in method_keys)
            else:
                raise bad_parameter("order_by", f"cannot sort by {name!r}", self.sort_names)
        # The id breaks ties so that pages never overlap or skip; it follows the last key's
        # direction so one index on (key, id) serves the whole order.
        keys.append(("_id", keys[-1][1] if keys else 1))
        return tuple(keys), frozenset(missing_last)

    def fields_param(self, raw: str) -> tuple[str, ...]:
        """The ``fields`` parameter: document paths the schema knows, for lists and details."""
        paths = tuple(dict.fromkeys(p.strip() for p in raw.split(",") if p.strip()))
        for path in paths:
            if self.resource.field_at(path) is None:
                top = list(self.resource.schema().fields)
                raise bad_parameter("fields", f"no field {path!r}", top)
        if not paths:
            raise bad_parameter("fields", "needs at least one field")
        return paths


def int_param(raw: Mapping[str, str], name: str, default: int, low: int, high: int | None) -> int:
    """An integer parameter in ``low..high`` (no upper bound but signed 64 bits when
    ``high`` is None), written in ASCII digits; 400 naming it otherwise."""
    if name not in raw:
        return default
    try:
        value = integer_text(raw[name], negative=low < 0)
    except ValueError as exc:
        raise bad_parameter(name, str(exc)) from None
    if value < low or (high is not None and value > high):
        bounds = f"{low}..{high}" if high is not None else f">= {low}"
        raise bad_parameter(name, f"must be {bounds}")
    return value


def and_filters(clauses: Sequence[Filter]) -> Filter:
    clauses = [c for c in clauses if c]
    if not clauses:
        return {}
    if len(clauses) == 1:
        return clauses[0]
    return {"$and": list(clauses)}


# -- cursors ----------------------------------------------------------------------------------
#
# A cursor carries the sort values of the last item of a page, and a MAC over them and over
# what the page was a page of (resource, filters, order): a client can neither make up values
# (of another type, or a rank past the end) nor carry a cursor over to other filters.

#: Parameters that do not change which items follow a cursor.
CURSOR_FREE = frozenset({"page", "size", "cursor", "fields", "count"})


def cursor_scope(collection: str, request: ListRequest) -> bytes:
    """What a cursor is bound to: the resource and every parameter that selects or orders."""
    bound = [[name, value] for name, value in request.params if name not in CURSOR_FREE]
    return orjson.dumps([collection, bound])


def _mac(key: bytes, scope: bytes, payload: bytes) -> bytes:
    return hmac.new(key, scope + b"\0" + payload, hashlib.sha256).digest()[:16]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def encode_cursor(key: bytes, scope: bytes, values: Sequence[Any]) -> str:
    payload = orjson.dumps(list(values))
    return f"{_b64(payload)}.{_b64(_mac(key, scope, payload))}"


def decode_cursor(
    key: bytes, scope: bytes, cursor: str, sort: Sequence[SortKey]
) -> tuple[Any, ...]:
    """The sort values a cursor carries; 400 unless this server made it for this scope."""
    try:
        payload_text, mac_text = cursor.split(".")
        payload, mac = _unb64(payload_text), _unb64(mac_text)
    except (binascii.Error, ValueError):
        raise bad_parameter("cursor", "is not a cursor this API gave out") from None
    if not hmac.compare_digest(mac, _mac(key, scope, payload)):
        raise bad_parameter(
            "cursor",
            "was not made for these filters and order_by; keep the parameters it came with",
        )
    values = orjson.loads(payload)
    if (
        not isinstance(values, list)
        or len(values) != len(sort)
        or not all(
            sort_value_ok(path, value) for (path, _), value in zip(sort, values, strict=True)
        )
    ):
        raise bad_parameter("cursor", "is not a cursor this API gave out")
    return tuple(values)


def sort_value_ok(path: str, value: Any) -> bool:
    """A value a cursor may hold for a sort key: a JSON scalar a store can compare, and a
    position (not negative) for a ranking."""
    if path == RANK_SORT[0][0]:
        return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= INT64_MAX
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return INT64_MIN <= value <= INT64_MAX
    return value is None or isinstance(value, str | bool)


def value_at(stored: Stored, path: str) -> Any:
    """The value a sort key sees at ``path``: None when missing (MongoDB's sort semantics)."""
    if path == "_id":
        return stored.id
    current: Any = stored.document
    for segment in path.split("."):
        if isinstance(current, dict):
            current = current.get(segment)
        elif isinstance(current, list) and segment.isdigit() and int(segment) < len(current):
            current = current[int(segment)]
        else:
            return None
    return current


def keyset_segments(
    sort: Sequence[SortKey], after: Sequence[Any], missing_last: frozenset[str] = frozenset()
) -> list[Filter]:
    """The documents after a cursor, as disjoint filters in sort order.

    Everything after key values (v1..vn) is: equal on k1..k(i-1) and past vi on ki, for i from
    n down to 1.  "Past" splits in two where nulls are involved (nulls sort first, so after a
    value in descending order come the smaller values, then the nulls).  Each piece is a plain
    range on one key, which a store serves from an index without a scan from the start.
    A ``missing_last`` key ascending puts the nulls after the values instead.
    """
    segments: list[Filter] = []
    for i in range(len(sort) - 1, -1, -1):
        equal = {path: {"$eq": after[j]} for j, (path, _) in enumerate(sort[:i])}
        path, direction = sort[i]
        value = after[i]
        if path == "_id":
            # No id is null: past an id is only the ids beyond it, one range (and one store
            # call) less for every cursor page.
            pieces = [{"$gt" if direction == 1 else "$lt": value}]
        elif direction == 1 and path not in missing_last:
            pieces = [{"$ne": None}] if value is None else [{"$gt": value}]
        elif direction == 1:
            pieces = [] if value is None else [{"$gt": value}, {"$eq": None}]
        else:
            pieces = [] if value is None else [{"$lt": value}, {"$eq": None}]
        segments.extend({**equal, path: piece} for piece in pieces)
    return segments


async def run_list(
    store: DocumentStore,
    collection: str,
    request: ListRequest,
    query: StoreQuery,
    timeout: float,
    cache: CacheManager | None = None,
) -> ListResult:
    """One page (and the total unless ``count=none``), each store call bounded by ``timeout``.
    With a ``cache``, the total is kept per list generation of the collection (see
    :meth:`CacheManager.total`)."""
    want = request.size + 1  # one more tells whether a next page exists
    skip = (request.page - 1) * request.size if request.page else 0

    async def ranked(rank: Sequence[Any]) -> list[Stored]:
        # The ranking may hold thousands of matches: read it in windows, best first, until
        # the page is full (a window twice the last when the filter kept too few), rather
        # than have the store join and sort every match for one page.
        needed = skip + want
        found: list[Stored] = []
        start, window = 0, max(needed, RANK_WINDOW)
        while start < len(rank) and len(found) < needed:
            part = rank[start : start + window]
            # The limit: the store reads (and decodes) no more documents than the page needs.
            page = FindQuery(query.filter, query.sort, limit=needed - len(found), rank=part)
            found += await store.find(collection, page)
            start, window = start + window, window * 2
        return found[skip:needed]

    async def following(after: Sequence[Any], skip: int) -> list[Stored]:
        # Each keyset segment in turn (they are disjoint, in sort order); a skip that goes
        # past a whole segment goes on into the next, less that segment's count.
        items: list[Stored] = []
        for segment in keyset_segments(query.sort, after, query.missing_last):
            both = and_filters([query.filter, segment])
            found = await store.find(
                collection, FindQuery(both, query.sort, skip, want - len(items), query.missing_last)
            )
            items += found
            if len(items) >= want:
                break
            skip = max(0, skip - await store.count(collection, both)) if skip and not found else 0
        return items

    async def anchored(cache: CacheManager) -> list[Stored]:
        # Skipping N documents reads N index entries (and, to filter them, often N rows): a
        # page 50,000 deep costs a thousand first pages.  The sort values at each multiple
        # of ANCHOR_STEP are kept like a total, under the list generation, so a deep page
        # reads at most ANCHOR_STEP entries past its anchor once the anchor is known.
        base = skip - skip % ANCHOR_STEP

        async def locate() -> list[Any] | None:
            before = FindQuery(query.filter, query.sort, base - 1, 1, query.missing_last)
            found = await store.find(collection, before)
            return [value_at(found[0], path) for path, _ in query.sort] if found else None

        position = await cache.anchor(collection, (query.cursor_scope.decode(), base), locate)
        return [] if position is None else await following(position, skip - base)

    async def find() -> list[Stored]:
        if query.rank is not None:
            return await ranked(query.rank[0 if query.after is None else query.after[0] + 1 :])
        if query.after is not None:
            return await following(query.after, skip)
        if skip >= ANCHOR_STEP and cache is not None and cache.enabled:
            return await anchored(cache)
        return await store.find(
            collection, FindQuery(query.filter, query.sort, skip, want, query.missing_last)
        )

    async def count() -> int | None:
        if not request.count:
            return None

        async def counted() -> int:
            return await store.count(collection, query.filter, query.rank)

        if cache is None:
            return await counted()
        # Keyed by the filtering parameters: they make the filter and the ranking (method
        # filters are given nothing else), and they are short where a search's ranking holds
        # thousands of ids.
        filtering = tuple(param for param in request.params if param[0] not in RESERVED)
        return await cache.total(collection, filtering, counted)

    async with asyncio.timeout(timeout):
        items, total = await asyncio.gather(find(), count())
    next_cursor = None
    if len(items) > request.size:
        items = items[: request.size]
        if query.rank is not None:
            # Each item before it in the ranking holds a position of its own: the search for
            # the last one's starts past them, not at the first of thousands.
            first = 0 if query.after is None else query.after[0] + 1
            values: list[Any] = [query.rank.index(items[-1].id, first + skip + request.size - 1)]
        else:
            values = [value_at(items[-1], path) for path, _ in query.sort]
        next_cursor = encode_cursor(query.cursor_key, query.cursor_scope, values)
    return ListResult(items, total, next_cursor)


def pages(total: int | None, size: int) -> int | None:
    """How many pages of ``size`` items ``total`` makes; None when not counted."""
    return None if total is None else math.ceil(total / size)
