"""HTTP helpers for a plugin's own routes: JSON bodies, ETags, cached reads, list pages, query
parameters and OpenAPI fragments.

The routes the core serves for every resource are built from these same functions, so a
plugin's route answers as the core's do: problem+json errors, strong ETags, ``If-None-Match``
304s, the list envelope and its ``Link`` header.  The code lives in the core's own modules;
this module is the curated, stable part of it (see ``docs/api.md``).
"""

from restplug.http import (
    JSON,
    MERGE_PATCH,
    dumps,
    etag_of,
    json_response,
    read_json,
    require_bounded,
    strong_match,
)
from restplug.openapi import (
    CACHE_HEADERS,
    header,
    id_parameter,
    json_content,
    page_schema,
    problem_response,
)
from restplug.query import DEFAULT_SIZE, MAX_PAGE, MAX_SIZE, bad_parameter, int_param, pages
from restplug.views import (
    Entry,
    cached_response,
    entry,
    list_entry,
    merge_patch,
    page_links,
    send_entry,
)

__all__ = [
    "CACHE_HEADERS",
    "DEFAULT_SIZE",
    "JSON",
    "MAX_PAGE",
    "MAX_SIZE",
    "MERGE_PATCH",
    "Entry",
    "bad_parameter",
    "cached_response",
    "dumps",
    "entry",
    "etag_of",
    "header",
    "id_parameter",
    "int_param",
    "json_content",
    "json_response",
    "list_entry",
    "merge_patch",
    "page_links",
    "page_schema",
    "pages",
    "problem_response",
    "read_json",
    "require_bounded",
    "send_entry",
    "strong_match",
]
