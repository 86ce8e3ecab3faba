"""A search-index outage never fails or loses a write; searches get 503 until it returns;
``restplug reindex`` rebuilds the index from the store."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from restplug.app import RESTPLUG
from restplug.errors import BackendUnavailable
from restplug.testing import AllowWrites, isolated_environ


@pytest.fixture
async def client(restplug_client):
    return await restplug_client(plugins=[AllowWrites()])


async def search(client, text: str) -> list[int]:
    response = await client.get(f"/api/v1/apps?search={text}")
    assert response.status == 200, await response.text()
    return [item["id"] for item in (await response.json())["items"]]


async def test_outage_and_recovery_lose_nothing(client, monkeypatch):
    restplug = client.app[RESTPLUG]
    await client.post("/api/v1/apps", json={"id": 1, "name": "Hollow Knight", "type": "game"})
    assert await search(client, "hollow") == [1]

    async def down(*args, **kwargs):
        raise BackendUnavailable("index down")

    with monkeypatch.context() as outage:
        for method in ("upsert", "delete", "search", "ping"):
            outage.setattr(restplug.search, method, down)
        created = await client.post(
            "/api/v1/apps", json={"id": 2, "name": "Hollow Crown", "type": "game"}
        )
        renamed = await client.patch("/api/v1/apps/1", json={"name": "Silksong"})
        assert created.status == 201 and renamed.status == 200
        response = await client.get("/api/v1/apps?search=hollow")
        assert response.status == 503
        assert response.content_type == "application/problem+json"
        assert response.headers["Retry-After"]
        ready = await client.get("/health/ready")
        assert ready.status == 200 and (await ready.json())["checks"]["search"] != "ok"
        # Everything else keeps working.
        assert (await client.get("/api/v1/apps/2")).status == 200
        assert await restplug.outbox.pending() == 2

    await restplug.outbox.retry_pending()
    assert await restplug.outbox.pending() == 0
    assert await search(client, "hollow") == [2]
    assert await search(client, "silksong") == [1]


def restplug_cli(tmp_path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "restplug.cli", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **isolated_environ(tmp_path)},
        cwd=tmp_path,
        timeout=120,
    )


async def test_reindex_rebuilds_a_lost_index(tmp_path, restplug_client):
    loaded = restplug_cli(tmp_path, "demo-data", "--count", "40", "--seed", "3")
    assert loaded.returncode == 0, loaded.stderr
    (tmp_path / "search.db").unlink()
    for suffix in ("-wal", "-shm"):
        (tmp_path / f"search.db{suffix}").unlink(missing_ok=True)

    client = await restplug_client()
    assert await search(client, "witcher") == []
    await client.close()

    result = restplug_cli(tmp_path, "reindex", "apps")
    assert result.returncode == 0, result.stderr
    assert "apps: 40 documents indexed" in result.stdout
    assert "reindexing apps" in result.stderr  # the progress bar
    client = await restplug_client()
    assert await search(client, "witcher") == [1]


def test_reindex_of_an_unsearchable_resource_is_one_clear_line(tmp_path):
    result = restplug_cli(tmp_path, "reindex", "games")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        "restplug: configuration error: 'games' is not searchable; choices: apps"
    )
