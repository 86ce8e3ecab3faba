"""List latency of method filters and sorts on a large embedded catalogue, with SQLite's plans.

    .venv/bin/python bench/bench_methods.py [--count 100000] [--requests 200]

Uses the catalogue of ``bench_list.py`` (``var/bench-<count>.db``, loaded once), serves the real
app on a loopback port with the cache off (``RESTPLUG_CACHE_URL=none://``: every request reaches
the store) and times sequential HTTP requests end to end: the median and the 99th percentile.
Each query's plan (``EXPLAIN QUERY PLAN`` of its page and of its count) is printed below, so a
full scan or a temporary B-tree shows.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
from urllib.parse import parse_qs

import aiohttp
from bench_list import served, timed

from restplug.app import Restplug
from restplug.query import run_list
from restplug_catalog.plugin import APPS

QUERIES = {
    "order_by=discount": "order_by=discount",
    "order_by=-discount": "order_by=-discount",
    "price_lte=9.99": "price_lte=9.99",
    "price_gte=DE:20": "price_gte=DE:20",
    "price_lte=9.99&order_by=discount": "price_lte=9.99&order_by=discount",
    "default order (a declared path, for scale)": "",
}


def report(name: str, times: list[float]) -> None:
    times.sort()
    p99 = times[max(0, round(len(times) * 0.99) - 1)]
    print(f"{name:44} median {statistics.median(times):7.2f} ms   p99 {p99:7.2f} ms")


async def plans(restplug: Restplug, query: str) -> list[str]:
    """The plans of the page and of the count this query string runs, as the server runs them."""
    parser = restplug.parsers[APPS.name]
    request = parser.parse(parse_qs(query))
    resolved = await parser.resolve(request)
    lines: list[str] = []

    class Explaining:
        """A store that answers find and count with their plans."""

        async def find(self, collection, find_query):  # type: ignore[no-untyped-def]
            lines.extend(f"page:  {line}" for line in await store.explain(collection, find_query))
            return []

        async def count(self, collection, filter, rank=None):  # type: ignore[no-untyped-def]
            plan = await store.explain_count(collection, filter, rank)
            lines.extend(f"count: {line}" for line in plan)
            return 0

    store = restplug.backends["store"]
    await run_list(Explaining(), APPS.name, request, resolved, restplug.query_timeout)  # type: ignore[arg-type]
    return lines


async def main(count: int, requests: int) -> None:
    # A full scan on a busy machine can take seconds: measured, not cut off with a 503.
    async with served(count, RESTPLUG_QUERY_TIMEOUT_MS="60000") as (restplug, base):
        print(f"{count} apps, {requests} sequential requests each, HTTP on loopback, no cache")
        async with aiohttp.ClientSession() as session:
            for name, query in QUERIES.items():
                await timed(session, f"{base}?{query}", 5)  # warm up
                report(name, await timed(session, f"{base}?{query}", requests))
        for name, query in QUERIES.items():
            print(f"\n{name}")
            for line in await plans(restplug, query):
                print(f"  {line}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()
    asyncio.run(main(args.count, args.requests))
