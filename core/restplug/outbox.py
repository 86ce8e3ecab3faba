"""The transactional outbox: the side effects of a write are never lost, a crash included.

A write to a resource owes work beyond the store: its cached responses are invalidated, its search
index entry updated, plugins told (``documents_changed``). Run after the write, any of it could be
lost to a crash in between. So every write to a resource collection carries an entry of the
collection :data:`OUTBOX` that the store writes in the same transaction as the document
(:class:`restplug.stores.protocol.OutboxEntry`): both are stored, or neither. Right after the write
the side effects run and the entry is removed. Whatever stops them (an index outage, a crash,
``kill -9``) leaves the entry, and the retry task settles it: once at start-up, before the server
answers, then every interval, it reads each entry's document as stored *now*, updates the index,
invalidates the caches, tells the plugins, and removes the entry. So the side effects are at least
once: a crash between them and the removal runs them again.

Writes go through :class:`OutboxStore` (under every :class:`restplug.collection.Collection`),
which attaches the entries and runs the side effects, so no caller, core or plugin, does either
by hand. Collections that are not resources (the outbox itself) are written as given.  The
plugins are told once per batch: a write's changes (a bulk write's, a page of retried entries'),
one call per resource.

Rules that keep this exact:

- one entry per document (id ``"<collection>:<JSON id>"``) however many changes it had: each
  write upserts it with a fresh random ETag, and removal is a compare-and-set on the ETag
  written (or read, in a retry), so settling an older write never removes a newer one's entry;
- a removal that finds its entry gone or rewritten (another write settled meanwhile, maybe
  before this one's index update landed) indexes the document as stored now once more, so an
  older update finishing last cannot leave the index stale;
- many writes at once (a package) settle with one bulk removal, not one transaction each;
- a retry leaves alone the entries a settle running in the same process is about to remove
  (same id, same ETag): settling them too would only index them twice more.  Whatever that
  settle leaves pending, the next retry takes.

``restplug reindex`` runs in another process than the servers: after a rebuild it renews the
resource's list generation in the cache it is configured with (a shared Redis: every server sees it
at once) and records the rebuild in :data:`REBUILDS`; each server's retry task reads those records
every interval and renews its own lists' generation when one changed (a per-process ``memory://``
cache).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from restplug.caches.manager import CacheManager
from restplug.collection import Change
from restplug.errors import Conflict
from restplug.faults import crash_point
from restplug.resources import Resource
from restplug.search.indexing import Indexer, describe, walk
from restplug.stores.protocol import DocumentStore, Filter, FindQuery, OutboxEntry, Stored, Write

log = logging.getLogger("restplug.outbox")

#: Pending side effects: ``{"collection": ..., "id": ...}`` under ``"<collection>:<JSON id>"``.
#: The name is from when only search updates were kept there; its entries read the same.
OUTBOX = "search_outbox"
#: One document per resource whose search index ``restplug reindex`` rebuilt, with the time.
REBUILDS = "search_rebuilds"
#: Collections of the core's own: no resource may take these names.
INTERNAL = frozenset({OUTBOX, REBUILDS})

#: Tells the plugins what one batch changed in one resource (the ``documents_changed`` hook).
Notify = Callable[[Resource, list[Change]], Awaitable[None]]


@dataclass(frozen=True)
class Written:
    """A write that applied, with the entry it carried: what :meth:`Outbox.settle` needs."""

    resource: Resource
    id: Any
    document: dict[str, Any] | None
    entry: OutboxEntry


class Outbox:
    """Attach entries to writes of ``resources`` (a live mapping), run their side effects and
    settle what a failure left pending: every ``retry_interval`` seconds, doubling the wait up
    to ``max_retry_interval`` while the index fails.  ``indexer`` is set once the search index
    is chosen (None: no search)."""

    def __init__(
        self,
        store: DocumentStore,
        resources: Mapping[str, Resource],
        cache: CacheManager,
        notify: Notify,
        *,
        retry_interval: float = 5.0,
        max_retry_interval: float = 30.0,
    ) -> None:
        self.store = store
        self.resources = resources
        self.cache = cache
        self.notify = notify
        self.indexer: Indexer | None = None
        self.retry_interval = retry_interval
        self.max_retry_interval = max_retry_interval
        self._task: asyncio.Task[None] | None = None
        self._in_flight: set[asyncio.Future[None]] = set()
        # The (entry id, ETag) pairs that settles running in this process will remove.
        self._settling: collections.Counter[tuple[Any, str]] = collections.Counter()
        self._rebuilds: dict[Any, str] = {}

    # -- life cycle -----------------------------------------------------------------------

    async def start(self) -> None:
        """Settle what a previous run left pending, then start the retry task."""
        await self.store.prepare(OUTBOX, ["collection"])
        await self.store.prepare(REBUILDS, [])
        self._rebuilds = await self._rebuild_marks()
        settled, _ = await self._drain()
        if settled:
            log.info("settled %d writes a previous run left pending", settled)
        if self._task is None:
            self._task = asyncio.create_task(self._retry_forever(), name="restplug-outbox-retry")

    async def stop(self) -> None:
        """Wait for the side effects in flight, cancel the retry task (an entry it was
        settling stays pending and is settled by the next start)."""
        await asyncio.gather(*self._in_flight)
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # -- writes ---------------------------------------------------------------------------

    def entry(self, collection: str, id: Any) -> OutboxEntry | None:
        """A new entry for a write of ``collection`` (None when it is no resource)."""
        if collection not in self.resources:
            return None
        key = f"{collection}:{orjson.dumps(id).decode()}"
        return OutboxEntry(OUTBOX, key, {"collection": collection, "id": id}, uuid.uuid4().hex)

    async def settle(self, written: Sequence[Written]) -> None:
        """Run the side effects of writes that applied, then remove their entries.  Never
        raises: the writes have happened, whatever fails now stays pending.  Shielded: a
        caller cancelled meanwhile (a client gone) does not stop it, and :meth:`stop` waits."""
        if not written:
            return
        pairs = [(item.entry.id, item.entry.etag) for item in written]
        self._settling.update(pairs)
        task = asyncio.ensure_future(self._settle_written(written))
        self._in_flight.add(task)

        def done(task: asyncio.Future[None]) -> None:
            self._in_flight.discard(task)
            self._settling.subtract(pairs)
            for pair in pairs:
                if self._settling[pair] <= 0:
                    del self._settling[pair]

        task.add_done_callback(done)
        await asyncio.shield(task)

    async def _settle_written(self, written: Sequence[Written]) -> None:
        crash_point("after-commit")
        done = []
        changed: dict[str, tuple[Resource, list[Change]]] = {}
        for item in written:
            changed.setdefault(item.resource.name, (item.resource, []))[1].append(
                Change(item.id, item.document)
            )
        # One index call per resource: a package's documents in one index transaction, not
        # one each (most of an ingest's time when it was).
        indexed = {
            name: self.indexer is None
            or await self.indexer.update_many(name, [(c.id, c.document) for c in changes])
            for name, (_, changes) in changed.items()
        }
        for item in written:
            crash_point("mid-effects")
            if indexed[item.resource.name]:
                done.append((item.resource, item.id, item.entry.id, item.entry.etag))
        # After the index updates, so that a search cached under the new generation already
        # sees them; once per resource, however many documents a package wrote.  The plugins
        # are told last, so that what they read is what the write left.
        for name, (resource, changes) in changed.items():
            await self.cache.invalidate(name, [change.id for change in changes])
            await self.notify(resource, changes)
        crash_point("after-index")
        try:
            await self._remove(done)
        except Exception as e:  # the store failed: the entries stay, the retry settles them
            log.warning("could not remove settled outbox entries (%s); retried", describe(e))

    async def _remove(self, entries: Sequence[tuple[Resource | None, Any, Any, str]]) -> int:
        """Remove (resource, document id, entry id, entry ETag) entries by compare-and-set,
        in one bulk write; index again what another write settled meanwhile.  Returns how
        many were removed."""
        writes = [Write.delete(key, if_etag=etag) for _, _, key, etag in entries]
        applied = await self.store.bulk_write(OUTBOX, writes) if writes else []
        for (resource, id, _, _), removed in zip(entries, applied, strict=True):
            if not removed and resource is not None and self.indexer is not None:
                stored = await self.store.get(resource.name, id)
                await self.indexer.update(resource.name, id, stored and stored.document)
        return sum(applied)

    # -- retries --------------------------------------------------------------------------

    async def pending(self, filter: Filter | None = None) -> int:
        """How many writes wait for their side effects."""
        return await self.store.count(OUTBOX, filter or {})

    async def retry_pending(self) -> int:
        """Settle the outbox once now; returns how many entries were settled."""
        settled, _ = await self._drain()
        return settled

    async def _retry_forever(self) -> None:
        delay = self.retry_interval
        while True:
            await asyncio.sleep(delay)
            try:
                await self._check_rebuilds()
            except Exception as e:
                log.warning("reading the search index rebuilds failed: %s", describe(e))
            _, failing = await self._drain()
            delay = min(delay * 2, self.max_retry_interval) if failing else self.retry_interval

    async def _drain(self) -> tuple[int, bool]:
        """Settle every entry it can, stopping at the first outage.  Returns (entries
        settled, whether the index or the store is failing)."""
        indexer = self.indexer
        failing = indexer is not None and not await indexer.prepare()
        settled = 0
        try:
            async for page in walk(self.store, OUTBOX):
                count, error = await self._settle_page(page)
                settled += count
                if error is not None:
                    raise error
        except Exception as e:  # an outage, or a bug: either way, retried later with backoff
            log.warning("settling pending writes failed: %s", describe(e))
            if indexer is not None:
                indexer.up = False
            return settled, True
        if indexer is not None:
            if not failing and not indexer.up:
                log.warning("the search index answers again; pending updates applied")
            indexer.up = not failing
        return settled, failing

    async def _settle_page(self, page: list[Stored]) -> tuple[int, Exception | None]:
        """Settle one page of entries with the documents as stored now (one query per
        collection); an entry whose index update fails stays.  Returns how many were settled
        and removed, and the outage that stopped it half-way, if one did."""
        by_collection: dict[str, list[Stored]] = {}
        for entry in page:
            if (entry.id, entry.etag) in self._settling:
                # Its write's own settle is running: settling it here too would index it
                # twice, and make that settle, finding it gone, index it a third time.  If
                # that settle leaves it, the next pass takes it.
                continue
            by_collection.setdefault(entry.document["collection"], []).append(entry)
        done: list[tuple[Resource | None, Any, Any, str]] = []
        error = None
        try:
            for name, entries in by_collection.items():
                resource = self.resources.get(name)
                if resource is None:  # no longer a resource: nothing is owed
                    done += [(None, e.document["id"], e.id, e.etag) for e in entries]
                    continue
                ids = [e.document["id"] for e in entries]
                found = await self.store.find(name, FindQuery({"_id": {"$in": ids}}))
                current = {stored.id: stored.document for stored in found}
                settled: list[Change] = []
                try:
                    for entry in entries:
                        id = entry.document["id"]
                        document = current.get(id)
                        if self.indexer is not None and not await self.indexer.update(
                            name, id, document, retry=True
                        ):
                            continue
                        settled.append(Change(id, document))
                        done.append((resource, id, entry.id, entry.etag))
                finally:  # what is removed below had every effect, an outage half-way included
                    if settled:
                        await self.cache.invalidate(name, [change.id for change in settled])
                        await self.notify(resource, settled)
        except Exception as e:
            error = e
        return await self._remove(done), error

    # -- rebuilds -------------------------------------------------------------------------

    async def mark_rebuilt(self, name: str) -> None:
        """After ``name``'s search index was rebuilt: renew its lists' cache generation here,
        and record the rebuild for the servers' retry tasks to renew theirs."""
        document = {"resource": name, "rebuilt_at": datetime.now(UTC).isoformat()}
        etag = uuid.uuid4().hex
        try:
            await self.store.insert(REBUILDS, name, document, etag)
        except Conflict:
            await self.store.replace(REBUILDS, name, document, etag)
        await self.cache.invalidate_lists(name)

    async def _rebuild_marks(self) -> dict[Any, str]:
        return {s.id: s.etag async for page in walk(self.store, REBUILDS) for s in page}

    async def _check_rebuilds(self) -> None:
        marks = await self._rebuild_marks()
        for name, etag in marks.items():
            if self._rebuilds.get(name) != etag:
                log.info("the search index of %s was rebuilt: its cached lists are dropped", name)
                await self.cache.invalidate_lists(name)
        self._rebuilds = marks


class OutboxStore:
    """The store as the core writes to it (``Restplug.store``, under every collection): a
    write to a resource collection carries a new outbox entry, and its side effects run after
    it (see the module).  Reads, and writes to other collections, go to the backend as they
    are."""

    def __init__(self, backend: DocumentStore, outbox: Outbox) -> None:
        self.backend = backend
        self.outbox = outbox

    def __getattr__(self, name: str) -> Any:
        # What a backend offers beyond the protocol (the SQLite store's explain, say).
        return getattr(self.backend, name)

    async def open(self) -> None:
        await self.backend.open()

    async def close(self) -> None:
        await self.backend.close()

    async def ping(self) -> None:
        await self.backend.ping()

    async def prepare(self, collection: str, index_paths: Sequence[str]) -> None:
        await self.backend.prepare(collection, index_paths)

    async def get(self, collection: str, id: Any) -> Stored | None:
        return await self.backend.get(collection, id)

    async def find(self, collection: str, query: FindQuery) -> list[Stored]:
        return await self.backend.find(collection, query)

    async def count(
        self, collection: str, filter: Filter, rank: Sequence[Any] | None = None
    ) -> int:
        return await self.backend.count(collection, filter, rank)

    async def insert(
        self,
        collection: str,
        id: Any,
        document: dict[str, Any],
        etag: str,
        *,
        outbox: OutboxEntry | None = None,
    ) -> None:
        entry = self._entry(collection, id, outbox)
        await self.backend.insert(collection, id, document, etag, outbox=entry or outbox)
        await self._settle(collection, id, document, entry)

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
        entry = self._entry(collection, id, outbox)
        await self.backend.replace(
            collection, id, document, etag, if_etag=if_etag, outbox=entry or outbox
        )
        await self._settle(collection, id, document, entry)

    async def delete(
        self,
        collection: str,
        id: Any,
        *,
        if_etag: str | None = None,
        outbox: OutboxEntry | None = None,
    ) -> None:
        entry = self._entry(collection, id, outbox)
        await self.backend.delete(collection, id, if_etag=if_etag, outbox=entry or outbox)
        await self._settle(collection, id, None, entry)

    async def bulk_write(self, collection: str, writes: Sequence[Write]) -> list[bool]:
        resource = self.outbox.resources.get(collection)
        if resource is None:
            return await self.backend.bulk_write(collection, writes)
        tagged = [
            dataclasses.replace(w, outbox=self._entry(collection, w.id, w.outbox)) for w in writes
        ]
        applied = await self.backend.bulk_write(collection, tagged)
        await self.outbox.settle(
            [
                Written(resource, w.id, w.document, w.outbox)
                for w, ok in zip(tagged, applied, strict=True)
                if ok and w.outbox is not None
            ]
        )
        return applied

    def _entry(self, collection: str, id: Any, given: OutboxEntry | None) -> OutboxEntry | None:
        entry = self.outbox.entry(collection, id)
        if entry is not None and given is not None:
            raise ValueError(f"writes to the resource {collection!r} carry the core's entry")
        return entry

    async def _settle(
        self, collection: str, id: Any, document: dict[str, Any] | None, entry: OutboxEntry | None
    ) -> None:
        if entry is not None:
            resource = self.outbox.resources[collection]
            await self.outbox.settle([Written(resource, id, document, entry)])


__all__ = ["INTERNAL", "OUTBOX", "REBUILDS", "Outbox", "OutboxStore", "Written"]
