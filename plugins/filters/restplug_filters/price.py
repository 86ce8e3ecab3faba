"""``price_lte`` / ``price_gte``: the current price in a country, ``19.99`` for the main
country or ``DE:19.99`` for another.  Two plugins, so either can be disabled alone."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from marshmallow import ValidationError, fields

from restplug import Context, FilterMethod, Fragment, Resource, hookimpl
from restplug_filters.prices import current, has_prices

#: ASCII digits only: one amount, one spelling (``\d`` alone takes any script's digits).
COUNTRY_AMOUNT = r"(?:([A-Za-z]{2}):)?([0-9]+(?:\.[0-9]+)?)"


class CountryAmount(fields.Field):
    """``19.99`` or ``DE:19.99``: an optional country, then an amount."""

    def __init__(self) -> None:
        # The OpenAPI document describes the parameter with the pattern it is parsed by.
        super().__init__(metadata={"type": "string", "pattern": f"^{COUNTRY_AMOUNT}$"})

    def _deserialize(self, value, attr, data, **kwargs):  # type: ignore[no-untyped-def]
        match = re.fullmatch(COUNTRY_AMOUNT, str(value))
        if not match:
            raise ValidationError(
                "must be an amount such as 19.99, or COUNTRY:AMOUNT such as DE:19.99"
            )
        country = match.group(1).upper() if match.group(1) else None
        return (country, float(match.group(2)))

    def _serialize(self, value, attr, obj, **kwargs):  # type: ignore[no-untyped-def]
        return value


@dataclass(frozen=True)
class PriceBound:
    """A plugin object: one bound on the current price."""

    name: str
    operator: str
    description: str

    async def apply(self, restplug: Context, resource: Resource, value: Any) -> Fragment:
        country, amount = value
        path = current(country or restplug.settings.main_country, "price")
        return Fragment({path: {self.operator: amount}})

    @hookimpl
    def register_filters(self, restplug: Context, resource: Resource) -> list[FilterMethod] | None:
        if not has_prices(resource):
            return None
        # The main country's price is indexed: the one a bare amount asks about.
        main = current(restplug.settings.main_country, "price")
        method = FilterMethod(
            self.name,
            CountryAmount(),
            self.apply,
            self.description,
            index_paths=(main,),
            examples=("19.99", "DE:5"),
        )
        return [method]


price_lte = PriceBound("price_lte", "$lte", "current price at most AMOUNT (or COUNTRY:AMOUNT)")
price_gte = PriceBound("price_gte", "$gte", "current price at least AMOUNT (or COUNTRY:AMOUNT)")
