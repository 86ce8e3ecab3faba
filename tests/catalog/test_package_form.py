"""The marshmallow-free check of a scraped app (``in_own_form``) never says yes where the
schema would change or refuse the app."""

import copy
from typing import Any

import pytest
from marshmallow import ValidationError

from restplug_catalog.demo import as_scraped, generate_apps
from restplug_catalog.package import OPTIONAL, PackageAppSchema, in_own_form
from restplug_catalog.schemas import AppSchema

APPS = [as_scraped(app, 0.5) for app in generate_apps(300, seed=5)]
BASE = APPS[0]


def _set(path: str, value: Any) -> dict:
    app = copy.deepcopy(BASE)
    *parents, last = path.split(".")
    target = app
    for key in parents:
        target = target[key]
    target[last] = value
    return app


def _drop(path: str) -> dict:
    app = copy.deepcopy(BASE)
    *parents, last = path.split(".")
    target = app
    for key in parents:
        target = target[key]
    del target[last]
    return app


VARIANTS = [
    _set("id", True), _set("id", 0), _set("id", 2**63), _set("id", "7"), _set("id", 7.0),
    _set("name", ""), _set("name", "x" * 301), _set("name", 5), _set("type", "book"),
    _set("type", ["game"]), _set("is_free", "true"), _set("is_free", 1),
    _set("short_description", None), _set("short_description", "x" * 5001),
    _set("genres", "RPG"), _set("genres", ["RPG", 1]), _set("developers", None),
    _set("platforms", {"windows": True}), _set("platforms", {**BASE["platforms"], "os2": True}),
    _set("platforms.mac", "no"), _set("release_date", "2020-1-01"),
    _set("release_date", "2020-02-30"), _set("release_date", "20200101"),
    _set("release_date", None), _set("release_date", "2020-02-29T00:00:00"),
    _set("total_recommendations", -1), _set("total_recommendations", 3.0),
    _set("total_recommendations", 2**63), _set("prices", []), _set("prices", {"us": {}}),
    _set("prices.US.price", 5), _set("prices.US.price", -0.5), _set("prices.US.price", "1.0"),
    _set("prices.US.initial_price", None), _set("prices.US.discount", 101),
    _set("prices.US.discount", 5.0), _set("prices.US.discount", False),
    _set("prices.US.currency", "usd"), _set("prices.US.is_available", 1),
    _set("prices.US.extra", 1), _set("extra", 1), _drop("prices.US.currency"), _drop("type"),
    _drop("name"), _drop("platforms"), _drop("prices"), _drop("release_date"),
    {"id": 9, "name": "Bare", "type": "game"}, [BASE], None,
]  # fmt: skip


@pytest.mark.parametrize("raw", [*APPS, *VARIANTS])
def test_an_app_in_its_own_form_is_exactly_what_the_schema_gives(raw: Any) -> None:
    schema = PackageAppSchema()
    try:
        normal = schema.dump(schema.load(raw, partial=OPTIONAL))
    except (ValidationError, TypeError, AttributeError):
        assert not in_own_form(raw)
        return
    assert not in_own_form(raw) or normal == raw


def test_the_scraped_demo_apps_are_in_their_own_form() -> None:
    assert all(in_own_form(app) for app in APPS)


def test_a_new_app_with_every_field_needs_no_schema_defaults() -> None:
    schema = AppSchema()
    for app in APPS:
        fields_only = {k: v for k, v in app.items() if k != "prices"}
        assert schema.dump(schema.load(fields_only)) == {**fields_only, "prices": {}}
