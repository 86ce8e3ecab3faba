"""The builtin search index: SQLite FTS5 (plugin ``sqlite_search``).

``RESTPLUG_SEARCH_URL=sqlite:///var/search.db`` (relative to the working directory) or
``sqlite:////abs/path.db``.  Each collection has two tables:

- ``"<collection>.fts"``, an FTS5 table with an unindexed ``_id`` column and one column per
  search field (the text of a list field is its elements joined with spaces);
- ``"<collection>.ids"``, the map from document ids (ints or strings, kept apart as in the store)
  to the FTS rows, so an upsert or a delete finds its row through an index rather than by
  scanning the unindexed ``_id`` column.

A collection name has no dot and FTS5 only appends to a table's name for its shadow tables
(``apps.fts_data``), so no two collections' tables can collide.

Text is folded by the ``unicode61 remove_diacritics 2`` tokenizer ("cafe" finds "café") after NFKC
normalisation (a decomposed "é" or a ligature matches its composed form).  Results are ranked by
BM25 with the resource's per-field weights; the score is negated so that higher is better.

User text is never FTS5 syntax: it is cut into words, each quoted and made a prefix
(``"witch"*``), all of which must match.  A rebuild fills ``"<collection>.new.fts"`` while
searches keep reading the old table, then swaps the tables in one transaction.  Changes arriving
during a rebuild are written to both tables, and the rebuild leaves alone the ids they touched
(their version is at least as new as the one it streams; a delete leaves its id behind in the new
map as a tombstone, an id without a row, which is harmless).
"""

from __future__ import annotations

import asyncio
import collections
import functools
import logging
import re
import sqlite3
import unicodedata
from collections.abc import AsyncIterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from restplug import hookimpl
from restplug.backends import Backend
from restplug.errors import BackendUnavailable
from restplug.sqlitedb import SQLiteDatabase, check_id, quoted_table, transaction

if TYPE_CHECKING:
    from restplug.config import Settings

from restplug.search.protocol import texts_at

log = logging.getLogger("restplug.search")

_TOKENIZER = "unicode61 remove_diacritics 2"
# Prefix indexes for 2- and 3-character prefixes: type-ahead's shortest words would otherwise
# expand to thousands of terms at query time.
_PREFIX_INDEXES = "2 3"
_BATCH = 500  # documents per rebuild transaction
_FIELD = re.compile(r"[A-Za-z0-9_]+(?:\.[A-Za-z0-9_]+)*")
_RESERVED_COLUMNS = {"_id", "rank", "rowid"}
# A word of user text: letters and digits, as the unicode61 tokenizer cuts them.
_WORD = re.compile(r"[^\W_]+")


@hookimpl
def register_backends() -> list[Backend]:
    """This module is the builtin plugin ``sqlite_search``: it answers ``sqlite://`` URLs."""
    return [Backend(kind="search", schemes=("sqlite",), factory=_from_settings)]


def _from_settings(url: str, settings: Settings) -> SQLiteSearchIndex:
    return SQLiteSearchIndex(url, timeout_ms=settings.query_timeout_ms)


@dataclass(frozen=True)
class _Tables:
    """A collection's FTS5 table and id map, live or being rebuilt (names unquoted)."""

    fts: str
    ids: str
    building: bool

    @classmethod
    def of(cls, collection: str, *, building: bool = False) -> _Tables:
        quoted_table(collection)  # the store's rule for collection names keeps the quoting safe
        base = f"{collection}.new" if building else collection
        return cls(f"{base}.fts", f"{base}.ids", building)


class SQLiteSearchIndex:
    """A :class:`restplug.search.SearchIndex` in one SQLite file of its own, with FTS5: the file
    holds the index's tables and nothing else.

    ``timeout_ms`` bounds every statement, as in the store.
    """

    def __init__(self, url: str, *, timeout_ms: int = 5000) -> None:
        # The same machinery as the store's own file (WAL, one writer thread, pooled readers,
        # the time bound), on this file alone.
        self._db = SQLiteDatabase(url, timeout_ms=timeout_ms)
        self.timeout_ms = timeout_ms
        # Search fields and weights of each prepared collection, in column order.
        self._fields: dict[str, dict[str, float]] = {}
        self._rebuilding: collections.defaultdict[str, asyncio.Lock] = collections.defaultdict(
            asyncio.Lock
        )

    async def open(self) -> None:
        """Create the file (and its folder) if needed, in WAL mode, and open the connections."""
        await self._db.open()

    async def close(self) -> None:
        """Let running calls finish, close every connection."""
        await self._db.close()

    async def ping(self) -> None:
        """Run a trivial query on a reader connection."""
        await self._db.ping()

    async def prepare(self, collection: str, fields: Mapping[str, float]) -> None:
        """Create the collection's tables if needed.

        When the table exists with other columns (the resource's search fields changed), it is
        replaced by an empty one and a warning asks for ``restplug reindex``: the old text
        cannot be mapped to the new fields.  A change of weights alone needs nothing: weights
        are given with each query.
        """
        fields = _checked_fields(fields)
        tables = _Tables.of(collection)

        def run(db: sqlite3.Connection) -> bool:
            with transaction(db, "IMMEDIATE"):
                columns = [row[1] for row in db.execute(f'PRAGMA table_info("{tables.fts}")')]
                replaced = bool(columns) and columns != ["_id", *fields]
                if replaced:
                    _drop(db, tables)
                _create(db, tables, fields)
            return replaced

        if await self._db.run_write(run):
            log.warning(
                "the search fields of %s changed: its search index was emptied; "
                "run `restplug reindex %s`",
                collection,
                collection,
            )
        self._fields[collection] = fields

    async def upsert(self, collection: str, id: Any, document: Mapping[str, Any]) -> None:
        """Index one document (replacing its previous text), in the rebuild's tables too while
        a rebuild runs."""
        fields = self._prepared(collection)
        check_id(id)
        texts = _texts(document, fields)

        def run(db: sqlite3.Connection) -> None:
            with transaction(db, "IMMEDIATE"):
                for tables in _targets(db, collection):
                    _put(db, tables, fields, id, texts)

        await self._db.run_write(run)

    async def update_many(
        self, collection: str, changes: Sequence[tuple[Any, Mapping[str, Any] | None]]
    ) -> None:
        """Apply many (id, document) changes in one transaction, in order: an upsert each, a
        delete where the document is ``None``.  What :meth:`upsert` and :meth:`delete` do one
        at a time, for the writes of a package or a demo-data batch."""
        fields = self._prepared(collection)
        for id, _ in changes:
            check_id(id)

        def run(db: sqlite3.Connection) -> None:
            # A package's texts take long enough to stall reads: made here, off the event loop.
            prepared = [
                (id, None if document is None else _texts(document, fields))
                for id, document in changes
            ]
            with transaction(db, "IMMEDIATE"):
                for tables in _targets(db, collection):
                    for id, texts in prepared:
                        if texts is None:
                            _remove(db, tables, id)
                        else:
                            _put(db, tables, fields, id, texts)

        await self._db.run_write(run)

    async def delete(self, collection: str, id: Any) -> None:
        """Remove one document; an absent one is not an error.  While a rebuild runs, the id
        stays in its id map as a tombstone so the rebuild does not bring the document back."""
        self._prepared(collection)
        check_id(id)

        def run(db: sqlite3.Connection) -> None:
            with transaction(db, "IMMEDIATE"):
                for tables in _targets(db, collection):
                    _remove(db, tables, id)

        await self._db.run_write(run)

    async def search(self, collection: str, text: str, limit: int) -> list[tuple[Any, float]]:
        """At most ``limit`` (id, score) pairs, best first; every word of ``text`` must match
        a word of some search field as a prefix.  No words, no results."""
        fields = self._prepared(collection)
        match = _match(text)
        if match is None or limit <= 0:
            return []
        fts = _Tables.of(collection).fts
        weights = ", ".join("?" * len(fields))
        # Ties (equal scores) are broken by row, so that repeated searches agree.
        sql = (
            f'SELECT _id, -bm25("{fts}", 0, {weights}) AS score FROM "{fts}" '
            f'WHERE "{fts}" MATCH ? ORDER BY score DESC, rowid LIMIT ?'
        )
        params = (*fields.values(), match, limit)
        return await self._db.run_read(
            lambda db: [(row[0], row[1]) for row in db.execute(sql, params)]
        )

    async def rebuild(
        self, collection: str, documents: AsyncIterable[tuple[Any, Mapping[str, Any]]]
    ) -> int:
        """Fill new tables from ``documents`` in batches, then swap them in; searches answer
        from the old tables until the swap.  On any failure the new tables are dropped and the
        old ones stay.  Returns how many documents were read."""
        fields = self._prepared(collection)
        live, building = _Tables.of(collection), _Tables.of(collection, building=True)

        def start(db: sqlite3.Connection) -> None:
            with transaction(db, "IMMEDIATE"):
                _drop(db, building)  # left over by a rebuild that died
                _create(db, building, fields)

        def fill(batch: list[tuple[Any, list[str]]], db: sqlite3.Connection) -> None:
            with transaction(db, "IMMEDIATE"):
                for id, texts in batch:
                    if _rowid(db, building, id, create=False) is None:  # else changed meanwhile
                        _put(db, building, fields, id, texts)

        def swap(db: sqlite3.Connection) -> None:
            with transaction(db, "IMMEDIATE"):
                _drop(db, live)
                db.execute(f'ALTER TABLE "{building.fts}" RENAME TO "{live.fts}"')
                db.execute(f'ALTER TABLE "{building.ids}" RENAME TO "{live.ids}"')

        async with self._rebuilding[collection]:
            await self._db.run_write(start)
            try:
                count = 0
                batch: list[tuple[Any, list[str]]] = []
                async for id, document in documents:
                    check_id(id)
                    batch.append((id, _texts(document, fields)))
                    count += 1
                    if len(batch) == _BATCH:
                        await self._db.run_write(functools.partial(fill, batch))
                        batch = []
                if batch:
                    await self._db.run_write(functools.partial(fill, batch))
                await self._db.run_write(swap)
            except BaseException:
                # Best effort: tables left behind cost only the double writes, until the next
                # rebuild drops them.
                try:
                    await self._db.run_write(lambda db: _drop(db, building))
                except Exception as e:
                    log.warning(
                        "could not drop the unfinished search index of %s: %s", collection, e
                    )
                raise
        return count

    def _prepared(self, collection: str) -> dict[str, float]:
        fields = self._fields.get(collection)
        if fields is None:
            # Preparing happens at start-up; a collection missing here means it failed then.
            raise BackendUnavailable(f"the search index of {collection!r} is not prepared")
        return fields


def _checked_fields(fields: Mapping[str, float]) -> dict[str, float]:
    """The fields as a dict, each a dotted path usable as a column, with a positive weight."""
    if not fields:
        raise ValueError("a search index needs at least one field")
    checked = {path: float(weight) for path, weight in fields.items()}
    lowered = [path.lower() for path in checked]  # SQLite column names ignore case
    for path, weight in checked.items():
        if not _FIELD.fullmatch(path) or path.lower() in _RESERVED_COLUMNS:
            raise ValueError(f"invalid search field {path!r}")
        if lowered.count(path.lower()) > 1:
            raise ValueError(f"search field {path!r} is given twice (ignoring case)")
        if not weight > 0:
            raise ValueError(f"search field {path!r} needs a positive weight, not {weight}")
    return checked


def _create(db: sqlite3.Connection, tables: _Tables, fields: Mapping[str, float]) -> None:
    columns = ", ".join(f'"{path}"' for path in fields)
    db.execute(
        f'CREATE VIRTUAL TABLE IF NOT EXISTS "{tables.fts}" USING fts5(_id UNINDEXED, {columns}, '
        f"tokenize = '{_TOKENIZER}', prefix = '{_PREFIX_INDEXES}')"
    )
    # _id has no declared type, so 1 and "1" stay an integer and a string (as in the store).
    db.execute(
        f'CREATE TABLE IF NOT EXISTS "{tables.ids}" (rid INTEGER PRIMARY KEY, _id UNIQUE NOT NULL)'
    )


def _drop(db: sqlite3.Connection, tables: _Tables) -> None:
    db.execute(f'DROP TABLE IF EXISTS "{tables.fts}"')
    db.execute(f'DROP TABLE IF EXISTS "{tables.ids}"')


def _targets(db: sqlite3.Connection, collection: str) -> list[_Tables]:
    """The tables a change goes to: the live ones, and the rebuild's while one runs (possibly
    in another process, hence asked of the schema inside the write transaction)."""
    live, building = _Tables.of(collection), _Tables.of(collection, building=True)
    sql = "SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?"
    return [live, building] if db.execute(sql, (building.ids,)).fetchone() else [live]


def _rowid(db: sqlite3.Connection, tables: _Tables, id: Any, *, create: bool) -> int | None:
    row = db.execute(f'SELECT rid FROM "{tables.ids}" WHERE _id = ?', (id,)).fetchone()
    if row is not None:
        return row[0]
    if create:
        return db.execute(f'INSERT INTO "{tables.ids}" (_id) VALUES (?)', (id,)).lastrowid
    return None


def _put(
    db: sqlite3.Connection,
    tables: _Tables,
    fields: Mapping[str, float],
    id: Any,
    texts: Sequence[str],
) -> None:
    """Index ``texts`` under ``id``; a row holding them already is left alone (a package
    changing only prices rewrites no text)."""
    columns = ", ".join(f'"{path}"' for path in fields)
    rowid = _rowid(db, tables, id, create=False)
    if rowid is None:
        rowid = db.execute(f'INSERT INTO "{tables.ids}" (_id) VALUES (?)', (id,)).lastrowid
    else:
        sql = f'SELECT {columns} FROM "{tables.fts}" WHERE rowid = ?'
        if db.execute(sql, (rowid,)).fetchone() == tuple(texts):
            return
        db.execute(f'DELETE FROM "{tables.fts}" WHERE rowid = ?', (rowid,))
    marks = ", ".join("?" * len(fields))
    db.execute(
        f'INSERT INTO "{tables.fts}" (rowid, _id, {columns}) VALUES (?, ?, {marks})',
        (rowid, id, *texts),
    )


def _remove(db: sqlite3.Connection, tables: _Tables, id: Any) -> None:
    # In a rebuild's map the id stays, as a tombstone: the rebuild must not bring it back.
    rowid = _rowid(db, tables, id, create=tables.building)
    if rowid is None:
        return
    db.execute(f'DELETE FROM "{tables.fts}" WHERE rowid = ?', (rowid,))
    if not tables.building:
        db.execute(f'DELETE FROM "{tables.ids}" WHERE rid = ?', (rowid,))


def _texts(document: Mapping[str, Any], fields: Mapping[str, float]) -> list[str]:
    """The text of each search field: strings and numbers at its path, through lists."""
    return [unicodedata.normalize("NFKC", " ".join(texts_at(document, path))) for path in fields]


def _match(text: str) -> str | None:
    """User text as an FTS5 query: each word quoted (so nothing in it is syntax) and a prefix,
    all of them required; None when there is no word."""
    words = dict.fromkeys(_WORD.findall(unicodedata.normalize("NFKC", text)))
    return " ".join(f'"{word}"*' for word in words) or None


__all__ = ["SQLiteSearchIndex", "register_backends"]
