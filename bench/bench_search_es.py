"""Search latency through the Elasticsearch plugin next to the embedded index, and reindex time.

    .venv/bin/python bench/bench_search_es.py [--count 100000] [--repeat 100] [--url URL]

Rebuilds both indexes from the same ``--count`` demo apps (timing each rebuild), then times each
query ``--repeat`` times on each, for the first page (limit 20) and for every match up to the
10,000 a search filter asks for.  Without ``--url`` (``elasticsearch://host:9200``) it starts
osmem-server (the in-memory OpenSearch-compatible test server) on a free port.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import socket
import statistics
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

from restplug import SearchIndex
from restplug.search.sqlite import SQLiteSearchIndex
from restplug_catalog.demo import generate_apps
from restplug_catalog.plugin import APPS
from restplug_search_es.index import ElasticsearchIndex

QUERIES = ("dark souls", "witcher hunt", "cozy platformer", "wi", "crim kni", "pokemon cafe")
LIMITS = (20, 10_000)


@contextlib.contextmanager
def osmem() -> Iterator[str]:
    from osmem_server import resolve_binary

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    command = [resolve_binary(), "--addr", f"127.0.0.1:{port}", "--no-ja"]
    process = subprocess.Popen(
        [*command, "--parent-pid", str(os.getpid())],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
    )
    try:
        while True:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.05)
        yield f"elasticsearch://127.0.0.1:{port}"
    finally:
        process.kill()
        process.wait()


async def documents(apps: list[dict[str, Any]]) -> AsyncIterator[tuple[Any, dict[str, Any]]]:
    for app in apps:
        yield app["id"], app


async def measure(name: str, index: SearchIndex, apps: list[dict[str, Any]], repeat: int) -> None:
    await index.open()
    try:
        await index.prepare(APPS.name, APPS.search_fields)
        start = time.perf_counter()
        await index.rebuild(APPS.name, documents(apps))
        print(f"{name}: rebuild of {len(apps):,} apps: {time.perf_counter() - start:.1f} s")
        for limit in LIMITS:
            print(f"  limit {limit}:")
            for text in QUERIES:
                times = []
                for _ in range(repeat):
                    start = time.perf_counter()
                    found = await index.search(APPS.name, text, limit)
                    times.append((time.perf_counter() - start) * 1000)
                times.sort()
                p99 = times[max(0, int(len(times) * 0.99) - 1)]
                print(
                    f"    {text!r:16} {len(found):6} hits   median "
                    f"{statistics.median(times):7.2f} ms   p99 {p99:7.2f} ms"
                )
    finally:
        await index.close()


async def main(count: int, repeat: int, url: str) -> None:
    apps = list(generate_apps(count))
    os.makedirs("var", exist_ok=True)
    embedded = SQLiteSearchIndex(f"sqlite:///var/bench-search-es-{count}.db")
    await measure("embedded (SQLite FTS5)", embedded, apps, repeat)
    await measure(f"elasticsearch plugin ({url})", ElasticsearchIndex(url), apps, repeat)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=100)
    parser.add_argument("--url", help="elasticsearch://host:9200 (default: a local osmem-server)")
    arguments = parser.parse_args()
    with contextlib.ExitStack() as stack:
        url = arguments.url or stack.enter_context(osmem())
        asyncio.run(main(arguments.count, arguments.repeat, url))
