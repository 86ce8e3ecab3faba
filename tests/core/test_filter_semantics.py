"""Property test: the SQLite store and the MongoDB store answer random filters, sorts and pages
exactly as mongomock does.

Random small collections (ints, floats, strings, booleans, nulls, missing fields, arrays of
scalars, nested objects) and random filters in restplug's subset go to three stores: the SQLite
store, the MongoDB store (``restplug_mongo_store``, its client the mongomock stand-in of
``tests/mongomock_async.py``: the plugin's own queries, nulls-last aggregation and ranked
pages, answered by mongomock) and the mongomock reference; the ids found (in order) and the
counts must agree.  The SQL is also run a second time compiled without
the array-path hints (``array_paths=None``, the always-correct default) to check that form too.

mongomock is not MongoDB.  Where it deviates, the strategies avoid the corner rather than
teach the SQLite store the deviation (each is covered by hand-written cases instead):

- it compares with Python's ``==``, so ``1 == True`` and ``0 == False``: numbers never take the
  values 0 or 1 here (the contract's ``bool-not-number-*`` cases check MongoDB's rule);
- a path through a scalar or null (``a.b`` with ``a: 5``) finds nothing in mongomock, while in
  MongoDB it is a missing field, so ``{"a.b": null}`` matches: the nested field ``n`` is always
  an object or absent, and array indexes are only used on ``l``, always an array or absent;
- ``$gte``/``$lte`` with null do not match missing fields in mongomock (they do in MongoDB):
  comparison operands are never null;
- mongomock never matches ``$not`` on a path that finds nothing at all (``l.0`` of an empty
  array), where MongoDB's ``$not`` (the negation) matches: no ``$not`` on array indexes;
- mongomock evaluates ``$ne``/``$nin`` together with other operators of the same field on
  each array element at once: ``$ne`` and ``$nin`` always stand alone in their field;
- ``$in`` with an array member ignores whole-array equality in mongomock: members are scalars;
- sorting on an array field: mongomock takes the first element, MongoDB the smallest, and the
  SQLite store declares it unsupported: sort paths are never arrays (``s``, ``l.0``, ``_id``).
"""

from __future__ import annotations

import asyncio
import itertools
import sqlite3
from pathlib import Path
from typing import Any

import mongomock
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mongomock_async import StandInServer
from mongomock_reference import MongomockStore

from restplug.fragments import check_fragment
from restplug.stores.protocol import FindQuery
from restplug.stores.sqlfilter import compile_filter, compile_sort
from restplug.stores.sqlite import SQLiteStore
from restplug_mongo_store import MongoStore

# Values come from one small pool mixing the types (hypothesis favours a strategy's first
# choices, so a pool per type would starve the later types), so that documents and operands
# often meet: ints equal to floats, one-letter strings, booleans.  Numbers skip 0 and 1 (see
# above); the random floats test number formatting.
POOL = [2, "a", True, 2.5, "b", -1, False, "", 4.0, "ab", 3, "B", -1.5, "é", 5, "2", 2.0, 4, -4]
NON_NULL = st.one_of(
    st.sampled_from(POOL),
    st.floats(-10, 10, allow_nan=False).filter(lambda f: f not in (0.0, 1.0)),
)
SCALARS = st.one_of(st.sampled_from([None, *POOL]), NON_NULL)
ARRAYS = st.lists(SCALARS, max_size=3)
VALUES = st.one_of(SCALARS, ARRAYS)

MISSING = object()


def _present(fields: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in fields.items() if value is not MISSING}


def _or_missing(values: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """A value, or the field left out (less often: documents stay dense)."""
    return st.one_of(values, st.just(MISSING))


DOCUMENTS = st.fixed_dictionaries(
    {
        "a": _or_missing(VALUES),
        "b": _or_missing(VALUES),
        "s": _or_missing(SCALARS),
        "l": _or_missing(ARRAYS),
        "n": _or_missing(
            st.fixed_dictionaries({"x": _or_missing(VALUES), "y": _or_missing(VALUES)}).map(
                _present
            )
        ),
    }
).map(_present)
IDS = st.sampled_from([-2, 2, 3, 7, 10, 11, "a", "b", "c", "x", "10"])
COLLECTIONS = st.dictionaries(IDS, DOCUMENTS, min_size=3, max_size=10)

PATHS = ["a", "b", "s", "l", "l.0", "l.1", "n", "n.x", "n.y", "_id"]
INDEX_PATHS = {"l.0", "l.1"}
COMPARISONS = st.sampled_from(["$gt", "$gte", "$lt", "$lte"])
IN_LISTS = st.lists(SCALARS, max_size=3)
# Each kind of condition equally likely.
POSITIVE_KINDS = {
    "bare": SCALARS,
    "bare-array": ARRAYS,
    "$eq": st.builds(lambda v: {"$eq": v}, VALUES),
    "$in": st.builds(lambda v: {"$in": v}, IN_LISTS),
    "$exists": st.builds(lambda v: {"$exists": v}, st.booleans()),
    "compare": st.dictionaries(COMPARISONS, NON_NULL, min_size=1, max_size=2),
}
NEGATIVE_KINDS = {
    "$ne": st.builds(lambda v: {"$ne": v}, VALUES),
    "$nin": st.builds(lambda v: {"$nin": v}, IN_LISTS),
}
OPERATOR_POSITIVE = st.sampled_from(["$eq", "$in", "$exists", "compare"]).flatmap(
    POSITIVE_KINDS.__getitem__
)
NOT = st.builds(lambda c: {"$not": c}, OPERATOR_POSITIVE)


def _condition(path: str) -> st.SearchStrategy[Any]:
    kinds = {**POSITIVE_KINDS, **NEGATIVE_KINDS}
    if path not in INDEX_PATHS:
        kinds["$not"] = NOT
    return st.sampled_from(sorted(kinds)).flatmap(kinds.__getitem__)


FIELD = st.sampled_from(PATHS).flatmap(lambda p: st.tuples(st.just(p), _condition(p)))
FIELDS = st.lists(FIELD, min_size=1, max_size=2, unique_by=lambda f: f[0]).map(dict)
COMPOUND = st.recursive(
    FIELDS,
    lambda inner: st.one_of(
        st.builds(lambda fs: {"$and": fs}, st.lists(inner, min_size=1, max_size=3)),
        st.builds(lambda fs: {"$or": fs}, st.lists(inner, min_size=1, max_size=3)),
        st.builds(lambda f, fs: {**f, "$or": fs}, FIELDS, st.lists(inner, min_size=1, max_size=2)),
    ),
    max_leaves=5,
)
# Mostly one condition: a wrong answer for one document then shows in the ids, instead of
# being hidden behind the other branches of a bigger filter.
FILTERS = st.one_of(FIELD.map(lambda f: dict([f])), FIELD.map(lambda f: dict([f])), COMPOUND)
SORTS = st.lists(
    st.tuples(st.sampled_from(["s", "l.0", "_id"]), st.sampled_from([1, -1])),
    max_size=2,
    unique_by=lambda key: key[0],
)
QUERIES = st.builds(
    FindQuery,
    filter=FILTERS,
    sort=SORTS,
    skip=st.integers(0, 3),
    limit=st.one_of(st.none(), st.integers(1, 5)),
    missing_last=st.frozensets(st.sampled_from(["s", "l.0"])),
    rank=st.one_of(st.none(), st.none(), st.lists(IDS, max_size=6)),
)

_collection_numbers = itertools.count()


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("semantics") / "semantics.db"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents=COLLECTIONS, queries=st.lists(QUERIES, min_size=1, max_size=8))
def test_sqlite_answers_like_mongomock(
    database: Path, documents: dict[Any, dict[str, Any]], queries: list[FindQuery]
) -> None:
    asyncio.run(_compare(database, documents, queries))


async def _compare(
    database: Path, documents: dict[Any, dict[str, Any]], queries: list[FindQuery]
) -> None:
    collection = f"c{next(_collection_numbers)}"
    sqlite_store = SQLiteStore(f"sqlite:///{database}", readers=1)
    reference = MongomockStore(mongomock.MongoClient())
    mongo_store = MongoStore("mongodb://stand-in/semantics", client_factory=StandInServer().client)
    await sqlite_store.open()
    await reference.open()
    await mongo_store.open()
    try:
        for store in (sqlite_store, reference, mongo_store):
            await store.prepare(collection, ["s", "a", "n.x"])
            for id, doc in documents.items():
                await store.insert(collection, id, doc, "e")
        with sqlite3.connect(database) as raw:
            for query in queries:
                check_fragment(query.filter)  # what the core checks takes every filter here
                expected = [s.id for s in await reference.find(collection, query)]
                got = [s.id for s in await sqlite_store.find(collection, query)]
                assert got == expected, query
                from_mongo = [s.id for s in await mongo_store.find(collection, query)]
                assert from_mongo == got, ("MongoDB store", query)
                if query.rank is None:
                    unhinted = _find_without_hints(raw, collection, query)
                    assert unhinted == expected, ("array_paths=None", query)
                count = await sqlite_store.count(collection, query.filter, query.rank)
                assert count == await reference.count(collection, query.filter, query.rank)
                assert count == await mongo_store.count(collection, query.filter, query.rank)
    finally:
        await sqlite_store.close()
        await mongo_store.close()


def _find_without_hints(db: sqlite3.Connection, collection: str, query: FindQuery) -> list[Any]:
    """The ids the store's SQL finds when every path is assumed to possibly hold arrays."""
    compiled = compile_filter(query.filter, array_paths=None)
    order = compile_sort(query.sort, constant=compiled.constant, missing_last=query.missing_last)
    sql = (
        f'SELECT _id FROM "{collection}" WHERE {compiled.where} ORDER BY {order} '
        f"LIMIT {-1 if query.limit is None else query.limit} OFFSET {query.skip}"
    )
    return [row[0] for row in db.execute(sql, compiled.params)]
