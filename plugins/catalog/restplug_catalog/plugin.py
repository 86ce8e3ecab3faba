"""The catalogue plugin: the ``apps`` resource and the ``demo-data`` command."""

from __future__ import annotations

import click

from restplug import hookimpl
from restplug.app import Restplug
from restplug.cli import with_restplug
from restplug.permissions import Scope
from restplug.resources import ALL_OPERATORS, EQUALITY_OPERATORS, Resource
from restplug.routes import Route
from restplug_catalog.demo import generate_apps
from restplug_catalog.history import history_handler, history_operation, latest_prices
from restplug_catalog.package import PACKAGE_OPERATION, package_handler
from restplug_catalog.schemas import AppReadSchema, AppSchema
from restplug_catalog.tasks import load_demo_tasks

LIST = ("in", "not_in")

APPS = Resource(
    name="apps",
    schema=AppSchema,
    title="Apps",
    description="Games and other Steam-like applications, with prices per country.",
    filters={
        "id": ALL_OPERATORS,
        "name": EQUALITY_OPERATORS,
        "type": EQUALITY_OPERATORS,
        "is_free": ("neq",),
        "genres": LIST,
        "categories": LIST,
        "developers": LIST,
        "publishers": LIST,
        "platforms.windows": (),
        "platforms.mac": (),
        "platforms.linux": (),
        "release_date": ALL_OPERATORS,
        "total_recommendations": ALL_OPERATORS,
    },
    sorts=("total_recommendations", "name", "release_date", "id"),
    default_order=("-total_recommendations",),
    search_fields={"name": 4.0, "short_description": 1.0, "developers": 2.0, "publishers": 1.5},
    present=latest_prices("/api/v1/apps"),
    read_schema=AppReadSchema,
    requirements={
        "create": Scope("backend/create"),
        "update": Scope("backend/update"),
        "delete": Scope("backend/delete"),
    },
)


@hookimpl
def register_resources() -> list[Resource]:
    return [APPS]


@hookimpl
def register_routes(restplug: Restplug) -> list[Route]:
    return [
        Route(
            "POST",
            "/api/v1/package",
            package_handler(restplug, APPS),
            "write",
            Scope("backend/package"),
            "package",
            PACKAGE_OPERATION,
        ),
        Route(
            "GET",
            f"{APPS.path}/{{id}}/prices/{{country}}",
            history_handler(restplug, APPS),
            "read",
            None,
            APPS.name,
            history_operation(APPS),
        ),
    ]


@hookimpl
def register_commands(cli: click.Group) -> None:
    @cli.command("demo-data")
    @click.option("--count", default=10_000, show_default=True, help="how many apps")
    @click.option("--seed", default=0, show_default=True, help="the same seed, the same apps")
    @click.option("--if-empty", is_flag=True, help="load nothing when the store has apps")
    def demo_data(count: int, seed: int, if_empty: bool) -> None:
        """Load a deterministic, realistic demo catalogue into the store."""

        async def load(restplug: Restplug) -> None:
            if if_empty and await restplug.store.count(APPS.name, {}):
                click.echo("the store already has apps; nothing loaded")
                return
            loaded = await restplug.upsert_all(APPS, generate_apps(count, seed), total=count)
            # Tasks are the catalog_tasks plugin's: a deployer may have disabled it.
            if restplug.pm.get_plugin("catalog_tasks") is None:
                click.echo(f"loaded {loaded} apps (catalog_tasks is disabled: no tasks)")
                return
            tasks = await load_demo_tasks(restplug, 20, seed, max_app_id=count)
            click.echo(f"loaded {loaded} apps and {tasks} tasks")

        with_restplug(load)
