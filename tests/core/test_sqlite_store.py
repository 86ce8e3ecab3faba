"""What the SQLite store does beyond the store contract: files and URLs, WAL, time bounds,
threads, SQL safety, index use, the array-path records and MongoDB corners that mongomock
cannot referee."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import orjson
import pytest

from restplug.errors import BackendUnavailable, ConfigError, Conflict, QueryTimeout
from restplug.stores import sqlite as sqlite_module
from restplug.stores.protocol import FindQuery, OutboxEntry, Write
from restplug.stores.sqlfilter import (
    UnsupportedQuery,
    array_paths_of,
    compile_filter,
    compile_sort,
    sort_key_sql,
)
from restplug.stores.sqlite import SQLiteStore


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "store.db"


@pytest.fixture
async def store(db_path: Path) -> AsyncIterator[SQLiteStore]:
    store = SQLiteStore(f"sqlite:///{db_path}")
    await store.open()
    try:
        yield store
    finally:
        await store.close()


async def ids(store: SQLiteStore, filter: dict[str, Any], collection: str = "t") -> list[Any]:
    return [s.id for s in await store.find(collection, FindQuery(filter))]


def fill(db_path: Path, collection: str, rows: int, modulo: int = 100) -> None:
    """``rows`` documents ``{"a": i % modulo, "s": "0000000i"}`` written straight into the
    table (the store has no bulk write; this is what a large collection looks like on disk)."""
    with sqlite3.connect(db_path) as db:
        db.execute(
            f'INSERT INTO "{collection}" (_id, doc, etag) '
            "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < ?) "
            "SELECT i, json_object('a', i % ?, 's', printf('%08d', i)), 'e' FROM c",
            (rows, modulo),
        )


# -- files, URLs, plugin -------------------------------------------------------------------


async def test_relative_url_creates_parent_folders(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    store = SQLiteStore("sqlite:///var/deep/restplug.db")
    await store.open()
    await store.insert("t", 1, {}, "e")
    await store.close()
    assert (tmp_path / "var" / "deep" / "restplug.db").is_file()


def test_absolute_url(tmp_path: Path) -> None:
    assert SQLiteStore(f"sqlite:///{tmp_path}/x.db").path == f"{tmp_path}/x.db"
    assert SQLiteStore("sqlite:////abs/path.db").path == "/abs/path.db"


@pytest.mark.parametrize(
    "url",
    ["sqlite://host/x.db", "sqlite:///", "sqlite:///dir/", "postgres:///x", "sqlite:///x?a=1"],
)
def test_bad_urls(url: str) -> None:
    with pytest.raises(ConfigError):
        SQLiteStore(url)


async def test_unopenable_file_is_backend_unavailable(tmp_path: Path) -> None:
    (tmp_path / "dir.db").mkdir()
    with pytest.raises(BackendUnavailable):
        await SQLiteStore(f"sqlite:///{tmp_path}/dir.db").open()


async def test_calls_before_open_or_after_close_are_backend_unavailable(db_path: Path) -> None:
    store = SQLiteStore(f"sqlite:///{db_path}")
    with pytest.raises(BackendUnavailable):
        await store.ping()
    await store.open()
    await store.close()
    with pytest.raises(BackendUnavailable):
        await store.insert("t", 1, {}, "e")


def test_module_is_the_sqlite_store_plugin(db_path: Path) -> None:
    (backend,) = sqlite_module.register_backends()
    assert (backend.kind, backend.schemes) == ("store", ("sqlite",))
    store = backend.factory(f"sqlite:///{db_path}", SimpleNamespace(query_timeout_ms=1234))
    assert isinstance(store, SQLiteStore)
    assert store.timeout_ms == 1234


async def test_wal_mode(store: SQLiteStore, db_path: Path) -> None:
    await store.insert("t", 1, {}, "e")
    with sqlite3.connect(db_path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert Path(f"{db_path}-wal").exists()


async def test_ids_are_ints_or_strings(store: SQLiteStore) -> None:
    with pytest.raises(TypeError):
        await store.insert("t", True, {}, "e")
    with pytest.raises(TypeError):
        await store.get("t", 1.5)


# -- time bound ----------------------------------------------------------------------------


async def test_slow_query_raises_query_timeout_and_store_recovers(db_path: Path) -> None:
    setup = SQLiteStore(f"sqlite:///{db_path}")
    await setup.open()
    await setup.prepare("big", [])
    await setup.close()
    fill(db_path, "big", 200_000)

    store = SQLiteStore(f"sqlite:///{db_path}", timeout_ms=1, readers=1)
    await store.open()
    try:
        with pytest.raises(QueryTimeout):
            await store.count("big", {"a": {"$ne": 5}})
        with pytest.raises(QueryTimeout):
            await store.find("big", FindQuery({"s": {"$gt": ""}}, [("s", -1)]))
        # The only reader was interrupted twice: it must be usable, not stuck in a transaction.
        assert (await store.get("big", 7)).document == {"a": 7, "s": "00000007"}
    finally:
        await store.close()


async def test_write_lock_held_elsewhere_times_out_while_reads_go_on(db_path: Path) -> None:
    store = SQLiteStore(f"sqlite:///{db_path}", timeout_ms=200)
    await store.open()
    try:
        await store.insert("t", 1, {"v": 1}, "e")
        other = sqlite3.connect(db_path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        other.execute("""INSERT INTO "t" (_id, doc, etag) VALUES (2, '{}', 'e')""")
        try:
            assert await ids(store, {}) == [1]  # WAL: readers do not wait for the writer
            started = time.monotonic()
            with pytest.raises(QueryTimeout):
                await store.insert("t", 3, {}, "e")
            assert time.monotonic() - started >= 0.15
        finally:
            other.execute("ROLLBACK")
            other.close()
        await store.insert("t", 3, {}, "e")
        assert await ids(store, {}) == [1, 3]
    finally:
        await store.close()


# -- threads -------------------------------------------------------------------------------


async def test_reads_run_concurrently_with_writes_on_consistent_snapshots(
    store: SQLiteStore,
) -> None:
    """Writes commit in call order (one writer thread), so every snapshot a read sees holds
    exactly the first k documents, for some k."""
    n = 150

    async def read() -> list[Any]:
        await asyncio.sleep(0)
        return [s.id for s in await store.find("t", FindQuery({"k": {"$gte": 0}}))]

    writes = [store.insert("t", i, {"k": i, "tags": [i]}, "e") for i in range(n)]
    reads = [read() for _ in range(n)]
    interleaved = [c for pair in zip(writes, reads, strict=True) for c in pair]
    results = await asyncio.gather(*interleaved)
    for seen in results[1::2]:
        assert seen == list(range(len(seen)))
    assert await store.count("t", {}) == n
    assert await ids(store, {"tags": n - 1}) == [n - 1]


async def test_event_loop_keeps_running_during_a_slow_query(db_path: Path) -> None:
    store = SQLiteStore(f"sqlite:///{db_path}")
    await store.open()
    try:
        await store.prepare("big", [])
        fill(db_path, "big", 150_000)
        gaps: list[float] = []
        done = asyncio.Event()

        async def tick() -> None:
            last = time.monotonic()
            while not done.is_set():
                await asyncio.sleep(0.002)
                now = time.monotonic()
                gaps.append(now - last)
                last = now

        ticker = asyncio.create_task(tick())
        started = time.monotonic()
        await store.count("big", {"$or": [{"a": {"$ne": 5}}, {"s": "x"}]})
        took = time.monotonic() - started
        done.set()
        await ticker
        assert took > 0.03, "the query should be slow enough to measure"
        assert max(gaps) < took / 2
    finally:
        await store.close()


# -- SQL safety ----------------------------------------------------------------------------

INJECTIONS = [
    "a'); DROP TABLE t; --",
    'a"',
    "a.b'",
    "a b",
    "a..b",
    ".a",
    "a.",
    "",
    "$where",
    "a[0]",
    "a.$",
    "0.a",
    "_id.x",
    "a.-1",
    "ü",
]


@pytest.mark.parametrize("path", INJECTIONS)
async def test_bad_paths_are_refused_everywhere(store: SQLiteStore, path: str) -> None:
    await store.insert("t", 1, {"a": 1}, "e")
    with pytest.raises(UnsupportedQuery):
        await store.find("t", FindQuery({path: 1}))
    with pytest.raises(UnsupportedQuery):
        await store.count("t", {"$or": [{"a": 1}, {path: {"$exists": True}}]})
    with pytest.raises(UnsupportedQuery):
        await store.find("t", FindQuery(sort=[(path, 1)]))
    with pytest.raises(UnsupportedQuery):
        await store.prepare("t", [path])
    assert await ids(store, {}) == [1]


@pytest.mark.parametrize("name", ['t"; DROP TABLE t; --', "sqlite_master", "_restplug_arrays", ""])
async def test_bad_collection_names_are_refused(store: SQLiteStore, name: str) -> None:
    with pytest.raises(ValueError):
        await store.insert(name, 1, {}, "e")
    with pytest.raises(ValueError):
        await store.find(name, FindQuery())


async def test_values_are_parameters(store: SQLiteStore) -> None:
    evil = "x'); DROP TABLE t; --"
    await store.insert("t", evil, {"a": evil}, evil)
    assert await ids(store, {"a": evil}) == [evil]
    assert await ids(store, {"a": {"$in": [evil, "'"]}, "_id": {"$gte": "x'"}}) == [evil]
    assert (await store.get("t", evil)).etag == evil


@pytest.mark.parametrize(
    "filter",
    [
        {"a": {"b": 1}},
        {"a": {"$eq": {"b": 1}}},
        {"a": {"$gt": [1]}},
        {"a": {"$regex": "x"}},
        {"$nor": [{"a": 1}]},
        {"a": {"$in": 5}},
        {"$or": []},
        {"a": {"$not": 5}},
        {"a": float("nan")},
        {"a": 2**70},
        {"a": {"$gt": object()}},
    ],
)
async def test_unsupported_filters_are_refused(store: SQLiteStore, filter: Any) -> None:
    with pytest.raises(UnsupportedQuery):
        await store.find("t", FindQuery(filter))


@pytest.mark.parametrize("sort", [[("a", 0)], [("a", True)], [("a",)], ["a"]])
async def test_bad_sorts_are_refused(store: SQLiteStore, sort: Any) -> None:
    with pytest.raises(UnsupportedQuery):
        await store.find("t", FindQuery(sort=sort))


# -- indexes and plans ---------------------------------------------------------------------


async def test_filtered_sorted_find_uses_the_index(store: SQLiteStore) -> None:
    await store.prepare("t", ["n", "s"])
    for i in range(50):
        await store.insert("t", i, {"n": i % 7, "s": f"s{i}"}, "e")
    range_plan = await store.explain("t", FindQuery({"n": {"$gt": 3}}, [("n", -1)], limit=5))
    assert any("USING INDEX t.n" in step for step in range_plan), range_plan
    assert not any("TEMP B-TREE" in step for step in range_plan), range_plan
    # An equality pins the key: the rows come in _id order straight from the same index.
    equal_plan = await store.explain("t", FindQuery({"n": 3}, [("n", 1), ("_id", 1)], limit=5))
    assert any("USING INDEX t.n (<expr>=?)" in step for step in equal_plan), equal_plan
    assert not any("TEMP B-TREE" in step for step in equal_plan), equal_plan
    page = await store.find("t", FindQuery({"n": {"$gt": 3}}, [("n", -1)], limit=3))
    assert [(s.id, s.document["n"]) for s in page] == [(48, 6), (41, 6), (34, 6)]


async def test_a_path_that_gets_an_array_is_searched_element_wise(
    store: SQLiteStore, db_path: Path
) -> None:
    await store.prepare("t", ["tags"])
    await store.insert("t", 1, {"tags": "a"}, "e")
    scalar_plan = await store.explain("t", FindQuery({"tags": "b"}))
    assert not any("json_each" in step or "VIRTUAL TABLE" in step for step in scalar_plan)
    await store.insert("t", 2, {"tags": ["a", "b"]}, "e")
    assert await ids(store, {"tags": "b"}) == [2]
    assert await ids(store, {"tags": "a"}) == [1, 2]
    # Equality is answered from the multikey table (see below); a range searches elements.
    array_plan = await store.explain("t", FindQuery({"tags": {"$gt": "a"}}))
    assert any("VIRTUAL TABLE" in step for step in array_plan), array_plan
    # The record is in the file, for the next process to see.
    again = SQLiteStore(f"sqlite:///{db_path}")
    await again.open()
    try:
        assert await ids(again, {"tags": "b"}) == [2]
    finally:
        await again.close()


async def test_a_failed_write_does_not_lose_array_paths(store: SQLiteStore) -> None:
    await store.insert("t", 1, {"x": 1}, "e")
    with pytest.raises(Conflict):
        await store.insert("t", 1, {"tags": ["a"]}, "e")  # rolled back with its record
    await store.insert("t", 2, {"tags": ["a"]}, "e")  # must record "tags" again
    assert await ids(store, {"tags": "a"}) == [2]


async def test_prepare_collects_statistics_for_the_planner(
    store: SQLiteStore, db_path: Path
) -> None:
    await store.prepare("big", [])
    fill(db_path, "big", 6000, modulo=3)
    await store.prepare("big", ["a", "s"])
    with sqlite3.connect(db_path) as db:
        stats = dict(db.execute("SELECT idx, stat FROM sqlite_stat1 WHERE tbl = 'big'"))
    assert stats["big.a"].split() == ["6000", "2000", "1"]  # 3 distinct values
    # Low cardinality known, the planner walks the sort index instead of sorting a third.
    plan = await store.explain("big", FindQuery({"a": 5}, [("s", -1)], limit=20))
    assert plan == ["SCAN big USING INDEX big.s"], plan


# -- MongoDB corners mongomock gets wrong (see test_filter_semantics.py) -------------------


@pytest.mark.parametrize(
    ("filter", "expected"),
    [
        # A path through a scalar or null is a missing field: it matches null.
        ({"o.x": None}, [1, 2, 3, 5]),
        ({"o.x": {"$exists": False}}, [1, 2, 3, 5]),
        ({"o.x": {"$ne": None}}, [4, 6]),
        ({"o.0": None}, [1, 2, 3, 4, 5, 6]),
        # $gte/$lte null behave as $eq null; nothing is above or below null.
        ({"o": {"$gte": None}}, [2, 3]),
        ({"o": {"$lte": None}}, [2, 3]),
        ({"o": {"$gt": None}}, []),
        ({"o": {"$lt": None}}, []),
        # $not of a condition on a path that finds nothing (past the end) matches; a
        # missing l is null, so there it does not.
        ({"l.5": {"$not": {"$eq": None}}}, [4, 6]),
        # $exists false is "no element has it", not "some element lacks it"; null is
        # matched by the element lacking it.
        ({"items.q": {"$exists": False}}, [1, 2, 3, 4]),
        ({"items.q": {"$exists": True}}, [5, 6]),
        ({"items.q": None}, [1, 2, 3, 4, 5, 6]),
        # Arrays in arrays: an element that is an array equals an array operand.
        ({"l": [1, 2]}, [6]),
        ({"l": {"$in": [[1, 2], 9]}}, [6]),
    ],
)
async def test_mongodb_corners(store: SQLiteStore, filter: Any, expected: list[Any]) -> None:
    docs = {
        1: {"o": 5},
        2: {"o": None},
        3: {},
        4: {"o": {"x": [1]}, "l": []},
        5: {"o": "s", "items": [{"q": 1}, {"r": 2}]},
        6: {"o": {"x": 0}, "items": [{"q": None}], "l": [[1, 2], 3]},
    }
    for id, doc in docs.items():
        await store.insert("t", id, doc, "e")
    assert await ids(store, filter) == expected
    assert await store.count("t", filter) == len(expected)


def test_unhinted_compilation_is_the_general_form() -> None:
    """Without array paths every path may hold an array: the SQL searches elements."""
    assert "json_each" in compile_filter({"a.b": 1}).where
    assert "json_each" not in compile_filter({"a.b": 1}, array_paths=()).where
    assert "json_each" not in compile_filter({"_id": 1}).where


# -- the narrow idx column -----------------------------------------------------------------

BIG = {"prices": {f"p{i}": list(range(50)) for i in range(20)}}


def raw(db_path: Path, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    with sqlite3.connect(db_path) as db:
        return db.execute(sql, params).fetchall()


def test_indexed_paths_compile_to_idx_others_to_doc() -> None:
    indexed = {"n", "o"}
    where = compile_filter(
        {"n": {"$in": [1, None]}, "o.x": {"$exists": False}, "o.l": [1]}, indexed=indexed
    ).where
    assert "idx" in where and "doc" not in where, where
    assert "doc" in compile_filter({"prices.p0": 1}, indexed=indexed).where
    assert "idx" not in compile_filter({"prices.p0": 1}, indexed=indexed).where
    # The same expression as on doc, column aside, so sorts read idx too.
    assert compile_sort([("o.x", 1)], indexed=indexed) == compile_sort([("o.x", 1)]).replace(
        "doc", "idx"
    )


async def test_filters_on_indexed_paths_do_not_read_the_rest_of_the_document(
    store: SQLiteStore, db_path: Path
) -> None:
    await store.prepare("t", ["n", "o.x"])
    for i in range(6):
        await store.insert("t", i, {"n": i % 3, "o": {"x": i}, **BIG}, "e")
    assert {orjson.loads(r[0])["n"] for r in raw(db_path, 'SELECT idx FROM "t"')} == {0, 1, 2}
    assert all("prices" not in r[0] for r in raw(db_path, 'SELECT idx FROM "t"'))
    # The indexes are on the idx expressions, so the compiler's SQL uses them.
    index_sql = dict(raw(db_path, "SELECT name, sql FROM sqlite_schema WHERE tbl_name = 't'"))
    assert "json_type(idx, '$.n')" in index_sql["t.n"]
    assert "doc" not in index_sql["t.n"] + index_sql["t.o.x"]
    plan = await store.explain("t", FindQuery({"o.x": {"$gte": 2}}, [("o.x", -1)]))
    assert any("USING INDEX t.o.x" in step for step in plan), plan
    # Proof that doc is not read: a doc changed behind the store's back changes nothing.
    raw(db_path, """UPDATE "t" SET doc = '{"n": 7}' WHERE _id = 0""")
    assert await ids(store, {"n": 0}) == [0, 3]
    assert await store.count("t", {"n": 7}) == 0


async def test_filters_on_paths_outside_idx_read_doc(store: SQLiteStore) -> None:
    await store.prepare("t", ["n"])
    await store.insert("t", 1, {"n": 1, "prices": {"p0": [5, 6]}}, "e")
    await store.insert("t", 2, {"n": 2, "prices": {"p0": 7}}, "e")
    await store.insert("t", 3, {"n": 2}, "e")
    assert await ids(store, {"prices.p0": 6}) == [1]
    assert await ids(store, {"prices.p0": {"$exists": False}}) == [3]
    assert await ids(store, {"n": 2, "prices.p0": {"$gt": 6}}) == [2]
    page = await store.find("t", FindQuery({}, [("prices.p0", -1)]))
    assert [s.id for s in page] == [1, 2, 3]


async def test_every_write_fills_idx(store: SQLiteStore, db_path: Path) -> None:
    await store.prepare("t", ["n"])
    await store.insert("t", 1, {"n": 1, "x": 0}, "e1")
    await store.replace("t", 1, {"n": 2, "x": 0}, "e2")
    await store.bulk_write(
        "t",
        [Write(2, {"n": 3, "x": 0}, "e1"), Write(1, {"x": 0}, "e3", if_etag="e2")],
    )
    rows = raw(db_path, 'SELECT _id, idx FROM "t" ORDER BY _id')
    assert rows == [(1, "{}"), (2, '{"n":3}')]
    assert await ids(store, {"n": {"$exists": False}}) == [1]


async def test_a_collection_never_prepared_leaves_idx_empty(
    store: SQLiteStore, db_path: Path
) -> None:
    await store.insert("t", 1, {"n": 1}, "e")
    assert raw(db_path, 'SELECT idx FROM "t"') == [("{}",)]
    assert await ids(store, {"n": 1}) == [1]


async def test_prepare_migrates_a_table_from_before_idx(db_path: Path) -> None:
    with sqlite3.connect(db_path) as db:
        db.execute('CREATE TABLE "t" (_id PRIMARY KEY NOT NULL, doc TEXT NOT NULL, etag TEXT)')
        db.execute(f'CREATE INDEX "t.n" ON "t" ({sort_key_sql("n")}, _id)')
        db.executemany(
            """INSERT INTO "t" (_id, doc, etag) VALUES (?, ?, 'e')""",
            [(1, '{"n": 1, "o": {"x": null}}'), (2, '{"n": 2, "o": {}}'), (3, '{"o": 3}')],
        )
    store = SQLiteStore(f"sqlite:///{db_path}")
    await store.open()
    try:
        assert await ids(store, {"n": 2}) == [2]  # before prepare: reads doc, as it was
        await store.prepare("t", ["n"])
        index_sql = raw(db_path, "SELECT sql FROM sqlite_schema WHERE name = 't.n'")[0][0]
        assert "idx" in index_sql and "doc" not in index_sql
        assert await ids(store, {"n": {"$gte": 1}}) == [1, 2]
        assert await ids(store, {"n": None}) == [3]
        await store.insert("t", 4, {"n": 4, "o": {"x": 4}}, "e")
        # A later prepare with another key: every row's idx is recomputed, missing and null
        # kept apart as in doc.
        await store.prepare("t", ["n", "o.x"])
        assert await ids(store, {"o.x": None}) == [1, 2, 3]
        assert await ids(store, {"o.x": {"$exists": True}}) == [1, 4]
        assert await ids(store, {"o": 3}) == [3]
        assert await ids(store, {"o.x": {"$gt": 0}}) == [4]
        plan = await store.explain("t", FindQuery({"o.x": 4}))
        assert any("USING INDEX t.o.x" in step for step in plan), plan
        # Dropping a path drops its index and the key from idx.
        await store.prepare("t", ["o.x"])
        assert raw(db_path, "SELECT name FROM sqlite_schema WHERE name = 't.n'") == []
        assert raw(db_path, 'SELECT idx FROM "t" WHERE _id = 4') == [('{"o":{"x":4}}',)]
        assert await ids(store, {"n": {"$gte": 2}}) == [2, 4]
    finally:
        await store.close()


async def test_writers_in_other_processes_use_the_recorded_keys(
    store: SQLiteStore, db_path: Path
) -> None:
    other = SQLiteStore(f"sqlite:///{db_path}")
    await other.open()
    try:
        await other.insert("t", 1, {"n": 1}, "e")  # before prepare, from the other store
        await store.prepare("t", ["n"])
        await other.insert("t", 2, {"n": 2}, "e")
        await other.replace("t", 1, {"n": 3}, "e")
        assert await ids(store, {"n": {"$gte": 2}}) == [1, 2]
        assert raw(db_path, 'SELECT idx FROM "t" ORDER BY _id') == [('{"n":3}',), ('{"n":2}',)]
    finally:
        await other.close()


@pytest.mark.parametrize("prepared", [False, True])
async def test_long_in_lists_match_like_short_ones(store: SQLiteStore, prepared: bool) -> None:
    """Past a few values $in/$nin take their list as one JSON parameter: same answers, for
    ids, numbers, floats, strings and array fields, indexed or not."""
    if prepared:
        await store.prepare("t", ["n", "s", "arr"])
    for i in range(60):
        document = {"n": i, "f": i + 0.5, "s": f"v{i}", "arr": [i, i + 100], "flag": i % 2 == 0}
        await store.insert("t", i, document, f"e{i}")
    wanted = list(range(0, 60, 3))  # 20 values: past the short form
    cases = [
        ({"_id": {"$in": wanted}}, wanted),
        ({"n": {"$in": wanted}}, wanted),
        ({"f": {"$in": [w + 0.5 for w in wanted]}}, wanted),
        ({"s": {"$in": [f"v{w}" for w in wanted]}}, wanted),
        ({"arr": {"$in": [w + 100 for w in wanted]}}, wanted),
        ({"n": {"$nin": wanted}}, [i for i in range(60) if i not in wanted]),
        ({"n": {"$in": [*map(str, wanted), *wanted[:2]]}}, wanted[:2]),  # "0" is not 0
        ({"flag": {"$in": [1] * 20}}, []),  # booleans are not numbers
    ]
    for filter, expected in cases:
        found = await store.find("t", FindQuery(filter, [("_id", 1)]))
        assert [s.id for s in found] == expected, filter
        assert await store.count("t", filter) == len(expected), filter


# -- the multikey table --------------------------------------------------------------------


def keys(db_path: Path, path: str) -> list[tuple[Any, Any]]:
    sql = 'SELECT key, _id FROM "t:keys" WHERE path = ? ORDER BY _id, key'
    return [tuple(row) for row in raw(db_path, sql, path)]


async def test_equality_on_a_prepared_array_path_reads_the_keys_table(store: SQLiteStore) -> None:
    await store.prepare("t", ["tags", "n"])
    await store.insert("t", 1, {"tags": ["a", "b"], "n": 1}, "e")
    for filter in ({"tags": {"$in": ["b", "c"]}}, {"tags": "b"}, {"tags": {"$eq": "b"}}):
        plan = await store.explain("t", FindQuery(filter))
        assert any("USING PRIMARY KEY (path=? AND key=?)" in s for s in plan), (filter, plan)
        assert not any("VIRTUAL TABLE" in step for step in plan), (filter, plan)
        assert await ids(store, filter) == [1]
    # Operators the rows cannot answer keep the json_each form, with the same answers.
    for filter, expected in [
        ({"tags": {"$nin": ["b"]}}, []),
        ({"tags": {"$ne": "c"}}, [1]),
        ({"tags": {"$in": ["c", None]}}, []),
        ({"tags": ["a", "b"]}, [1]),
        ({"tags": {"$exists": True}}, [1]),
    ]:
        plan = await store.explain("t", FindQuery(filter))
        assert not any("t:keys" in step for step in plan), (filter, plan)
        assert await ids(store, filter) == expected, filter
    # A path that never held an array keeps its plain, indexed form.
    plan = await store.explain("t", FindQuery({"n": {"$in": [1, 2]}}))
    assert any("USING INDEX t.n" in step for step in plan), plan


async def test_the_keys_table_follows_every_write(store: SQLiteStore, db_path: Path) -> None:
    await store.prepare("t", ["tags", "o.x", "l.0"])
    await store.insert("t", 1, {"tags": ["a", "b", "a"], "o": {"x": [1, 2.5]}}, "e")
    await store.insert("t", 2, {"tags": "a", "o": {"x": None}}, "e")  # a scalar, a null
    assert keys(db_path, "tags") == [("a", 1), ("b", 1), ("a", 2)]
    assert keys(db_path, "o.x") == [(1, 1), (2.5, 1)]
    assert keys(db_path, "l.0") == []  # paths with an array index keep json_each
    assert await ids(store, {"tags": "a"}) == [1, 2]
    assert await ids(store, {"o.x": {"$in": [2.5]}}) == [1]
    # A replace drops the elements no longer there.
    await store.replace("t", 1, {"tags": ["c"]}, "e2")
    assert keys(db_path, "tags") == [("c", 1), ("a", 2)]
    assert await ids(store, {"tags": "b"}) == []
    assert await ids(store, {"o.x": 1}) == []
    await store.delete("t", 2)
    assert keys(db_path, "tags") == [("c", 1)]
    assert await ids(store, {"tags": "a"}) == []
    applied = await store.bulk_write(
        "t",
        [
            Write(3, {"tags": ["d", "e"]}, "e"),
            Write(1, {"tags": ["d"]}, "e3", if_etag="e2"),
            Write(1, {"tags": ["lost"]}, "e4", if_etag="stale"),  # not applied: no rows
            Write(3, {"tags": ["lost"]}, "e"),  # id taken: no rows
        ],
    )
    assert applied == [True, True, False, False]
    assert keys(db_path, "tags") == [("d", 1), ("d", 3), ("e", 3)]
    assert await ids(store, {"tags": {"$in": ["d", "lost"]}}) == [1, 3]
    # A failed write leaves the rows as they were.
    with pytest.raises(Conflict):
        await store.insert("t", 3, {"tags": ["lost"]}, "e")
    assert keys(db_path, "tags") == [("d", 1), ("d", 3), ("e", 3)]


async def test_keys_keep_booleans_numbers_and_strings_apart(store: SQLiteStore) -> None:
    await store.prepare("t", ["v"])
    values = {1: [True, 2], 2: [1, "x"], 3: [False, 0.0], 4: ["1", None], 5: 1.0, 6: True}
    for id, value in values.items():
        await store.insert("t", id, {"v": value}, "e")
    cases = [
        ({"v": True}, [1, 6]),
        ({"v": 1}, [2, 5]),
        ({"v": {"$in": [False]}}, [3]),
        ({"v": {"$in": [0]}}, [3]),
        ({"v": "1"}, [4]),
        ({"v": {"$in": [1, True]}}, [1, 2, 5, 6]),
        ({"v": {"$in": [str(i) for i in range(20)]}}, [4]),  # the long (JSON) form
        ({"v": {"$in": list(range(2, 22))}}, [1]),
    ]
    for filter, expected in cases:
        plan = await store.explain("t", FindQuery(filter))
        assert any("t:keys" in step for step in plan), (filter, plan)
        assert await ids(store, filter) == expected, filter
        assert await store.count("t", filter) == len(expected), filter


async def test_keys_are_only_used_while_no_parent_holds_an_array(store: SQLiteStore) -> None:
    await store.prepare("t", ["o.x"])
    await store.insert("t", 1, {"o": {"x": [1, 2]}}, "e")
    assert any("t:keys" in s for s in await store.explain("t", FindQuery({"o.x": 2})))
    # An array of objects above the last segment: the rows (which follow objects only) miss
    # this document, so the compiler goes back to json_each.
    await store.insert("t", 2, {"o": [{"x": 2}]}, "e")
    assert not any("t:keys" in s for s in await store.explain("t", FindQuery({"o.x": 2})))
    assert await ids(store, {"o.x": 2}) == [1, 2]


async def test_prepare_builds_the_keys_of_a_new_path(store: SQLiteStore, db_path: Path) -> None:
    await store.prepare("t", ["n"])
    await store.insert("t", 1, {"n": 1, "tags": ["a", "b"]}, "e")
    await store.insert("t", 2, {"n": 2, "tags": "b"}, "e")
    assert keys(db_path, "tags") == []
    await store.prepare("t", ["n", "tags"])
    assert keys(db_path, "tags") == [("a", 1), ("b", 1), ("b", 2)]
    assert any("t:keys" in s for s in await store.explain("t", FindQuery({"tags": "b"})))
    assert await ids(store, {"tags": "b"}) == [1, 2]
    # Dropping the path drops its rows; its equality goes back to json_each.
    await store.prepare("t", ["n"])
    assert keys(db_path, "tags") == []
    assert not any("t:keys" in s for s in await store.explain("t", FindQuery({"tags": "b"})))
    assert await ids(store, {"tags": "b"}) == [1, 2]


async def test_a_sorted_page_walks_the_sort_index_and_checks_the_keys(store: SQLiteStore) -> None:
    """For a short page in sort order SQLite must not sort every match of a common value:
    it walks the sort index and checks each row against the keys; a count still starts
    from the keys."""
    await store.prepare("t", ["tags", "n"])
    for i in range(40):
        await store.insert("t", i, {"tags": ["common", f"t{i}"], "n": 40 - i}, f"e{i}")
    page = FindQuery({"tags": "common"}, [("n", 1)], limit=5)
    plan = await store.explain("t", page)
    assert any("USING INDEX t.n" in step for step in plan), plan
    assert not any("TEMP B-TREE" in step for step in plan), plan
    assert [s.id for s in await store.find("t", page)] == [39, 38, 37, 36, 35]
    everything = await store.explain("t", FindQuery({"tags": "common"}))
    assert any("USING PRIMARY KEY (path=? AND key=?)" in s for s in everything), everything
    assert await store.count("t", {"tags": "common"}) == 40


# -- paths through an array index ----------------------------------------------------------


def test_arrays_held_in_arrays_are_recorded_apart() -> None:
    found = array_paths_of({"a": [{"b": [1]}], "c": {"d": [[]]}, "e": [[[1]]]})
    assert found == {"a", "a.b", "c.d", "c.d[]", "e", "e[]"}


def test_a_path_through_an_index_is_plain_unless_arrays_hold_arrays() -> None:
    """``a.0.b`` reads one element: no element search, unless ``a``'s elements have been
    arrays (then ``a.0`` may be one, and MongoDB searches its objects for ``b``)."""
    path = {"a.0.b": {"$lte": 3}}
    assert "json_each" not in compile_filter(path, array_paths=["a"]).where
    assert "json_each" in compile_filter(path, array_paths=["a", "a[]"]).where
    assert "json_each" in compile_filter(path).where


NESTED = {
    1: {"a": [{"b": 1}]},
    2: {"a": [[{"b": 1}], {"b": 2}]},
    3: {"a": [[5, 6]]},
    4: {"a": [7]},
    5: {"a": []},
}


@pytest.mark.parametrize(
    ("filter", "expected"),
    [
        ({"a.0.b": 1}, [1, 2]),  # MongoDB searches the objects of the array a.0
        ({"a.0.b": {"$gte": 1}}, [1, 2]),
        ({"a.1.b": 2}, [2]),
        ({"a.0": 5}, [3]),  # an array at a.0 offers its elements
        ({"a.0": 7}, [4]),
        ({"a.0": {"$exists": False}}, [5]),
    ],
)
async def test_arrays_held_in_arrays_keep_mongodb_semantics(
    store: SQLiteStore, filter: dict[str, Any], expected: list[int]
) -> None:
    for id, doc in NESTED.items():
        await store.insert("t", id, doc, "e")
    assert await ids(store, filter) == expected


async def test_a_file_from_before_is_read_as_holding_arrays_in_arrays_until_prepared(
    store: SQLiteStore, db_path: Path
) -> None:
    for id, doc in NESTED.items():
        await store.insert("t", id, doc, "e")
    # As a file written before arrays in arrays were recorded: neither the row nor the marker.
    raw(db_path, "DELETE FROM _restplug_arrays WHERE path IN ('a[]', '[]')")
    assert await ids(store, {"a.0.b": 1}) == [1, 2]
    await store.prepare("t", ["a.0.b"])
    recorded = {row[0] for row in raw(db_path, "SELECT path FROM _restplug_arrays")}
    assert {"a", "a[]", "[]"} <= recorded
    assert await ids(store, {"a.0.b": 1}) == [1, 2]


async def test_a_path_through_an_index_is_indexed_from_doc(
    store: SQLiteStore, db_path: Path
) -> None:
    """Its top key stays out of idx (a history is the bulk of a document); its index, on the
    doc expression, serves ranges, counts and sorts."""
    path = "prices.US.price_story.0.price"
    await store.prepare("t", ["n", path])
    for i in range(30):
        story = [{"price": i % 7}, {"price": 99}]
        await store.insert("t", i, {"n": i, "prices": {"US": {"price_story": story}}}, "e")
    assert all("prices" not in r[0] for r in raw(db_path, 'SELECT idx FROM "t"'))
    cheap = {path: {"$lte": 2}}
    assert await store.count("t", cheap) == len([i for i in range(30) if i % 7 <= 2])
    index = f"INDEX t.{path}"
    assert any(index in step for step in await store.explain_count("t", cheap))
    plan = await store.explain("t", FindQuery(cheap, [(path, -1), ("_id", -1)], limit=5))
    assert any(index in step for step in plan) and not any("TEMP" in s for s in plan), plan


async def test_missing_last_ascending_reads_values_then_the_missing(store: SQLiteStore) -> None:
    await store.prepare("t", ["v"])
    for id, value in [(1, 3), (2, None), (3, 1), (4, "missing"), (5, 2), (6, None)]:
        await store.insert("t", id, {} if value == "missing" else {"v": value}, "e")
    query = FindQuery(sort=[("v", 1), ("_id", 1)], missing_last=frozenset({"v"}))
    assert [s.id for s in await store.find("t", query)] == [3, 5, 1, 2, 4, 6]
    pages = [
        [
            s.id
            for s in await store.find("t", FindQuery(**{**vars(query), "skip": skip, "limit": 2}))
        ]
        for skip in (0, 2, 4, 5, 6)
    ]
    assert pages == [[3, 5], [1, 2], [4, 6], [6], []]
    plan = await store.explain("t", query)
    assert len(plan) == 2 and not any("TEMP" in step for step in plan), plan


async def test_a_bulk_write_keeps_the_multikey_rows_of_each_id_s_last_document(
    store: SQLiteStore,
) -> None:
    await store.prepare("t", ["tags", "n"])
    await store.insert("t", 3, {"tags": ["x"], "n": 3}, "e3")
    writes = [
        Write(1, {"tags": ["a", "b"], "n": 1}, "e1"),
        Write(1, {"tags": ["c"], "n": 2}, "e2", if_etag="e1"),
        Write(2, {"tags": ["b"], "n": 1}, "e1"),
        Write.delete(3, if_etag="e3"),
    ]
    assert await store.bulk_write("t", writes) == [True, True, True, True]
    assert await ids(store, {"tags": "b"}) == [2]
    assert await ids(store, {"tags": {"$in": ["a", "c", "x"]}}) == [1]
    assert await ids(store, {"n": 1}) == [2]


async def test_a_replacement_leaving_the_filtered_fields_alike_keeps_their_answers(
    store: SQLiteStore, db_path: Path
) -> None:
    # A new price, in the catalogue: only what no filter reads changes, so its rows stay.
    await store.prepare("t", ["tags", "n"])
    await store.insert("t", 1, {"tags": ["a"], "n": 1, "history": [1]}, "e1")
    alike = [Write(1, {"tags": ["a"], "n": 1, "history": [2, 1]}, "e2", if_etag="e1")]
    assert await store.bulk_write("t", alike) == [True]
    assert keys(db_path, "tags") == [("a", 1)]
    assert await ids(store, {"tags": "a", "n": 1}) == [1]
    stored = await store.get("t", 1)
    assert stored is not None and (stored.document["history"], stored.etag) == ([2, 1], "e2")
    # Away and back within one batch: the rows follow the last document.
    writes = [
        Write(1, {"tags": ["b"], "n": 2, "history": [2, 1]}, "e3", if_etag="e2"),
        Write(1, {"tags": ["a"], "n": 1, "history": [3, 2, 1]}, "e4", if_etag="e3"),
    ]
    assert await store.bulk_write("t", writes) == [True, True]
    assert keys(db_path, "tags") == [("a", 1)]
    assert await ids(store, {"tags": "a", "n": 1}) == [1]
    assert await ids(store, {"$or": [{"tags": "b"}, {"n": 2}]}) == []
    # A stale ETag changes nothing, alike or not.
    stale = [Write(1, {"tags": ["a"], "n": 1, "history": []}, "e5", if_etag="e2")]
    assert await store.bulk_write("t", stale) == [False]
    stored = await store.get("t", 1)
    assert stored is not None and (stored.document["history"], stored.etag) == ([3, 2, 1], "e4")


async def test_an_entry_written_again_keeps_one_set_of_multikey_rows(store: SQLiteStore) -> None:
    await store.prepare("o", ["tags"])

    # An array, so that equality reads the multikey rows.
    def entry(id: str, tag: str, etag: str) -> OutboxEntry:
        return OutboxEntry("o", id, {"tags": [tag]}, etag)

    await store.bulk_write("t", [Write(1, {"n": 1}, "e1", outbox=entry("t:1", "t", "x1"))])
    writes = [
        Write(1, {"n": 2}, "e2", if_etag="e1", outbox=entry("t:1", "t", "x2")),  # still pending
        Write(2, {"n": 1}, "e1", outbox=entry("t:2", "u", "x3")),
    ]
    assert await store.bulk_write("t", writes) == [True, True]
    assert await ids(store, {"tags": "t"}, "o") == ["t:1"]
    assert await ids(store, {"tags": {"$in": ["t", "u"]}}, "o") == ["t:1", "t:2"]
    # An entry whose filtered field changes moves, written twice in one batch or not.
    writes = [
        Write(1, {"n": 3}, "e3", if_etag="e2", outbox=entry("t:1", "v", "x4")),
        Write(1, {"n": 4}, "e4", if_etag="e3", outbox=entry("t:1", "u", "x5")),
    ]
    assert await store.bulk_write("t", writes) == [True, True]
    assert await ids(store, {"tags": {"$in": ["t", "v"]}}, "o") == []
    assert await ids(store, {"tags": "u"}, "o") == ["t:1", "t:2"]
    stored = await store.get("o", "t:1")
    assert stored is not None and stored.etag == "x5"
