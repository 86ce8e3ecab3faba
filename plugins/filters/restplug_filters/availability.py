"""``is_available_in_countries=US,DE``: apps available in every listed country."""

from __future__ import annotations

from typing import Any

from restplug import FilterMethod, Fragment, Resource, hookimpl
from restplug_filters.prices import Countries, has_prices


async def available_in(restplug: Any, resource: Resource, countries: list[str]) -> Fragment:
    return Fragment({"$and": [{f"prices.{c}.is_available": {"$eq": True}} for c in countries]})


@hookimpl
def register_filters(resource: Resource) -> list[FilterMethod] | None:
    if not has_prices(resource):
        return None
    return [
        FilterMethod(
            "is_available_in_countries",
            Countries(),
            available_in,
            "comma list of country codes: available in every one of them",
            examples=("US", "US,DE"),
        )
    ]
