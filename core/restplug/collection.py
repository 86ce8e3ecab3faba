"""One resource's documents, read and written through one door: ``restplug.collection(name)``.

Every write through a :class:`Collection` carries its side effects with it, crash-safe (see
:mod:`restplug.outbox`): the resource's cached responses are invalidated, its search index entry
updated, and the ``documents_changed`` hook tells every plugin, once per write (a bulk write is
one call with every document it changed).  The core's own routes write through it too, so a
plugin's write is seen exactly as a client's.

Writes keep the store's compare-and-set semantics: ``insert`` raises
:class:`~restplug.errors.Conflict` when the id exists; ``replace`` and ``delete`` raise
:class:`~restplug.errors.NotFound` when it does not and, given ``if_etag``,
:class:`~restplug.errors.PreconditionFailed` when the stored ETag differs (checked and written in
one atomic step, which is what an HTTP ``If-Match`` needs).  Documents are stored as given:
validate them first (``resource.schema()``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from restplug.http import etag_of
from restplug.stores.protocol import Filter, FindQuery, Stored, Write

if TYPE_CHECKING:
    from restplug.outbox import OutboxStore
    from restplug.resources import Resource


@dataclass(frozen=True)
class Change:
    """One document a write changed: its ``id``, and the ``document`` as written (``None``
    after a delete; as stored at the time of a retry after a crash)."""

    id: Any
    document: dict[str, Any] | None


class Collection:
    """Reads and writes of one registered resource's documents (``restplug.collection``)."""

    def __init__(self, resource: Resource, store: OutboxStore) -> None:
        self.resource = resource
        self._store = store

    @property
    def name(self) -> str:
        return self.resource.name

    # -- reads ------------------------------------------------------------------------------

    async def get(self, id: Any) -> Stored | None:
        """The document with this id (with its ETag), or None."""
        return await self._store.get(self.name, id)

    async def find(self, query: FindQuery | None = None) -> list[Stored]:
        """The documents matching ``query`` (a MongoDB-syntax filter, sort and window), in its
        order; every document without one."""
        return await self._store.find(self.name, query or FindQuery())

    async def count(self, filter: Filter | None = None) -> int:
        """How many documents match ``filter`` (all of them without one)."""
        return await self._store.count(self.name, filter or {})

    # -- writes -----------------------------------------------------------------------------

    async def insert(self, id: Any, document: dict[str, Any]) -> str:
        """Add a document; returns its ETag.  Conflict when the id exists."""
        etag = etag_of(document)
        await self._store.insert(self.name, id, document, etag)
        return etag

    async def replace(
        self, id: Any, document: dict[str, Any], *, if_etag: str | None = None
    ) -> str:
        """Overwrite a document, only while its ETag is ``if_etag`` when given; returns the new
        ETag.  NotFound, PreconditionFailed."""
        etag = etag_of(document)
        await self._store.replace(self.name, id, document, etag, if_etag=if_etag)
        return etag

    async def delete(self, id: Any, *, if_etag: str | None = None) -> None:
        """Remove a document, only while its ETag is ``if_etag`` when given.  NotFound,
        PreconditionFailed."""
        await self._store.delete(self.name, id, if_etag=if_etag)

    async def bulk(self, writes: Sequence[Write]) -> list[bool]:
        """Many writes in one round trip (one transaction where the store has them), their
        side effects settled together (``documents_changed`` is called once for all).  Each
        :class:`~restplug.stores.protocol.Write` is an insert (``if_etag`` None), a
        compare-and-set replace, or a delete (``document`` None); one without an ``etag`` gets
        its document's.  Returns, per write, whether it applied: False for an insert whose id
        exists, a replace or delete whose document changed or vanished meanwhile."""
        tagged = [
            dataclasses.replace(w, etag=etag_of(w.document))
            if w.document is not None and not w.etag
            else w
            for w in writes
        ]
        return await self._store.bulk_write(self.name, tagged)


__all__ = ["Change", "Collection"]
