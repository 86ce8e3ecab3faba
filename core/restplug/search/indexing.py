"""Keeping the search index in step with the document store, without ever losing a change.

The store is the source of truth; the index is a copy that may be down.  Every write to a
resource carries an outbox entry written in the same store transaction
(:mod:`restplug.outbox`), so the index update it owes survives any failure, a crash included;
:class:`Indexer` is the part that talks to the index: it applies one change within a time
bound (:meth:`Indexer.update`), and rebuilds a collection's index from the store
(:meth:`Indexer.rebuild`, ``restplug reindex``).

After an outage-like failure (backend unavailable, timeout, OS error) changes are left to the
outbox's retries without trying the index until a retry succeeds, so an outage does not add a
timeout to every write.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from restplug.errors import BackendUnavailable, QueryTimeout
from restplug.resources import Resource
from restplug.search.protocol import SearchIndex
from restplug.stores.protocol import DocumentStore, Filter, FindQuery, Stored

if TYPE_CHECKING:
    from tqdm import tqdm

log = logging.getLogger("restplug.search.indexing")

PAGE = 500  # documents per store query when walking a collection
# Failures that mean "the backend cannot be used right now" rather than "this document".
OUTAGE = (BackendUnavailable, QueryTimeout, TimeoutError, OSError)


class Indexer:
    """Index the changes of ``resources`` with search fields into ``index``; ``timeout``
    bounds each index call (seconds)."""

    def __init__(
        self,
        store: DocumentStore,
        index: SearchIndex,
        resources: Mapping[str, Resource],
        *,
        timeout: float = 5.0,
    ) -> None:
        self.store = store
        self.index = index
        self.resources = {name: r for name, r in resources.items() if r.search_fields}
        self.timeout = timeout
        #: False after an outage: changes skip the index until a retry gets through.
        self.up = True
        self._unprepared = set(self.resources)

    async def prepare(self) -> bool:
        """Prepare the index of each searchable collection not prepared yet; True when all
        are.  An index that cannot be prepared now stops nothing (writes must go on): its
        changes stay pending, and the outbox's retries call this again."""
        for name in sorted(self._unprepared):
            try:
                async with asyncio.timeout(self.timeout):
                    await self.index.prepare(name, self.resources[name].search_fields)
            except OUTAGE as e:
                log.warning("cannot prepare the search index of %s yet: %s", name, describe(e))
            else:
                self._unprepared.discard(name)
        return not self._unprepared

    async def update(
        self, collection: str, id: Any, document: Mapping[str, Any] | None, *, retry: bool = False
    ) -> bool:
        """Index a document as written (``None``: deleted) within ``timeout``.  True when the
        index has it (or the collection is not searchable), False when it stays pending.
        Never raises for a write (``retry`` False; the write has happened, whatever the index
        does, and while the index is known down it is not even tried); a retry (``retry``
        True) raises on an outage, so that a drain stops at the first one."""
        if collection not in self.resources:
            return True
        if collection in self._unprepared or not (self.up or retry):
            return False
        try:
            async with asyncio.timeout(self.timeout):
                if document is None:
                    await self.index.delete(collection, id)
                else:
                    await self.index.upsert(collection, id, document)
        except Exception as e:
            log.warning(
                "search index update of %s %r failed (%s); kept pending",
                collection,
                id,
                describe(e),
            )
            if isinstance(e, OUTAGE):
                self.up = False
                if retry:
                    raise
            return False
        return True

    async def update_many(
        self, collection: str, changes: Sequence[tuple[Any, Mapping[str, Any] | None]]
    ) -> bool:
        """:meth:`update` for many (id, document or ``None``) changes of one write: True when
        the index has them all.  An index with an ``update_many`` of its own (the builtin one:
        one transaction) is given them in one call within ``timeout``; a failure leaves them
        all pending, and the outbox's retries then apply them one by one.  Never raises."""
        many = getattr(self.index, "update_many", None)
        if many is None or collection not in self.resources or len(changes) < 2:
            results = [await self.update(collection, id, doc) for id, doc in changes]
            return all(results)
        if collection in self._unprepared or not self.up:
            return False
        try:
            async with asyncio.timeout(self.timeout):
                await many(collection, changes)
        except Exception as e:
            log.warning(
                "search index update of %d %s failed (%s); kept pending",
                len(changes),
                collection,
                describe(e),
            )
            if isinstance(e, OUTAGE):
                self.up = False
            return False
        return True

    async def rebuild(self, resource: Resource, bar: tqdm | None = None) -> int:
        """Rebuild the collection's index from the store, advancing ``bar`` by each page read.
        Returns how many documents were indexed.  Pending outbox entries stay: they owe more
        than the index (caches, plugins), and settling them indexes what the rebuild did."""
        if resource.name not in self.resources:
            raise ValueError(f"{resource.name!r} has no search fields")
        name = resource.name
        await self.index.prepare(name, resource.search_fields)
        self._unprepared.discard(name)

        async def documents() -> AsyncIterator[tuple[Any, dict[str, Any]]]:
            async for page in walk(self.store, name):
                for stored in page:
                    yield stored.id, stored.document
                if bar is not None:
                    bar.update(len(page))

        return await self.index.rebuild(name, documents())


async def walk(
    store: DocumentStore, collection: str, filter: Filter | None = None, *, page: int = PAGE
) -> AsyncIterator[list[Stored]]:
    """Every document of ``collection`` matching ``filter``, in pages in ``_id`` order, each
    page a keyset query (``_id`` after the last one seen), so a page costs the same at any depth
    and documents removed meanwhile do not shift the next page.  Ids of different types never
    compare (MongoDB's rule), so the numbers are walked, then the strings."""
    for bound in ({"$gte": -(2**63)}, {"$gte": ""}):
        while True:
            query = FindQuery(
                filter={**(filter or {}), "_id": bound}, sort=[("_id", 1)], limit=page
            )
            found = await store.find(collection, query)
            if found:
                yield found
            if len(found) < page:
                break
            bound = {"$gt": found[-1].id}


def describe(error: BaseException) -> str:
    """The error for a log line: its type and message, which name no document content."""
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__


__all__ = ["OUTAGE", "Indexer", "describe", "walk"]
