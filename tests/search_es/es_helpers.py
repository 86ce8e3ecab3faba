"""The search cluster the Elasticsearch plugin's tests run against.

``RESTPLUG_TEST_ES_URL`` (``elasticsearch://host:9200``, a real Elasticsearch or OpenSearch
cluster): every test uses it, with index names of its own.  Otherwise osmem-server (PyPI, an
in-memory OpenSearch-compatible server whose wheel bundles its binary), started here and reached
through the plugin's OpenSearch path like any OpenSearch cluster.  The outage tests need a server
they can kill and freeze: they always start their own osmem-server.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from services import missing_service

REAL_CLUSTER = os.environ.get("RESTPLUG_TEST_ES_URL")


def osmem_binary() -> str:
    """The bundled osmem-server binary; a missing package skips (fails under CI)."""
    try:
        from osmem_server import OsmemError, resolve_binary
    except ImportError:
        missing_service("osmem-server is not installed (pip install osmem-server, or `make test`)")
    try:
        return resolve_binary()
    except OsmemError as e:
        missing_service(str(e))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class OsmemProcess:
    """One osmem-server on a fixed port, so that a restarted one is at the same address."""

    port: int
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"elasticsearch://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [osmem_binary(), "--addr", f"127.0.0.1:{self.port}", "--no-ja",
             "--parent-pid", str(os.getpid()), "--no-stdin-watch"],
            stdout=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            if self.process.poll() is not None:
                raise RuntimeError(f"osmem-server exited with {self.process.returncode}")
            time.sleep(0.05)
        raise RuntimeError("osmem-server did not listen within 30 s")

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)  # a frozen one cannot die otherwise
            self.process.kill()
            self.process.wait()

    def freeze(self) -> None:
        """SIGSTOP: the kernel still accepts connections, nothing ever answers."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)


@contextmanager
def osmem_process() -> Iterator[OsmemProcess]:
    server = OsmemProcess(free_port())
    server.start()
    try:
        yield server
    finally:
        server.kill()


def with_prefix(url: str) -> str:
    """``url`` with an index name prefix no other test uses."""
    return f"{url.rstrip('/')}/t{uuid.uuid4().hex[:12]}"
