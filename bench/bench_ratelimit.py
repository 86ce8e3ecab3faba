"""Added latency of rate limiting (restplug-ratelimit), counted in memory and in Redis.

    .venv/bin/python bench/bench_ratelimit.py [--requests 2000]

Serves three real apps on loopback with a trivial route: without the plugin, with
``memory://`` counters and with ``redis://`` counters (a throwaway redis-server), and times
sequential HTTP requests end to end, interleaved so that drift affects all alike.  The budget
is large enough never to refuse: the figure is the cost of counting.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
from pathlib import Path

import aiohttp
from bench_auth import WARM_UP, p95, restplug_server, timed
from bench_cache import redis_server

BASELINE = "no rate limiting"


async def main(requests: int) -> None:
    with redis_server() as redis_url, tempfile.TemporaryDirectory() as tmp:
        if redis_url is None:
            raise SystemExit("redis-server is not installed (apt-get install redis-server)")
        budget = {"RESTPLUG_RATELIMIT_READS": "1000000/hour"}
        cases = {
            BASELINE: {"RESTPLUG_DISABLE_PLUGINS": "ratelimit"},
            "memory:// counters": {**budget, "RESTPLUG_RATELIMIT_URL": "memory://"},
            "redis:// counters": {**budget, "RESTPLUG_RATELIMIT_URL": redis_url},
        }
        servers = {
            name: await restplug_server(Path(tmp, str(i)), env)
            for i, (name, env) in enumerate(cases.items())
        }
        times: dict[str, list[float]] = {name: [] for name in cases}
        try:
            async with aiohttp.ClientSession() as session:
                for round in range(WARM_UP + requests):
                    for name, server in servers.items():
                        url = str(server.make_url("/bench/open"))
                        elapsed = await timed(session, url, {})
                        if round >= WARM_UP:
                            times[name].append(elapsed)
        finally:
            for server in servers.values():
                await server.close()

    print(f"{requests} sequential requests each, interleaved, HTTP on loopback")
    baseline = statistics.median(times[BASELINE])
    for name, measured in times.items():
        median = statistics.median(measured)
        added = "" if name == BASELINE else f"   added {median - baseline:+6.3f} ms"
        print(f"{name:20} median {median:6.3f} ms   p95 {p95(measured):6.3f} ms{added}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000, help="timed requests per kind")
    asyncio.run(main(parser.parse_args().requests))
