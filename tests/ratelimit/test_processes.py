"""Two ``restplug serve`` processes sharing one Redis: one budget, counted exactly; Redis
stopped and frozen under them: requests pass, never a 5xx."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

from redis_helpers import frozen, redis_url, stopped
from servers import Server, call

LIMIT = 25


async def until_refused(url: str, timeout: float = 20) -> None:
    async with asyncio.timeout(timeout):
        while (await asyncio.to_thread(call, url))[0] != 429:
            await asyncio.sleep(0.2)


async def test_two_processes_share_one_budget_and_pass_through_an_outage(
    tmp_path, outage_redis_server
):
    env = {
        "RESTPLUG_RATELIMIT_URL": redis_url(outage_redis_server),
        "RESTPLUG_RATELIMIT_READS": f"{LIMIT}/hour",
    }
    servers = [Server(tmp_path, **env).start(wait=False) for _ in range(2)]
    try:
        for server in servers:
            server.wait_ready()
        urls = [f"{server.url}/api/v1/apps?size=1" for server in servers] * 40

        def burst() -> list[tuple[int, str | None]]:
            with ThreadPoolExecutor(8) as pool:
                answers = list(pool.map(lambda url: call(url, timeout=5), urls))
            return [(status, headers.get("RateLimit-Limit")) for status, headers, _ in answers]

        # Concurrent requests to both processes: exactly LIMIT of them allowed in all.
        answers = await asyncio.to_thread(burst)
        statuses = sorted(status for status, _ in answers)
        assert statuses == [200] * LIMIT + [429] * (len(urls) - LIMIT)
        assert {limit for _, limit in answers} == {str(LIMIT)}

        # Over budget, Redis hangs: both processes let every request through; once it answers
        # again (and their circuit breakers retry it), the spent budget holds again.
        async with frozen(outage_redis_server):
            answers = await asyncio.to_thread(burst)
            assert [status for status, _ in answers] == [200] * len(urls)
        for server in servers:
            await until_refused(f"{server.url}/api/v1/apps")
        # Redis shut down: the same.
        async with stopped(outage_redis_server):
            answers = await asyncio.to_thread(burst)
            assert [status for status, _ in answers] == [200] * len(urls)
    finally:
        for server in servers:
            server.stop()
    for server in servers:
        assert "Traceback" not in server.output()
