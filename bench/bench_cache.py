"""Throughput of cached reads against the same handlers uncached, with memory:// and redis://.

    .venv/bin/python bench/bench_cache.py [--count 10000] [--seconds 2] [--rounds 3]
                                          [--concurrency 32]

Loads ``--count`` demo apps into ``var/bench-cache-<count>.db`` once (reused afterwards).  Each
cache configuration (``none://``, ``memory://``, ``redis://`` on a throwaway redis-server) is
served by ``restplug serve`` in a process of its own, so the client here does not share the
server's event loop.  For a detail and a list page, one client at a time and
``--concurrency`` at once, it counts requests per second on loopback.  Rounds interleave the
configurations, so load from elsewhere on the machine touches them alike; a cell shows its
best round.  Every timed response is checked for its ``X-Cache`` header, so a cached cell
measures hits and nothing else.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import redis

RESTPLUG = str(Path(sys.executable).with_name("restplug"))
LIST_PAGE = "/api/v1/apps?type=game&order_by=-total_recommendations"
WARM_UP = 50


@dataclass
class Config:
    """One served cache configuration and the best rate of each cell so far."""

    name: str
    cache_url: str
    x_cache: str = "HIT"  # what every timed response must say
    base: str = ""
    best: dict[tuple[str, int], float] = field(default_factory=dict)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def accepts(port: int) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=1):
        return True


def wait_until(ready: Callable[[], object], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if ready():
                return
        except (OSError, redis.RedisError):
            pass
        time.sleep(0.05)
    raise SystemExit(f"{what} did not start within {timeout:.0f} s")


@contextmanager
def running(command: list[str], env: dict[str, str] | None = None) -> Iterator[None]:
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        yield
    finally:
        process.terminate()
        process.wait()


@contextmanager
def redis_server() -> Iterator[str | None]:
    """A throwaway redis-server without persistence: its URL, or None when not installed."""
    executable = shutil.which("redis-server")
    if executable is None:
        yield None
        return
    port = free_port()
    with tempfile.TemporaryDirectory() as directory:
        command = [executable, "--port", str(port), "--bind", "127.0.0.1", "--dir", directory]
        with running([*command, "--save", "", "--appendonly", "no"]):
            with redis.Redis(port=port) as client:
                wait_until(client.ping, "redis-server")
            yield f"redis://127.0.0.1:{port}/0"


@contextmanager
def served(environ: dict[str, str]) -> Iterator[str]:
    """``restplug serve`` in its own process: its base URL."""
    port = free_port()
    with running([RESTPLUG, "serve"], {**environ, "RESTPLUG_PORT": str(port)}):
        wait_until(lambda: accepts(port), "restplug serve")
        yield f"http://127.0.0.1:{port}"


async def throughput(
    session: aiohttp.ClientSession, url: str, x_cache: str, clients: int, seconds: float
) -> float:
    """Requests per second of ``clients`` clients each sending one request after another."""
    done = 0
    deadline = time.perf_counter() + seconds

    async def client() -> None:
        nonlocal done
        while time.perf_counter() < deadline:
            async with session.get(url) as response:
                await response.read()
                assert response.status == 200, response.status
                assert response.headers["X-Cache"] == x_cache, response.headers["X-Cache"]
            done += 1

    start = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    return done / (time.perf_counter() - start)


async def measure(configs: list[Config], paths: dict[str, str], args: argparse.Namespace) -> None:
    connector = aiohttp.TCPConnector(limit=args.concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        for config in configs:  # the first request of each fills the cache
            for path in paths.values():
                for _ in range(WARM_UP):
                    async with session.get(config.base + path) as response:
                        await response.read()
        for _ in range(args.rounds):
            for page, path in paths.items():
                for clients in (1, args.concurrency):
                    for config in configs:
                        url = config.base + path
                        rate = await throughput(session, url, config.x_cache, clients, args.seconds)
                        cell = page, clients
                        config.best[cell] = max(rate, config.best.get(cell, 0.0))


def load(environ: dict[str, str], count: int) -> None:
    command = [RESTPLUG, "demo-data", "--count", str(count), "--if-empty"]
    result = subprocess.run(command, env=environ, capture_output=True, text=True)
    if result.returncode:
        raise SystemExit(result.stderr)


def report(configs: list[Config]) -> None:
    uncached = configs[0]
    print(f"{'':24}" + "".join(f"{config.name:>22}" for config in configs))
    for cell, base_rate in uncached.best.items():
        page, clients = cell
        label = f"{page}, {clients} client{'s' if clients > 1 else ''}"
        cells = [f"{base_rate:,.0f}/s"]
        cells += [f"{c.best[cell]:,.0f}/s (x{c.best[cell] / base_rate:.2f})" for c in configs[1:]]
        print(f"{label:24}" + "".join(f"{text:>22}" for text in cells))


def main(args: argparse.Namespace) -> None:
    var = Path("var").resolve()
    var.mkdir(exist_ok=True)
    environ = {
        **os.environ,
        "RESTPLUG_STORE_URL": f"sqlite:///{var}/bench-cache-{args.count}.db",
        "RESTPLUG_SEARCH_URL": f"sqlite:///{var}/bench-cache-{args.count}-search.db",
    }
    load(environ, args.count)
    paths = {"detail": f"/api/v1/apps/{args.count // 2}", "list page": LIST_PAGE}
    with redis_server() as redis_url, ExitStack() as servers:
        configs = [Config("uncached", "none://", x_cache="MISS"), Config("memory://", "memory://")]
        if redis_url is None:
            print("redis-server is not installed: no redis:// column")
        else:
            configs.append(Config("redis://", redis_url))
        for config in configs:
            env = {**environ, "RESTPLUG_CACHE_URL": config.cache_url}
            config.base = servers.enter_context(served(env))
        asyncio.run(measure(configs, paths, args))
    print(
        f"{args.count:,} apps, one server process, HTTP on loopback; requests/s, best of "
        f"{args.rounds} rounds of {args.seconds:g} s; ratio to uncached in brackets"
    )
    report(configs)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=32)
    main(parser.parse_args())
