"""How long one 5,000-app package keeps other requests of the process waiting.

    .venv/bin/python bench/bench_ingest_stall.py [--apps 5000]

Starts ``restplug serve`` (one process, on temporary files), then, while it ingests a package
of new apps and then the same apps with new prices, sends small GETs one after another on
another connection and prints their latency: the idle figure first, then the longest and the
median during each ingest.  A long GET during ingest means the event loop was blocked.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

import aiohttp

from restplug_catalog.demo import as_scraped, generate_apps

SECRET = "bench-secret-" + "x" * 40


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def probe(session: aiohttp.ClientSession, url: str, until: asyncio.Event) -> list[float]:
    """GET ``url`` one request after another until ``until`` is set: each one's latency."""
    latencies = []
    while not until.is_set():
        start = time.perf_counter()
        async with session.get(url) as response:
            await response.read()
            assert response.status == 200, response.status
        latencies.append(time.perf_counter() - start)
        await asyncio.sleep(0.005)
    return latencies


async def during(
    session: aiohttp.ClientSession, base: str, token: str, apps: list[dict]
) -> tuple[float, list[float]]:
    """Send the package while probing: (seconds it took, GET latencies meanwhile)."""
    done = asyncio.Event()
    probing = asyncio.create_task(probe(session, f"{base}/api/v1/apps/1", done))
    await asyncio.sleep(0.2)
    start = time.perf_counter()
    headers = {"Authorization": f"Bearer {token}"}
    async with session.post(f"{base}/api/v1/package", json={"apps": apps}, headers=headers) as r:
        result = await r.json()
        assert r.status == 200 and not result["rejected"], result
    elapsed = time.perf_counter() - start
    done.set()
    return elapsed, await probing


def report(label: str, latencies: list[float]) -> None:
    print(
        f"{label:28} {len(latencies):5} GETs  median {statistics.median(latencies) * 1000:7.1f} ms"
        f"  longest {max(latencies) * 1000:7.1f} ms"
    )


async def measure(base: str, token: str, count: int) -> None:
    demo = list(generate_apps(count, seed=11))
    # Separate connectors: the GETs never queue behind the package on one connection.
    async with aiohttp.ClientSession() as poster, aiohttp.ClientSession() as getter:
        idle = asyncio.Event()
        asyncio.get_running_loop().call_later(1.0, idle.set)
        report("idle", await probe(getter, f"{base}/api/v1/apps/1", idle))
        for label, bump in [("new apps", 0.0), ("new prices", 1.0)]:
            apps = [as_scraped(app, bump) for app in demo]
            elapsed, latencies = await during(poster, base, token, apps)
            report(f"{label}: {count} apps", latencies)
            print(f"{'':28} ingest {elapsed:6.2f} s, {count / elapsed:7.0f} apps/s")


def main(count: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        env = {
            **os.environ,
            "RESTPLUG_STORE_URL": f"sqlite:///{tmp}/store.db",
            "RESTPLUG_SEARCH_URL": f"sqlite:///{tmp}/search.db",
            "RESTPLUG_AUTH_JWT_SECRET": SECRET,
            "RESTPLUG_PORT": str(port),
        }
        command = [sys.executable, "-m", "restplug.cli"]

        def run(*args: str) -> str:
            done = subprocess.run([*command, *args], env=env, cwd=tmp, capture_output=True)
            return done.stdout.decode().strip()

        run("demo-data", "--count", "1")  # app 1, the one the GETs read
        token = run("token", "--scopes", "backend/package")
        server = subprocess.Popen(
            [*command, "serve"],
            env=env,
            cwd=tmp,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            wait_ready(base, server)
            asyncio.run(measure(base, token, count))
        finally:
            server.terminate()
            server.wait(timeout=30)


def wait_ready(base: str, server: subprocess.Popen) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and server.poll() is None:
        try:
            with urllib.request.urlopen(f"{base}/health/ready", timeout=2):
                return
        except OSError:
            time.sleep(0.1)
    raise SystemExit("the server did not become ready")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--apps", type=int, default=5000)
    main(parser.parse_args().apps)
