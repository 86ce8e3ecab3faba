"""The contract every document store passes: a pytest suite a store plugin imports and runs.

The core relies on each store answering the query subset of :mod:`restplug.stores.protocol` exactly
as MongoDB does, whatever the backend.  This module encodes those semantics once, so every store
is held to the same cases: CRUD with conflicts and ETag preconditions, each filter operator on
scalars, arrays, nested paths and arrays of embedded documents, null versus missing, type
bracketing, sort order across types with ties broken by ``_id``, skip/limit, ranked lists,
count, bulk writes, ping and persistence.  restplug's own tests run it against the SQLite store
and against a reference store built on mongomock, which shows that the expected answers are
MongoDB's.

Beyond the query language, the contract holds a store to what the core relies on under load
and in outages: of writers racing with one ``If-Match``, exactly one wins; a call cut short by
the core's deadline (``asyncio.timeout``) leaves the store consistent and answering; a store
that cannot reach its data raises :class:`~restplug.errors.BackendUnavailable` at once, never
hangs.

Use it from a plugin's tests (``pip install restplug[testing]``; the cases are marked for
pytest-asyncio, so they run in its strict and auto modes alike)::

    import pytest
    from restplug.testing import StoreContract

    class TestMyStore(StoreContract):
        @pytest.fixture
        def make_store(self, tmp_path):
            # each call: a new, not yet opened store over the same storage
            return lambda: MyStore(f"mystore:///{tmp_path}/db")

A store whose server can be unreachable overrides ``unavailable_store`` too (by default, a store
opened and closed again), for instance with one pointed at a closed port.

Conventions the contract fixes where MongoDB leaves a choice: ties (and a query without sort)
are ordered by ``_id`` in the direction of the last sort key; ``limit=0`` returns nothing;
reading a collection that was never written returns nothing rather than failing; a ``rank``
ignores ids it names twice (after the first) or that do not exist.

This module imports pytest: import it from tests only.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any, ClassVar

import pytest
import pytest_asyncio

from restplug.errors import BackendUnavailable, Conflict, NotFound, PreconditionFailed
from restplug.kits import DEADLINES, fails_within
from restplug.stores.protocol import DocumentStore, FindQuery, OutboxEntry, Write

COLLECTION = "things"
OUTBOX = "things_outbox"
INDEXES = ("n", "s", "b", "o.x")
# How often a race is run: each round is one chance for the writers to interleave.
RACE_ROUNDS = 10
RACERS = 4

# The documents the find and sort cases run on.  Ids mix integers and strings (numbers sort
# before strings); "n" mixes numbers, a numeric string, null, missing and a boolean.
DOCS: dict[Any, dict[str, Any]] = {
    1: {
        "n": 5,
        "s": "apple",
        "b": True,
        "flag": True,
        "tags": ["red", "green"],
        "nums": [1, 5, 9],
        "o": {"x": 1, "y": "a"},
        "z": None,
        "items": [{"qty": 5, "w": "A"}, {"qty": 15, "w": "C"}],
    },
    2: {
        "n": 10,
        "s": "banana",
        "b": False,
        "flag": False,
        "tags": ["green"],
        "nums": [2, 20],
        "o": {"x": 2},
        "items": [{"qty": 20, "w": "B"}],
    },
    3: {"n": 5.5, "s": "cherry", "tags": [], "nums": [], "o": {"x": 3, "y": "b"}, "items": []},
    4: {"n": "5", "s": "Apple", "flag": 1, "tags": "red", "o": {"y": None}, "items": [{"w": "A"}]},
    5: {"n": None, "flag": 0, "nums": [3]},
    6: {},
    7: {
        "n": -3,
        "s": "",
        "b": True,
        "tags": ["blue", "red"],
        "nums": [7],
        "o": {"x": [4, 5]},
        "items": [{"qty": 5, "w": "C"}, {"qty": 1}],
    },
    "a": {"n": 10.0, "s": "date", "b": False, "o": {"x": 1}},
    "b": {"n": True, "s": "egg", "tags": ["Red"]},
}
ALL = list(DOCS)


def _entry(id: str, etag: str) -> OutboxEntry:
    return OutboxEntry(OUTBOX, id, {"of": id.removeprefix("o")}, etag)


async def _entries(store: DocumentStore) -> dict[Any, tuple[dict[str, Any], str]]:
    return {s.id: (s.document, s.etag) for s in await store.find(OUTBOX, FindQuery())}


def _all_but(*ids: Any) -> list[Any]:
    return [i for i in ALL if i not in ids]


# (filter, the matching ids in _id order), named for the semantics each one pins down.
FILTER_CASES = [
    pytest.param({}, ALL, id="empty-filter-matches-all"),
    pytest.param({"n": 5}, [1], id="eq-bare-value"),
    pytest.param({"n": 10}, [2, "a"], id="eq-int-equals-float"),
    pytest.param({"n": "5"}, [4], id="eq-string-is-not-number"),
    pytest.param({"n": {"$eq": 5.5}}, [3], id="eq-operator"),
    pytest.param({"s": "apple"}, [1], id="eq-case-sensitive"),
    pytest.param({"_id": "a"}, ["a"], id="id-string"),
    pytest.param({"_id": 1}, [1], id="id-int"),
    pytest.param({"_id": "1"}, [], id="id-string-is-not-int"),
    pytest.param({"n": None}, [5, 6], id="null-matches-null-and-missing"),
    pytest.param({"n": {"$exists": False}}, [6], id="exists-false"),
    pytest.param({"n": {"$exists": True}}, _all_but(6), id="exists-true-includes-null"),
    pytest.param({"n": {"$ne": None}}, _all_but(5, 6), id="ne-null"),
    pytest.param({"z": None}, ALL, id="null-everywhere-missing"),
    pytest.param({"o.y": None}, [2, 4, 5, 6, 7, "a", "b"], id="null-nested"),
    pytest.param({"o.y": {"$exists": True}}, [1, 3, 4], id="exists-nested"),
    pytest.param({"n": {"$gt": 5}}, [2, 3, "a"], id="gt-numbers-only"),
    pytest.param({"n": {"$gte": 5}}, [1, 2, 3, "a"], id="gte"),
    pytest.param({"n": {"$lt": 5}}, [7], id="lt-skips-null-and-other-types"),
    pytest.param({"n": {"$lte": 5}}, [1, 7], id="lte"),
    pytest.param({"n": {"$gt": 5, "$lt": 10}}, [3], id="range"),
    pytest.param({"s": {"$gt": "b"}}, [2, 3, "a", "b"], id="gt-string-binary-order"),
    pytest.param({"s": {"$lt": "a"}}, [4, 7], id="lt-string-uppercase-first"),
    pytest.param({"n": {"$gt": "4"}}, [4], id="gt-string-only-strings"),
    pytest.param({"b": {"$gt": False}}, [1, 7], id="gt-boolean"),
    pytest.param({"b": {"$lt": True}}, [2, "a"], id="lt-boolean"),
    pytest.param({"n": {"$gte": True}}, ["b"], id="gte-boolean-only-booleans"),
    pytest.param({"flag": 1}, [4], id="bool-not-number-eq-1"),
    pytest.param({"flag": True}, [1], id="bool-not-number-eq-true"),
    pytest.param({"flag": {"$in": [0]}}, [5], id="bool-not-number-in-0"),
    pytest.param({"flag": {"$gt": 0}}, [4], id="bool-not-number-gt-0"),
    pytest.param({"n": {"$in": [5, "5"]}}, [1, 4], id="in"),
    pytest.param({"n": {"$in": [None, 10]}}, [2, 5, 6, "a"], id="in-null-matches-missing"),
    pytest.param({"n": {"$nin": [5, 10]}}, [3, 4, 5, 6, 7, "b"], id="nin-includes-missing"),
    pytest.param({"_id": {"$in": [1, "a", "zz"]}}, [1, "a"], id="id-in"),
    pytest.param({"_id": {"$nin": [1, "a"]}}, _all_but(1, "a"), id="id-nin"),
    pytest.param({"_id": {"$gt": 5}}, [6, 7], id="id-gt-numbers-only"),
    pytest.param({"tags": {"$in": []}}, [], id="in-empty"),
    pytest.param({"tags": "red"}, [1, 4, 7], id="array-any-element-or-scalar"),
    pytest.param({"tags": ["red", "green"]}, [1], id="array-equality"),
    pytest.param({"tags": ["green", "red"]}, [], id="array-equality-ordered"),
    pytest.param({"tags": []}, [3], id="array-empty-equality"),
    pytest.param({"tags": {"$ne": "red"}}, [2, 3, 5, 6, "a", "b"], id="array-ne-no-element"),
    pytest.param({"tags": {"$in": ["blue", "green"]}}, [1, 2, 7], id="array-in"),
    pytest.param({"tags": {"$exists": True}}, [1, 2, 3, 4, 7, "b"], id="array-exists-even-empty"),
    pytest.param({"nums": {"$gt": 8}}, [1, 2], id="array-gt-any-element"),
    pytest.param({"nums": {"$gt": 3, "$lt": 4}}, [1, 2], id="array-range-elements-may-differ"),
    pytest.param({"nums": {"$nin": [1, 2]}}, [3, 4, 5, 6, 7, "a", "b"], id="array-nin"),
    pytest.param({"nums": {"$in": [9, 7]}}, [1, 7], id="array-in-numbers"),
    pytest.param({"nums.0": 1}, [1], id="array-index"),
    pytest.param({"nums.1": None}, [4, 6, "a", "b"], id="array-index-past-end-is-not-null"),
    pytest.param({"nums.1": {"$gte": 5}}, [1, 2], id="array-index-compare"),
    pytest.param({"tags.0": "blue"}, [7], id="array-index-string"),
    pytest.param({"o.x": 1}, [1, "a"], id="nested"),
    pytest.param({"o.x": 4}, [7], id="nested-array-element"),
    pytest.param({"o.x": {"$gte": 2}}, [2, 3, 7], id="nested-compare"),
    pytest.param({"o.y": "a"}, [1], id="nested-string"),
    pytest.param({"o": {"$exists": False}}, [5, 6, "b"], id="object-exists"),
    pytest.param({"items.qty": {"$gt": 10}}, [1, 2], id="embedded-array-compare"),
    pytest.param({"items.qty": 5}, [1, 7], id="embedded-array-eq"),
    pytest.param({"items.w": "C"}, [1, 7], id="embedded-array-string"),
    pytest.param({"items.0.qty": 5}, [1, 7], id="embedded-array-index"),
    pytest.param({"items.1.qty": 1}, [7], id="embedded-array-index-second"),
    pytest.param({"items.qty": None}, [4, 5, 6, "a", "b"], id="embedded-array-null"),
    pytest.param({"items.qty": {"$ne": 5}}, [2, 3, 4, 5, 6, "a", "b"], id="embedded-array-ne"),
    pytest.param({"$or": [{"n": 5}, {"s": "date"}]}, [1, "a"], id="or"),
    pytest.param({"$and": [{"n": {"$gt": 0}}, {"n": {"$lt": 6}}]}, [1, 3], id="and"),
    pytest.param({"n": {"$not": {"$gt": 5}}}, [1, 4, 5, 6, 7, "b"], id="not-includes-missing"),
    pytest.param({"n": {"$gte": 5}, "s": {"$lt": "c"}}, [1, 2], id="implicit-and"),
    pytest.param(
        {"$or": [{"tags": "blue"}, {"o.x": 3}], "b": {"$exists": True}}, [7], id="or-and-mixed"
    ),
]

# (query without filter, the ids in order)
SORT_CASES = [
    pytest.param(FindQuery(), ALL, id="no-sort-is-id-order"),
    pytest.param(
        FindQuery(sort=[("n", 1)]),
        [5, 6, 7, 1, 3, 2, "a", 4, "b"],
        id="asc-null-numbers-strings-bools",
    ),
    pytest.param(
        FindQuery(sort=[("n", -1)]), ["b", 4, "a", 2, 3, 1, 7, 6, 5], id="desc-ties-by-id-desc"
    ),
    pytest.param(
        FindQuery(sort=[("s", 1)]), [5, 6, 7, 4, 1, 2, 3, "a", "b"], id="asc-strings-binary"
    ),
    pytest.param(
        FindQuery(sort=[("b", 1), ("n", -1)]), ["b", 4, 3, 6, 5, "a", 2, 1, 7], id="two-keys"
    ),
    pytest.param(FindQuery(sort=[("o.y", 1)]), [2, 4, 5, 6, 7, "a", "b", 1, 3], id="nested-path"),
    pytest.param(FindQuery(sort=[("_id", -1)]), ["b", "a", 7, 6, 5, 4, 3, 2, 1], id="id-desc"),
    pytest.param(FindQuery(sort=[("n", 1)], skip=2, limit=3), [7, 1, 3], id="skip-limit"),
    pytest.param(FindQuery(sort=[("n", 1)], limit=0), [], id="limit-zero"),
    pytest.param(FindQuery(sort=[("n", 1)], skip=100), [], id="skip-past-end"),
    pytest.param(
        FindQuery(sort=[("n", 1)], missing_last=frozenset({"n"})),
        [7, 1, 3, 2, "a", 4, "b", 5, 6],
        id="missing-last-asc",
    ),
    pytest.param(
        FindQuery(sort=[("n", -1)], missing_last=frozenset({"n"})),
        ["b", 4, "a", 2, 3, 1, 7, 6, 5],
        id="missing-last-desc-unchanged",
    ),
    pytest.param(
        FindQuery(sort=[("b", 1), ("n", 1)], missing_last=frozenset({"b"})),
        [2, "a", 7, 1, 5, 6, 3, 4, "b"],
        id="missing-last-first-key-only",
    ),
    pytest.param(
        FindQuery(sort=[("n", 1)], rank=["b", 3, 1, "zz", 3]),
        ["b", 3, 1],
        id="rank-order-replaces-sort",
    ),
    pytest.param(
        FindQuery(filter={"n": {"$gte": 5}}, rank=[6, "a", 2, 1]),
        ["a", 2, 1],
        id="rank-with-filter",
    ),
    pytest.param(FindQuery(rank=[7, 6, 5, 4], skip=1, limit=2), [6, 5], id="rank-skip-limit"),
    pytest.param(FindQuery(rank=[]), [], id="rank-empty"),
]


class StoreContract:
    """Subclass it as ``Test...`` and provide the ``make_store`` fixture.

    ``known_deviations`` maps a case id to the reason a store is known to answer it
    differently; such cases are strict xfails, so they fail once the store is fixed.  Meant
    for reference implementations with a documented bug, not to excuse a store.
    """

    pytestmark = pytest.mark.asyncio
    known_deviations: ClassVar[Mapping[str, str]] = {}
    #: Seconds an unavailable store may take to say so: far above any connect timeout, far
    #: below "hangs".
    unavailable_within: ClassVar[float] = 10.0

    @pytest.fixture
    def make_store(self) -> Callable[[], DocumentStore]:
        raise NotImplementedError("a StoreContract subclass provides the make_store fixture")

    @pytest_asyncio.fixture
    async def unavailable_store(
        self, make_store: Callable[[], DocumentStore]
    ) -> AsyncIterator[DocumentStore]:
        """A store that cannot reach its data: by default one opened and closed again."""
        store = make_store()
        await store.open()
        await store.close()
        yield store

    @pytest_asyncio.fixture
    async def store(self, make_store: Callable[[], DocumentStore]) -> AsyncIterator[Any]:
        store = make_store()
        await store.open()
        try:
            yield store
        finally:
            await store.close()

    @pytest_asyncio.fixture
    async def things(self, store: Any) -> Any:
        """``store`` holding :data:`DOCS` in the collection ``things``, indexed."""
        await store.prepare(COLLECTION, INDEXES)
        for id, doc in DOCS.items():
            await store.insert(COLLECTION, id, doc, f"etag-{id}")
        return store

    @pytest.fixture(autouse=True)
    def _known_deviation(self, request: pytest.FixtureRequest) -> None:
        callspec = getattr(request.node, "callspec", None)
        reason = self.known_deviations.get(callspec.id) if callspec else None
        if reason:
            request.node.add_marker(pytest.mark.xfail(reason=reason, strict=True))

    # -- CRUD -----------------------------------------------------------------------------

    async def test_ping(self, store: Any) -> None:
        await store.ping()

    async def test_insert_then_get_round_trips(self, store: Any) -> None:
        doc = {
            "text": "héllo ✓",
            "int": 2**53 + 1,
            "float": 0.1,
            "neg": -7,
            "flags": [True, False, None],
            "empty": {"list": [], "obj": {}},
            "deep": {"a": {"b": {"c": [1, {"d": "e"}]}}},
        }
        await store.prepare(COLLECTION, [])
        await store.insert(COLLECTION, "x", doc, "v1")
        got = await store.get(COLLECTION, "x")
        assert got is not None
        assert (got.id, got.document, got.etag) == ("x", doc, "v1")

    async def test_get_missing_is_none(self, store: Any) -> None:
        await store.prepare(COLLECTION, [])
        assert await store.get(COLLECTION, 404) is None

    async def test_unwritten_collection_reads_as_empty(self, store: Any) -> None:
        assert await store.get("never_written", 1) is None
        assert await store.find("never_written", FindQuery()) == []
        assert await store.count("never_written", {}) == 0

    async def test_insert_existing_id_conflicts(self, store: Any) -> None:
        await store.prepare(COLLECTION, [])
        await store.insert(COLLECTION, 1, {"v": 1}, "e1")
        with pytest.raises(Conflict):
            await store.insert(COLLECTION, 1, {"v": 2}, "e2")
        got = await store.get(COLLECTION, 1)
        assert (got.document, got.etag) == ({"v": 1}, "e1")

    async def test_int_and_string_ids_are_distinct(self, store: Any) -> None:
        await store.prepare(COLLECTION, [])
        await store.insert(COLLECTION, 1, {"v": "int"}, "e1")
        await store.insert(COLLECTION, "1", {"v": "str"}, "e2")
        assert (await store.get(COLLECTION, 1)).document == {"v": "int"}
        assert (await store.get(COLLECTION, "1")).document == {"v": "str"}

    async def test_replace(self, store: Any) -> None:
        await store.prepare(COLLECTION, [])
        await store.insert(COLLECTION, 1, {"v": 1}, "e1")
        await store.replace(COLLECTION, 1, {"v": 2}, "e2")
        await store.replace(COLLECTION, 1, {"v": 3}, "e3", if_etag="e2")
        got = await store.get(COLLECTION, 1)
        assert (got.document, got.etag) == ({"v": 3}, "e3")

    async def test_replace_stale_etag_fails_and_keeps_document(self, store: Any) -> None:
        await store.prepare(COLLECTION, [])
        await store.insert(COLLECTION, 1, {"v": 1}, "e1")
        with pytest.raises(PreconditionFailed):
            await store.replace(COLLECTION, 1, {"v": 2}, "e2", if_etag="stale")
        got = await store.get(COLLECTION, 1)
        assert (got.document, got.etag) == ({"v": 1}, "e1")

    @pytest.mark.parametrize("if_etag", [None, "e1"])
    async def test_replace_missing_is_not_found(self, store: Any, if_etag: str | None) -> None:
        await store.prepare(COLLECTION, [])
        with pytest.raises(NotFound):
            await store.replace(COLLECTION, 1, {"v": 1}, "e1", if_etag=if_etag)
        assert await store.get(COLLECTION, 1) is None

    async def test_delete(self, store: Any) -> None:
        await store.prepare(COLLECTION, [])
        await store.insert(COLLECTION, 1, {"v": 1}, "e1")
        await store.insert(COLLECTION, 2, {"v": 2}, "e2")
        await store.delete(COLLECTION, 1)
        await store.delete(COLLECTION, 2, if_etag="e2")
        assert await store.get(COLLECTION, 1) is None
        assert await store.get(COLLECTION, 2) is None
        assert await store.count(COLLECTION, {}) == 0

    async def test_delete_stale_etag_fails_and_keeps_document(self, store: Any) -> None:
        await store.prepare(COLLECTION, [])
        await store.insert(COLLECTION, 1, {"v": 1}, "e1")
        with pytest.raises(PreconditionFailed):
            await store.delete(COLLECTION, 1, if_etag="stale")
        assert (await store.get(COLLECTION, 1)).etag == "e1"

    @pytest.mark.parametrize("if_etag", [None, "e1"])
    async def test_delete_missing_is_not_found(self, store: Any, if_etag: str | None) -> None:
        await store.prepare(COLLECTION, [])
        with pytest.raises(NotFound):
            await store.delete(COLLECTION, 1, if_etag=if_etag)

    async def test_bulk_write_applies_in_order_and_reports_each(self, store: Any) -> None:
        await store.prepare(COLLECTION, [])
        await store.insert(COLLECTION, 1, {"v": 1}, "e1")
        await store.insert(COLLECTION, 2, {"v": 2}, "e2")
        applied = await store.bulk_write(
            COLLECTION,
            [
                Write(3, {"v": 3}, "e3"),  # a new id: inserted
                Write(1, {"v": 9}, "x"),  # an insert of a taken id: not applied
                Write(2, {"v": 22}, "e22", if_etag="e2"),  # the expected ETag: replaced
                Write(1, {"v": 11}, "e11", if_etag="stale"),  # another ETag: not applied
                Write(4, {"v": 4}, "e4", if_etag="e4"),  # a replace of nothing: not applied
                Write(3, {"v": 33, "tags": ["t"]}, "e33", if_etag="e3"),  # sees the 1st write
            ],
        )
        assert applied == [True, False, True, False, False, True]
        stored = {s.id: (s.document, s.etag) for s in await store.find(COLLECTION, FindQuery())}
        assert stored == {
            1: ({"v": 1}, "e1"),
            2: ({"v": 22}, "e22"),
            3: ({"v": 33, "tags": ["t"]}, "e33"),
        }
        assert [s.id for s in await store.find(COLLECTION, FindQuery({"tags": "t"}))] == [3]
        assert await store.bulk_write(COLLECTION, []) == []

    # -- outbox entries -------------------------------------------------------------------

    async def test_each_write_upserts_its_outbox_entry(self, store: Any) -> None:
        await store.prepare(COLLECTION, [])
        await store.prepare(OUTBOX, ["of"])
        await store.insert(COLLECTION, 1, {"v": 1}, "e1", outbox=_entry("o1", "a"))
        assert await _entries(store) == {"o1": ({"of": "1"}, "a")}
        # An entry already there is overwritten, whatever its ETag.
        await store.replace(COLLECTION, 1, {"v": 2}, "e2", if_etag="e1", outbox=_entry("o1", "b"))
        await store.delete(COLLECTION, 1, if_etag="e2", outbox=_entry("o2", "c"))
        assert await _entries(store) == {"o1": ({"of": "1"}, "b"), "o2": ({"of": "2"}, "c")}
        assert await store.get(COLLECTION, 1) is None
        assert [s.id for s in await store.find(OUTBOX, FindQuery({"of": "2"}))] == ["o2"]

    async def test_a_write_that_fails_writes_no_entry(self, store: Any) -> None:
        await store.prepare(COLLECTION, [])
        await store.prepare(OUTBOX, ["of"])
        await store.insert(COLLECTION, 1, {"v": 1}, "e1")
        with pytest.raises(Conflict):
            await store.insert(COLLECTION, 1, {"v": 9}, "x", outbox=_entry("o", "x"))
        for id, error in ((1, PreconditionFailed), (2, NotFound)):
            with pytest.raises(error):
                await store.replace(
                    COLLECTION, id, {"v": 9}, "x", if_etag="stale", outbox=_entry("o", "x")
                )
            with pytest.raises(error):
                await store.delete(COLLECTION, id, if_etag="stale", outbox=_entry("o", "x"))
        applied = await store.bulk_write(
            COLLECTION,
            [
                Write(1, {"v": 9}, "x", outbox=_entry("taken", "x")),
                Write(1, {"v": 9}, "x", if_etag="stale", outbox=_entry("stale", "x")),
                Write.delete(2, if_etag="x"),
                Write(3, {"v": 3}, "e3", outbox=_entry("new", "y")),
            ],
        )
        assert applied == [False, False, False, True]
        assert await _entries(store) == {"new": ({"of": "new"}, "y")}
        assert (await store.get(COLLECTION, 1)).document == {"v": 1}

    async def test_bulk_write_deletes_by_compare_and_set(self, store: Any) -> None:
        await store.prepare(COLLECTION, ["tags"])
        for id in (1, 2, 3):
            await store.insert(COLLECTION, id, {"tags": ["t"]}, f"e{id}")
        applied = await store.bulk_write(
            COLLECTION,
            [
                Write.delete(1, if_etag="e1"),  # the expected ETag: deleted
                Write.delete(2, if_etag="stale"),  # rewritten meanwhile: kept
                Write.delete(3),  # no ETag given: deleted
                Write.delete(4),  # nothing there: not applied
                Write(1, {"tags": ["u"]}, "n1"),  # the id is free again: inserted
            ],
        )
        assert applied == [True, False, True, False, True]
        assert [s.id for s in await store.find(COLLECTION, FindQuery({"tags": "t"}))] == [2]
        assert [s.id for s in await store.find(COLLECTION, FindQuery({"tags": "u"}))] == [1]

    async def test_prepare_twice_keeps_documents(self, things: Any) -> None:
        await things.prepare(COLLECTION, INDEXES)
        assert await things.count(COLLECTION, {}) == len(DOCS)

    async def test_documents_survive_close_and_open(
        self, make_store: Callable[[], DocumentStore]
    ) -> None:
        first = make_store()
        await first.open()
        await first.prepare(COLLECTION, ["n"])
        await first.insert(COLLECTION, 1, {"n": 1}, "e1")
        await first.insert(COLLECTION, "two", {"n": 2, "list": [1, 2]}, "e2")
        await first.replace(COLLECTION, 1, {"n": 3}, "e3", if_etag="e1")
        await first.close()

        second = make_store()
        await second.open()
        try:
            await second.prepare(COLLECTION, ["n"])
            got = await second.get(COLLECTION, 1)
            assert (got.document, got.etag) == ({"n": 3}, "e3")
            found = await second.find(COLLECTION, FindQuery({"list": 2}))
            assert [s.id for s in found] == ["two"]
            with pytest.raises(Conflict):
                await second.insert(COLLECTION, "two", {}, "e4")
        finally:
            await second.close()

    # -- queries --------------------------------------------------------------------------

    @pytest.mark.parametrize(("filter", "expected"), FILTER_CASES)
    async def test_find_and_count(
        self, things: Any, filter: dict[str, Any], expected: list[Any]
    ) -> None:
        found = await things.find(COLLECTION, FindQuery(filter=filter))
        assert [s.id for s in found] == expected
        assert await things.count(COLLECTION, filter) == len(expected)

    @pytest.mark.parametrize(("query", "expected"), SORT_CASES)
    async def test_order_and_window(
        self, things: Any, query: FindQuery, expected: list[Any]
    ) -> None:
        assert [s.id for s in await things.find(COLLECTION, query)] == expected

    async def test_count_within_rank(self, things: Any) -> None:
        assert await things.count(COLLECTION, {}, [1, 2, "zz", 2]) == 2
        assert await things.count(COLLECTION, {"n": 10}, [1, 2, "a"]) == 2
        assert await things.count(COLLECTION, {"n": 10}, []) == 0

    async def test_find_returns_documents_and_etags(self, things: Any) -> None:
        found = await things.find(COLLECTION, FindQuery({"o.x": 1}, [("n", -1)]))
        assert [(s.id, s.document, s.etag) for s in found] == [
            ("a", DOCS["a"], "etag-a"),
            (1, DOCS[1], "etag-1"),
        ]

    async def test_filtered_sorted_page(self, things: Any) -> None:
        query = FindQuery({"n": {"$gte": 5}}, [("n", -1)], skip=1, limit=2)
        assert [s.id for s in await things.find(COLLECTION, query)] == [2, 3]

    async def test_reads_follow_writes(self, things: Any) -> None:
        await things.replace(COLLECTION, 6, {"n": 7, "tags": ["new"]}, "e")
        await things.delete(COLLECTION, 5)
        assert [s.id for s in await things.find(COLLECTION, FindQuery({"n": 7}))] == [6]
        assert [s.id for s in await things.find(COLLECTION, FindQuery({"tags": "new"}))] == [6]
        assert await things.count(COLLECTION, {"n": None}) == 0

    # -- races, deadlines, outages --------------------------------------------------------

    @pytest.mark.parametrize("racers", ["replace", "replace-and-delete", "bulk_write"])
    async def test_of_writers_with_one_if_match_exactly_one_wins(
        self, store: Any, racers: str
    ) -> None:
        # Clients that all read ETag "e0" each send their write with If-Match: e0.
        await store.prepare(COLLECTION, [])

        async def write(id: str, n: int) -> bool:
            etag, document = f"w{n}", {"by": n}
            try:
                if racers == "bulk_write":
                    [applied] = await store.bulk_write(
                        COLLECTION, [Write(id, document, etag, if_etag="e0")]
                    )
                    return applied
                if racers == "replace-and-delete" and n % 2:
                    await store.delete(COLLECTION, id, if_etag="e0")
                else:
                    await store.replace(COLLECTION, id, document, etag, if_etag="e0")
            except (PreconditionFailed, NotFound):  # NotFound: a racing delete came first
                return False
            return True

        for round in range(RACE_ROUNDS):
            id = f"race-{round}"
            await store.insert(COLLECTION, id, {"by": None}, "e0")
            won = await asyncio.gather(*(write(id, n) for n in range(RACERS)))
            assert won.count(True) == 1, f"round {round}: {won}"
            winner, stored = won.index(True), await store.get(COLLECTION, id)
            if racers == "replace-and-delete" and winner % 2:
                assert stored is None
            else:
                assert (stored.document, stored.etag) == ({"by": winner}, f"w{winner}")

    async def test_calls_cut_short_by_a_deadline_leave_the_store_whole(self, things: Any) -> None:
        # The core bounds every store call with asyncio.timeout: a call cancelled anywhere
        # must leave no half-written document, no lost connection, no stuck lock behind.
        ids = [f"cut-{i}" for i in range(10)]
        for id in ids:
            await things.insert(COLLECTION, id, {"v": 0, "tags": ["cut"]}, "v0")
        for version, deadline in enumerate(DEADLINES, start=1):
            calls = [
                call
                for id in ids
                for call in (
                    things.replace(COLLECTION, id, {"v": version, "tags": ["cut"]}, f"v{version}"),
                    things.get(COLLECTION, id),
                    things.find(COLLECTION, FindQuery({"tags": "cut"}, [("v", -1)])),
                    things.count(COLLECTION, {"n": {"$gte": 5}}),
                )
            ]
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(deadline):
                    await asyncio.gather(*calls)
        await things.ping()
        for stored in await things.find(COLLECTION, FindQuery({"tags": "cut"})):
            assert stored.etag == f"v{stored.document['v']}", stored
        assert await things.count(COLLECTION, {"tags": "cut"}) == len(ids)
        await things.insert(COLLECTION, "after", {"v": 1}, "e")
        assert (await things.get(COLLECTION, "after")).etag == "e"
        assert [s.id for s in await things.find(COLLECTION, FindQuery({"n": 10}))] == [2, "a"]

    async def test_an_unavailable_store_says_so_at_once(self, unavailable_store: Any) -> None:
        store = unavailable_store
        calls: dict[str, Callable[[], Awaitable[Any]]] = {
            "ping": store.ping,
            "prepare": lambda: store.prepare(COLLECTION, ["n"]),
            "get": lambda: store.get(COLLECTION, 1),
            "find": lambda: store.find(COLLECTION, FindQuery({"n": 1})),
            "count": lambda: store.count(COLLECTION, {}),
            "insert": lambda: store.insert(COLLECTION, 1, {}, "e1"),
            "replace": lambda: store.replace(COLLECTION, 1, {}, "e2", if_etag="e1"),
            "delete": lambda: store.delete(COLLECTION, 1),
            "bulk_write": lambda: store.bulk_write(COLLECTION, [Write(2, {}, "e")]),
        }
        for name, call in calls.items():
            await fails_within(call, BackendUnavailable, self.unavailable_within, name)
