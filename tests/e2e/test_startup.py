"""``restplug serve`` start-up failures: one clear line, a non-zero exit, nothing served."""

from __future__ import annotations

import signal
import socket

import pytest
from servers import Server, call, cli, free_port

PASSWORD = "s3cret-pw"


def assert_refused(result, *expected: str) -> None:
    """The command failed with one line on stderr naming ``expected``, and never claimed to
    serve."""
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert all(text in lines[0] for text in expected), lines[0]
    assert "serving on" not in result.stdout


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_taken_port_is_refused(tmp_path, workers):
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = str(taken.getsockname()[1])
        result = cli(tmp_path, "serve", "--port", port, "--workers", workers,
                     RESTPLUG_CACHE_URL="none://", timeout=30)  # fmt: skip
    assert_refused(result, f"cannot listen on 127.0.0.1:{port}", "in use")


def test_a_second_deployment_on_the_same_port_is_refused(tmp_path):
    first = Server(tmp_path / "first", "--workers", "2", RESTPLUG_CACHE_URL="none://")
    (tmp_path / "first").mkdir()
    (tmp_path / "second").mkdir()
    first.start()
    try:
        second = cli(tmp_path / "second", "serve", "--workers", "2", "--port", str(first.port),
                     RESTPLUG_CACHE_URL="none://", timeout=30)  # fmt: skip
        assert_refused(second, f"cannot listen on 127.0.0.1:{first.port}")
        # Every answer still comes from the first deployment's store.
        for _ in range(6):
            assert call(f"{first.url}/api/v1/apps?size=1")[0] == 200
        assert first.process.poll() is None
    finally:
        first.stop()


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--workers", "0"], "--workers"),
        (["--port", "70000"], "--port"),
        (["--host", "nosuch.invalid"], "cannot resolve the listen address 'nosuch.invalid'"),
    ],
)
def test_bad_listen_options_stop_start_up(tmp_path, args, expected):
    result = cli(tmp_path, "serve", "--port", str(free_port()), *args, timeout=30)
    assert_refused(result, expected)


def test_workers_that_cannot_open_the_store_fail_the_server(tmp_path):
    (tmp_path / "file").write_text("not a folder")
    result = cli(tmp_path, "serve", "--workers", "2", "--port", str(free_port()),
                 RESTPLUG_CACHE_URL="none://",
                 RESTPLUG_STORE_URL=f"sqlite:///{tmp_path}/file/store.db", timeout=30)  # fmt: skip
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert "cannot open SQLite database" in result.stderr


@pytest.mark.parametrize(
    ("args", "env", "shown"),
    [
        # No plugin answers the scheme: the error names the URL, not its password.
        ([], {"RESTPLUG_STORE_URL": f"couchdb://admin:{PASSWORD}@db/x?password={PASSWORD}"},
         "couchdb://admin:***@db/x?password=***"),
        # The MongoDB store refuses a URL PyMongo cannot use, naming it masked.
        ([], {"RESTPLUG_STORE_URL": f"mongodb+srv://admin:{PASSWORD}@db:27017/x"},
         "mongodb+srv://admin:***@db:27017/x"),
        (["--workers", "2"], {"RESTPLUG_CACHE_URL": f"memory://:{PASSWORD}@x"}, "memory://:***@x"),
        ([], {"RESTPLUG_CACHE_URL": f"redis:/:{PASSWORD}@x"}, "RESTPLUG_CACHE_URL=***"),
    ],
)  # fmt: skip
def test_start_up_errors_mask_credentials(tmp_path, args, env, shown):
    result = cli(tmp_path, "serve", "--port", str(free_port()), *args, timeout=30, **env)
    assert result.returncode == 2
    assert PASSWORD not in result.stderr and shown in result.stderr


def test_log_lines_mask_credentials(tmp_path):
    url = f"http://client:{PASSWORD}@127.0.0.1:{free_port()}/introspect?api_key={PASSWORD}"
    server = Server(
        tmp_path,
        RESTPLUG_CACHE_URL="none://",
        RESTPLUG_AUTH_INTROSPECTION_URL=url,
        RESTPLUG_AUTH_CLIENT_ID="restplug",
        RESTPLUG_AUTH_CLIENT_SECRET="x",
        RESTPLUG_AUTH_JWT_SECRET="",
    )
    server.start()
    try:
        # The authorization server is down: the plugin logs the URL it could not reach.
        status, _, _ = call(f"{server.url}/api/v1/apps", "POST", {}, token="some-token")
        assert status == 503
    finally:
        server.kill(signal.SIGTERM)
    assert PASSWORD not in server.output()
    assert "http://client:***@127.0.0.1" in server.output()
