"""Added latency of bearer-token authentication (restplug-auth-oauth).

    .venv/bin/python bench/bench_auth.py [--requests 2000]

Serves two real apps on loopback, one validating HS256 JWTs, one asking an in-process RFC 7662
introspection server, and times sequential HTTP requests end to end on a trivial route, so the
difference to an anonymous request is the cost of authentication and the scope check alone.
The kinds of request are interleaved, so drift (GC, CPU frequency) affects them alike.  The
introspection answer is cached after the first request: that is the steady state measured.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer

from restplug import hookimpl
from restplug.app import Restplug
from restplug.permissions import Scope
from restplug.routes import Route
from restplug_auth_oauth.dev_tokens import mint_token

SECRET = "bench-secret-0123456789-0123456789-0123456789"
OPAQUE_TOKEN = "bench-opaque-token"
WARM_UP = 100


async def ok(_: web.Request) -> web.Response:
    return web.json_response({"ok": True})


class BenchRoutes:
    """An open route and one needing a scope, both doing nothing."""

    @hookimpl
    def register_routes(self) -> list[Route]:
        return [
            Route("GET", "/bench/open", ok),
            Route("GET", "/bench/scoped", ok, "read", Scope("backend/read")),
        ]


class IntrospectionServer:
    def __init__(self) -> None:
        self.calls = 0
        self.app = web.Application()
        self.app.router.add_post("/introspect", self.introspect)

    async def introspect(self, _: web.Request) -> web.Response:
        self.calls += 1
        answer = {
            "active": True,
            "sub": "bench",
            "scope": "backend/read",
            "exp": time.time() + 3600,
        }
        return web.json_response(answer)


async def serve(app: web.Application) -> TestServer:
    server = TestServer(app)
    await server.start_server()
    return server


async def restplug_server(directory: Path, env: dict[str, str]) -> TestServer:
    directory.mkdir()
    restplug = await Restplug.configure(
        {
            "RESTPLUG_STORE_URL": f"sqlite:///{directory}/store.db",
            "RESTPLUG_SEARCH_URL": f"sqlite:///{directory}/search.db",
            **env,
        },
        plugins=[BenchRoutes()],
    )
    return await serve(restplug.web_app())


async def timed(session: aiohttp.ClientSession, url: str, headers: dict[str, str]) -> float:
    start = time.perf_counter()
    async with session.get(url, headers=headers) as response:
        await response.read()
        assert response.status == 200, await response.text()
    return (time.perf_counter() - start) * 1000


def p95(times: list[float]) -> float:
    return sorted(times)[int(len(times) * 0.95) - 1]


async def main(requests: int) -> None:
    introspection = IntrospectionServer()
    auth_server = await serve(introspection.app)
    with tempfile.TemporaryDirectory() as tmp:
        jwt_app = await restplug_server(Path(tmp, "jwt"), {"RESTPLUG_AUTH_JWT_SECRET": SECRET})
        introspection_app = await restplug_server(
            Path(tmp, "introspection"),
            {
                "RESTPLUG_AUTH_INTROSPECTION_URL": str(auth_server.make_url("/introspect")),
                "RESTPLUG_AUTH_CLIENT_ID": "bench",
                "RESTPLUG_AUTH_CLIENT_SECRET": "bench",
            },
        )
        jwt_token = mint_token(SECRET, ["backend/read"], 3600, "bench")
        cases = {
            "anonymous": (jwt_app, "/bench/open", {}),
            "JWT HS256 + scope check": (
                jwt_app,
                "/bench/scoped",
                {"Authorization": f"Bearer {jwt_token}"},
            ),
            "introspection (cached) + scope check": (
                introspection_app,
                "/bench/scoped",
                {"Authorization": f"Bearer {OPAQUE_TOKEN}"},
            ),
        }
        times: dict[str, list[float]] = {name: [] for name in cases}
        try:
            async with aiohttp.ClientSession() as session:
                for round in range(WARM_UP + requests):
                    for name, (server, path, headers) in cases.items():
                        elapsed = await timed(session, str(server.make_url(path)), headers)
                        if round >= WARM_UP:
                            times[name].append(elapsed)
        finally:
            for server in (jwt_app, introspection_app, auth_server):
                await server.close()

    print(f"{requests} sequential requests each, interleaved, HTTP on loopback")
    baseline = statistics.median(times["anonymous"])
    for name, measured in times.items():
        median = statistics.median(measured)
        added = "" if name == "anonymous" else f"   added {median - baseline:+6.3f} ms"
        print(f"{name:40} median {median:6.3f} ms   p95 {p95(measured):6.3f} ms{added}")
    print(f"introspection server calls: {introspection.calls}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000, help="timed requests per kind")
    asyncio.run(main(parser.parse_args().requests))
