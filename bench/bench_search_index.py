"""Search latency of the embedded index (SQLite FTS5) on a large catalogue, index alone.

    .venv/bin/python bench/bench_search_index.py [--count 100000] [--repeat 200]

Rebuilds ``var/bench-search-<count>.db`` from ``--count`` demo apps (timing the rebuild), then
times each query ``--repeat`` times, for the first page (limit 20) and for every match (what a
search combined with other filters and an exact total needs).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import AsyncIterator
from typing import Any

from restplug.search.sqlite import SQLiteSearchIndex
from restplug_catalog.demo import generate_apps
from restplug_catalog.plugin import APPS

QUERIES = (
    "dark souls",  # two common words
    "witcher hunt",  # two rare words
    "cozy platformer",  # name and description
    "wi",  # type-ahead, two letters
    "crim kni",  # type-ahead, two prefixes
    "pokemon cafe",  # diacritics folded
)


async def documents(count: int) -> AsyncIterator[tuple[Any, dict[str, Any]]]:
    for app in generate_apps(count):
        yield app["id"], app


async def timed(index: SQLiteSearchIndex, text: str, limit: int, repeat: int) -> tuple[int, list]:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        found = await index.search(APPS.name, text, limit)
        times.append((time.perf_counter() - start) * 1000)
    return len(found), sorted(times)


async def main(count: int, repeat: int) -> None:
    index = SQLiteSearchIndex(f"sqlite:///var/bench-search-{count}.db")
    await index.open()
    try:
        await index.prepare(APPS.name, APPS.search_fields)
        start = time.perf_counter()
        await index.rebuild(APPS.name, documents(count))
        print(
            f"rebuild of {count:,} apps (generation included): {time.perf_counter() - start:.1f} s"
        )
        for limit in (20, 100_000):
            print(f"limit {limit}:")
            for text in QUERIES:
                found, times = await timed(index, text, limit, repeat)
                p95 = times[int(len(times) * 0.95) - 1]
                print(
                    f"  {text!r:20} {found:6} hits   median {statistics.median(times):7.2f} ms"
                    f"   p95 {p95:7.2f} ms"
                )
    finally:
        await index.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=200)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.count, arguments.repeat))
