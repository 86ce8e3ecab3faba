"""Rate limits counted in a real Redis: one budget for every process, and fail-open
through an outage (Redis stopped, or frozen as behind a partition)."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest
from pytest_redis.executor import RedisExecutor
from redis_helpers import frozen, redis_url, stopped, sync_client

from restplug.app import RESTPLUG
from restplug_ratelimit import RedisCounters
from restplug_ratelimit.plugin import _limiters

APPS = "/api/v1/apps"


async def test_the_counters_share_one_window_timed_by_redis(redis_server: RedisExecutor):
    first, second = (RedisCounters(redis_url(redis_server)) for _ in range(2))
    try:
        counts = [await counters.hit("k", 60) for counters in (first, second, first)]
    finally:
        await first.close()
        await second.close()
    assert [count for count, _ in counts] == [1, 2, 3]
    assert all(59 < reset <= 60 for _, reset in counts)
    with sync_client(redis_server) as client:
        assert 59_000 < client.pttl("k") <= 60_000


async def test_two_apps_on_one_redis_draw_on_one_budget(limited_app, redis_server):
    settings = {"URL": redis_url(redis_server), "READS": "7/hour"}
    first, second = await limited_app(**settings), await limited_app(**settings)
    responses = await asyncio.gather(*(c.get(APPS) for c in (first, second) * 10))
    assert sorted(r.status for r in responses) == [200] * 7 + [429] * 13
    remaining = sorted(int(r.headers["RateLimit-Remaining"]) for r in responses)
    assert remaining == [0] * 14 + [1, 2, 3, 4, 5, 6]


@pytest.mark.parametrize("outage", [stopped, frozen])
async def test_an_outage_lets_requests_through_and_limits_come_back(
    limited_app, outage_redis_server, outage, caplog
):
    client = await limited_app(URL=redis_url(outage_redis_server), READS="3/hour")
    # Retry Redis soon after the outage, not after the default 5 s.
    _limiters[client.app[RESTPLUG]].guard.breaker.cooldown = 0.5
    assert [(await client.get(APPS)).status for _ in range(4)] == [200, 200, 200, 429]
    statuses = []
    with caplog.at_level(logging.WARNING, "restplug.ratelimit"):
        async with outage(outage_redis_server):
            started = time.monotonic()
            for _ in range(20):
                response = await client.get(APPS)
                statuses.append(response.status)
                assert "RateLimit-Limit" not in response.headers  # no figures to tell
            # Each call is bounded (0.25 s) and the breaker skips Redis after three failures.
            assert time.monotonic() - started < 3
        assert statuses == [200] * 20
        warnings = [r for r in caplog.records if "requests pass unlimited" in r.getMessage()]
        assert len(warnings) == 1  # once per outage, not per request

        # Back: the budget (kept by Redis, or started afresh after a restart) is enforced again.
        deadline = time.monotonic() + 15
        while (await client.get(APPS)).status != 429:
            assert time.monotonic() < deadline, "limits never came back"
            await asyncio.sleep(0.2)
