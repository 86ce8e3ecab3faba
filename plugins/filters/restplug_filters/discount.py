"""Sort ``discount``: the latest discount in ``RESTPLUG_MAIN_COUNTRY``; apps without a price
there sort last in both directions."""

from __future__ import annotations

from restplug import Context, Resource, SortMethod, hookimpl
from restplug_filters.prices import current, has_prices


def discount_keys(restplug: Context, resource: Resource) -> list[tuple[str, int]]:
    return [(current(restplug.settings.main_country, "discount"), 1)]


@hookimpl
def register_sorts(restplug: Context, resource: Resource) -> list[SortMethod] | None:
    if not has_prices(resource):
        return None
    return [
        SortMethod(
            "discount",
            discount_keys,
            "latest discount in RESTPLUG_MAIN_COUNTRY; apps without a price there last",
            missing_last=True,
            index_paths=tuple(path for path, _ in discount_keys(restplug, resource)),
        )
    ]
