"""Where the methods find prices: documents with ``prices{COUNTRY: {is_available, price_story}}``
(``price_story`` newest first), as the catalogue's apps have."""

from __future__ import annotations

import re

from marshmallow import ValidationError, fields

from restplug import Resource


def has_prices(resource: Resource) -> bool:
    """The price methods apply to resources with a ``prices`` map of that shape."""
    return resource.field_at("prices.XX.price_story.0.price") is not None


def current(country: str, key: str) -> str:
    """The path of the latest ``key`` (price, discount...) of a country."""
    return f"prices.{country}.price_story.0.{key}"


#: A country code, in any case.
COUNTRY = "[A-Za-z]{2}"


class Countries(fields.Field):
    """A comma list of ISO 3166 alpha-2 codes: ``US,DE``."""

    def __init__(self) -> None:
        # Described as what a generated client sends: an array, as one comma list.
        items = {"type": "string", "pattern": f"^{COUNTRY}$"}
        super().__init__(metadata={"type": "array", "items": items, "minItems": 1})

    def _deserialize(self, value, attr, data, **kwargs):  # type: ignore[no-untyped-def]
        codes = [part.strip().upper() for part in str(value).split(",") if part.strip()]
        if not codes or not all(re.fullmatch(COUNTRY, code) for code in codes):
            raise ValidationError("must be a comma list of country codes such as US,DE")
        return sorted(set(codes))

    def _serialize(self, value, attr, obj, **kwargs):  # type: ignore[no-untyped-def]
        return value
