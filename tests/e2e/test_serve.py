"""The whole stack as a deployer runs it: the ``restplug`` command, real processes, real HTTP."""

from __future__ import annotations

import socket
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from servers import Server, call, cli


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    loaded = cli(tmp_path, "demo-data", "--count", "300")
    assert loaded.returncode == 0, loaded.stderr
    served = Server(tmp_path, "--workers", "2", RESTPLUG_CACHE_URL="none://")
    try:
        served.start()
        yield served.url
        assert served.terminate() == 0
    finally:
        served.stop()
    # The workers stopped with the server: nothing answers on its port any more.
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", served.port), timeout=2).close()


def test_a_deployment_serves_reads_searches_and_authorized_writes(server, tmp_path):
    status, headers, page = call(f"{server}/api/v1/apps?type=game&size=5")
    assert status == 200 and page["total"] > 0 and len(page["items"]) == 5
    status, _, found = call(f"{server}/api/v1/apps?search=witcher")
    assert status == 200 and found["items"][0]["name"] == "The Witcher 3: Wild Hunt"

    app = {"id": 100000, "name": "Made in a test", "type": "game"}
    status, headers, _ = call(f"{server}/api/v1/apps", "POST", app)
    assert status == 401 and headers["WWW-Authenticate"] == 'Bearer realm="restplug"'
    token = cli(tmp_path, "token", "--scopes", "backend/*").stdout.strip()
    status, headers, _ = call(f"{server}/api/v1/apps", "POST", app, token)
    assert status == 201 and headers["Location"] == "/api/v1/apps/100000"
    # Every worker sees the write at once.
    for _ in range(6):
        assert call(f"{server}/api/v1/apps/100000")[2]["name"] == "Made in a test"
    assert call(f"{server}/api/v1/apps?search=made%20in")[2]["items"][0]["id"] == 100000

    with urllib.request.urlopen(f"{server}/docs", timeout=10) as response:
        assert b"swagger-ui" in response.read()


def test_workers_refuse_a_per_process_cache(tmp_path):
    result = cli(tmp_path, "serve", "--workers", "2", RESTPLUG_CACHE_URL="memory://")
    assert result.returncode == 2
    assert "use a shared cache such as redis://" in result.stderr.strip().splitlines()[-1]
