"""``released_within_days=30``: apps released in the last N days (up to today, UTC)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from marshmallow import fields, validate

from restplug import FilterMethod, Fragment, Resource, hookimpl


async def released_within(restplug: Any, resource: Resource, days: int) -> Fragment:
    today = datetime.now(UTC).date()
    since = today - timedelta(days=days)
    return Fragment({"release_date": {"$gte": since.isoformat(), "$lte": today.isoformat()}})


@hookimpl
def register_filters(resource: Resource) -> list[FilterMethod] | None:
    if resource.field_at("release_date") is None:
        return None
    return [
        FilterMethod(
            "released_within_days",
            fields.Integer(validate=validate.Range(min=1, max=36500)),
            released_within,
            "released in the last N days",
            index_paths=("release_date",),
        )
    ]
