"""The search index interface every search plugin implements (SQLite FTS5 builtin, Elasticsearch).

An index holds, per collection, the text of each document's searchable fields (the resource's
``search_fields`` with their weights) and answers a query with document ids, most relevant
first.  The document store stays the source of truth: the index can always be rebuilt from it.

An index may also offer ``update_many(collection, changes)``, ``changes`` a sequence of (id,
document or ``None`` for a delete) applied in order: the core then gives it a write batch's
changes (a package's) in one call rather than one ``upsert`` or ``delete`` each.  It is left
out of :class:`SearchIndex` so that indexes without it still are one.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, Iterator, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class SearchIndex(Protocol):
    """What the core needs from a search index.  Every method may raise
    :class:`restplug.errors.BackendUnavailable` when the index cannot be reached."""

    async def open(self) -> None:
        """Connect; called once at start-up."""

    async def close(self) -> None:
        """Disconnect; called once at shutdown."""

    async def ping(self) -> None:
        """Return when the index answers, raise BackendUnavailable when it does not."""

    async def prepare(self, collection: str, fields: Mapping[str, float]) -> None:
        """Create the collection's index if needed; ``fields`` maps document paths to weights."""

    async def upsert(self, collection: str, id: Any, document: Mapping[str, Any]) -> None:
        """Index (or re-index) one document."""

    async def delete(self, collection: str, id: Any) -> None:
        """Remove one document; removing an absent one is not an error."""

    async def search(self, collection: str, text: str, limit: int) -> list[tuple[Any, float]]:
        """At most ``limit`` (id, score) pairs matching ``text``, best first.  Words match as
        prefixes (type-ahead: ``witch`` finds Witcher) and without diacritics."""

    async def rebuild(
        self, collection: str, documents: AsyncIterable[tuple[Any, Mapping[str, Any]]]
    ) -> int:
        """Replace the collection's index with ``documents`` ((id, document) pairs), so that
        searches keep answering from the old index until the new one is complete.  Returns
        the number of documents indexed."""


def texts_at(document: Mapping[str, Any], path: str) -> Iterator[str]:
    """The strings (and numbers, as text) at a dotted ``path`` of a document, through lists at
    any level: what an index reads from a search field, the same for every index."""
    return _strings(document, path.split("."))


def _strings(value: Any, segments: Sequence[str]) -> Iterator[str]:
    if isinstance(value, list):
        for item in value:
            yield from _strings(item, segments)
    elif segments:
        if isinstance(value, Mapping) and segments[0] in value:
            yield from _strings(value[segments[0]], segments[1:])
    elif isinstance(value, str):
        yield value
    elif isinstance(value, int | float) and not isinstance(value, bool):
        yield str(value)
