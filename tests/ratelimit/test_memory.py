"""Rate limits counted in memory: budgets per kind of request and per client, the
RateLimit-* headers, 429 problem+json with Retry-After, and what is never limited."""

from __future__ import annotations

import asyncio

import pytest
from aiohttp.test_utils import TestClient

from restplug.app import Restplug
from restplug.errors import ConfigError
from restplug.testing import isolated_environ
from restplug_auth_oauth.dev_tokens import mint_token

SECRET = "ratelimit-test-secret-" + "x" * 32
APPS = "/api/v1/apps"


def limits(response) -> tuple[str | None, str | None, str | None]:
    headers = response.headers
    return (
        headers.get("RateLimit-Limit"),
        headers.get("RateLimit-Remaining"),
        headers.get("RateLimit-Reset"),
    )


async def statuses(client: TestClient, count: int, path: str = APPS, **kwargs) -> list[int]:
    return [(await client.get(path, **kwargs)).status for _ in range(count)]


async def test_a_budget_counts_down_then_answers_429_with_retry_after(limited_app):
    client = await limited_app(READS="3/minute")
    for remaining in ("2", "1", "0"):
        response = await client.get(APPS)
        assert response.status == 200
        limit, left, reset = limits(response)
        assert (limit, left) == ("3", remaining) and 1 <= int(reset) <= 60
    refused = await client.get(f"{APPS}/1")
    assert refused.status == 429 and refused.content_type == "application/problem+json"
    body = await refused.json()
    assert body["status"] == 429 and "3/minute" in body["detail"]
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert limits(refused)[:2] == ("3", "0")


async def test_the_budget_comes_back_when_the_window_ends(limited_app):
    client = await limited_app(READS="2/second")
    assert await statuses(client, 3) == [200, 200, 429]
    await asyncio.sleep(1.1)
    assert await statuses(client, 1) == [200]


async def test_reads_searches_and_writes_have_budgets_of_their_own(limited_app):
    client = await limited_app(READS="2/minute", SEARCHES="1/minute", WRITES="2/minute")
    assert await statuses(client, 3) == [200, 200, 429]
    search = await client.get(APPS, params={"search": "witcher"})
    assert search.status == 200 and limits(search)[:2] == ("1", "0")
    assert await statuses(client, 1, params={"search": "other"}) == [429]
    created = await client.post(APPS, json={"id": 1, "name": "One", "type": "game"})
    assert created.status == 201 and limits(created)[:2] == ("2", "1")
    deleted = await client.delete(f"{APPS}/1")
    assert deleted.status == 204 and limits(deleted)[:2] == ("2", "0")
    refused = await client.post(APPS, json={"id": 2, "name": "Two", "type": "game"})
    assert refused.status == 429
    assert (await client.get(f"{APPS}/2")).status == 429  # the write was refused, not run


async def test_errors_of_a_limited_route_carry_the_headers_too(limited_app):
    client = await limited_app(READS="5/minute")
    missing = await client.get(f"{APPS}/404")
    assert missing.status == 404 and limits(missing)[:2] == ("5", "4")
    bad = await client.get(APPS, params={"size": "1000"})
    assert bad.status == 400 and limits(bad)[:2] == ("5", "3")


async def test_each_identity_has_its_budget_and_anonymous_clients_their_address(limited_app):
    client = await limited_app(READS="2/minute", RESTPLUG_AUTH_JWT_SECRET=SECRET)

    def bearer(subject: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {mint_token(SECRET, [], 600, subject)}"}

    assert await statuses(client, 3, headers=bearer("ada")) == [200, 200, 429]
    # Another token of the same subject draws on the same budget.
    assert await statuses(client, 1, headers=bearer("ada")) == [429]
    assert await statuses(client, 2, headers=bearer("bob")) == [200, 200]
    assert await statuses(client, 3) == [200, 200, 429]  # anonymous: the address's budget
    # A bad token counts against the address, and is answered 401 as ever until then.
    bad = {"Authorization": "Bearer not-a-token"}
    assert await statuses(client, 1, headers=bad) == [429]


async def test_forwarded_for_counts_only_behind_a_trusted_proxy(limited_app):
    untrusted = await limited_app(READS="1/minute")
    assert await statuses(untrusted, 1, headers={"X-Forwarded-For": "203.0.113.1"}) == [200]
    # Without a trusted proxy the header is the client's own claim: no new budget.
    assert await statuses(untrusted, 1, headers={"X-Forwarded-For": "203.0.113.2"}) == [429]

    behind = await limited_app(READS="1/minute", TRUSTED_PROXIES="127.0.0.1, 10.0.0.0/8")
    for client in ("203.0.113.1", "203.0.113.2"):
        assert await statuses(behind, 1, headers={"X-Forwarded-For": client}) == [200]
    # The client's own entries come first; the walk from the right stops at the first
    # address no trusted proxy is: the one that reached them.
    forged = {"X-Forwarded-For": "198.51.100.7, 203.0.113.1, 10.1.2.3"}
    assert await statuses(behind, 1, headers=forged) == [429]


async def test_health_probes_are_never_limited(limited_app):
    client = await limited_app(READS="1/minute")
    assert await statuses(client, 2) == [200, 429]
    for path in ("/health/live", "/health/ready") * 3:
        response = await client.get(path)
        assert response.status == 200 and limits(response) == (None, None, None)
    # Only the probes themselves: other paths under /health/ draw on the budget.
    assert (await client.get("/health/anything")).status == 429


async def test_disabled_plugin_limits_nothing(limited_app):
    client = await limited_app(READS="1/minute", RESTPLUG_DISABLE_PLUGINS="ratelimit")
    responses = [await client.get(APPS) for _ in range(3)]
    assert [r.status for r in responses] == [200] * 3
    assert all(limits(r) == (None, None, None) for r in responses)


async def test_the_defaults_let_a_normal_client_through(limited_app):
    client = await limited_app()
    assert await statuses(client, 100) == [200] * 100
    response = await client.get(APPS)
    assert limits(response)[:2] == ("3000", "2899")


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("RESTPLUG_RATELIMIT_READS", "100", "per second, minute or hour"),
        ("RESTPLUG_RATELIMIT_WRITES", "0/minute", "per second, minute or hour"),
        ("RESTPLUG_RATELIMIT_SEARCHES", "5/day", "per second, minute or hour"),
        ("RESTPLUG_RATELIMIT_URL", "memcached://x", "memory://, redis://, rediss://"),
        ("RESTPLUG_RATELIMIT_TRUSTED_PROXIES", "10.0.0.0/8, proxy", "'proxy' is not an IP"),
    ],
)
async def test_a_bad_setting_stops_start_up_with_one_line(tmp_path, name, value, message):
    with pytest.raises(ConfigError) as error:
        await Restplug.configure(isolated_environ(tmp_path, {name: value}))
    assert str(error.value).startswith(f"{name}={value!r}: ") and message in str(error.value)
    assert "\n" not in str(error.value)
