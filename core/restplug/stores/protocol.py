"""The document store interface every store plugin implements (SQLite builtin, MongoDB, ...).

A store keeps JSON documents in named collections, each document under an id (``_id``) with
an ETag.  Queries are backend-neutral: a filter in MongoDB's query syntax (the subset below), a
sort and a window.  The core validates and builds every query; a store never sees raw user input.

Filter subset: ``$eq $ne $gt $gte $lt $lte $in $nin $exists $and $or $not``, dotted paths
(a numeric segment indexes an array), a bare value meaning ``$eq``, and MongoDB's array rule:
a condition on a path holding an array matches when any element matches.  ``_id`` names the
document id.  Sort and comparison follow MongoDB: ``null`` and a missing field are equal and sort
before every value; values of different types never compare equal or ordered (numbers are one
type, booleans another).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

Filter = dict[str, Any]
SortKey = tuple[str, int]  # (path, 1 ascending | -1 descending)


@dataclass(frozen=True)
class FindQuery:
    """One page of documents: those matching ``filter``, ordered by ``sort``, after ``skip``.

    ``missing_last`` lists sort paths whose missing or null values sort last when ascending
    too.  ``rank``, when given, replaces ``sort``: only documents whose id is in ``rank`` match,
    in the order of that list (relevance from a search index).
    """

    filter: Filter = field(default_factory=dict)
    sort: Sequence[SortKey] = ()
    skip: int = 0
    limit: int | None = None
    missing_last: frozenset[str] = frozenset()
    rank: Sequence[Any] | None = None


@dataclass(frozen=True)
class Stored:
    """A document as the store holds it: the id, the JSON document and its ETag."""

    id: Any
    document: dict[str, Any]
    etag: str


@dataclass(frozen=True)
class OutboxEntry:
    """A document the store upserts into ``collection`` (``id``, ``document``, ``etag``) in the
    same transaction as the write it comes with, and only when that write applies: a record
    of the work the write still owes (indexing, cache invalidation, notifying plugins) that no
    crash can separate from the write itself.  Whatever is stored under ``id`` is overwritten,
    whatever its ETag."""

    collection: str
    id: Any
    document: dict[str, Any]
    etag: str


@dataclass(frozen=True)
class Write:
    """One write of :meth:`DocumentStore.bulk_write`: an insert when ``if_etag`` is None, a
    replace that applies only while the stored ETag is still ``if_etag`` otherwise; with
    ``document`` None, a delete (only while the ETag is ``if_etag``, when given).  ``outbox``
    is written with it, as for :meth:`DocumentStore.insert`."""

    id: Any
    document: dict[str, Any] | None
    etag: str = ""
    if_etag: str | None = None
    outbox: OutboxEntry | None = None

    @classmethod
    def delete(cls, id: Any, if_etag: str | None = None) -> Write:
        """A delete of ``id``, only while its ETag is ``if_etag`` when given."""
        return cls(id, None, "", if_etag)


@runtime_checkable
class DocumentStore(Protocol):
    """What the core needs from a store.  Every method may raise
    :class:`restplug.errors.BackendUnavailable`; queries past the configured time bound raise
    :class:`restplug.errors.QueryTimeout`.

    Every write takes an ``outbox`` entry (:class:`OutboxEntry`) that the store upserts in the
    same transaction as the write, when and only when the write applies (no entry with a
    Conflict, NotFound, PreconditionFailed, or a False of :meth:`bulk_write`).  SQLite does it
    in its one write transaction; a MongoDB store does it with a multi-document transaction
    (replica set or sharded cluster), the only way MongoDB writes two documents atomically.
    """

    async def open(self) -> None:
        """Connect; called once at start-up."""

    async def close(self) -> None:
        """Disconnect; called once at shutdown."""

    async def ping(self) -> None:
        """Return when the store answers, raise BackendUnavailable when it does not."""

    async def prepare(self, collection: str, index_paths: Sequence[str]) -> None:
        """Create the collection if needed and an index on each path (filters and sorts)."""

    async def get(self, collection: str, id: Any) -> Stored | None:
        """The document with this id, or None."""

    async def find(self, collection: str, query: FindQuery) -> list[Stored]:
        """The documents matching the query, in its order."""

    async def count(
        self, collection: str, filter: Filter, rank: Sequence[Any] | None = None
    ) -> int:
        """How many documents match ``filter`` (and have an id in ``rank``, when given)."""

    async def insert(
        self,
        collection: str,
        id: Any,
        document: dict[str, Any],
        etag: str,
        *,
        outbox: OutboxEntry | None = None,
    ) -> None:
        """Add a document; raise Conflict when the id exists."""

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
        """Overwrite a document atomically.  Raise NotFound when there is none with this id,
        PreconditionFailed when ``if_etag`` is given and the stored ETag differs (checked and
        written in one atomic step)."""

    async def delete(
        self,
        collection: str,
        id: Any,
        *,
        if_etag: str | None = None,
        outbox: OutboxEntry | None = None,
    ) -> None:
        """Remove a document; NotFound and PreconditionFailed as for :meth:`replace`."""

    async def bulk_write(self, collection: str, writes: Sequence[Write]) -> list[bool]:
        """Apply many writes in one round trip (one transaction where the store has them).
        Returns, per write, whether it applied: False for an insert whose id exists, a replace
        or a delete whose document changed or vanished meanwhile (the caller re-reads,
        retries).  Each write's ``outbox`` entry is upserted when, and only when, it applies."""
