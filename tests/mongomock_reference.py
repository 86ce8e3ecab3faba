"""A DocumentStore over mongomock: the reference the store contract and the SQLite filter
compiler are checked against.

Each document is kept as ``{"_id": id, "doc": document, "etag": etag}`` and every filter or sort
path ``p`` is rewritten to ``doc.p``, so the query is answered by mongomock's own matcher.
mongomock is not MongoDB; the corners where it differs are listed where they matter
(``MONGOMOCK_DEVIATIONS`` here, and the strategies of test_filter_semantics.py).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import mongomock
from mongomock import filtering

from restplug.errors import BackendUnavailable, Conflict, NotFound, PreconditionFailed
from restplug.stores.protocol import Filter, FindQuery, OutboxEntry, Stored, Write

# Contract cases mongomock answers unlike MongoDB: it compares with Python's ==, where
# 1 == True and 0 == False.  MongoDB never lets a boolean equal a number.
MONGOMOCK_DEVIATIONS = {
    "bool-not-number-eq-1": "mongomock: 1 == True in Python",
    "bool-not-number-eq-true": "mongomock: True == 1 in Python",
    "bool-not-number-in-0": "mongomock: False == 0 in Python",
}


class MongomockStore:
    """The DocumentStore protocol on a mongomock client; pass one client to several stores to
    see the same data (what "closing and opening again" means here)."""

    def __init__(self, client: mongomock.MongoClient | None = None) -> None:
        self._database = (client or mongomock.MongoClient())["restplug"]
        self._open = False

    @property
    def _db(self) -> mongomock.Database:
        """The database, while the store is open (a closed MongoDB client refuses calls)."""
        if not self._open:
            raise BackendUnavailable("the mongomock store is not open")
        return self._database

    async def open(self) -> None:
        self._open = True

    async def close(self) -> None:
        self._open = False

    async def ping(self) -> None:
        self._db.command("ping")

    async def prepare(self, collection: str, index_paths: Sequence[str]) -> None:
        for path in index_paths:
            self._db[collection].create_index(_field(path))

    async def get(self, collection: str, id: Any) -> Stored | None:
        raw = self._db[collection].find_one({"_id": id})
        return _stored(raw) if raw else None

    async def find(self, collection: str, query: FindQuery) -> list[Stored]:
        """mongomock filters; it also sorts, unless the query has a ``rank`` (sorted here by
        position) or ``missing_last`` keys, which MongoDB has no option for (sorted here,
        with mongomock's own sort keys, nulls moved last where asked)."""
        found = self._db[collection].find(_rewrite(query.filter, query.rank))
        sort = list(query.sort)
        if not any(path == "_id" for path, _ in sort):
            sort.append(("_id", sort[-1][1] if sort else 1))
        if query.rank is not None:
            position = {id: i for i, id in reversed(list(enumerate(query.rank)))}
            raws = sorted(found, key=lambda raw: position[raw["_id"]])
        elif query.missing_last:
            raws = list(found)
            for path, direction in reversed(sort):
                last = direction == 1 and path in query.missing_last
                raws.sort(key=_sort_key(_field(path), last), reverse=direction == -1)
        else:
            raws = list(found.sort([(_field(path), direction) for path, direction in sort]))
        end = None if query.limit is None else query.skip + query.limit
        return [_stored(raw) for raw in raws[query.skip : end]]

    async def count(
        self, collection: str, filter: Filter, rank: Sequence[Any] | None = None
    ) -> int:
        return self._db[collection].count_documents(_rewrite(filter, rank))

    async def insert(
        self,
        collection: str,
        id: Any,
        document: dict[str, Any],
        etag: str,
        *,
        outbox: OutboxEntry | None = None,
    ) -> None:
        if self._db[collection].find_one({"_id": id}) is not None:
            raise Conflict(id)
        self._db[collection].insert_one({"_id": id, "doc": document, "etag": etag})
        self._put(outbox)

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
        match = {"_id": id} if if_etag is None else {"_id": id, "etag": if_etag}
        new = {"_id": id, "doc": document, "etag": etag}
        if self._db[collection].replace_one(match, new).matched_count == 0:
            self._missing_or_stale(collection, id)
        self._put(outbox)

    async def delete(
        self,
        collection: str,
        id: Any,
        *,
        if_etag: str | None = None,
        outbox: OutboxEntry | None = None,
    ) -> None:
        match = {"_id": id} if if_etag is None else {"_id": id, "etag": if_etag}
        if self._db[collection].delete_one(match).deleted_count == 0:
            self._missing_or_stale(collection, id)
        self._put(outbox)

    async def bulk_write(self, collection: str, writes: Sequence[Write]) -> list[bool]:
        """One write after the other, each with its entry (mongomock has no transactions;
        nothing runs between: no await)."""
        applied = []
        for write in writes:
            match = (
                {"_id": write.id}
                if write.if_etag is None
                else {"_id": write.id, "etag": write.if_etag}
            )
            if write.document is None:
                done = self._db[collection].delete_one(match).deleted_count == 1
            elif write.if_etag is None:
                done = self._db[collection].find_one({"_id": write.id}) is None
                if done:
                    self._db[collection].insert_one(_raw(write))
            else:
                done = self._db[collection].replace_one(match, _raw(write)).matched_count == 1
            if done:
                self._put(write.outbox)
            applied.append(done)
        return applied

    def _put(self, entry: OutboxEntry | None) -> None:
        if entry is not None:
            new = {"_id": entry.id, "doc": entry.document, "etag": entry.etag}
            self._db[entry.collection].replace_one({"_id": entry.id}, new, upsert=True)

    def _missing_or_stale(self, collection: str, id: Any) -> None:
        if self._db[collection].find_one({"_id": id}) is None:
            raise NotFound(id)
        raise PreconditionFailed(id)


def _raw(write: Write) -> dict[str, Any]:
    return {"_id": write.id, "doc": write.document, "etag": write.etag}


def _field(path: str) -> str:
    return path if path == "_id" else f"doc.{path}"


def _rewrite(filter: Filter, rank: Sequence[Any] | None = None) -> Filter:
    """``filter`` on the stored layout (``doc.`` before each path), limited to ``rank``."""
    out: Filter = {}
    for key, value in filter.items():
        if key in ("$and", "$or"):
            out[key] = [_rewrite(f) for f in value]
        else:
            out[_field(key)] = value
    return out if rank is None else {"$and": [out, {"_id": {"$in": list(rank)}}]}


def _sort_key(path: str, missing_last: bool) -> Callable[[dict[str, Any]], Any]:
    def key(raw: dict[str, Any]) -> Any:
        value = filtering.resolve_key(path, raw)
        missing = value is None or value is filtering.NOTHING
        return (missing and missing_last, filtering.resolve_sort_key(path, raw))

    return key


def _stored(raw: dict[str, Any]) -> Stored:
    return Stored(id=raw["_id"], document=raw["doc"], etag=raw["etag"])
