"""List latency on a large embedded catalogue: filtered sorted pages, deep pages, cursors.

    .venv/bin/python bench/bench_list.py [--count 100000] [--requests 200]

Loads ``--count`` demo apps into ``var/bench-<count>.db`` once (reused afterwards), serves the
real app on a loopback port and times sequential HTTP requests end to end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
from aiohttp.test_utils import TestServer

from restplug.app import Restplug
from restplug_catalog.demo import generate_apps
from restplug_catalog.plugin import APPS

QUERIES = {
    "first page, default order": "",
    "type=game, -total_recommendations": "type=game&order_by=-total_recommendations",
    "genres__in + release_date range, by name": (
        "genres__in=RPG,Strategy&release_date__gte=2015-01-01&order_by=name"
    ),
    "page 400 (offset 8,000)": "type=game&order_by=-total_recommendations&page=400&count=none",
    "search=dark souls&type=game, by relevance": "search=dark%20souls&type=game",
    "search=witch (prefix) + available in US,DE": "search=witch&is_available_in_countries=US,DE",
    "search=cafe, by -total_recommendations": "search=cafe&order_by=-total_recommendations",
}


async def load(count: int, environ: dict[str, str]) -> None:
    restplug = await Restplug.configure(environ)
    await restplug.start()
    try:
        have = await restplug.store.count(APPS.name, {})
        if have < count:
            await restplug.upsert_all(APPS, generate_apps(count), total=count)
    finally:
        await restplug.stop()


async def timed(session: aiohttp.ClientSession, url: str, n: int) -> list[float]:
    times = []
    for _ in range(n):
        start = time.perf_counter()
        async with session.get(url) as response:
            await response.read()
            assert response.status == 200, await response.text()
        times.append((time.perf_counter() - start) * 1000)
    return times


def report(name: str, times: list[float]) -> None:
    times.sort()
    p95 = times[int(len(times) * 0.95) - 1]
    print(f"{name:48} median {statistics.median(times):6.2f} ms   p95 {p95:6.2f} ms")


@contextlib.asynccontextmanager
async def served(count: int, **settings: str) -> AsyncIterator[tuple[Restplug, str]]:
    """``count`` demo apps (loaded once into var/) served on loopback with no cache:
    the app and the URL of its apps list."""
    var = Path("var")
    var.mkdir(exist_ok=True)
    environ = {
        "RESTPLUG_STORE_URL": f"sqlite:///{var}/bench-{count}.db",
        "RESTPLUG_SEARCH_URL": f"sqlite:///{var}/bench-{count}-search.db",
        # The benchmarks measure the store path: every request misses the cache.
        "RESTPLUG_CACHE_URL": "none://",
        **settings,
    }
    await load(count, environ)
    restplug = await Restplug.configure(environ)
    server = TestServer(restplug.web_app())
    await server.start_server()
    try:
        yield restplug, str(server.make_url("/api/v1/apps"))
    finally:
        await server.close()


async def main(count: int, requests: int) -> None:
    async with served(count) as (_, base), aiohttp.ClientSession() as session:
        print(f"{count} apps, {requests} sequential requests each, HTTP on loopback")
        for name, query in QUERIES.items():
            await timed(session, f"{base}?{query}", 5)  # warm up
            report(name, await timed(session, f"{base}?{query}", requests))
        # A cursor half-way through the games: walk there once, then time that page.
        query = "type=game&order_by=-total_recommendations&size=100&count=none"
        url, depth = f"{base}?{query}", 0
        while depth < count // 3:
            async with session.get(url) as response:
                cursor = (await response.json())["next_cursor"]
            url, depth = f"{base}?{query}&cursor={cursor}", depth + 100
        report(f"cursor page {depth:,} deep, size 100", await timed(session, url, requests))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()
    asyncio.run(main(args.count, args.requests))
