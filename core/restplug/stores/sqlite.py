"""The builtin document store: one SQLite file, one table per collection (plugin ``sqlite_store``).

``RESTPLUG_STORE_URL=sqlite:///var/restplug.db`` (relative to the working directory) or
``sqlite:////abs/path.db``.  Each collection is a table with columns ``_id``, ``doc``, ``etag``
and ``idx``: ``_id`` keeps the id's own type (an integer and a string never collide), ``doc`` is
the JSON text, ``idx`` the document reduced to the top-level keys that the paths given to
:meth:`SQLiteStore.prepare` start with (those without an array index).  Filters and sorts are
compiled by :mod:`restplug.stores.sqlfilter`, reading paths below those keys from ``idx``:
SQLite parses the whole JSON text at every ``json_*`` call, and most of a large document (a
long price history, say) is never filtered on.

The file is run off the event loop by :class:`restplug.sqlitedb.SQLiteDatabase` (one writer
thread, pooled readers, WAL, a deadline on every statement), as the search index runs its own.

Besides the collections, a table ``_restplug_arrays`` records every path at which some document
of a collection has held an array, and ``path[]`` where such an array has held an array (never
forgotten, so it can only over-report).  A find reads it in the same snapshot as the documents
and compiles paths that never held an array to the plain, indexable SQL; see the sqlfilter
module.  A table ``_restplug_indexed`` holds each
collection's ``idx`` keys, written by ``prepare`` together with the ``idx`` values it recomputes
when they change, and read by every write (to fill ``idx``) and every find (to compile) in the
same transaction as the rows, so processes sharing the file never mix two forms.

**Multikey.**  A condition on a path that has held an array searches each document's array
with ``json_each``, which no index serves.  So, as MongoDB's multikey indexes do, each prepared
collection has a side table ``"{collection}:keys"`` with a row ``(path, key, _id)`` for every
value an equality on a prepared path would match in a document (each element of an array, or
the scalar; see :func:`~restplug.stores.sqlfilter.multikeys`), and the compiler answers
``$eq``/``$in`` on such a path from it.  Its paths are recorded in ``_restplug_indexed`` with
the idx keys, and every write keeps the rows in step in its own transaction.  Every prepared
path of object keys gets rows, not only those holding arrays today: a path first gets an array
on some write, and rows for the other documents could then only come from a full scan.  The
name holds a ``:``, so it cannot clash with a collection or with a path index ``collection.path``.
"""

from __future__ import annotations

import contextlib
import functools
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import orjson

from restplug import hookimpl
from restplug.backends import Backend
from restplug.errors import (
    Conflict,
    NotFound,
    PreconditionFailed,
    QueryTimeout,
)
from restplug.fragments import parse_path
from restplug.sqlitedb import SQLiteDatabase, check_id, quoted_table, transaction
from restplug.stores.protocol import Filter, FindQuery, OutboxEntry, Stored, Write
from restplug.stores.sqlfilter import (
    ELEMENT,
    CompiledFilter,
    array_paths_of,
    compile_filter,
    compile_sort,
    multikeys,
    sort_key_sql,
)

if TYPE_CHECKING:
    from restplug.config import Settings

T = TypeVar("T")

_ARRAYS_TABLE = "_restplug_arrays"
_INDEXED_TABLE = "_restplug_indexed"
#: A row of _ARRAYS_TABLE (not a path) saying that the collection records arrays held in
#: arrays (``path[]``): its tables were created by this version, or ``prepare`` scanned them.
_NESTED_RECORDED = ELEMENT
# Rows per batch when prepare recomputes idx: bounds the memory a migration holds.
_RENARROW_BATCH = 2000
# Planner statistics: checked every this many writes to a collection, kept for tables of at
# least this many documents.
_STATISTICS_CHECK_EVERY = 1000
_STATISTICS_MIN_ROWS = 1000


@hookimpl
def register_backends() -> list[Backend]:
    """This module is the builtin plugin ``sqlite_store``: it answers ``sqlite://`` URLs."""
    return [
        Backend(
            kind="store",
            schemes=("sqlite",),
            factory=_from_settings,
        )
    ]


def _from_settings(url: str, settings: Settings) -> SQLiteStore:
    return SQLiteStore(url, timeout_ms=settings.query_timeout_ms)


class SQLiteStore(SQLiteDatabase):
    """A :class:`restplug.stores.protocol.DocumentStore` in one SQLite file.

    ``timeout_ms`` bounds every statement (and the wait for another process's write lock);
    ``readers`` is how many reads may run at once.
    """

    def __init__(self, url: str, *, timeout_ms: int = 5000, readers: int = 4) -> None:
        super().__init__(url, timeout_ms=timeout_ms, readers=readers)
        # Used by the writer thread only: tables known to exist, array paths known recorded,
        # writes since the planner statistics were last checked.
        self._tables: set[str] = set()
        self._arrays: dict[str, set[str]] = {}
        self._writes: dict[str, int] = {}
        self._statistics_due: set[str] = set()

    # -- life cycle -----------------------------------------------------------------------

    async def open(self) -> None:
        """Create the file (and its folder) if needed, switch it to WAL, open the connections."""
        if self._writer is not None:
            return
        self._tables.clear()
        self._arrays.clear()
        self._writes.clear()
        self._statistics_due.clear()
        await super().open()

    def set_up(self, db: sqlite3.Connection) -> None:
        db.execute(
            f"CREATE TABLE IF NOT EXISTS {_ARRAYS_TABLE} (collection TEXT NOT NULL, "
            "path TEXT NOT NULL, PRIMARY KEY (collection, path)) WITHOUT ROWID"
        )
        db.execute(
            f"CREATE TABLE IF NOT EXISTS {_INDEXED_TABLE} (collection TEXT PRIMARY KEY NOT NULL, "
            "keys TEXT NOT NULL, multikey TEXT NOT NULL DEFAULT '[]') WITHOUT ROWID"
        )
        # A file from before the keys tables: no multikey paths recorded, so prepare builds
        # them.
        sql = f"SELECT 1 FROM pragma_table_info('{_INDEXED_TABLE}') WHERE name = 'multikey'"
        if db.execute(sql).fetchone() is None:
            db.execute(
                f"ALTER TABLE {_INDEXED_TABLE} ADD COLUMN multikey TEXT NOT NULL DEFAULT '[]'"
            )

    # -- schema ---------------------------------------------------------------------------

    async def prepare(self, collection: str, index_paths: Sequence[str]) -> None:
        """Create the table and one index per path on ``(sort key, _id)``, the expressions the
        compiler emits, so equality, ranges and sorts on the path use it; then refresh the
        planner statistics if they are missing or stale (see :meth:`_refresh_statistics`).

        The first segments of the paths without an array index become the collection's ``idx``
        keys.  When they differ from the recorded ones, every row's ``idx`` is recomputed and
        the indexes (whose expressions name ``idx`` or ``doc`` by key) rebuilt, in one
        transaction.  A path through an array index (``prices.US.price_story.0.price``) reaches
        into a list, a history more often than not: the bulk of a document, which ``idx`` is
        there to leave out.  Its index serves it from ``doc`` as well.

        A collection from a file written before arrays held in arrays were recorded (see
        :func:`_array_paths`) is scanned once for them, so that its paths through an array index
        compile to their indexable form.  Both are start-up work proportional to the table, so
        they are not bounded by ``timeout_ms``.
        """
        table = quoted_table(collection)
        keys = sorted({parse_path(p)[0] for p in index_paths if not _through_index(p)} - {"_id"})
        # Paths with an array index in them are left to json_each: their rows would need
        # MongoDB's rules for an index segment, for little use.
        multikey = sorted({p for p in index_paths if p != "_id" and not _through_index(p)})
        indexes = {
            f"{collection}.{p}": f'CREATE INDEX "{collection}.{p}" ON {table} '
            f"({sort_key_sql(p, indexed=keys)}, _id)"
            for p in index_paths
            if p != "_id"
        }

        def run(db: sqlite3.Connection) -> bool:
            with transaction(db, "IMMEDIATE"):
                self._create_table(db, collection)
                if _NESTED_RECORDED not in _recorded_arrays(db, collection):
                    self._record_nested(db, collection)
                recorded_keys, recorded_multikey = _indexed(db, collection)
                if recorded_keys != keys:
                    self._renarrow(db, collection, keys)
                if recorded_multikey != multikey:
                    self._rekey(db, collection, recorded_multikey, multikey)
                # Ours are named "collection.path"; SQLite keeps each one's CREATE text.
                existing = dict(
                    db.execute(
                        "SELECT name, sql FROM sqlite_schema WHERE type = 'index' "
                        "AND tbl_name = ? AND substr(name, 1, ?) = ?",
                        (collection, len(collection) + 1, f"{collection}."),
                    ).fetchall()
                )
                for name, sql in existing.items():
                    if indexes.get(name) != sql:
                        db.execute(f'DROP INDEX "{name}"')
                created = False
                for name, sql in indexes.items():
                    if existing.get(name) != sql:
                        db.execute(sql)
                        created = True
            self._tables.add(collection)
            self._arrays.pop(collection, None)  # read again by the next write
            return created

        created = await self.run_write(run, bounded=False)
        with contextlib.suppress(QueryTimeout):  # statistics help; starting matters more
            await self.run_write(lambda db: self._refresh_statistics(db, collection, force=created))

    @staticmethod
    def _renarrow(db: sqlite3.Connection, collection: str, keys: list[str]) -> None:
        """Record ``keys`` as the collection's ``idx`` keys and recompute every row's ``idx``.

        In Python, not with SQL's ``json_object(..., json_extract(doc, ...))``: that would turn
        a missing key into null, and rewrite numbers in SQLite's 15-digit float format.
        """
        table = quoted_table(collection)
        db.execute(
            f"INSERT INTO {_INDEXED_TABLE} (collection, keys) VALUES (?, ?) "
            "ON CONFLICT (collection) DO UPDATE SET keys = excluded.keys",
            (collection, orjson.dumps(keys).decode()),
        )
        # Batches in rowid order, each starting past the last one: a seek, not a rescan.
        select = f"SELECT rowid, doc FROM {table} ORDER BY rowid LIMIT ?"
        rows = db.execute(select, (_RENARROW_BATCH,)).fetchall()
        while rows:
            db.executemany(
                f"UPDATE {table} SET idx = ? WHERE rowid = ?",
                [(_narrow(orjson.loads(doc), keys), rowid) for rowid, doc in rows],
            )
            select = f"SELECT rowid, doc FROM {table} WHERE rowid > ? ORDER BY rowid LIMIT ?"
            rows = db.execute(select, (rows[-1][0], _RENARROW_BATCH)).fetchall()

    @staticmethod
    def _record_nested(db: sqlite3.Connection, collection: str) -> None:
        """Record every array path of the collection's documents, arrays held in arrays
        included, then the marker saying they are recorded."""
        table = quoted_table(collection)
        select = f"SELECT rowid, doc FROM {table} ORDER BY rowid LIMIT ?"
        rows = db.execute(select, (_RENARROW_BATCH,)).fetchall()
        while rows:
            found = set().union(*(array_paths_of(orjson.loads(doc)) for _, doc in rows))
            db.executemany(
                f"INSERT OR IGNORE INTO {_ARRAYS_TABLE} (collection, path) VALUES (?, ?)",
                [(collection, path) for path in sorted(found)],
            )
            select = f"SELECT rowid, doc FROM {table} WHERE rowid > ? ORDER BY rowid LIMIT ?"
            rows = db.execute(select, (rows[-1][0], _RENARROW_BATCH)).fetchall()
        db.execute(
            f"INSERT INTO {_ARRAYS_TABLE} (collection, path) VALUES (?, ?)",
            (collection, _NESTED_RECORDED),
        )

    @staticmethod
    def _rekey(
        db: sqlite3.Connection, collection: str, recorded: list[str], multikey: list[str]
    ) -> None:
        """Record ``multikey`` as the collection's multikey paths, drop the rows of paths no
        longer among them and add those of new ones.  Run after :meth:`_renarrow`: the rows
        are computed from ``idx``, which holds every prepared path and is far smaller than
        ``doc``."""
        table, keys_table = quoted_table(collection), _keys_table(collection)
        db.execute(
            f"CREATE TABLE IF NOT EXISTS {keys_table} (path TEXT NOT NULL, key NOT NULL, "
            "_id NOT NULL, PRIMARY KEY (path, key, _id)) WITHOUT ROWID"
        )
        db.execute(f'CREATE INDEX IF NOT EXISTS "{collection}:keys:_id" ON {keys_table} (_id)')
        # The collection's row exists: paths to record mean idx keys, recorded by _renarrow,
        # and paths to forget were recorded in it.
        db.execute(
            f"UPDATE {_INDEXED_TABLE} SET multikey = ? WHERE collection = ?",
            (orjson.dumps(multikey).decode(), collection),
        )
        db.execute(
            f"DELETE FROM {keys_table} WHERE path NOT IN (SELECT value FROM json_each(?))",
            (orjson.dumps(multikey).decode(),),
        )
        added = [p for p in multikey if p not in recorded]
        if not added:
            return
        select = f"SELECT rowid, _id, idx FROM {table} ORDER BY rowid LIMIT ?"
        rows = db.execute(select, (_RENARROW_BATCH,)).fetchall()
        while rows:
            db.executemany(
                f"INSERT INTO {keys_table} (path, key, _id) VALUES (?, ?, ?)",
                [row for _, id, idx in rows for row in _key_rows(id, orjson.loads(idx), added)],
            )
            select = f"SELECT rowid, _id, idx FROM {table} WHERE rowid > ? ORDER BY rowid LIMIT ?"
            rows = db.execute(select, (rows[-1][0], _RENARROW_BATCH)).fetchall()

    def _refresh_statistics(
        self, db: sqlite3.Connection, collection: str, force: bool = False
    ) -> None:
        """``ANALYZE`` the table when its statistics are missing, or off by half or double.

        Without them SQLite guesses that an equality matches ten rows, and answers "status =
        'open' ordered by date" by sorting a third of the table rather than walking the date
        index; with them it picks well.  A full ANALYZE reads only the indexes (some 30 ms per
        100,000 documents), so it is run outright, not sampled: a sample of a sorted index
        misjudges every low-cardinality field.  Tables under ``_STATISTICS_MIN_ROWS`` documents
        are not worth it.
        """
        table = quoted_table(collection)
        rows = db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
        if rows < _STATISTICS_MIN_ROWS:
            return
        stat = (
            db.execute(
                "SELECT stat FROM sqlite_stat1 WHERE tbl = ? LIMIT 1", (collection,)
            ).fetchone()
            if _has_stat1(db)
            else None
        )
        known = int(stat[0].split()[0]) if stat else 0
        if force or not known or not known / 2 <= rows <= known * 2:
            db.execute(f"ANALYZE {table}")

    def _create_table(self, db: sqlite3.Connection, collection: str) -> None:
        # _id has no declared type: no affinity, so 1 and "1" stay an integer and a string.
        # doc goes last: a large doc spills onto overflow pages, and SQLite reaches a column
        # stored after it only by reading through them.
        if collection not in self._tables:
            table = quoted_table(collection)
            sql = "SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?"
            if db.execute(sql, (collection,)).fetchone() is None:
                db.execute(
                    f"CREATE TABLE {table} (_id PRIMARY KEY NOT NULL, etag TEXT NOT NULL, "
                    "idx TEXT NOT NULL DEFAULT '{}', doc TEXT NOT NULL)"
                )
                # An empty table: nothing unrecorded in it.
                db.execute(
                    f"INSERT OR IGNORE INTO {_ARRAYS_TABLE} (collection, path) VALUES (?, ?)",
                    (collection, _NESTED_RECORDED),
                )
            # A table from before idx existed: its rows get the empty form, which is right
            # while no idx keys are recorded (prepare recomputes idx when it records some).
            # ADD COLUMN appends idx after doc.  Moving it would mean rewriting the table, for
            # about a sixth of a filter's time on 4 KB documents: not done.
            sql = "SELECT 1 FROM pragma_table_info(?) WHERE name = 'idx'"
            if db.execute(sql, (collection,)).fetchone() is None:
                db.execute(f"ALTER TABLE {table} ADD COLUMN idx TEXT NOT NULL DEFAULT '{{}}'")

    # -- reads ----------------------------------------------------------------------------

    async def get(self, collection: str, id: Any) -> Stored | None:
        """The document with this id, or None."""
        table = quoted_table(collection)
        check_id(id)

        def run(db: sqlite3.Connection) -> Stored | None:
            try:
                row = db.execute(
                    f"SELECT _id, doc, etag FROM {table} WHERE _id = ?", (id,)
                ).fetchone()
            except sqlite3.OperationalError as e:
                if _no_such_table(e):
                    return None
                raise
            return _stored(row) if row else None

        return await self.run_point_read(run)

    async def find(self, collection: str, query: FindQuery) -> list[Stored]:
        """The matching documents in the query's order (ties broken by ``_id``), or, with a
        ``rank``, the matching documents among those ids in the rank's order."""
        quoted_table(collection)
        if query.skip < 0 or (query.limit is not None and query.limit < 0):
            raise ValueError("skip and limit cannot be negative")

        def run(db: sqlite3.Connection) -> list[Stored]:
            limit = -1 if query.limit is None else query.limit
            skip = query.skip
            parts = self._find_parts(db, collection, query)
            rows: list[tuple[Any, str, str]] = []
            for number, part in enumerate(parts, 1):
                want = -1 if limit < 0 else limit - len(rows)
                if want == 0:
                    break
                found = db.execute(*part.select(want, skip)).fetchall()
                rows += found
                if skip and number < len(parts):
                    # The skip went past this part (or ended in it): what is left of it.
                    skip = 0 if found else max(0, skip - db.execute(*part.count()).fetchone()[0])
            return [_stored(row) for row in rows]

        return await self.run_read(lambda db: self._snapshot(db, collection, run, []))

    async def count(
        self, collection: str, filter: Filter, rank: Sequence[Any] | None = None
    ) -> int:
        """How many documents match ``filter`` (and have an id in ``rank``, when given)."""
        quoted_table(collection)
        ranked = None if rank is None else _rank_json(rank)

        def run(db: sqlite3.Connection) -> int:
            sql, params = self._count_sql(db, collection, filter, ranked)
            return db.execute(sql, params).fetchone()[0]

        return await self.run_read(lambda db: self._snapshot(db, collection, run, 0))

    async def explain(self, collection: str, query: FindQuery) -> list[str]:
        """SQLite's plan for ``find(collection, query)``, one line per step: the way to see
        whether an index serves a listing (``SEARCH ... USING INDEX``) or the table is scanned.
        A find in two parts (see :meth:`_find_parts`) gives the plans of both, in order.
        """

        quoted_table(collection)

        limit = -1 if query.limit is None else query.limit

        def run(db: sqlite3.Connection) -> list[str]:
            return [
                line
                for part in self._find_parts(db, collection, query)
                for line in _plan(db, *part.select(limit, query.skip))
            ]

        return await self.run_read(lambda db: self._snapshot(db, collection, run, []))

    async def explain_count(
        self, collection: str, filter: Filter, rank: Sequence[Any] | None = None
    ) -> list[str]:
        """SQLite's plan for ``count(collection, filter, rank)``, as :meth:`explain` gives."""
        quoted_table(collection)
        ranked = None if rank is None else _rank_json(rank)

        def run(db: sqlite3.Connection) -> list[str]:
            return _plan(db, *self._count_sql(db, collection, filter, ranked))

        return await self.run_read(lambda db: self._snapshot(db, collection, run, []))

    @staticmethod
    def _count_sql(
        db: sqlite3.Connection, collection: str, filter: Filter, ranked: str | None
    ) -> tuple[str, dict[str, Any]]:
        compiled = _compile(db, collection, filter)
        sql = f"SELECT count(*) FROM {quoted_table(collection)} WHERE {compiled.where}"
        if ranked is None:
            return sql, compiled.params
        sql += " AND _id IN (SELECT value FROM json_each(:_rank))"
        return sql, {**compiled.params, "_rank": ranked}

    @staticmethod
    def _find_parts(db: sqlite3.Connection, collection: str, query: FindQuery) -> list[_Part]:
        """The parts a find reads in turn: one, or two when the order starts with a path whose
        missing values go last ascending (``missing_last``): first the documents with a value
        there, then those without.  ``NULLS LAST`` in one statement is an order no index gives
        (SQLite would read every match and sort them); each part's order is one an index on
        ``(sort key, _id)`` gives."""
        # A page in sort order walks the sort index (see compile_filter's drive_keys).
        page = query.limit is not None and query.rank is None and bool(query.sort)
        compiled = _compile(db, collection, query.filter, drive_keys=not page)
        indexed, _ = _indexed(db, collection)
        table = quoted_table(collection)
        if query.rank is not None:
            # The ids as a JSON array: json_each gives each one (typed) and its position.
            source = f"json_each(:_rank) AS _rank JOIN {table} ON _id = _rank.value"
            params = {**compiled.params, "_rank": _rank_json(query.rank)}
            return [_Part(source, compiled.where, "_rank.key", params)]

        def order(constant: frozenset[str], missing_last: frozenset[str]) -> str:
            return compile_sort(
                query.sort, constant=constant, missing_last=missing_last, indexed=indexed
            )

        whole = order(compiled.constant, query.missing_last)  # checks the sort too
        path, direction = next(
            ((p, d) for p, d in query.sort if p not in compiled.constant), ("_id", 1)
        )
        if direction != 1 or path not in query.missing_last:
            return [_Part(table, compiled.where, whole, compiled.params)]
        key = sort_key_sql(path, indexed=indexed)
        later = query.missing_last - {path}  # the keys after it keep their order
        return [
            _Part(
                table,
                f"({compiled.where}) AND {key} IS NOT NULL",
                order(compiled.constant, later),
                compiled.params,
            ),
            _Part(
                table,
                f"({compiled.where}) AND {key} IS NULL",
                order(compiled.constant | {path}, later),
                compiled.params,
            ),
        ]

    @staticmethod
    def _snapshot(
        db: sqlite3.Connection, collection: str, run: Callable[[sqlite3.Connection], T], empty: T
    ) -> T:
        """``run`` inside one read transaction, so the array paths and idx keys it compiles
        with and the documents it reads are the same snapshot; ``empty`` for a collection never
        written."""
        try:
            with transaction(db, "DEFERRED"):
                return run(db)
        except sqlite3.OperationalError as e:
            if _no_such_table(e):
                return empty
            raise

    # -- writes ---------------------------------------------------------------------------

    async def insert(
        self,
        collection: str,
        id: Any,
        document: dict[str, Any],
        etag: str,
        *,
        outbox: OutboxEntry | None = None,
    ) -> None:
        """Add a document; Conflict when the id exists."""
        table = quoted_table(collection)
        check_id(id)
        text = _dumps(document)
        entries = _checked_entries(outbox)

        def run(db: sqlite3.Connection) -> None:
            with self._writing(db, collection, document) as (keys, multikey):
                try:
                    db.execute(
                        f"INSERT INTO {table} (_id, doc, etag, idx) VALUES (?, ?, ?, ?)",
                        (id, text, etag, _narrow(document, keys)),
                    )
                except sqlite3.IntegrityError as e:
                    raise Conflict(f"{collection} {id!r} already exists") from e
                _add_keys(db, collection, id, document, multikey)
                self._put_entries(db, entries)

        await self.run_write(run)

    async def replace(
        self,
        collection: str,
        id: Any,
        document: dict[str, Any],
        etag: str,
        *,
        if_etag: str | None = None,
        outbox: OutboxEntry | None = None,
    ) -> None:
        """Overwrite a document.  The ETag comparison and the write are one UPDATE, so no other
        write can slip in between; when it changes nothing, a lookup tells NotFound from
        PreconditionFailed (still inside the write transaction)."""
        table = quoted_table(collection)
        check_id(id)
        text = _dumps(document)
        entries = _checked_entries(outbox)

        def run(db: sqlite3.Connection) -> None:
            with self._writing(db, collection, document) as (keys, multikey):
                sql = f"UPDATE {table} SET doc = ?, etag = ?, idx = ? WHERE _id = ?"
                params = (text, etag, _narrow(document, keys), id)
                _compare_and_set(db, sql, params, if_etag, collection, id)
                _drop_keys(db, collection, id, multikey)
                _add_keys(db, collection, id, document, multikey)
                self._put_entries(db, entries)

        await self.run_write(run)

    async def delete(
        self,
        collection: str,
        id: Any,
        *,
        if_etag: str | None = None,
        outbox: OutboxEntry | None = None,
    ) -> None:
        """Remove a document; NotFound and PreconditionFailed as for :meth:`replace`."""
        table = quoted_table(collection)
        check_id(id)
        entries = _checked_entries(outbox)

        def run(db: sqlite3.Connection) -> None:
            with self._writing(db, collection, None) as (_, multikey):
                sql = f"DELETE FROM {table} WHERE _id = ?"
                _compare_and_set(db, sql, (id,), if_etag, collection, id)
                _drop_keys(db, collection, id, multikey)
                self._put_entries(db, entries)

        await self.run_write(run)

    async def bulk_write(self, collection: str, writes: Sequence[Write]) -> list[bool]:
        """Every write in one transaction: an insert when ``if_etag`` is None, else a
        compare-and-set UPDATE (or DELETE, for a write without a document); False for each
        that found its id taken or its ETag changed.  The entries of the applied writes are
        upserted in the same transaction.

        A replacement whose ``idx`` comes out the same (a new price: only ``doc`` differs)
        writes ``doc`` and ``etag`` alone, so SQLite leaves the indexes on ``idx`` as they are,
        and the multikey rows, made from ``idx``'s values, stay too."""
        table = quoted_table(collection)
        for write in writes:
            check_id(write.id)
        _checked_entries(*(w.outbox for w in writes))
        insert = f"INSERT OR IGNORE INTO {table} (_id, doc, etag, idx) VALUES (?, ?, ?, ?)"
        update = f"UPDATE {table} SET doc = ?, etag = ?, idx = ? WHERE _id = ? AND etag = ?"
        update_doc = f"UPDATE {table} SET doc = ?, etag = ? WHERE _id = ? AND etag = ?"
        delete = f"DELETE FROM {table} WHERE _id = ?"

        def run(db: sqlite3.Connection) -> list[bool]:
            applied = []
            entries = []
            # The multikey rows of the documents written, inserted together at the end
            # (grouped by path: fewer B-tree pages touched than one document at a time; keys
            # of different types do not compare, so not sorted further); an id written again
            # in the batch keeps only its last document's rows.
            key_rows: dict[Any, list[tuple[str, Any, Any]]] = {}
            written = self._writing(db, collection, *(w.document for w in writes))
            with written as (keys, multikey):
                # Each id's idx as stored, kept current through the batch.
                idx_now = _idx_by_id(db, table, [w.id for w in writes if w.if_etag is not None])
                for write in writes:
                    id, document, if_etag = write.id, write.document, write.if_etag
                    idx, same = None, False
                    if document is None:
                        cursor = (
                            db.execute(delete, (id,))
                            if if_etag is None
                            else db.execute(f"{delete} AND etag = ?", (id, if_etag))
                        )
                    else:
                        text, idx = _dumps(document), _narrow(document, keys)
                        if if_etag is None:
                            cursor = db.execute(insert, (id, text, write.etag, idx))
                        elif idx_now.get(id) == idx:
                            same = True
                            cursor = db.execute(update_doc, (text, write.etag, id, if_etag))
                        else:
                            cursor = db.execute(update, (text, write.etag, idx, id, if_etag))
                    applied.append(cursor.rowcount == 1)
                    if cursor.rowcount != 1:
                        continue
                    if write.outbox is not None:
                        entries.append(write.outbox)
                    if same:
                        continue
                    idx_now[id] = idx
                    if if_etag is not None or document is None:
                        _drop_keys(db, collection, id, multikey)
                        key_rows.pop(id, None)
                    if document is not None and multikey:
                        key_rows[id] = _key_rows(id, document, multikey)
                if key_rows:
                    adding = (row for rows in key_rows.values() for row in rows)
                    _insert_keys(db, collection, sorted(adding, key=lambda row: row[0]))
                self._put_entries(db, entries)
            return applied

        return await self.run_write(run) if writes else []

    def _put_entries(self, db: sqlite3.Connection, entries: Sequence[OutboxEntry]) -> None:
        """Upsert outbox entries inside the caller's write transaction, with their idx keys,
        multikey rows and array paths as any write of their collection records them.  An
        entry still pending from an earlier write keeps its multikey rows when its idx is the
        same."""
        by_collection: dict[str, dict[Any, OutboxEntry]] = {}
        for entry in entries:
            # The last entry of an id is the one that stays.
            by_collection.setdefault(entry.collection, {})[entry.id] = entry
        for collection, latest in by_collection.items():
            group = list(latest.values())
            table = quoted_table(collection)
            self._create_table(db, collection)
            arrays = set().union(*(array_paths_of(e.document) for e in group))
            db.executemany(
                f"INSERT OR IGNORE INTO {_ARRAYS_TABLE} (collection, path) VALUES (?, ?)",
                [(collection, p) for p in sorted(arrays)],
            )
            keys, multikey = _indexed(db, collection)
            rows = [(e.id, _dumps(e.document), e.etag, _narrow(e.document, keys)) for e in group]
            idx_now = _idx_by_id(db, table, list(latest)) if multikey else {}
            db.executemany(
                f"INSERT INTO {table} (_id, doc, etag, idx) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (_id) DO UPDATE SET "
                "doc = excluded.doc, etag = excluded.etag, idx = excluded.idx",
                rows,
            )
            changed = [e for e, row in zip(group, rows, strict=True) if idx_now.get(e.id) != row[3]]
            stale = [e.id for e in changed if e.id in idx_now]
            if stale:
                db.execute(
                    f"DELETE FROM {_keys_table(collection)} "
                    "WHERE _id IN (SELECT value FROM json_each(?))",
                    (orjson.dumps(stale).decode(),),
                )
            if changed and multikey:
                _insert_keys(
                    db,
                    collection,
                    [row for e in changed for row in _key_rows(e.id, e.document, multikey)],
                )

    @contextlib.contextmanager
    def _writing(
        self, db: sqlite3.Connection, collection: str, *documents: Mapping[str, Any] | None
    ) -> Iterator[tuple[list[str], list[str]]]:
        """A write transaction on ``collection`` that also records the documents' array paths,
        yielding the collection's idx keys and multikey paths as of this transaction (another
        process may prepare with new ones: they are read here, never cached).

        The paths are committed with the document, so no reader can see the document without
        them.  The in-memory copies are updated only after the commit: a rolled-back write must
        not make later writes skip recording a path.  Every ``_STATISTICS_CHECK_EVERY`` writes
        the planner statistics are checked, so a store started empty gets them as it grows.
        """
        known = self._arrays.get(collection)
        with transaction(db, "IMMEDIATE"):
            self._create_table(db, collection)
            if known is None:
                known = set(_recorded_arrays(db, collection))
            new = set().union(*(array_paths_of(d) for d in documents if d is not None)) - known
            db.executemany(
                f"INSERT OR IGNORE INTO {_ARRAYS_TABLE} (collection, path) VALUES (?, ?)",
                [(collection, p) for p in sorted(new)],
            )
            yield _indexed(db, collection)
        self._tables.add(collection)
        self._arrays[collection] = known | new
        self._writes[collection] = self._writes.get(collection, 0) + 1
        if self._writes[collection] >= _STATISTICS_CHECK_EVERY:
            self._writes[collection] = 0
            self._statistics_due.add(collection)

    async def run_write(self, run: Callable[[sqlite3.Connection], T], *, bounded: bool = True) -> T:
        """As :meth:`SQLiteDatabase.run_write`, then the planner statistics a write made due."""
        try:
            return await super().run_write(run, bounded=bounded)
        finally:
            # Queued behind later writes, not awaited: no caller waits for statistics, and
            # a failure only leaves the old ones.
            while self._statistics_due:
                collection = self._statistics_due.pop()
                self.queue_write(functools.partial(self._refresh_statistics, collection=collection))


@dataclass(frozen=True)
class _Part:
    """One SELECT of a find: the rows of ``source`` matching ``where``, in ``order``."""

    source: str
    where: str
    order: str
    params: dict[str, Any]

    def select(self, limit: int, offset: int) -> tuple[str, dict[str, Any]]:
        """A page of the rows (``limit`` -1: all of them after ``offset``)."""
        sql = (
            f"SELECT _id, doc, etag FROM {self.source} WHERE {self.where} "
            f"ORDER BY {self.order} LIMIT :_limit OFFSET :_offset"
        )
        return sql, {**self.params, "_limit": limit, "_offset": offset}

    def count(self) -> tuple[str, dict[str, Any]]:
        return f"SELECT count(*) FROM {self.source} WHERE {self.where}", self.params


def _plan(db: sqlite3.Connection, sql: str, params: dict[str, Any]) -> list[str]:
    """The lines of SQLite's ``EXPLAIN QUERY PLAN`` of a statement."""
    return [row[3] for row in db.execute(f"EXPLAIN QUERY PLAN {sql}", params)]


def _compare_and_set(
    db: sqlite3.Connection,
    sql: str,
    params: tuple[Any, ...],
    if_etag: str | None,
    collection: str,
    id: Any,
) -> None:
    """Run a write on one id, only while its ETag is ``if_etag`` when given: the comparison
    and the write are one statement, so no other write can slip in between."""
    if if_etag is not None:
        sql += " AND etag = ?"
        params += (if_etag,)
    if db.execute(sql, params).rowcount == 0:
        _raise_missing_or_stale(db, quoted_table(collection), collection, id)


def _raise_missing_or_stale(db: sqlite3.Connection, table: str, collection: str, id: Any) -> None:
    if db.execute(f"SELECT 1 FROM {table} WHERE _id = ?", (id,)).fetchone() is None:
        raise NotFound(f"no {collection} {id!r}")
    raise PreconditionFailed(f"{collection} {id!r} has changed")


def _has_stat1(db: sqlite3.Connection) -> bool:
    sql = "SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'sqlite_stat1'"
    return db.execute(sql).fetchone() is not None


def _recorded_arrays(db: sqlite3.Connection, collection: str) -> list[str]:
    """The rows of ``_restplug_arrays`` for ``collection``, the marker included."""
    rows = db.execute(f"SELECT path FROM {_ARRAYS_TABLE} WHERE collection = ?", (collection,))
    return [row[0] for row in rows]


def _array_paths(db: sqlite3.Connection, collection: str) -> list[str]:
    """The array paths to compile with: as recorded when the collection records arrays inside
    arrays, else each recorded path also taken to hold them (a file from before)."""
    recorded = _recorded_arrays(db, collection)
    if _NESTED_RECORDED in recorded:
        return [path for path in recorded if path != _NESTED_RECORDED]
    return [*recorded, *(path + ELEMENT for path in recorded if not path.endswith(ELEMENT))]


def _indexed(db: sqlite3.Connection, collection: str) -> tuple[list[str], list[str]]:
    """The collection's idx keys and multikey paths, sorted; none for a collection never
    prepared."""
    sql = f"SELECT keys, multikey FROM {_INDEXED_TABLE} WHERE collection = ?"
    row = db.execute(sql, (collection,)).fetchone()
    return (orjson.loads(row[0]), orjson.loads(row[1])) if row else ([], [])


def _compile(
    db: sqlite3.Connection, collection: str, filter: Filter, *, drive_keys: bool = True
) -> CompiledFilter:
    """``filter`` compiled with what the collection records in this transaction."""
    indexed, multikey = _indexed(db, collection)
    return compile_filter(
        filter,
        array_paths=_array_paths(db, collection),
        indexed=indexed,
        multikey=multikey,
        keys_table=_keys_table(collection),
        drive_keys=drive_keys,
    )


def _idx_by_id(db: sqlite3.Connection, table: str, ids: Sequence[Any]) -> dict[Any, str]:
    """The stored idx of those of ``ids`` that are in ``table`` (quoted)."""
    if not ids:
        return {}
    sql = f"SELECT _id, idx FROM {table} WHERE _id IN (SELECT value FROM json_each(?))"
    return dict(db.execute(sql, (orjson.dumps(list(ids)).decode(),)).fetchall())


def _key_rows(
    id: Any, document: Mapping[str, Any], paths: Sequence[str]
) -> list[tuple[str, Any, Any]]:
    return [(path, key, id) for path in paths for key in multikeys(document, path)]


def _add_keys(
    db: sqlite3.Connection, collection: str, id: Any, document: Mapping[str, Any], paths: list[str]
) -> None:
    if paths:
        _insert_keys(db, collection, _key_rows(id, document, paths))


def _insert_keys(
    db: sqlite3.Connection, collection: str, rows: Iterable[tuple[str, Any, Any]]
) -> None:
    db.executemany(f"INSERT INTO {_keys_table(collection)} (path, key, _id) VALUES (?, ?, ?)", rows)


def _drop_keys(db: sqlite3.Connection, collection: str, id: Any, paths: list[str]) -> None:
    if paths:
        db.execute(f"DELETE FROM {_keys_table(collection)} WHERE _id = ?", (id,))


def _through_index(path: str) -> bool:
    """Whether a path has an array index among its segments."""
    return any(segment.isdigit() for segment in parse_path(path))


def _narrow(document: Mapping[str, Any], keys: Sequence[str]) -> str:
    """The idx value of ``document``: its ``keys`` (those it has), as JSON text."""
    return orjson.dumps({k: document[k] for k in keys if k in document}).decode()


def _keys_table(collection: str) -> str:
    """The quoted name of the collection's multikey table (the name is checked by
    :func:`quoted_table`)."""
    quoted_table(collection)
    return f'"{collection}:keys"'


def _checked_entries(*entries: OutboxEntry | None) -> list[OutboxEntry]:
    """The entries given, their collection names and ids checked before any transaction."""
    present = [entry for entry in entries if entry is not None]
    for entry in present:
        quoted_table(entry.collection)
        check_id(entry.id)
    return present


def _rank_json(rank: Sequence[Any]) -> str:
    """The ranked ids as a JSON array, first occurrence of each kept."""
    ids = list(dict.fromkeys(rank))
    for id in ids:
        check_id(id)
    return orjson.dumps(ids).decode()


def _dumps(document: dict[str, Any]) -> str:
    return orjson.dumps(document).decode()


def _stored(row: tuple[Any, str, str]) -> Stored:
    return Stored(id=row[0], document=orjson.loads(row[1]), etag=row[2])


def _no_such_table(error: sqlite3.OperationalError) -> bool:
    return str(error).startswith("no such table")


__all__ = ["SQLiteStore", "register_backends"]
