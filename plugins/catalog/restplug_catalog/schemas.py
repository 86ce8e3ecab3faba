"""The catalogue's documents: Steam-like apps with prices per country and their history."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, fields, post_load, validate

from restplug import INT64_MAX

APP_TYPES = ("game", "dlc", "demo", "soundtrack", "software", "video")
COUNTRY = validate.Regexp(r"^[A-Z]{2}$", error="must be an ISO 3166 alpha-2 code such as US")
CURRENCY = validate.Regexp(r"^[A-Z]{3}$", error="must be an ISO 4217 code such as USD")


class PriceEntrySchema(Schema):
    price = fields.Float(required=True, validate=validate.Range(min=0))
    initial_price = fields.Float(required=True, validate=validate.Range(min=0))
    discount = fields.Integer(required=True, validate=validate.Range(min=0, max=100))
    timestamp = fields.AwareDateTime(required=True, default_timezone=None)


class CountryPricesSchema(Schema):
    currency = fields.String(required=True, validate=CURRENCY)
    is_available = fields.Boolean(required=True)
    price_story = fields.List(fields.Nested(PriceEntrySchema), load_default=list)

    @post_load
    def newest_first(self, data: dict[str, Any], **_: Any) -> dict[str, Any]:
        data["price_story"].sort(key=lambda entry: entry["timestamp"], reverse=True)
        return data


class PlatformsSchema(Schema):
    windows = fields.Boolean(load_default=False)
    mac = fields.Boolean(load_default=False)
    linux = fields.Boolean(load_default=False)


class AppSchema(Schema):
    """A Steam-like application (game, DLC, soundtrack...)."""

    id = fields.Integer(required=True, strict=True, validate=validate.Range(min=1, max=INT64_MAX))
    name = fields.String(required=True, validate=validate.Length(min=1, max=300))
    type = fields.String(required=True, validate=validate.OneOf(APP_TYPES))
    is_free = fields.Boolean(load_default=False)
    short_description = fields.String(load_default="", validate=validate.Length(max=5000))
    developers = fields.List(fields.String(), load_default=list)
    publishers = fields.List(fields.String(), load_default=list)
    genres = fields.List(fields.String(), load_default=list)
    categories = fields.List(fields.String(), load_default=list)
    platforms = fields.Nested(PlatformsSchema, load_default=lambda: PlatformsSchema().load({}))
    release_date = fields.Date(load_default=None, allow_none=True)
    total_recommendations = fields.Integer(
        load_default=0, validate=validate.Range(min=0, max=INT64_MAX)
    )
    prices = fields.Dict(
        keys=fields.String(validate=COUNTRY),
        values=fields.Nested(CountryPricesSchema),
        load_default=dict,
    )


class AppLinksSchema(Schema):
    price_history = fields.Dict(
        keys=fields.String(validate=COUNTRY),
        values=fields.String(),
        required=True,
        metadata={"description": "the price history of each country, by country code"},
    )


class AppReadSchema(AppSchema):
    """An app as reads return it: the latest price entry per country, and links."""

    links = fields.Nested(AppLinksSchema, data_key="_links", required=True)
