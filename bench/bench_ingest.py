"""Package ingest rate: 1,000-app packages into the embedded store, over HTTP.

    .venv/bin/python bench/bench_ingest.py [--packages 10]

Sends new apps (creates), then the same packages again (all unchanged), then packages where
every app has a new price (updates, one price entry each), and prints apps per second.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

import aiohttp
from aiohttp.test_utils import TestServer

from restplug.app import Restplug
from restplug.testing import AllowWrites, isolated_environ
from restplug_catalog.demo import as_scraped, generate_apps

SIZE = 1000


async def main(count: int) -> None:
    demo = list(generate_apps(count * SIZE, seed=11))

    def packages(bump: float) -> list[list[dict]]:
        apps = [as_scraped(app, bump) for app in demo]
        return [apps[i : i + SIZE] for i in range(0, len(apps), SIZE)]

    with tempfile.TemporaryDirectory() as tmp:
        restplug = await Restplug.configure(isolated_environ(Path(tmp)), [AllowWrites()])
        server = TestServer(restplug.web_app())
        await server.start_server()
        url = str(server.make_url("/api/v1/package"))
        async with aiohttp.ClientSession() as session:
            for label, batches in [
                ("create", packages(0.0)),
                ("unchanged", packages(0.0)),
                ("update (new price)", packages(1.0)),
            ]:
                start = time.perf_counter()
                for batch in batches:
                    async with session.post(url, json={"apps": batch}) as response:
                        result = await response.json()
                        assert response.status == 200 and not result["rejected"], result
                elapsed = time.perf_counter() - start
                rate = count * SIZE / elapsed
                print(f"{label:20} {count} x {SIZE} apps: {elapsed:6.2f} s, {rate:7.0f} apps/s")
        await server.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--packages", type=int, default=10)
    asyncio.run(main(parser.parse_args().packages))
