"""The plugin ``elasticsearch``: an Elasticsearch or OpenSearch cluster as the search index, for
``RESTPLUG_SEARCH_URL=elasticsearch://host:9200`` or ``elasticsearch+https://host:9200``."""

from __future__ import annotations

from restplug import Backend, Setting, Settings, hookimpl, optional
from restplug_search_es.index import ElasticsearchIndex

API_KEY = "RESTPLUG_ES_API_KEY"


def build(url: str, settings: Settings) -> ElasticsearchIndex:
    return ElasticsearchIndex(
        url, api_key=settings[API_KEY], timeout=settings.query_timeout_ms / 1000
    )


@hookimpl
def register_settings() -> list[Setting]:
    return [
        Setting(
            API_KEY,
            None,
            optional(str),
            "API key for the search cluster (instead of user:password in RESTPLUG_SEARCH_URL)",
            secret=True,
        )
    ]


@hookimpl
def register_backends() -> list[Backend]:
    return [Backend("search", ("elasticsearch", "elasticsearch+https"), build)]
