"""Keeping the search index in step with the document store, without ever losing a change.

The store is the source of truth; the index is a copy that may be down.  A change is indexed
right after its write (:meth:`Indexer.changed`); when that fails, the change is recorded in the
store itself, in the collection :data:`OUTBOX` (one entry per document, whatever the number of
changes), and a background task retries: for each entry it indexes the document as the store
holds it *now*, so the entry only needs to name the document, and several changes to one
document cost one retry.  ``restplug reindex`` (:meth:`Indexer.rebuild`) rebuilds a collection's
index from the store and settles its entries.

Two rules keep this exact:

- an entry is removed only if it has not been recorded again meanwhile: recording gives it a
  new ETag and removal is a compare-and-set on the ETag read, so a failure in the middle of a
  retry (or of a rebuild) leaves its entry for the next round;
- the direct update of a change and the retry of the same document never interleave (a lock per
  document, striped), so a retry cannot overwrite a newer direct update with an older read.

After an outage-like failure (backend unavailable, timeout, OS error) changes are recorded
without trying the index until a retry succeeds, so an outage does not add a timeout to every
write.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Mapping
from typing import TYPE_CHECKING, Any

import orjson

from restplug.errors import BackendUnavailable, Conflict, NotFound, PreconditionFailed, QueryTimeout
from restplug.resources import Resource
from restplug.search import SearchIndex
from restplug.store import DocumentStore, Filter, FindQuery, Stored

if TYPE_CHECKING:
    from tqdm import tqdm

log = logging.getLogger("restplug.indexing")

#: The store collection of pending index updates: ``{"collection": ..., "id": ...}`` under the
#: id ``"<collection>:<JSON of the id>"``.
OUTBOX = "search_outbox"
PAGE = 500  # documents per store query when walking a collection
# Failures that mean "the backend cannot be used right now" rather than "this document".
_OUTAGE = (BackendUnavailable, QueryTimeout, TimeoutError, OSError)
_LOCK_STRIPES = 64


class Indexer:
    """Index the changes of ``resources`` with search fields into ``index``.

    ``timeout`` bounds each index call (seconds); the retry task drains the outbox every
    ``retry_interval`` seconds, doubling the wait up to ``max_retry_interval`` while it fails.
    """

    def __init__(
        self,
        store: DocumentStore,
        index: SearchIndex,
        resources: Mapping[str, Resource],
        *,
        timeout: float = 5.0,
        retry_interval: float = 5.0,
        max_retry_interval: float = 30.0,
    ) -> None:
        self.store = store
        self.index = index
        self.resources = {name: r for name, r in resources.items() if r.search_fields}
        if OUTBOX in resources:
            raise ValueError(f"a resource cannot be named {OUTBOX!r}: the search outbox is")
        self.timeout = timeout
        self.retry_interval = retry_interval
        self.max_retry_interval = max_retry_interval
        self._unprepared = set(self.resources)
        self._index_up = True
        self._locks = [asyncio.Lock() for _ in range(_LOCK_STRIPES)]
        self._task: asyncio.Task[None] | None = None
        self._in_flight: set[asyncio.Future[None]] = set()

    # -- life cycle -----------------------------------------------------------------------

    async def start(self) -> None:
        """Prepare the outbox and each searchable collection's index, start the retry task.

        An index that cannot be prepared now does not stop start-up (writes must go on): its
        changes are recorded, and the retry task prepares it when it answers."""
        await self.store.prepare(OUTBOX, ["collection"])
        await self._prepare_index()
        if self._task is None:
            self._task = asyncio.create_task(self._retry_forever(), name="restplug-search-retry")

    async def stop(self) -> None:
        """Wait for the changes in flight, cancel the retry task (an entry it was applying
        stays pending and is retried)."""
        await asyncio.gather(*self._in_flight)
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _prepare_index(self) -> None:
        for name in sorted(self._unprepared):
            try:
                async with asyncio.timeout(self.timeout):
                    await self.index.prepare(name, self.resources[name].search_fields)
            except _OUTAGE as e:
                log.warning("cannot prepare the search index of %s yet: %s", name, _describe(e))
            else:
                self._unprepared.discard(name)

    # -- changes --------------------------------------------------------------------------

    async def changed(
        self, resource: Resource, id: Any, document: Mapping[str, Any] | None
    ) -> None:
        """Index a document just written (``None``: just deleted) within ``timeout``; on any
        failure record it as pending.  Never raises: the write has happened, whatever the
        index does.  The work is shielded: a caller cancelled meanwhile (a request whose client
        went away) still gets its change indexed or recorded, and :meth:`stop` waits for it."""
        if resource.name not in self.resources:
            return
        task = asyncio.ensure_future(self._index_or_record(resource.name, id, document))
        self._in_flight.add(task)
        task.add_done_callback(self._in_flight.discard)
        await asyncio.shield(task)

    async def _index_or_record(
        self, collection: str, id: Any, document: Mapping[str, Any] | None
    ) -> None:
        key = _entry_id(collection, id)
        async with self._lock(key):
            if self._index_up and collection not in self._unprepared:
                try:
                    await self._apply(collection, id, document)
                    return
                except Exception as e:
                    log.warning(
                        "search index update of %s %r failed (%s); kept pending",
                        collection,
                        id,
                        _describe(e),
                    )
                    if isinstance(e, _OUTAGE):
                        self._index_up = False
            await self._record(collection, id, key)

    async def _apply(self, collection: str, id: Any, document: Mapping[str, Any] | None) -> None:
        async with asyncio.timeout(self.timeout):
            if document is None:
                await self.index.delete(collection, id)
            else:
                await self.index.upsert(collection, id, document)

    async def _record(self, collection: str, id: Any, key: str) -> None:
        """Record the document as pending, with a new ETag even when it already is (see the
        module's first rule).  An entry removed between the two calls is inserted again."""
        entry = {"collection": collection, "id": id}
        try:
            while True:
                etag = uuid.uuid4().hex
                try:
                    await self.store.insert(OUTBOX, key, entry, etag)
                    return
                except Conflict:
                    with contextlib.suppress(NotFound):
                        await self.store.replace(OUTBOX, key, entry, etag)
                        return
        except Exception as e:
            log.error(
                "could not record the pending search update of %s %r (%s): the index will "
                "miss it until `restplug reindex %s`",
                collection,
                id,
                _describe(e),
                collection,
            )

    # -- retries --------------------------------------------------------------------------

    async def pending(self) -> int:
        """How many documents wait for their index update."""
        return await self.store.count(OUTBOX, {})

    async def retry_pending(self) -> int:
        """Drain the outbox once now; returns how many entries were settled."""
        settled, _ = await self._drain()
        return settled

    async def _retry_forever(self) -> None:
        delay = self.retry_interval
        while True:
            await asyncio.sleep(delay)
            _, failing = await self._drain()
            delay = min(delay * 2, self.max_retry_interval) if failing else self.retry_interval

    async def _drain(self) -> tuple[int, bool]:
        """Settle every entry it can: index the document as stored now (or delete it from the
        index when it is gone), then remove the entry.  Stops at the first outage.  Returns
        (entries settled, whether the index or the store is failing)."""
        await self._prepare_index()
        settled = 0
        try:
            async for page in walk(self.store, OUTBOX):
                for entry in page:
                    settled += await self._settle(entry)
        except Exception as e:  # an outage, or a bug: either way, retried later with backoff
            log.warning("retrying pending search updates failed: %s", _describe(e))
            self._index_up = False
            return settled, True
        failing = bool(self._unprepared)
        if not failing and not self._index_up:
            log.warning("the search index answers again; pending updates applied")
        self._index_up = not failing
        return settled, failing

    async def _settle(self, entry: Stored) -> int:
        """1 when the entry was applied and removed, 0 when it stays; raises on an outage."""
        collection, id = entry.document["collection"], entry.document["id"]
        if collection in self._unprepared:
            return 0
        async with self._lock(entry.id):
            if collection in self.resources:
                try:
                    current = await self.store.get(collection, id)
                    await self._apply(collection, id, current.document if current else None)
                except _OUTAGE:
                    raise
                except Exception as e:  # this document's problem: keep it, go on with others
                    log.warning(
                        "search index update of %s %r failed again (%s); kept pending",
                        collection,
                        id,
                        _describe(e),
                    )
                    return 0
            # An entry of a collection no longer searchable has nothing left to do.
            return int(await _remove_entry(self.store, entry))

    # -- rebuild --------------------------------------------------------------------------

    async def rebuild(self, resource: Resource, bar: tqdm | None = None) -> int:
        """Rebuild the collection's index from the store, advancing ``bar`` by each page read;
        then remove the entries pending before it started (the documents it read are at least
        as new as their changes).  Returns how many documents were indexed."""
        if resource.name not in self.resources:
            raise ValueError(f"{resource.name!r} has no search fields")
        name = resource.name
        await self.index.prepare(name, resource.search_fields)
        self._unprepared.discard(name)
        before = [e async for page in walk(self.store, OUTBOX, {"collection": name}) for e in page]

        async def documents() -> AsyncIterator[tuple[Any, dict[str, Any]]]:
            async for page in walk(self.store, name):
                for stored in page:
                    yield stored.id, stored.document
                if bar is not None:
                    bar.update(len(page))

        count = await self.index.rebuild(name, documents())
        for entry in before:
            await _remove_entry(self.store, entry)
        return count

    def _lock(self, key: str) -> asyncio.Lock:
        return self._locks[hash(key) % _LOCK_STRIPES]


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


async def _remove_entry(store: DocumentStore, entry: Stored) -> bool:
    """Remove an outbox entry unless it was recorded again since it was read (False then)."""
    try:
        await store.delete(OUTBOX, entry.id, if_etag=entry.etag)
    except PreconditionFailed:
        return False
    except NotFound:  # settled meanwhile by another process
        pass
    return True


def _entry_id(collection: str, id: Any) -> str:
    return f"{collection}:{orjson.dumps(id).decode()}"


def _describe(error: BaseException) -> str:
    """The error for a log line: its type and message, which name no document content."""
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__


__all__ = ["OUTBOX", "Indexer", "walk"]
