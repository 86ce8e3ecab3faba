"""Package ingest: scraper workers send the current state of many apps in one request.

Each app is upserted; a country's price history gets a new entry only when its price, discount
or availability changed, so sending the same package twice changes nothing.  Writes go through
the apps' collection in one bulk call per round, each a compare-and-set on the ETag read: two
packages touching one app at once cannot lose each other's price entries, the loser of a race
re-reads and merges again.  A bulk call is one ``documents_changed`` call: a package tells the
plugins once (once more per round a race makes it retry).

Validation and merging are CPU work; they run in a worker thread so that the event loop keeps
serving other requests while a 5,000-app package is processed.  The thread holds the GIL only a few
milliseconds at a time; running the same work on the loop in chunks of 100 apps between ``await
asyncio.sleep(0)`` was measured to stall other requests three times longer, since each of them
needs several turns of the loop.  An app a worker sends in the form the schema gives back (nearly
all of them) is checked without marshmallow (:func:`in_own_form`), whose load and dump were most of
an ingest's time; any other goes through the schema, for its normal form or its errors.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import random
import re
import time
from collections import defaultdict
from datetime import UTC, date, datetime
from typing import Any

from aiohttp import web
from marshmallow import Schema, ValidationError, fields, validate

from restplug import (
    INT64_MAX,
    Context,
    FindQuery,
    Handler,
    Problem,
    Resource,
    Stored,
    Write,
    bulk_loading,
)
from restplug.web import etag_of, json_content, json_response, read_json
from restplug_catalog.schemas import APP_TYPES, COUNTRY, CURRENCY, AppSchema

#: The most apps one package may carry (the body limit applies too).
MAX_APPS = 5000
REQUIRED = ("id", "name", "type")


class CurrentPriceSchema(Schema):
    currency = fields.String(required=True, validate=CURRENCY)
    price = fields.Float(required=True, validate=validate.Range(min=0))
    initial_price = fields.Float(required=True, validate=validate.Range(min=0))
    discount = fields.Integer(required=True, validate=validate.Range(min=0, max=100))
    is_available = fields.Boolean(required=True)


class PackageAppSchema(AppSchema):
    """An app as a worker scraped it: the catalogue fields it knows, one price per country."""

    prices = fields.Dict(
        keys=fields.String(validate=COUNTRY), values=fields.Nested(CurrentPriceSchema)
    )


#: What a worker may leave out of an app: the stored value is kept.
OPTIONAL = tuple(name for name in PackageAppSchema().fields if name not in REQUIRED)
_APP_FIELDS = frozenset(PackageAppSchema().fields)
#: The fields of a new app besides its prices: given them all, it needs no defaults.
_NEW_APP_FIELDS = frozenset(AppSchema().fields) - {"prices"}


_COUNTRY_TEXT = re.compile("[A-Z]{2}")
_CURRENCY_TEXT = re.compile("[A-Z]{3}")
_DATE_TEXT = re.compile("[0-9]{4}-[0-9]{2}-[0-9]{2}")
_APP_TYPES = frozenset(APP_TYPES)
_STRING_LISTS = ("developers", "publishers", "genres", "categories")
_PLATFORMS = frozenset({"windows", "mac", "linux"})
_QUOTE = frozenset(CurrentPriceSchema().fields)


def in_own_form(raw: Any) -> bool:
    """Whether ``raw`` is a valid scraped app that :class:`PackageAppSchema` would give back
    unchanged (``dump(load(raw, partial=OPTIONAL)) == raw``), checked without marshmallow: a
    worker's app nearly always is, and marshmallow's load and dump cost most of an ingest.
    False says only "ask marshmallow", which then gives the normal form or the errors; so it
    may be False for apps marshmallow accepts, never True for one it changes or rejects."""
    if type(raw) is not dict or not raw.keys() <= _APP_FIELDS:
        return False
    id, name = raw.get("id"), raw.get("name")
    if not (type(id) is int and 1 <= id <= INT64_MAX and type(name) is str):
        return False
    if not (1 <= len(name) <= 300 and type(raw.get("type")) is str):
        return False
    if raw["type"] not in _APP_TYPES:
        return False
    if type(raw.get("is_free", False)) is not bool:
        return False
    description = raw.get("short_description", "")
    if type(description) is not str or len(description) > 5000:
        return False
    for key in _STRING_LISTS:
        items = raw.get(key, [])
        if type(items) is not list or any(type(item) is not str for item in items):
            return False
    platforms = raw.get("platforms", dict.fromkeys(_PLATFORMS, False))
    if type(platforms) is not dict or platforms.keys() != _PLATFORMS:
        return False
    if any(type(value) is not bool for value in platforms.values()):
        return False
    release = raw.get("release_date")
    if release is not None and not _is_date_text(release):
        return False
    recommendations = raw.get("total_recommendations", 0)
    if not (type(recommendations) is int and 0 <= recommendations <= INT64_MAX):
        return False
    prices = raw.get("prices", {})
    return type(prices) is dict and all(
        type(country) is str and _COUNTRY_TEXT.fullmatch(country) and _is_quote(quote)
        for country, quote in prices.items()
    )


def _is_quote(quote: Any) -> bool:
    return (
        type(quote) is dict
        and quote.keys() == _QUOTE
        and type(quote["currency"]) is str
        and _CURRENCY_TEXT.fullmatch(quote["currency"]) is not None
        and _is_amount(quote["price"])
        and _is_amount(quote["initial_price"])
        and type(quote["discount"]) is int
        and 0 <= quote["discount"] <= 100
        and type(quote["is_available"]) is bool
    )


def _is_amount(value: Any) -> bool:
    # A float: an int would come back from the schema as a float, another value.
    return type(value) is float and math.isfinite(value) and value >= 0


def _is_date_text(value: Any) -> bool:
    if type(value) is not str or not _DATE_TEXT.fullmatch(value):
        return False
    try:
        return date.fromisoformat(value).isoformat() == value
    except ValueError:
        return False


class PackageRequestSchema(Schema):
    """A package as documented: the apps checked one by one with :class:`PackageAppSchema`
    (and ``OPTIONAL``) as the server does, so a bad app is rejected alone."""

    apps = fields.List(
        fields.Nested(PackageAppSchema(partial=OPTIONAL)),
        required=True,
        validate=validate.Length(min=1, max=MAX_APPS),
    )


class RejectedAppSchema(Schema):
    index = fields.Integer(required=True, metadata={"description": "its position in apps"})
    id = fields.Raw(required=True, allow_none=True, metadata={"description": "its id, or null"})
    errors = fields.Dict(required=True, metadata={"description": "messages per field"})


class PackageResultSchema(Schema):
    """What a package changed: apps per outcome, and the apps refused with their reasons."""

    created = fields.Integer(required=True, validate=validate.Range(min=0))
    updated = fields.Integer(required=True, validate=validate.Range(min=0))
    unchanged = fields.Integer(required=True, validate=validate.Range(min=0))
    rejected = fields.List(fields.Nested(RejectedAppSchema), required=True)


class PackageSchema(Schema):
    apps = fields.List(fields.Raw(), required=True, validate=validate.Length(min=1, max=MAX_APPS))


def merge(current: dict[str, Any] | None, scraped: dict[str, Any], now: str) -> dict[str, Any]:
    """The app after this scrape: scraped fields over the current ones, and a price entry per
    country whose price, discount or availability changed."""
    merged = {**(current or {}), **{k: v for k, v in scraped.items() if k != "prices"}}
    prices = {country: dict(value) for country, value in (current or {}).get("prices", {}).items()}
    for country, quote in scraped.get("prices", {}).items():
        known = prices.get(country, {"price_story": []})
        story = known["price_story"]
        latest = story[0] if story else None
        entry = {
            "price": quote["price"],
            "initial_price": quote["initial_price"],
            "discount": quote["discount"],
            "timestamp": now,
        }
        changed = (
            latest is None
            or (latest["price"], latest["discount"]) != (quote["price"], quote["discount"])
            or known.get("is_available") != quote["is_available"]
        )
        prices[country] = {
            "currency": quote["currency"],
            "is_available": quote["is_available"],
            "price_story": [entry, *story] if changed else story,
        }
    merged["prices"] = prices
    return merged


class Ingest:
    """One package: validation, then rounds of read, merge and compare-and-set bulk write."""

    def __init__(self, restplug: Context, resource: Resource) -> None:
        self.restplug = restplug
        self.resource = resource
        self.schema = AppSchema()
        self.created = self.updated = self.unchanged = 0
        self.rejected: list[dict[str, Any]] = []

    def validate(self, apps: list[Any]) -> dict[int, list[tuple[int, dict[str, Any]]]]:
        """The valid apps grouped by id (in package order), the others rejected."""
        scraped = PackageAppSchema()
        by_id: dict[int, list[tuple[int, dict[str, Any]]]] = defaultdict(list)
        for index, raw in enumerate(apps):
            if in_own_form(raw):
                by_id[raw["id"]].append((index, raw))
                continue
            try:
                # Fields a worker leaves out keep their stored value: no defaults here.
                app = scraped.dump(scraped.load(raw, partial=OPTIONAL))
            except ValidationError as exc:
                app_id = raw.get("id") if isinstance(raw, dict) else None
                self.rejected.append({"index": index, "id": app_id, "errors": exc.messages})
                continue
            by_id[app["id"]].append((index, app))
        return by_id

    def apply(
        self, current: dict[str, Any] | None, scrapes: list[tuple[int, dict[str, Any]]], now: str
    ) -> dict[str, Any]:
        """The new document after every scrape of one app.  Both parts are valid already (the
        stored document, the scraped fields), so only a new app needs the schema: for the
        defaults of the fields it leaves out (a scraped app in its schema's form that has them
        all is what the schema gives back, with no prices yet).  Validating the whole price
        history again would cost most of the ingest."""
        document = current
        for _, app in scrapes:
            if document is None:
                fields_only = {k: v for k, v in app.items() if k != "prices"}
                document = (
                    {**fields_only, "prices": {}}
                    if fields_only.keys() == _NEW_APP_FIELDS
                    else self.schema.dump(self.schema.load(fields_only))
                )
            document = merge(document, app, now)
        return document

    def prepare(
        self,
        pending: dict[int, list[tuple[int, dict[str, Any]]]],
        stored: dict[Any, Stored],
        now: str,
    ) -> list[Write]:
        """The writes of one round: each changed app's new document, a compare-and-set on the
        ETag read; the apps that come out the same are counted unchanged."""
        writes = []
        for app_id, scrapes in pending.items():
            current = stored.get(app_id)
            document = self.apply(current and current.document, scrapes, now)
            etag = etag_of(document)
            if current is not None and current.etag == etag:
                self.unchanged += 1
                continue
            writes.append(Write(app_id, document, etag, current and current.etag))
        return writes

    async def run(self, apps: list[Any]) -> dict[str, Any]:
        collection = self.restplug.collection(self.resource.name)
        pending = await asyncio.to_thread(self.validate, apps)
        now = datetime.now(UTC).isoformat()
        # Apps another writer changed meanwhile are re-read and merged again, after a short
        # random pause so that racing packages stop colliding, until the query time bound.
        deadline = time.monotonic() + self.restplug.query_timeout
        for round in itertools.count():
            if not pending or time.monotonic() > deadline:
                break
            if round:
                await asyncio.sleep(random.uniform(0, 0.002 * min(round, 10)))
            found = await collection.find(FindQuery({"_id": {"$in": list(pending)}}))
            stored = {s.id: s for s in found}
            writes = await asyncio.to_thread(self.prepare, pending, stored, now)
            results = await collection.bulk(writes)
            retry = set()
            for write, applied in zip(writes, results, strict=True):
                if not applied:
                    retry.add(write.id)
                    continue
                if write.if_etag is None:
                    self.created += 1
                else:
                    self.updated += 1
            pending = {app_id: pending[app_id] for app_id in retry}
        for app_id, scrapes in pending.items():
            self.rejected.append(
                {
                    "index": scrapes[0][0],
                    "id": app_id,
                    "errors": {"_schema": ["changed by other writers too often; send it again"]},
                }
            )
        self.rejected.sort(key=lambda item: item["index"])
        return {
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "rejected": self.rejected,
        }


def package_handler(restplug: Context, resource: Resource) -> Handler:
    async def package(request: web.Request) -> web.Response:
        # A package's apps, read, merged and written, are thousands of small objects in flight.
        with bulk_loading():
            body = await read_json(request)
            try:
                apps = PackageSchema().load(body if isinstance(body, dict) else {"apps": None})
            except ValidationError as exc:
                raise Problem(422, "the package is not valid", errors=exc.messages) from None
            return json_response(await Ingest(restplug, resource).run(apps["apps"]))

    return package


PACKAGE_OPERATION = {
    "summary": "Upsert a batch of scraped apps with their current prices",
    "tags": ["package"],
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": PackageRequestSchema}},
    },
    "responses": {"200": json_content(PackageResultSchema, "what the package changed")},
}
