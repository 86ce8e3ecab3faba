"""A :class:`restplug.DocumentStore` on MongoDB, through PyMongo's async API.

``RESTPLUG_STORE_URL=mongodb://host:27017/restplug?replicaSet=rs0`` (or ``mongodb+srv://``): the
URL goes to ``pymongo.AsyncMongoClient`` as it is (credentials, TLS, replica set and pool options
included); its path names the database (``restplug`` when it names none).

**Layout.**  Each collection holds the documents as they are, with the id as ``_id`` and the ETag
beside it as ``_etag``: the core's filters (MongoDB's own syntax) and sorts go to the server
unchanged, and the collection reads like any other MongoDB data.  A document may not hold the
top-level keys ``_id`` and ``_etag`` itself.

**Writes.**  ``If-Match`` is a compare-and-set in the write's filter (``{"_id": id, "_etag":
etag}``): of two writers holding the same ETag, the server lets one match.  A write that comes
with an outbox entry (:class:`restplug.OutboxEntry`) runs in a multi-document transaction with
the entry's upsert, so no crash keeps the one without the other.  MongoDB has transactions on
replica sets and sharded clusters only: :meth:`MongoStore.open` refuses a standalone server with
one line saying how to make it a (single-node) replica set, rather than write without them.

**Reads.**  Every find and count carries ``maxTimeMS`` (``RESTPLUG_QUERY_TIMEOUT_MS``); past it the
server stops the query and the store raises :class:`restplug.QueryTimeout`.  A lost connection,
an election or an unreachable server is :class:`restplug.BackendUnavailable`; PyMongo keeps
monitoring the servers and the next call after they are back goes through, with no restart.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import Any, Protocol, TypeVar
from urllib.parse import unquote, urlsplit

from pymongo import AsyncMongoClient, DeleteOne, InsertOne, ReplaceOne
from pymongo.errors import (
    BulkWriteError,
    CollectionInvalid,
    ConfigurationError,
    ConnectionFailure,
    DuplicateKeyError,
    ExecutionTimeout,
    InvalidOperation,
    OperationFailure,
)

from restplug import (
    BackendUnavailable,
    ConfigError,
    Conflict,
    FindQuery,
    NotFound,
    OutboxEntry,
    PreconditionFailed,
    QueryTimeout,
    Stored,
    Write,
)

T = TypeVar("T")
Filter = dict[str, Any]

ETAG = "_etag"
DEFAULT_DATABASE = "restplug"
#: How long an operation waits for a server to answer before the store reports it unavailable,
#: unless the URL says otherwise (PyMongo's own default, 30 s, would hold every request of an
#: outage for 30 s).
SERVER_SELECTION_TIMEOUT_MS = 5000
#: MongoDB's error code for a query stopped by its ``maxTimeMS``.
MAX_TIME_EXPIRED = 50
#: MongoDB's error codes for an index made again under another name, and for a collection
#: created again.
INDEX_OPTIONS_CONFLICT = 85
NAMESPACE_EXISTS = 48
#: How often a bulk write is tried again when another write changed its documents between the
#: transaction's read and its writes (the transaction then aborts, leaving nothing behind).
BULK_ATTEMPTS = 5
# A computed sort key of the aggregation that puts nulls last; removed before documents return.
_LAST = "_restplug_last_"


class ClientFactory(Protocol):
    """What builds the client: ``pymongo.AsyncMongoClient`` itself in production.

    Tests without a MongoDB server pass a factory of a stand-in that presents the part of the
    ``AsyncMongoClient`` surface this store uses (see ``tests/mongomock_async.py``); everything
    else in the store is the code that runs against a real server.
    """

    def __call__(self, url: str, **options: Any) -> Any: ...


def default_client(url: str, **options: Any) -> Any:
    """A ``pymongo.AsyncMongoClient`` for ``url``."""
    return AsyncMongoClient(url, **options)


class MongoStore:
    """The DocumentStore protocol on one MongoDB database.

    ``timeout_ms`` is each query's ``maxTimeMS``.  ``client_factory`` builds the client at
    :meth:`open`.
    """

    def __init__(
        self,
        url: str,
        *,
        timeout_ms: int = 5000,
        client_factory: ClientFactory = default_client,
    ) -> None:
        self._url = url
        self._timeout_ms = timeout_ms
        self._client_factory = client_factory
        self._database_name = unquote(urlsplit(url).path.lstrip("/")) or DEFAULT_DATABASE
        self._client: Any = None

    # -- life cycle -------------------------------------------------------------------------

    async def open(self) -> None:
        """Connect, and check that the server runs transactions (see the module's docs)."""
        if self._client is not None:
            return
        options: dict[str, Any] = {"appname": "restplug"}
        if "serverselectiontimeoutms" not in self._url.lower():
            options["serverSelectionTimeoutMS"] = SERVER_SELECTION_TIMEOUT_MS
        try:
            self._client = self._client_factory(self._url, **options)
        except (ConfigurationError, ValueError) as e:
            raise ConfigError(f"RESTPLUG_STORE_URL={self._url!r}: {e}") from None
        try:
            with self._translated():
                hello = await self._db.command("hello")
        except BaseException:
            await self.close()
            raise
        if "setName" not in hello and hello.get("msg") != "isdbgrid":
            await self.close()
            raise ConfigError(
                f"RESTPLUG_STORE_URL={self._url!r} is a standalone MongoDB server: restplug "
                "writes each document with its outbox entry in a transaction, which MongoDB "
                "runs on replica sets only. Start mongod with --replSet rs0 and run "
                "rs.initiate() once (a single node is enough), then add ?replicaSet=rs0 to the URL"
            )

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.close()

    async def ping(self) -> None:
        with self._translated():
            await self._db.command("ping")

    # -- schema -----------------------------------------------------------------------------

    async def prepare(self, collection: str, index_paths: Sequence[str]) -> None:
        """An index on ``(path, _id)`` per path: equality, ranges and sorts on the path, ties
        broken by id in either direction.  Where some document holds an array on the path,
        MongoDB makes it multikey by itself.  Creating an index that exists is a no-op, and one
        a deployer made on the same keys under another name serves as well.  The collection
        is created first, so that transactions never have to create it."""
        with self._translated():
            # Another process may create the collection between PyMongo's check and the create.
            with contextlib.suppress(CollectionInvalid), _ignoring(NAMESPACE_EXISTS):
                await self._db.create_collection(collection)
            for path in index_paths:
                if path != "_id":
                    with _ignoring(INDEX_OPTIONS_CONFLICT):
                        keys = [(path, 1), ("_id", 1)]
                        await self._db[collection].create_index(keys, name=path)

    # -- reads ------------------------------------------------------------------------------

    async def get(self, collection: str, id: Any) -> Stored | None:
        with self._translated():
            raw = await self._db[collection].find_one({"_id": id}, max_time_ms=self._timeout_ms)
        return _stored(raw) if raw is not None else None

    async def find(self, collection: str, query: FindQuery) -> list[Stored]:
        """The page in the query's order; ties, and a query without sort, by ``_id`` in the
        direction of the last key."""
        if query.skip < 0 or (query.limit is not None and query.limit < 0):
            raise ValueError("skip and limit cannot be negative")
        if query.limit == 0:  # for MongoDB, a limit of 0 means none
            return []
        if query.rank is not None:
            return await self._find_ranked(collection, query)
        sort = list(query.sort)
        if not any(path == "_id" for path, _ in sort):
            sort.append(("_id", sort[-1][1] if sort else 1))
        last = [path for path, direction in sort if direction == 1 and path in query.missing_last]
        with self._translated():
            if last:
                raws = await self._find_missing_last(collection, query, sort, last)
            else:
                cursor = self._db[collection].find(
                    query.filter,
                    sort=sort,
                    skip=query.skip,
                    limit=query.limit or 0,
                    max_time_ms=self._timeout_ms,
                )
                raws = await cursor.to_list(None)
        return [_stored(raw) for raw in raws]

    async def _find_missing_last(
        self, collection: str, query: FindQuery, sort: list[tuple[str, int]], last: list[str]
    ) -> list[dict[str, Any]]:
        """MongoDB sorts nulls first and has no option to move them: an aggregation computes,
        per ``missing_last`` key, whether the value is null or missing, and sorts on that
        first.  The filter is matched first, from the indexes; the sort is then done on the
        matches (``allowDiskUse`` lets a large one spill to disk)."""
        flags = {f"{_LAST}{i}": _is_null(path) for i, path in enumerate(last)}
        keys: dict[str, int] = {}
        for path, direction in sort:
            if path in last:
                keys[f"{_LAST}{last.index(path)}"] = 1
            keys[path] = direction
        pipeline: list[dict[str, Any]] = [
            {"$match": query.filter},
            {"$addFields": flags},
            {"$sort": keys},
        ]
        if query.skip:
            pipeline.append({"$skip": query.skip})
        if query.limit is not None:
            pipeline.append({"$limit": query.limit})
        pipeline.append({"$project": dict.fromkeys(flags, 0)})
        cursor = await self._db[collection].aggregate(
            pipeline, maxTimeMS=self._timeout_ms, allowDiskUse=True
        )
        return await cursor.to_list(None)

    async def _find_ranked(self, collection: str, query: FindQuery) -> list[Stored]:
        """The matches among the ranked ids, in the rank's order: the ids of the matches are
        read first (from the ``_id`` index), the documents of the page's ids only."""
        ranked = list(dict.fromkeys(query.rank or ()))
        with self._translated():
            cursor = self._db[collection].find(
                _within(query.filter, ranked), {"_id": 1}, max_time_ms=self._timeout_ms
            )
            matching = {raw["_id"] for raw in await cursor.to_list(None)}
            end = None if query.limit is None else query.skip + query.limit
            page = [id for id in ranked if id in matching][query.skip : end]
            if not page:
                return []
            cursor = self._db[collection].find({"_id": {"$in": page}}, max_time_ms=self._timeout_ms)
            found = {raw["_id"]: raw for raw in await cursor.to_list(None)}
        return [_stored(found[id]) for id in page if id in found]

    async def count(
        self, collection: str, filter: Filter, rank: Sequence[Any] | None = None
    ) -> int:
        """Exact.  With no filter and no rank, from the collection's metadata (no scan):
        ``estimated_document_count`` is the exact count on a replica set, short of orphaned
        documents during a sharded cluster's chunk migration."""
        coll = self._db[collection]
        with self._translated():
            if not filter and rank is None:
                return await coll.estimated_document_count(maxTimeMS=self._timeout_ms)
            if rank is not None:
                filter = _within(filter, list(dict.fromkeys(rank)))
            return await coll.count_documents(filter, maxTimeMS=self._timeout_ms)

    # -- writes -----------------------------------------------------------------------------

    async def insert(
        self,
        collection: str,
        id: Any,
        document: dict[str, Any],
        etag: str,
        *,
        outbox: OutboxEntry | None = None,
    ) -> None:
        raw = _raw(id, document, etag)

        async def run(session: Any) -> None:
            try:
                await self._db[collection].insert_one(raw, session=session)
            except DuplicateKeyError as e:
                raise Conflict(f"{collection} {id!r} already exists") from e
            await self._put_entries([outbox] if outbox else [], session)

        await self._write(run, transaction=outbox is not None)

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
        """Compare-and-set: the ETag is part of the update's filter."""
        raw = _raw(id, document, etag)

        async def run(session: Any) -> None:
            coll = self._db[collection]
            result = await coll.replace_one(_match(id, if_etag), raw, session=session)
            if result.matched_count == 0:
                await self._raise_missing_or_stale(collection, id, session)
            await self._put_entries([outbox] if outbox else [], session)

        await self._write(run, transaction=outbox is not None)

    async def delete(
        self,
        collection: str,
        id: Any,
        *,
        if_etag: str | None = None,
        outbox: OutboxEntry | None = None,
    ) -> None:
        async def run(session: Any) -> None:
            result = await self._db[collection].delete_one(_match(id, if_etag), session=session)
            if result.deleted_count == 0:
                await self._raise_missing_or_stale(collection, id, session)
            await self._put_entries([outbox] if outbox else [], session)

        await self._write(run, transaction=outbox is not None)

    async def bulk_write(self, collection: str, writes: Sequence[Write]) -> list[bool]:
        """All writes in one transaction and one unordered ``bulk_write``.

        A bulk write's result only counts what applied, so the transaction first reads the
        ETags of the ids written, works out which writes apply (in order: a batch may insert a
        document and replace it next), and sends one write per id, from the state read to the
        last state, each still a compare-and-set on the ETag read.  When the counts differ from
        the plan (another write came in between), the transaction aborts and is tried again.
        """
        if not writes:
            return []
        raws = [None if w.document is None else _raw(w.id, w.document, w.etag) for w in writes]
        coll = self._db[collection]

        async def run(session: Any) -> list[bool]:
            ids = list(dict.fromkeys(w.id for w in writes))
            cursor = coll.find({"_id": {"$in": ids}}, {ETAG: 1}, session=session)
            etags = {raw["_id"]: raw.get(ETAG) for raw in await cursor.to_list(None)}
            applied, operations, expected = _plan(writes, raws, etags)
            if operations:
                try:
                    result = await coll.bulk_write(operations, ordered=False, session=session)
                except BulkWriteError as e:  # an insert met an id written meanwhile
                    raise _Raced from e
                done = (result.inserted_count, result.matched_count, result.deleted_count)
                if done != expected:
                    raise _Raced
            entries = [w.outbox for w, ok in zip(writes, applied, strict=True) if ok and w.outbox]
            await self._put_entries(entries, session)
            return applied

        for _ in range(BULK_ATTEMPTS - 1):
            with contextlib.suppress(_Raced):
                return await self._write(run, transaction=True)
        try:
            return await self._write(run, transaction=True)
        except _Raced:
            raise BackendUnavailable(f"{collection}: bulk write kept racing other writes") from None

    async def _put_entries(self, entries: Sequence[OutboxEntry], session: Any) -> None:
        """Upsert outbox entries in the caller's session (its transaction): one ordered bulk
        write per collection, so the last entry of an id wins."""
        by_collection: dict[str, list[Any]] = {}
        for entry in entries:
            upsert = ReplaceOne(
                {"_id": entry.id}, _raw(entry.id, entry.document, entry.etag), upsert=True
            )
            by_collection.setdefault(entry.collection, []).append(upsert)
        for collection, upserts in by_collection.items():
            await self._db[collection].bulk_write(upserts, ordered=True, session=session)

    async def _raise_missing_or_stale(self, collection: str, id: Any, session: Any) -> None:
        found = await self._db[collection].find_one({"_id": id}, {"_id": 1}, session=session)
        if found is None:
            raise NotFound(f"no {collection} {id!r}")
        raise PreconditionFailed(f"{collection} {id!r} has changed")

    async def _write(self, run: Callable[[Any], Awaitable[T]], *, transaction: bool) -> T:
        """``run(session)`` in a transaction (retried by PyMongo on transient errors: a write
        conflict, an election), or with no session for a single-document write."""
        with self._translated():
            if not transaction:
                return await run(None)
            async with self._client.start_session() as session:
                return await session.with_transaction(run)

    # -- helpers ----------------------------------------------------------------------------

    @property
    def _db(self) -> Any:
        if self._client is None:
            raise BackendUnavailable("the MongoDB store is not open")
        return self._client[self._database_name]

    @contextlib.contextmanager
    def _translated(self) -> Iterator[None]:
        """PyMongo's errors as the core's: a query past ``maxTimeMS`` is QueryTimeout, a server
        out of reach (or a closed client) BackendUnavailable."""
        if self._client is None:
            raise BackendUnavailable("the MongoDB store is not open")
        try:
            yield
        except ExecutionTimeout as e:
            raise QueryTimeout(f"MongoDB stopped a query after {self._timeout_ms} ms") from e
        except OperationFailure as e:
            if e.code == MAX_TIME_EXPIRED:
                raise QueryTimeout(f"MongoDB stopped a query after {self._timeout_ms} ms") from e
            raise
        except (ConnectionFailure, InvalidOperation) as e:
            raise BackendUnavailable(f"MongoDB cannot be reached ({type(e).__name__})") from e


@contextlib.contextmanager
def _ignoring(code: int) -> Iterator[None]:
    """Suppress MongoDB's error ``code``."""
    try:
        yield
    except OperationFailure as e:
        if e.code != code:
            raise


class _Raced(Exception):
    """A bulk write's plan no longer held when it ran: the transaction is tried again."""


def _plan(
    writes: Sequence[Write], raws: Sequence[dict[str, Any] | None], etags: dict[Any, Any]
) -> tuple[list[bool], list[Any], tuple[int, int, int]]:
    """Which writes apply on the ``etags`` read (id: ETag, for the ids that exist), applied in
    order; the operations taking each id from the state read to its last state; and how many
    inserts, matches and deletes they must count."""
    state = dict(etags)
    last: dict[Any, dict[str, Any] | None] = {}
    applied = []
    for write, raw in zip(writes, raws, strict=True):
        present = write.id in state
        if write.if_etag is None and raw is not None:
            ok = not present
        else:
            ok = present and (write.if_etag is None or state[write.id] == write.if_etag)
        applied.append(ok)
        if not ok:
            continue
        if raw is None:
            del state[write.id]
        else:
            state[write.id] = write.etag
        last[write.id] = raw
    operations: list[Any] = []
    counts = [0, 0, 0]
    for id, raw in last.items():
        if id not in etags:
            if raw is not None:  # inserted (a document inserted and deleted again: nothing)
                operations.append(InsertOne(raw))
                counts[0] += 1
        elif raw is None:
            operations.append(DeleteOne({"_id": id, ETAG: etags[id]}))
            counts[2] += 1
        else:
            operations.append(ReplaceOne({"_id": id, ETAG: etags[id]}, raw))
            counts[1] += 1
    return applied, operations, (counts[0], counts[1], counts[2])


def _raw(id: Any, document: dict[str, Any], etag: str) -> dict[str, Any]:
    """The stored form: the document with its id and ETag."""
    if "_id" in document or ETAG in document:
        raise ValueError(f"a document cannot hold the keys _id and {ETAG}: the store's own")
    return {"_id": id, ETAG: etag, **document}


def _stored(raw: dict[str, Any]) -> Stored:
    id = raw.pop("_id")
    etag = raw.pop(ETAG, "")
    return Stored(id=id, document=raw, etag=etag)


def _match(id: Any, if_etag: str | None) -> Filter:
    return {"_id": id} if if_etag is None else {"_id": id, ETAG: if_etag}


def _within(filter: Filter, ids: list[Any]) -> Filter:
    """``filter``, limited to documents whose id is among ``ids``."""
    among = {"_id": {"$in": ids}}
    return {"$and": [filter, among]} if filter else among


def _is_null(path: str) -> dict[str, Any]:
    """An aggregation expression: 1 when the value a sort sees at ``path`` is null or missing,
    else 0.  A numeric segment indexes an array (as in a query; in an aggregation's field path
    it would not), or names an object's key."""
    value: Any = "$$ROOT"
    for segment in path.split("."):
        step: Any = f"$$v.{segment}"
        if segment.isdigit():
            step = {"$cond": [{"$isArray": "$$v"}, {"$arrayElemAt": ["$$v", int(segment)]}, step]}
        value = {"$let": {"vars": {"v": value}, "in": step}}
    return {"$cond": [{"$eq": [{"$ifNull": [value, None]}, None]}, 1, 0]}


__all__ = ["ClientFactory", "MongoStore", "default_client"]
