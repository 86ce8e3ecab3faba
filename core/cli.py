"""The ``restplug`` command line; plugins add commands with the ``register_commands`` hook."""

from __future__ import annotations

import asyncio
import json
import logging
import multiprocessing
import signal
import sys
from collections.abc import Awaitable, Callable
from typing import TypeVar

import click
from aiohttp import web

from restplug.app import Restplug
from restplug.config import CORE_SETTINGS, parse_settings, read_environment
from restplug.errors import ConfigError
from restplug.openapi import openapi_document
from restplug.plugins import new_plugin_manager
from restplug.progress import progress

T = TypeVar("T")


def fail(error: ConfigError) -> None:
    click.echo(f"restplug: configuration error: {error}", err=True)
    sys.exit(2)


def with_restplug(action: Callable[[Restplug], Awaitable[T]]) -> T:
    """Configure, open the backends, run ``action``, close: for commands that use the store."""

    async def run() -> T:
        restplug = await Restplug.configure()
        await restplug.start()
        try:
            return await action(restplug)
        finally:
            await restplug.stop()

    try:
        return asyncio.run(run())
    except ConfigError as error:
        fail(error)
        raise  # unreachable: fail() exits


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": self.formatTime(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def setup_logging(log_format: str) -> None:
    handler = logging.StreamHandler()
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.INFO, handlers=[handler], force=True)


class PluginCommands(click.Group):
    """The core's commands plus those of every enabled plugin, loaded on first use."""

    _loaded = False

    def _load_plugins(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        try:
            core = parse_settings(CORE_SETTINGS, read_environment(), complete=False)
            pm = new_plugin_manager(core.disable_plugins)
        except ConfigError as error:
            fail(error)
        pm.hook.register_commands(cli=self)

    def list_commands(self, ctx: click.Context) -> list[str]:
        self._load_plugins()
        return super().list_commands(ctx)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        self._load_plugins()
        return super().get_command(ctx, name)


@click.group(cls=PluginCommands)
@click.version_option(package_name="restplug")
def main() -> None:
    """restplug: a plugin-based REST API (the game catalogue)."""


def _serve_one(host: str, port: int, reuse_port: bool) -> None:
    async def app() -> web.Application:
        return (await Restplug.configure()).web_app()

    try:
        web.run_app(app(), host=host, port=port, reuse_port=reuse_port, access_log=None, print=None)
    except ConfigError as error:
        fail(error)


@main.command()
@click.option("--host", help="listen address [RESTPLUG_HOST]")
@click.option("--port", type=int, help="listen port [RESTPLUG_PORT]")
@click.option("--workers", default=1, show_default=True, help="processes sharing the port")
def serve(host: str | None, port: int | None, workers: int) -> None:
    """Serve the API."""
    try:
        settings = parse_settings(CORE_SETTINGS, read_environment(), complete=False)
        restplug = asyncio.run(Restplug.configure())  # bad configuration stops here, not forked
        cache = restplug.backends.get("cache")
        if workers > 1 and not getattr(cache, "shared", True):
            raise ConfigError(
                f"RESTPLUG_CACHE_URL={settings.cache_url}: this cache lives in one process, so "
                f"{workers} workers could serve data older than a write; use a shared cache "
                "such as redis://, or none://"
            )
    except ConfigError as error:
        fail(error)
    setup_logging(settings.log_format)
    host, port = host or settings.host, port or settings.port
    click.echo(f"restplug serving on http://{host}:{port} (docs: http://{host}:{port}/docs)")
    if workers == 1:
        _serve_one(host, port, False)
        return
    processes = [
        multiprocessing.Process(target=_serve_one, args=(host, port, True)) for _ in range(workers)
    ]
    for process in processes:
        process.start()

    def stop(signum: int, _: object) -> None:
        # Each worker stops gracefully on SIGTERM; without this they would outlive us.
        for process in processes:
            process.terminate()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for process in processes:
        process.join()


@main.command()
def plugins() -> None:
    """List installed plugins: name, distribution, version, hooks, enabled."""
    try:
        core = parse_settings(CORE_SETTINGS, read_environment(), complete=False)
        pm = new_plugin_manager(core.disable_plugins)
    except ConfigError as error:
        fail(error)
    rows = [
        (
            i.name,
            i.distribution,
            i.version,
            ", ".join(i.hooks) or "-",
            "enabled" if i.enabled else "disabled",
        )
        for i in pm.infos()
    ]
    header = ("NAME", "DISTRIBUTION", "VERSION", "HOOKS", "STATUS")
    widths = [max(len(str(row[c])) for row in [header, *rows]) for c in range(4)]
    for row in [header, *rows]:
        click.echo(
            "  ".join(str(v).ljust(w) for v, w in zip(row, [*widths, 0], strict=False)).rstrip()
        )


@main.command()
@click.argument("resource", required=False)
def reindex(resource: str | None) -> None:
    """Rebuild the search index from the store: RESOURCE, or every searchable resource."""

    async def run(restplug: Restplug) -> None:
        if restplug.indexer is None:
            fail(ConfigError("no search index is installed and enabled"))
        searchable = restplug.indexer.resources
        if resource is not None and resource not in searchable:
            fail(ConfigError(f"{resource!r} is not searchable; choices: {', '.join(searchable)}"))
        for name in [resource] if resource else list(searchable):
            total = await restplug.store.count(name, {})
            with progress(total, f"reindexing {name}") as bar:
                indexed = await restplug.reindex(restplug.resources[name], bar)
            click.echo(f"{name}: {indexed} documents indexed")

    with_restplug(run)


@main.command()
def openapi() -> None:
    """Print the OpenAPI document."""
    try:
        restplug = asyncio.run(Restplug.configure())
    except ConfigError as error:
        fail(error)
    click.echo(json.dumps(openapi_document(restplug), indent=2))


if __name__ == "__main__":
    main()
