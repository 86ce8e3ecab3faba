"""The ``restplug`` command line; plugins add commands with the ``register_commands`` hook."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import logging
import multiprocessing
import multiprocessing.connection
import signal
import socket
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import NoReturn, TypeVar

import click
from aiohttp import web

from restplug.app import Restplug
from restplug.caches.protocol import CacheBackend
from restplug.config import CORE_SETTINGS, parse_settings, read_environment
from restplug.context import Context
from restplug.errors import BackendUnavailable, ConfigError
from restplug.openapi import openapi_document
from restplug.plugins import call, call_sync, new_plugin_manager
from restplug.progress import progress
from restplug.redact import redact
from restplug.scaffold import KINDS, new_plugin

T = TypeVar("T")


def fail(error: ConfigError) -> NoReturn:
    """Stop the command on a configuration error: one line on stderr, exit status 2."""
    die(f"configuration error: {error}", status=2)


def die(message: str, status: int = 1) -> NoReturn:
    """Stop the command with one line on stderr."""
    click.echo(f"restplug: {redact(message)}", err=True)
    sys.exit(status)


def with_restplug(action: Callable[[Context], Awaitable[T]]) -> T:
    """Configure, open the backends, run ``action`` with the started restplug, close: for
    commands that use the store.  A configuration error stops the command as :func:`fail`."""

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


class TextFormatter(logging.Formatter):
    """One line per record (and its traceback), credentials masked."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


class JsonFormatter(logging.Formatter):
    """One JSON object per record, credentials masked."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": self.formatTime(record),
            "level": record.levelname,
            "logger": record.name,
            "message": redact(record.getMessage()),
        }
        if record.exc_info:
            entry["exception"] = redact(self.formatException(record.exc_info))
        return json.dumps(entry)


def setup_logging(log_format: str, level: int = logging.INFO) -> None:
    """Every log line of the process, plugins' and libraries' included, through one handler."""
    handler = logging.StreamHandler()
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(TextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=level, handlers=[handler], force=True)


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
        call_sync(pm, "register_commands", cli=self)

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
    try:
        settings = parse_settings(CORE_SETTINGS, read_environment(), complete=False)
    except ConfigError as error:
        fail(error)
    # Warnings only, so that the output of a command stays its own; `serve` logs from INFO.
    setup_logging(settings.log_format, logging.WARNING)


# Seconds a stopping server gives the requests in flight before it closes their connections,
# and then the answers still being written.
SHUTDOWN_TIMEOUT = 10.0
WRITE_TIMEOUT = 2.0


def listen(host: str, port: int) -> list[socket.socket]:
    """Bind and listen on every address ``host`` resolves to, before any worker starts: a taken
    port fails here, once.  No SO_REUSEPORT: a second deployment on the port is refused instead
    of sharing its clients with this one."""
    try:
        addresses = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as error:
        fail(ConfigError(f"cannot resolve the listen address {host!r}: {error.strerror}"))
    sockets: list[socket.socket] = []
    try:
        for family, kind, proto, _, address in dict.fromkeys(addresses):
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            # Lets a restart bind while the old connections linger in TIME_WAIT; a listening
            # socket on the port still makes bind fail.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(address)
            sock.listen(1024)
            sock.setblocking(False)
    except OSError as error:
        for sock in sockets:
            sock.close()
        reason = "address already in use" if error.errno == errno.EADDRINUSE else error.strerror
        die(f"cannot listen on {host}:{port}: {reason}")
    return sockets


class InFlight:
    """Counts the requests whose handler runs, so that a stopping worker can wait for them.

    aiohttp's own graceful shutdown stops reading every connection at once, so a request whose
    body is still arriving could never finish; waiting here first lets it."""

    def __init__(self) -> None:
        self.count = 0
        self.idle = asyncio.Event()
        self.idle.set()

    @web.middleware
    async def middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        self.count += 1
        self.idle.clear()
        try:
            return await handler(request)
        finally:
            self.count -= 1
            if not self.count:
                self.idle.set()


def _serve_one(sockets: list[socket.socket]) -> None:
    """Serve on already listening sockets until SIGTERM or SIGINT; then stop accepting, give
    the requests in flight up to SHUTDOWN_TIMEOUT to finish, and close."""

    async def run() -> None:
        app = (await Restplug.configure()).web_app()
        in_flight = InFlight()
        app.middlewares.insert(0, in_flight.middleware)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=WRITE_TIMEOUT)
        stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        # Our own handlers, idempotent: aiohttp's raise on every signal, and a second SIGTERM
        # (the process group's and the parent's) would cut the graceful shutdown short.
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stopping.set)
        try:
            await runner.setup()
            for sock in sockets:
                await web.SockSite(runner, sock).start()
            await stopping.wait()
            for site in runner.sites:
                await site.stop()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(SHUTDOWN_TIMEOUT):
                    await in_flight.idle.wait()
        finally:
            await runner.cleanup()

    try:
        asyncio.run(run())
    except ConfigError as error:
        fail(error)
    except BackendUnavailable as error:
        die(f"cannot start: {error}")


@main.command()
@click.option("--host", help="listen address [RESTPLUG_HOST]")
@click.option("--port", type=int, help="listen port [RESTPLUG_PORT]")
@click.option("--workers", default=1, show_default=True, help="processes sharing the port")
def serve(host: str | None, port: int | None, workers: int) -> None:
    """Serve the API."""
    try:
        if workers < 1:
            raise ConfigError(f"--workers {workers}: must be 1 or more")
        if port is not None and not 1 <= port <= 65535:
            raise ConfigError(f"--port {port}: must be a port number, 1..65535")
        settings = parse_settings(CORE_SETTINGS, read_environment(), complete=False)
        restplug = asyncio.run(Restplug.configure())  # bad configuration stops here, not forked
        cache: CacheBackend | None = restplug.backends.get("cache")
        if workers > 1 and cache is not None and not cache.shared:
            raise ConfigError(
                f"RESTPLUG_CACHE_URL={settings.cache_url}: this cache lives in one process, so "
                f"{workers} workers could serve data older than a write; use a shared cache "
                "such as redis://, or none://"
            )
    except ConfigError as error:
        fail(error)
    setup_logging(settings.log_format)
    host, port = host or settings.host, port or settings.port
    sockets = listen(host, port)
    click.echo(f"restplug serving on http://{host}:{port} (docs: http://{host}:{port}/docs)")
    if workers == 1:
        _serve_one(sockets)
        return
    sys.exit(_supervise(sockets, workers))


def _supervise(sockets: list[socket.socket], workers: int) -> int:
    """Run ``workers`` processes on the shared sockets; stop them all on SIGTERM/SIGINT or when
    one of them ends by itself.  Returns the exit status: 0 when every worker stopped cleanly."""
    processes = [
        multiprocessing.Process(target=_serve_one, args=(sockets,)) for _ in range(workers)
    ]
    for process in processes:
        process.start()
    # The workers hold the sockets now: once they all stop accepting, new connections are
    # refused instead of waiting in a queue nobody reads.
    for sock in sockets:
        sock.close()
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True
        for process in processes:
            if process.is_alive():
                process.terminate()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    running = list(processes)
    while running:
        for ended in multiprocessing.connection.wait([p.sentinel for p in running]):
            process = next(p for p in running if p.sentinel == ended)
            running.remove(process)
            process.join()
            if not stopping:
                click.echo(
                    f"restplug: a worker ended (exit status {process.exitcode}); "
                    "stopping the others",
                    err=True,
                )
                stop()
    return 0 if all(p.exitcode == 0 for p in processes) else 1


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


@main.command("new-plugin")
@click.argument("name")
@click.option("--kind", required=True, type=click.Choice(list(KINDS)), help="what it provides")
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    help="where to write it (missing or empty)  [default: ./NAME]",
)
def new_plugin_command(name: str, kind: str, directory: Path | None) -> None:
    """Write a working plugin distribution: packaging, the entry point, a README and tests
    (the contract kit of its kind, or the restplug_client fixture)."""
    target = directory or Path(name)
    try:
        written = new_plugin(name, kind, target)
    except ValueError as error:
        die(str(error), status=2)
    click.echo(f"wrote {len(written)} files into {target}; try it:")
    click.echo(f"  cd {target} && pip install -e '.[test]' && pytest")


@main.command("demo-data")
@click.option(
    "--count", default=10_000, show_default=True, help="how many apps (or main documents)"
)
@click.option("--seed", default=0, show_default=True, help="the same seed, the same documents")
@click.option("--if-empty", is_flag=True, help="load nothing into a resource that has documents")
def demo_data(count: int, seed: int, if_empty: bool) -> None:
    """Load every enabled plugin's deterministic demo data into the store."""

    async def run(restplug: Restplug) -> None:
        answers = await call(
            restplug.pm,
            "load_demo_data",
            restplug=restplug,
            count=count,
            seed=seed,
            if_empty=if_empty,
        )
        loaded = {name: n for answer in answers for name, n in (answer or {}).items()}
        if not loaded:
            fail(ConfigError("no enabled plugin has demo data"))
        click.echo("loaded " + ", ".join(f"{loaded[name]} {name}" for name in sorted(loaded)))

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
