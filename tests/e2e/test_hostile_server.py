"""Hostile clients against a real ``restplug serve``: malformed HTTP on raw sockets, a body
trickled byte by byte, a client leaving mid-body, cursors shared by workers."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from servers import SECRET, Server, call, cli

from restplug_auth_oauth.dev_tokens import mint_token

TOKEN = mint_token(SECRET, ["*/*"], 600, "hostile")
MALFORMED = {
    "URL over 8 KB": b"GET /api/v1/apps?" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
    "header over 8 KB": b"GET / HTTP/1.1\r\nHost: x\r\nX-A: " + b"a" * 9000 + b"\r\n\r\n",
    "too many headers": b"GET / HTTP/1.1\r\nHost: x\r\n"
    + b"".join(b"X-%d: 1\r\n" % i for i in range(200))
    + b"\r\n",
    "null byte": b"GET /api/v1/apps\x00 HTTP/1.1\r\nHost: x\r\n\r\n",
    "raw bytes in the URL": b"GET /api/v1/\xff\xfe HTTP/1.1\r\nHost: x\r\n\r\n",
    "Content-Length with Transfer-Encoding": b"POST /api/v1/apps HTTP/1.1\r\nHost: x\r\n"
    b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "not a method": b"G\x01T / HTTP/1.1\r\nHost: x\r\n\r\n",
}


def exchange(port: int, raw: bytes, timeout: float = 10) -> tuple[int, dict[str, str], bytes]:
    """Send raw bytes, read the answer until the server closes: (status, headers, body)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(raw)
        return parse(read_all(sock))


def read_all(sock: socket.socket) -> bytes:
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def parse(data: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), {k.lower(): v for k, v in headers.items()}, body


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    assert cli(tmp_path, "demo-data", "--count", "30").returncode == 0
    server = Server(tmp_path, RESTPLUG_BODY_TIMEOUT="1").start()
    yield server
    server.stop()


@pytest.mark.parametrize("name", list(MALFORMED))
def test_malformed_http_is_answered_as_problem_json(server, name):
    status, headers, body = exchange(server.port, MALFORMED[name])
    assert status == 400
    assert headers["content-type"] == "application/problem+json"
    problem = json.loads(body)
    assert problem["status"] == 400 and problem["detail"].startswith("the request is not valid")
    assert "aaaa" not in problem["detail"]  # the fault is named, the request not echoed
    assert call(f"{server.url}/health/live")[0] == 200
    # The client's fault is at most one line in the log: no traceback, no echo of what it sent.
    log = server.output()
    assert "Traceback" not in log and "ERROR" not in log and "aaaa" not in log


def test_a_trickled_body_gets_408_after_the_body_timeout(server):
    body = json.dumps({"type": "t", "payload": {"pad": "x" * 50}}).encode()
    head = (
        f"POST /api/v1/tasks HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    tasks_before = call(f"{server.url}/api/v1/tasks", token=TOKEN)[2]["total"]
    started = time.monotonic()
    answered_after = None
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(head)
        sock.setblocking(False)
        answer = b""
        for byte in body:  # a byte every 0.2 s: the whole body would take 20 s
            sock.send(bytes([byte]))
            time.sleep(0.2)
            try:
                answer += sock.recv(65536)
            except BlockingIOError:
                continue
            if b"}" in answer:  # the whole problem document
                answered_after = time.monotonic() - started
                break
    assert answered_after is not None and answered_after < 5, answer
    status, headers, problem = parse(answer)
    assert status == 408, answer
    assert headers["content-type"] == "application/problem+json"
    assert "RESTPLUG_BODY_TIMEOUT" in json.loads(problem)["detail"]
    assert call(f"{server.url}/api/v1/tasks", token=TOKEN)[2]["total"] == tasks_before


def test_a_client_leaving_mid_body_is_one_quiet_log_line(server):
    head = (
        f"POST /api/v1/tasks HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n"
        "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(head + b'{"type": "t", "pay')
        time.sleep(0.3)
    deadline = time.monotonic() + 5
    while "went away" not in server.output() and time.monotonic() < deadline:
        time.sleep(0.1)
    log = server.output()
    assert [line for line in log.splitlines() if "went away" in line]
    assert "Traceback" not in log and "unhandled" not in log
    assert call(f"{server.url}/health/live")[0] == 200


def test_workers_share_the_cursor_key_and_it_survives_a_restart(tmp_path):
    assert cli(tmp_path, "demo-data", "--count", "30").returncode == 0
    server = Server(tmp_path, "--workers", "2", RESTPLUG_CACHE_URL="none://").start()
    try:
        status, _, page = call(f"{server.url}/api/v1/apps?size=5&type=game")
        assert status == 200 and page["next_cursor"]
        follow = f"{server.url}/api/v1/apps?size=5&type=game&cursor={page['next_cursor']}"
        # Connections are spread over both workers: each must accept the other's cursor.
        answers = {call(follow)[0] for _ in range(12)}
        assert answers == {200}
        secret = (tmp_path / "var" / "cursor-secret").read_text()
        assert len(secret.strip()) >= 32
        assert (
            call(f"{server.url}/api/v1/apps?size=5&type=dlc&cursor={page['next_cursor']}")[0] == 400
        )
        server.kill()
        server.start()
        assert call(follow)[0] == 200
    finally:
        server.stop()
