"""Real ``restplug`` processes for tests that serve, kill and restart them as a deployer would."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from restplug_auth_oauth.dev_tokens import mint_token

SECRET = "test-secret-" + "x" * 40


def token(*scopes: str) -> str:
    """A bearer token with ``scopes`` that servers started here accept."""
    return mint_token(SECRET, scopes, ttl=3600, subject="tests")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def environ(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The process environment of a deployment on ``tmp_path``'s files."""
    return {
        **os.environ,
        "RESTPLUG_STORE_URL": f"sqlite:///{tmp_path}/store.db",
        "RESTPLUG_SEARCH_URL": f"sqlite:///{tmp_path}/search.db",
        "RESTPLUG_AUTH_JWT_SECRET": SECRET,
        **extra,
    }


def cli(
    tmp_path: Path, *args: str, timeout: float = 120, python: str = sys.executable, **extra: str
) -> subprocess.CompletedProcess:
    """Run ``restplug ARGS`` to completion in ``tmp_path`` (with another installation's
    ``python`` if given)."""
    return subprocess.run(
        [python, "-m", "restplug.cli", *args],
        capture_output=True,
        text=True,
        env=environ(tmp_path, **extra),
        cwd=tmp_path,
        timeout=timeout,
    )


def call(
    url: str,
    method: str = "GET",
    body: Any = None,
    token: str = "",
    headers: dict[str, str] | None = None,
    timeout: float = 10,
) -> tuple[int, dict[str, str], Any]:
    """One HTTP request: (status, headers, decoded JSON body or None)."""
    sent = {"Content-Type": "application/json", **(headers or {})}
    if token:
        sent["Authorization"] = f"Bearer {token}"
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method, headers=sent)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, dict(response.headers), _decode(response.read())
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), _decode(error.read())


def _decode(body: bytes) -> Any:
    return json.loads(body) if body else None


class Server:
    """``restplug serve`` as a child process on a free port; ``kill()`` it (SIGKILL by
    default) and ``start()`` it again on the same files and port, as a crash and a restart."""

    def __init__(
        self, tmp_path: Path, *args: str, python: str = sys.executable, **extra: str
    ) -> None:
        self.tmp_path = tmp_path
        self.args = args
        self.python = python
        self.port = free_port()
        self.extra = extra
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None
        self.log = tmp_path / f"server-{self.port}.log"

    def start(self, wait: bool = True, **extra: str) -> Server:
        """Start with the constructor's settings updated by ``extra`` (for this run only)."""
        env = environ(self.tmp_path, RESTPLUG_PORT=str(self.port), **{**self.extra, **extra})
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [self.python, "-m", "restplug.cli", "serve", *self.args],
                env=env,
                cwd=self.tmp_path,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                if call(f"{self.url}/health/ready", timeout=2)[0] == 200:
                    return
            except OSError:
                pass
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(f"the server exited:\n{self.output()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"the server did not become ready:\n{self.output()}")
            time.sleep(0.1)

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def wait_exit(self, timeout: float = 30) -> int:
        """The exit status once the process ends by itself (a crash point, say)."""
        assert self.process is not None
        return self.process.wait(timeout=timeout)

    def kill(self, sig: int = signal.SIGKILL, timeout: float = 30) -> int:
        """Send ``sig`` to the server and all its workers; wait for the server to end."""
        assert self.process is not None
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, sig)
        return self.process.wait(timeout=timeout)

    def terminate(self, timeout: float = 30) -> int:
        """SIGTERM to the server process alone, as a service manager sends it; its workers
        are its own to stop."""
        assert self.process is not None
        self.process.terminate()
        return self.process.wait(timeout=timeout)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.kill(signal.SIGKILL)
