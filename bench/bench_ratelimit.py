"""Added latency of rate limiting (restplug-ratelimit), counted in memory and in Redis.

    .venv/bin/python bench/bench_ratelimit.py [--requests 2000]

Serves three real apps on loopback with a trivial route: without the plugin, with
``memory://`` counters and with ``redis://`` counters (a redis-server started for the run), and
times sequential HTTP requests end to end, interleaved so that drift affects all alike.  The
budgets are large enough never to refuse: the figure is the cost of counting.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer

from restplug import hookimpl
from restplug.app import Restplug
from restplug.routes import Route

WARM_UP = 100


async def ok(_: web.Request) -> web.Response:
    return web.json_response({"ok": True})


class BenchRoute:
    @hookimpl
    def register_routes(self) -> list[Route]:
        return [Route("GET", "/bench/open", ok)]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_redis(port: int) -> subprocess.Popen[bytes]:
    server = shutil.which("redis-server")
    if server is None:
        raise SystemExit("redis-server is not installed (apt-get install redis-server)")
    process = subprocess.Popen(
        [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return process
        time.sleep(0.05)
    process.kill()
    raise SystemExit("redis-server did not start")


async def restplug_server(directory: Path, env: dict[str, str]) -> TestServer:
    directory.mkdir()
    restplug = await Restplug.configure(
        {
            "RESTPLUG_STORE_URL": f"sqlite:///{directory}/store.db",
            "RESTPLUG_SEARCH_URL": f"sqlite:///{directory}/search.db",
            "RESTPLUG_RATELIMIT_READS": "1000000/hour",
            **env,
        },
        plugins=[BenchRoute()],
    )
    server = TestServer(restplug.web_app())
    await server.start_server()
    return server


async def timed(session: aiohttp.ClientSession, url: str) -> float:
    start = time.perf_counter()
    async with session.get(url) as response:
        await response.read()
        assert response.status == 200, await response.text()
    return (time.perf_counter() - start) * 1000


def p95(times: list[float]) -> float:
    return sorted(times)[int(len(times) * 0.95) - 1]


async def main(requests: int) -> None:
    port = free_port()
    redis = start_redis(port)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            cases = {
                "no rate limiting": {"RESTPLUG_DISABLE_PLUGINS": "ratelimit"},
                "memory:// counters": {"RESTPLUG_RATELIMIT_URL": "memory://"},
                "redis:// counters": {"RESTPLUG_RATELIMIT_URL": f"redis://127.0.0.1:{port}/0"},
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
                            elapsed = await timed(session, str(server.make_url("/bench/open")))
                            if round >= WARM_UP:
                                times[name].append(elapsed)
            finally:
                for server in servers.values():
                    await server.close()
    finally:
        redis.kill()
        redis.wait()

    print(f"{requests} sequential requests each, interleaved, HTTP on loopback")
    baseline = statistics.median(times["no rate limiting"])
    for name, measured in times.items():
        median = statistics.median(measured)
        added = "" if name == "no rate limiting" else f"   added {median - baseline:+6.3f} ms"
        print(f"{name:20} median {median:6.3f} ms   p95 {p95(measured):6.3f} ms{added}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000, help="timed requests per kind")
    asyncio.run(main(parser.parse_args().requests))
