"""An Elasticsearch or OpenSearch cluster as a :class:`restplug.SearchIndex`.

Names: a collection ``apps`` is read through the alias ``<prefix>-apps`` (prefix ``restplug``
unless the URL's path gives one), over one versioned index (``<prefix>-apps-0`` at first,
``<prefix>-apps-<time>`` after each rebuild).  A rebuild fills a new index reachable through
the alias ``<prefix>-apps-next`` and then moves the read alias to it in one atomic alias update,
so searches never see a half-built index.  While ``-next`` exists every change goes to both
indexes; the rebuild writes with ``create`` so that it never overwrites a change made meanwhile,
and a delete leaves a tombstone (a document without text, which no query matches) in the new
index so that the rebuild does not bring the document back.

Each search field is one text field (a list's elements as an array), analysed as the builtin
index does: NFKC text cut into words of letters and digits, lower-cased and ASCII-folded.  A
``prefix`` sub-field holds each word's edge n-grams (type-ahead) and a ``keyword`` sub-field the
exact value.  A query word must match in some field: exactly, as a prefix, or within the typo
distance ``fuzziness: AUTO`` allows; fields are boosted by the resource's weights.

The cluster's root document, read at start-up, tells Elasticsearch from OpenSearch: the official
client's versioned media type (``application/vnd.elasticsearch+json; compatible-with=N``) is
sent to Elasticsearch with the cluster's major version, and plain ``application/json`` to
OpenSearch, which answers the versioned one with 406.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import logging
import re
import time
import unicodedata
from collections.abc import AsyncIterable, Iterator, Mapping, Sequence
from typing import Any
from urllib.parse import unquote, urlsplit

from elastic_transport import AiohttpHttpNode, HttpHeaders, TransportError
from elasticsearch import ApiError, AsyncElasticsearch

from restplug import BackendUnavailable, ConfigError, texts_at

log = logging.getLogger("restplug.search.elasticsearch")

SCHEMES = {"elasticsearch": "http", "elasticsearch+https": "https"}
#: Oldest major version of each product the plugin speaks to (bulk ``require_alias``, atomic
#: alias updates, the versioned media type of the 8 and 9 clients).
OLDEST = {"elasticsearch": 8, "opensearch": 1}
_BATCH = 500  # documents per bulk request of a rebuild
#: Words of one search that must match; 16 words x 4 fields x 50 expansions stay under the
#: 4,096 clauses every supported version allows.
MAX_WORDS = 16
_FIELD = re.compile(r"[A-Za-z0-9_]+(?:\.[A-Za-z0-9_]+)*")
_WORD = re.compile(r"[^\W_]+")  # a word of user text, as the builtin index cuts it
_PREFIX = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
# A bulk action and its document (None for a delete).
Operation = tuple[str, Mapping[str, Any] | None]
_MEDIA = re.compile(r"application/vnd\.elasticsearch\+([a-z-]+)(?:\s*;\s*compatible-with=\d+)?")

_ANALYSIS = {
    # Words are letters and digits, as SQLite's unicode61 tokenizer cuts them ("Counter-Strike"
    # is two words, "3.5" too); a char filter does the cutting, which every version supports.
    "char_filter": {
        "separators": {"type": "pattern_replace", "pattern": r"[^\p{L}\p{N}]+", "replacement": " "}
    },
    "filter": {"prefixes": {"type": "edge_ngram", "min_gram": 1, "max_gram": 20}},
    "analyzer": {
        "words": {
            "type": "custom",
            "char_filter": ["separators"],
            "tokenizer": "whitespace",
            "filter": ["lowercase", "asciifolding"],
        },
        "prefixes": {
            "type": "custom",
            "char_filter": ["separators"],
            "tokenizer": "whitespace",
            "filter": ["lowercase", "asciifolding", "prefixes"],
        },
    },
}


@dataclasses.dataclass(frozen=True)
class Cluster:
    """What the root document says: the product and its major version."""

    product: str  # "elasticsearch" or "opensearch"
    major: int

    @classmethod
    def from_root(cls, root: Mapping[str, Any]) -> Cluster:
        version = root.get("version") or {}
        product = "opensearch" if version.get("distribution") == "opensearch" else "elasticsearch"
        try:
            major = int(str(version.get("number", "")).split(".")[0])
        except ValueError:
            raise ConfigError(
                f"RESTPLUG_SEARCH_URL: not a search cluster ({root!r:.200})"
            ) from None
        if major < OLDEST[product]:
            raise ConfigError(
                f"RESTPLUG_SEARCH_URL: {product} {version.get('number')} is too old; "
                f"{product} {OLDEST[product]} or newer is supported"
            )
        return cls(product, major)

    def media_type(self, header: str) -> str:
        """The client's versioned media type as this cluster accepts it."""
        if self.product == "opensearch":
            return _MEDIA.sub(r"application/\1", header)
        return _MEDIA.sub(
            rf"application/vnd.elasticsearch+\1; compatible-with={self.major}", header
        )


def node_for(cluster: Cluster) -> type[AiohttpHttpNode]:
    """The client's HTTP node class, speaking the cluster's media types.

    The client also refuses any answer without ``X-Elastic-Product: Elasticsearch``; for
    OpenSearch, whose root document was read and checked above, the node supplies it, since
    the plugin uses only the API the two products share."""

    class Node(AiohttpHttpNode):
        async def perform_request(  # type: ignore[override]
            self, method: str, target: str, body: bytes | None = None,
            headers: HttpHeaders | None = None, **kwargs: Any,
        ) -> Any:  # fmt: skip
            headers = HttpHeaders(headers or {})
            for name in ("accept", "content-type"):
                if name in headers:
                    headers[name] = cluster.media_type(headers[name])
            response = await super().perform_request(method, target, body, headers, **kwargs)
            if cluster.product != "opensearch":
                return response
            answered = response.meta.headers.copy()
            answered["x-elastic-product"] = "Elasticsearch"
            meta = dataclasses.replace(response.meta, headers=answered)
            return type(response)(meta, response.body)

    return Node


def client_options(url: str, api_key: str | None) -> tuple[dict[str, Any], str]:
    """The client's connection options for ``url``, and the index name prefix."""
    parts = urlsplit(url)
    scheme = SCHEMES.get(parts.scheme.lower())
    try:
        port = parts.port
    except ValueError:
        port = None
        scheme = None
    prefix = parts.path.strip("/") or "restplug"
    if scheme is None or not parts.hostname or not _PREFIX.fullmatch(prefix):
        raise ConfigError(
            "RESTPLUG_SEARCH_URL: expected elasticsearch[+https]://[user:password@]host[:port]"
            "[/index-prefix] (prefix: lower-case letters, digits, dashes)"
        )
    options: dict[str, Any] = {
        "hosts": [{"scheme": scheme, "host": parts.hostname, "port": port or 9200}]
    }
    if parts.username:
        options["basic_auth"] = (unquote(parts.username), unquote(parts.password or ""))
    if api_key:
        options["api_key"] = api_key
    return options, prefix


class ElasticsearchIndex:
    """``elasticsearch://[user:password@]host[:port][/prefix]`` (``elasticsearch+https://``
    for TLS), or an API key given apart.  ``timeout`` (seconds) bounds each request but a
    rebuild's bulk writes; a cluster that does not answer within it is unavailable."""

    def __init__(self, url: str, *, api_key: str | None = None, timeout: float = 5.0) -> None:
        self._options, self.prefix = client_options(url, api_key)
        # Below the core's own deadline for the same call, so that a cluster that accepts
        # connections and never answers is reported as unavailable rather than cut short.
        self.timeout = max(0.5, timeout * 0.8)
        self._client: AsyncElasticsearch | None = None
        self._connecting = asyncio.Lock()
        self._closed = False
        self._fields: dict[str, dict[str, float]] = {}
        self._rebuilding: collections.defaultdict[str, asyncio.Lock] = collections.defaultdict(
            asyncio.Lock
        )

    # -- life cycle -----------------------------------------------------------------------

    async def open(self) -> None:
        """Read the cluster's root document; a cluster that is down does not stop start-up
        (search answers 503 and writes stay pending until it is up), a wrong one does."""
        self._closed = False
        try:
            async with self._connecting:
                self._client = await self._connect()
        except BackendUnavailable as e:
            log.warning("%s; searches fail until it answers", e)

    async def close(self) -> None:
        self._closed = True
        client, self._client = self._client, None
        if client is not None:
            await client.close()

    async def ping(self) -> None:
        client = await self._connected()
        async with _outage("ping"):
            await client.info()

    async def _connected(self) -> AsyncElasticsearch:
        """The client, made on first use from the cluster's root document."""
        if self._closed:
            raise BackendUnavailable("the search index is closed")
        async with self._connecting:
            if self._client is None:
                try:
                    self._client = await self._connect()
                except ConfigError as e:
                    # Found only now (the cluster was down at start-up): the server runs, so
                    # search is unavailable until the deployer fixes the configuration.
                    log.error("%s", e)
                    raise BackendUnavailable("the search cluster is misconfigured") from e
            return self._client

    async def _connect(self) -> AsyncElasticsearch:
        options = {**self._options, "request_timeout": self.timeout, "max_retries": 0}
        probe = AsyncElasticsearch(**options)
        try:
            async with _outage("connect"):
                # The transport alone: no versioned media type and no product check yet.
                response = await probe.transport.perform_request(
                    "GET", "/", headers={"accept": "application/json"}
                )
        finally:
            await probe.close()
        if response.meta.status in (401, 403):
            raise ConfigError(
                "RESTPLUG_SEARCH_URL: the search cluster refused the credentials "
                f"(HTTP {response.meta.status}); "
                "set user:password in the URL or RESTPLUG_ES_API_KEY"
            )
        if response.meta.status != 200 or not isinstance(response.body, Mapping):
            raise BackendUnavailable(f"search cluster answered HTTP {response.meta.status}")
        cluster = Cluster.from_root(response.body)
        log.info("search index on %s %d", cluster.product, cluster.major)
        return AsyncElasticsearch(**options, node_class=node_for(cluster))

    # -- collections ----------------------------------------------------------------------

    def _alias(self, collection: str) -> str:
        return f"{self.prefix}-{collection.lower()}"

    async def prepare(self, collection: str, fields: Mapping[str, float]) -> None:
        """Create the collection's index and alias if needed.  When the live index holds
        other fields (the resource's search fields changed), an empty index replaces it and a
        warning asks for ``restplug reindex``; a change of weights alone needs nothing."""
        fields = _checked_fields(fields)
        client = await self._connected()
        alias = self._alias(collection)
        async with _outage("prepare"):
            live = await _indices_of(client, alias)
            if not live:
                await self._create_live(client, alias, fields)
            else:
                mapping = await client.indices.get_mapping(index=live[0])
                meta = mapping[live[0]]["mappings"].get("_meta", {})
                if meta.get("fields") != list(fields):
                    new = f"{alias}-{time.time_ns()}"
                    await client.indices.create(index=new, **_index_body(fields))
                    await _swap(client, alias, live, new)
                    log.warning(
                        "the search fields of %s changed: its search index was emptied; "
                        "run `restplug reindex %s`",
                        collection,
                        collection,
                    )
        self._fields[collection] = fields

    async def _create_live(
        self, client: AsyncElasticsearch, alias: str, fields: dict[str, float]
    ) -> None:
        # A fixed first name, so that workers starting together create one index, not one each.
        first = f"{alias}-0"
        try:
            await client.indices.create(index=first, **_index_body(fields))
        except ApiError as e:
            if "resource_already_exists" not in str(e):  # else another process created it
                raise
        await client.indices.update_aliases(actions=[{"add": {"index": first, "alias": alias}}])

    def _prepared(self, collection: str) -> dict[str, float]:
        fields = self._fields.get(collection)
        if fields is None:
            raise BackendUnavailable(f"the search index of {collection!r} is not prepared")
        return fields

    # -- writes ---------------------------------------------------------------------------

    async def upsert(self, collection: str, id: Any, document: Mapping[str, Any]) -> None:
        """Index one document, visible to the next search; in a running rebuild's index too."""
        fields = self._prepared(collection)
        body = _source(id, document, fields)
        await self._write(collection, id, ("index", body), ("index", body))

    async def delete(self, collection: str, id: Any) -> None:
        """Remove one document (absent: not an error); a running rebuild keeps a tombstone."""
        self._prepared(collection)
        await self._write(collection, id, ("delete", None), ("index", {"rid": _key(id)}))

    async def _write(
        self,
        collection: str,
        id: Any,
        live: Operation,
        building: Operation,
    ) -> None:
        """One bulk request: ``live`` on the read alias, ``building`` on a running rebuild's
        index (ignored when none runs)."""
        client = await self._connected()
        alias, key = self._alias(collection), _key(id)
        operations: list[Mapping[str, Any]] = []
        for target, (action, body) in ((alias, live), (f"{alias}-next", building)):
            # require_alias: a missing alias is an error, never an index created in its place.
            meta: dict[str, Any] = {"_index": target, "_id": key}
            if action != "delete":
                meta["require_alias"] = True
            operations.append({action: meta})
            if body is not None:
                operations.append(body)
        for attempt in (1, 2):
            async with _outage("write"):
                result = await client.bulk(operations=operations, refresh=True)
            live_item, *_ = _items(result)
            error = live_item.get("error")
            if error is None:
                return
            if error.get("type") == "index_not_found_exception" and attempt == 1:
                # The cluster lost the index (an in-memory server restarted, an operator
                # deleted it): recreate it empty and write again; reindex restores the rest.
                log.warning("the search index of %s was missing; created it empty", collection)
                async with _outage("write"):
                    await self._create_live(client, alias, self._fields[collection])
                continue
            raise _error(live_item.get("status", 500), error)

    # -- reads ----------------------------------------------------------------------------

    async def search(self, collection: str, text: str, limit: int) -> list[tuple[Any, float]]:
        """At most ``limit`` (id, score) pairs, best first; every word of ``text`` must match
        some field exactly, as a prefix or with a typo.  No words, no results."""
        fields = self._prepared(collection)
        words = list(dict.fromkeys(_WORD.findall(unicodedata.normalize("NFKC", text))))
        # Beyond some words a query would pass the cluster's clause limit (each typo-tolerant
        # word expands to up to 50 terms per field); the first ones find a superset.
        words = words[:MAX_WORDS]
        if not words or limit <= 0:
            return []
        whole = [f"{_name(path)}^{weight}" for path, weight in fields.items()]
        prefixes = [f"{_name(path)}.prefix^{weight}" for path, weight in fields.items()]
        query = {"bool": {"must": [_word_query(word, whole, prefixes) for word in words]}}
        client = await self._connected()
        for attempt in (1, 2):
            try:
                async with _outage("search"):
                    result = await client.search(
                        index=self._alias(collection),
                        query=query,
                        size=limit,
                        source=False,
                        # Equal scores in id order, so that repeated searches agree.
                        sort=[{"_score": "desc"}, {"rid": "asc"}],
                        track_total_hits=False,
                    )
            except ApiError as e:
                if e.status_code == 404 and attempt == 1:
                    async with _outage("search"):
                        await self._create_live(client, self._alias(collection), fields)
                    continue
                # The query is built here from words alone, so a refusal is the cluster's
                # state (an index changed behind the plugin's back), not the client's input:
                # the search is unavailable, never a server error.
                log.error("the search cluster refused a search of %s: %s", collection, e)
                raise BackendUnavailable(f"search cluster refused: {e.status_code}") from e
            return [(_id(hit["_id"]), float(hit["_score"])) for hit in result["hits"]["hits"]]
        return []

    # -- rebuild --------------------------------------------------------------------------

    async def rebuild(
        self, collection: str, documents: AsyncIterable[tuple[Any, Mapping[str, Any]]]
    ) -> int:
        """Fill a new index from ``documents``, then move the read alias to it in one atomic
        alias update; searches answer from the old index until then.  On any failure the new
        index is deleted and the old one stays.  Returns how many documents were read."""
        fields = self._prepared(collection)
        client = await self._connected()
        alias = self._alias(collection)
        building = f"{alias}-next"
        new = f"{alias}-{time.time_ns()}"
        bulk = client.options(request_timeout=max(30.0, self.timeout))
        async with self._rebuilding[collection]:
            async with _outage("rebuild"):
                for leftover in await _indices_of(client, building):  # of a rebuild that died
                    await client.options(ignore_status=404).indices.delete(index=leftover)
                body = _index_body(fields)
                # No refreshes while it fills: one at the end makes it searchable at once.
                settings = {**body["settings"], "refresh_interval": "-1"}
                await client.indices.create(
                    index=new, aliases={building: {}}, settings=settings, mappings=body["mappings"]
                )
            try:
                count = 0
                batch: list[Mapping[str, Any]] = []
                async for id, document in documents:
                    # create: a change written meanwhile (or its tombstone) is newer; keep it.
                    batch += [
                        {"create": {"_index": new, "_id": _key(id)}},
                        _source(id, document, fields),
                    ]
                    count += 1
                    if len(batch) == 2 * _BATCH:
                        await _fill(bulk, batch)
                        batch = []
                if batch:
                    await _fill(bulk, batch)
                async with _outage("rebuild"):
                    await client.indices.put_settings(
                        index=new, settings={"refresh_interval": None}
                    )
                    await client.indices.refresh(index=new)
                    await _swap(client, alias, await _indices_of(client, alias), new, building)
            except BaseException:
                try:
                    await client.options(ignore_status=404).indices.delete(index=new)
                except Exception as e:
                    log.warning("could not delete the unfinished search index %s: %s", new, e)
                raise
        return count


def _word_query(word: str, whole: list[str], prefixes: list[str]) -> dict[str, Any]:
    """One word: a whole word within the typos ``AUTO`` allows (none below 3 letters, one up
    to 5, two beyond; the first letter right), or exactly the start of a word (type-ahead).
    Typos are not allowed on prefixes: a short prefix one letter off matches far too much."""
    return {
        "bool": {
            "should": [
                {
                    "multi_match": {
                        "query": word,
                        "fields": whole,
                        "fuzziness": "AUTO",
                        "prefix_length": 1,
                    }
                },
                {"multi_match": {"query": word, "fields": prefixes}},
            ],
            "minimum_should_match": 1,
        }
    }


async def _indices_of(client: AsyncElasticsearch, alias: str) -> list[str]:
    found = await client.options(ignore_status=404).indices.get_alias(name=alias)
    return [] if found.meta.status == 404 else sorted(found.body)


async def _swap(
    client: AsyncElasticsearch,
    alias: str,
    old: Sequence[str],
    new: str,
    building: str | None = None,
) -> None:
    """Point ``alias`` at ``new`` alone in one atomic update, then delete the old indexes."""
    actions: list[dict[str, Any]] = [{"remove": {"index": index, "alias": alias}} for index in old]
    actions.append({"add": {"index": new, "alias": alias}})
    if building is not None:
        actions.append({"remove": {"index": new, "alias": building}})
    await client.indices.update_aliases(actions=actions)
    for index in old:
        if index != new:
            await client.options(ignore_status=404).indices.delete(index=index)


async def _fill(client: AsyncElasticsearch, operations: list[Mapping[str, Any]]) -> None:
    async with _outage("rebuild"):
        result = await client.bulk(operations=operations)
    for item in _items(result):
        error = item.get("error")
        if error is not None and item.get("status") != 409:  # 409: changed during the rebuild
            raise _error(item.get("status", 500), error)


def _items(result: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    for item in result["items"]:
        yield next(iter(item.values()))


def _error(status: int, error: Mapping[str, Any]) -> Exception:
    message = f"search cluster: {error.get('type')}: {error.get('reason')}"
    return BackendUnavailable(message) if status >= 500 or status == 429 else RuntimeError(message)


@contextlib.asynccontextmanager
async def _outage(what: str) -> Any:
    """Turn the client's outage errors into BackendUnavailable, the core's word for them."""
    try:
        yield
    except TransportError as e:  # connection refused, timed out, TLS: the cluster is unreachable
        raise BackendUnavailable(f"search cluster unreachable ({what}): {type(e).__name__}") from e
    except ApiError as e:
        if e.status_code >= 500 or e.status_code == 429:
            raise BackendUnavailable(f"search cluster unavailable ({what}): {e.status_code}") from e
        raise


# -- documents ------------------------------------------------------------------------------


def _checked_fields(fields: Mapping[str, float]) -> dict[str, float]:
    if not fields:
        raise ValueError("a search index needs at least one field")
    checked = {path: float(weight) for path, weight in fields.items()}
    for path, weight in checked.items():
        if not _FIELD.fullmatch(path):
            raise ValueError(f"invalid search field {path!r}")
        if not weight > 0:
            raise ValueError(f"search field {path!r} needs a positive weight, not {weight}")
    return checked


def _name(path: str) -> str:
    """The index field of a document path (flat: a dotted path is not an object here)."""
    return "text_" + path.replace(".", "__")


def _index_body(fields: Mapping[str, float]) -> dict[str, Any]:
    text = {
        "type": "text",
        "analyzer": "words",
        "fields": {
            "prefix": {"type": "text", "analyzer": "prefixes", "search_analyzer": "words"},
            "keyword": {"type": "keyword", "ignore_above": 256},
        },
    }
    properties: dict[str, Any] = {"rid": {"type": "keyword"}}
    properties.update({_name(path): text for path in fields})
    return {
        "settings": {"analysis": _ANALYSIS},
        "mappings": {"dynamic": False, "_meta": {"fields": list(fields)}, "properties": properties},
    }


def _key(id: Any) -> str:
    """The document id as an index id: ints and strings kept apart, as in the store."""
    if isinstance(id, bool) or not isinstance(id, int | str):
        raise ValueError(f"document ids are integers or strings, not {type(id).__name__}")
    return f"i:{id}" if isinstance(id, int) else f"s:{id}"


def _id(key: str) -> Any:
    kind, _, value = key.partition(":")
    return int(value) if kind == "i" else value


def _source(id: Any, document: Mapping[str, Any], fields: Mapping[str, float]) -> dict[str, Any]:
    source: dict[str, Any] = {"rid": _key(id)}
    for path in fields:
        texts = [unicodedata.normalize("NFKC", s) for s in texts_at(document, path)]
        if texts:
            source[_name(path)] = texts
    return source


__all__ = ["Cluster", "ElasticsearchIndex", "client_options", "node_for"]
