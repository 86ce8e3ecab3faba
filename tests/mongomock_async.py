"""A stand-in for a MongoDB server: mongomock behind the part of PyMongo's ``AsyncMongoClient``
surface that ``restplug_mongo_store`` uses, so the real plugin runs where no server can.

It is a stand-in, not MongoDB: mongomock's matcher answers the queries (with the deviations
listed in ``mongomock_reference.py``), and it has no sessions or transactions.  Here a
transaction runs its callback once, and every call of the stand-in completes without giving the
event loop a turn, so no other task can see a transaction half done; a transaction is not
rolled back if its callback fails halfway (the store only writes once it knows the write
applies).  A read given ``maxTimeMS`` that took longer fails as the server's does
(``ExecutionTimeout``), once it is done.  ``StandInServer.reachable = False`` makes every call
fail as PyMongo does when no server answers, until it is set back: the store has to recover
with the same client.  ``StandInServer.calls`` names the collection methods called, in order.

Usage: ``MongoStore(url, client_factory=StandInServer().client)``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import mongomock
from pymongo import DeleteOne, InsertOne, ReplaceOne
from pymongo.errors import (
    BulkWriteError,
    DuplicateKeyError,
    ExecutionTimeout,
    ServerSelectionTimeoutError,
)
from pymongo.results import BulkWriteResult

# Options of PyMongo's calls that mongomock has no use for (it answers at once, alone).
_IGNORED = ("session", "maxTimeMS", "max_time_ms", "allowDiskUse")
MAX_TIME_EXPIRED = 50


class StandInServer:
    """One in-memory "server": every client it makes sees the same data.  It answers ``hello``
    as a replica set member does, or as a standalone server with ``replica_set=False``."""

    def __init__(self, *, replica_set: bool = True) -> None:
        self.mongomock = mongomock.MongoClient()
        self.replica_set = replica_set
        self.reachable = True
        self.calls: list[str] = []

    def client(self, url: str, **options: Any) -> StandInClient:
        """A client factory for ``MongoStore``."""
        return StandInClient(self)

    def check(self) -> None:
        if not self.reachable:
            raise ServerSelectionTimeoutError("stand-in: no server answers")


class StandInClient:
    def __init__(self, server: StandInServer) -> None:
        self._server = server

    def __getitem__(self, name: str) -> StandInDatabase:
        return StandInDatabase(self._server, self._server.mongomock[name])

    def start_session(self) -> StandInSession:
        return StandInSession(self._server)

    async def close(self) -> None:
        pass


class StandInSession:
    def __init__(self, server: StandInServer) -> None:
        self._server = server

    async def __aenter__(self) -> StandInSession:
        return self

    async def __aexit__(self, *exc: object) -> None:
        pass

    async def with_transaction(self, callback: Callable[[Any], Any], **options: Any) -> Any:
        self._server.check()
        return await callback(self)


class StandInDatabase:
    def __init__(self, server: StandInServer, database: mongomock.Database) -> None:
        self._server = server
        self._database = database

    def __getitem__(self, name: str) -> StandInCollection:
        return StandInCollection(self._server, self._database[name])

    async def create_collection(self, name: str) -> None:
        self._server.check()
        self._database.create_collection(name)

    async def command(self, name: str) -> dict[str, Any]:
        """``ping`` and ``hello``."""
        self._server.check()
        if name == "hello":
            answer = {"isWritablePrimary": True, "ok": 1.0}
            return {**answer, "setName": "stand-in"} if self._server.replica_set else answer
        assert name == "ping", name
        return {"ok": 1.0}


class StandInCursor:
    def __init__(
        self, server: StandInServer, results: Callable[[], Any], options: dict[str, Any]
    ) -> None:
        self._server = server
        self._results = results
        self._options = options

    async def to_list(self, length: int | None = None) -> list[dict[str, Any]]:
        self._server.check()
        return _bounded(lambda: list(self._results()), self._options)


class StandInCollection:
    """The collection methods the store calls, each a coroutine over mongomock's."""

    def __init__(self, server: StandInServer, collection: mongomock.Collection) -> None:
        self._server = server
        self._collection = collection

    def find(self, *args: Any, **options: Any) -> StandInCursor:
        self._server.calls.append("find")
        results = lambda: self._collection.find(*args, **_kept(options))  # noqa: E731
        return StandInCursor(self._server, results, options)

    async def aggregate(self, pipeline: list[dict[str, Any]], **options: Any) -> StandInCursor:
        self._server.calls.append("aggregate")
        self._server.check()
        return StandInCursor(self._server, lambda: self._collection.aggregate(pipeline), options)

    async def bulk_write(self, operations: Sequence[Any], **options: Any) -> BulkWriteResult:
        """One operation after the other (mongomock's own bulk_write does not take the
        operations of current PyMongo versions); an insert of a taken id fails as a server's
        unordered bulk write does, after the others ran."""
        self._server.calls.append("bulk_write")
        self._server.check()
        counts = {"nInserted": 0, "nMatched": 0, "nModified": 0, "nRemoved": 0}
        errors = []
        upserted: list[dict[str, Any]] = []
        # Each operation's filter and document, read from PyMongo's operation objects.
        for index, operation in enumerate(operations):
            if isinstance(operation, InsertOne):
                try:
                    self._collection.insert_one(operation._doc)
                    counts["nInserted"] += 1
                except DuplicateKeyError as e:
                    errors.append({"index": index, "code": e.code, "errmsg": str(e)})
            elif isinstance(operation, ReplaceOne):
                result = self._collection.replace_one(
                    operation._filter, operation._doc, upsert=operation._upsert
                )
                counts["nMatched"] += result.matched_count
                counts["nModified"] += result.modified_count
                if result.upserted_id is not None:
                    upserted.append({"index": index, "_id": result.upserted_id})
            else:
                assert isinstance(operation, DeleteOne), operation
                counts["nRemoved"] += self._collection.delete_one(operation._filter).deleted_count
        result = {
            **counts,
            "nUpserted": len(upserted),
            "upserted": upserted,
            "writeErrors": errors,
        }
        if errors:
            raise BulkWriteError(result)
        return BulkWriteResult(result, True)

    def __getattr__(self, name: str) -> Callable[..., Any]:
        """find_one, insert_one, replace_one, delete_one, count_documents,
        estimated_document_count, create_index: mongomock's, as coroutines."""
        method = getattr(self._collection, name)

        async def call(*args: Any, **options: Any) -> Any:
            self._server.calls.append(name)
            self._server.check()
            return _bounded(lambda: method(*args, **_kept(options)), options)

        return call


def _kept(options: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in options.items() if key not in _IGNORED}


def _bounded(run: Callable[[], Any], options: dict[str, Any]) -> Any:
    """``run()``, failing as a server stopping the query when it took longer than the call's
    ``maxTimeMS`` allowed."""
    limit = options.get("maxTimeMS", options.get("max_time_ms"))
    start = time.perf_counter()
    result = run()
    if limit and (time.perf_counter() - start) * 1000 > limit:
        raise ExecutionTimeout("operation exceeded time limit", MAX_TIME_EXPIRED)
    return result
