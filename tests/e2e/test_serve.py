"""The whole stack as a deployer runs it: the ``restplug`` command, real processes, real HTTP."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

SECRET = "e2e-secret-" + "x" * 40


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def environ(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "RESTPLUG_STORE_URL": f"sqlite:///{tmp_path}/store.db",
        "RESTPLUG_SEARCH_URL": f"sqlite:///{tmp_path}/search.db",
        "RESTPLUG_AUTH_JWT_SECRET": SECRET,
        **extra,
    }


def restplug(tmp_path: Path, *args: str, **extra: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "restplug.cli", *args]
    env = environ(tmp_path, **extra)
    return subprocess.run(
        command, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120
    )


def call(
    url: str, method: str = "GET", body: object = None, token: str = ""
) -> tuple[int, dict, dict]:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), json.loads(error.read() or b"null")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    loaded = restplug(tmp_path, "demo-data", "--count", "300")
    assert loaded.returncode == 0, loaded.stderr
    port = free_port()
    env = environ(tmp_path, RESTPLUG_PORT=str(port), RESTPLUG_CACHE_URL="none://")
    process = subprocess.Popen(
        [sys.executable, "-m", "restplug.cli", "serve", "--workers", "2"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if call(f"{base}/health/ready")[0] == 200:
                    break
            except OSError:
                pass
            assert process.poll() is None, process.stderr.read().decode()
            assert time.monotonic() < deadline, "the server did not become ready"
            time.sleep(0.2)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=20)
    # The workers stopped with the server: nothing answers on its port any more.
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()


def test_a_deployment_serves_reads_searches_and_authorized_writes(server, tmp_path):
    status, headers, page = call(f"{server}/api/v1/apps?type=game&size=5")
    assert status == 200 and page["total"] > 0 and len(page["items"]) == 5
    status, _, found = call(f"{server}/api/v1/apps?search=witcher")
    assert status == 200 and found["items"][0]["name"] == "The Witcher 3: Wild Hunt"

    app = {"id": 100000, "name": "Made in a test", "type": "game"}
    status, headers, _ = call(f"{server}/api/v1/apps", "POST", app)
    assert status == 401 and headers["WWW-Authenticate"] == 'Bearer realm="restplug"'
    token = restplug(tmp_path, "token", "--scopes", "backend/*").stdout.strip()
    status, headers, _ = call(f"{server}/api/v1/apps", "POST", app, token)
    assert status == 201 and headers["Location"] == "/api/v1/apps/100000"
    # Every worker sees the write at once.
    for _ in range(6):
        assert call(f"{server}/api/v1/apps/100000")[2]["name"] == "Made in a test"
    assert call(f"{server}/api/v1/apps?search=made%20in")[2]["items"][0]["id"] == 100000

    with urllib.request.urlopen(f"{server}/docs", timeout=10) as response:
        assert b"swagger-ui" in response.read()


def test_workers_refuse_a_per_process_cache(tmp_path):
    result = restplug(tmp_path, "serve", "--workers", "2", RESTPLUG_CACHE_URL="memory://")
    assert result.returncode == 2
    assert "use a shared cache such as redis://" in result.stderr.strip().splitlines()[-1]
